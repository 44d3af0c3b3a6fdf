"""One house style for every figure, and export under stable, citable names."""

from __future__ import annotations

import os
from pathlib import Path

from .results import REPO_ROOT

FIGURES_ENV = "REPLIB_FIGURES_DIR"


# A figure on a book page is drawn at PAGE_DPI and shown at its own size (never shrunk: _static/custom.css), so
# text of MIN_FONT_PT points is MIN_FONT_PT / 72 * PAGE_DPI = 9.7 px high at any window width; no figure has smaller
# text (a test renders every chapter's figures and checks both).
PAGE_DPI = 100
MIN_FONT_PT = 7.0


def use_house_style() -> None:
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=0.95)
    mpl.rcParams["figure.dpi"] = PAGE_DPI


def palette(n: int) -> list:
    import seaborn as sns

    return sns.color_palette("colorblind", n)


def figures_dir() -> Path:
    """``$REPLIB_FIGURES_DIR`` if set, else the repository's ``figures/`` (published with the book)."""
    return Path(os.environ.get(FIGURES_ENV) or REPO_ROOT / "figures")


def save_figure(fig, paper: str, name: str) -> list[Path]:
    """Write ``<paper>-<name>.png`` and ``.svg``; return their paths."""
    out = figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{paper}-{name}.{ext}" for ext in ("png", "svg")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None)
    return paths
