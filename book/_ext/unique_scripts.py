"""Sphinx extension: every script once per page.

sphinx-togglebutton and sphinx-thebe register inline configuration scripts (``const THEBE_JS_URL = ...``) that
reach a page twice under this Sphinx; a ``const`` declared twice is a SyntaxError in the browser. Each page keeps
the first copy of every script, told apart by its file and attributes (an inline script's body among them; its
file is None in one copy and '' in the other, which is why Sphinx's own check lets both through).
"""

from __future__ import annotations


def _key(script) -> tuple:
    """File and attributes; an inline script's file is None in one copy and '' in the other."""
    filename = getattr(script, "filename", script) or ""
    return (str(filename), tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if scripts is None:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        if (key := _key(script)) not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    # early: the event stops at the first handler that names a template, so a late handler may never run
    app.connect("html-page-context", unique_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
