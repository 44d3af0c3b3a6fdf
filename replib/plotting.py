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


def label_points(ax, points: list[tuple[float, float, str, object]], fontsize: float = MIN_FONT_PT) -> None:
    """Name each point ``(x, y, text, color)`` beside it (right of it, or left where the name would leave the
    axes), moving a name up, with a thin leader line, where it would overlap a name below it. Call once the
    figure's layout is final (after ``tight_layout``): the names are placed in display space."""
    to_display = ax.transData.transform
    pt = ax.figure.dpi / 72  # display pixels per typographic point
    line = 1.3 * fontsize * pt  # the height a name needs
    axes_right = ax.get_window_extent().x1
    spots = [to_display((x, y)) for x, y, *_ in points]
    placed: list[tuple[float, float, float]] = []  # (left, right, y) of each name placed, in display pixels
    where = {}
    for i in sorted(range(len(points)), key=lambda i: spots[i][1]):
        width = 0.62 * fontsize * pt * len(points[i][2])  # about the width of the name
        right_side = spots[i][0] + 6 * pt + width <= axes_right
        left = spots[i][0] + 6 * pt if right_side else spots[i][0] - 6 * pt - width
        y = spots[i][1]
        for other_left, other_right, other_y in sorted(placed, key=lambda p: p[2]):
            if left < other_right and other_left < left + width and abs(y - other_y) < line:
                y = other_y + line
        placed.append((left, left + width, y))
        where[i] = (right_side, (y - spots[i][1]) / pt)
    for i, (x, y, text, color) in enumerate(points):
        right_side, shift = where[i]
        ax.annotate(text, (x, y), xytext=(6 if right_side else -6, shift), textcoords="offset points", va="center",
                    ha="left" if right_side else "right", fontsize=fontsize, color=color,
                    arrowprops={"arrowstyle": "-", "color": color, "lw": 0.5, "shrinkA": 0, "shrinkB": 3}
                    if abs(shift) > 0.5 else None)


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
