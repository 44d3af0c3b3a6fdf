"""Sphinx extension: publish the committed result files and the executed chapters with the site.

Every ``results/**/*.json`` (superseded runs under an ``archive/`` folder excepted) is copied to the same path
under the built site's root, so the link a chapter gives to the numbers behind its figures and verdict resolves
in the published book as in the repository. Each chapter's notebook as this build executed it, outputs and all,
is published beside its page (``notebooks/<paper>.ipynb``), for readers who want the notebook itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def publish_results(app, exception) -> None:
    if exception is not None:  # a failed build publishes nothing
        return
    source = Path(app.srcdir) / "results"
    for path in sorted(source.rglob("*.json")):
        relative = path.relative_to(source)
        if "archive" in relative.parts:
            continue
        target = Path(app.outdir) / "results" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    executed = Path(app.outdir).parent / "jupyter_execute" / "notebooks"  # where MyST-NB writes what it ran
    for notebook in sorted(executed.glob("*.ipynb")):
        shutil.copyfile(notebook, Path(app.outdir) / "notebooks" / notebook.name)


def setup(app):
    app.connect("build-finished", publish_results)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
