"""The house plotting helpers: names beside points that neither overlap nor leave the axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from replib import plotting  # noqa: E402


def test_names_of_nearby_points_are_moved_apart_and_stay_inside_the_axes():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=plotting.PAGE_DPI)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    fig.tight_layout()
    points = [(0.2, 0.5, "no dropout", "C0"), (0.21, 0.505, "dropout", "C1"), (0.2, 0.495, "Cutout", "C2"),
              (0.95, 0.2, "a long method name", "C3")]
    plotting.label_points(ax, points)
    fig.canvas.draw()
    boxes = [Text.get_window_extent(t) for t in ax.texts]  # the names alone, without their leader lines
    assert len(boxes) == len(points)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not boxes[i].overlaps(boxes[j]), (points[i][2], points[j][2])
    assert boxes[3].x1 <= ax.get_window_extent().x1, "a name near the right edge left the axes"
    assert all(t.get_fontsize() >= plotting.MIN_FONT_PT for t in ax.texts)
    plt.close(fig)


def test_a_lone_name_sits_level_with_its_point_without_a_leader_line():
    fig, ax = plt.subplots(dpi=plotting.PAGE_DPI)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    plotting.label_points(ax, [(0.3, 0.3, "dropout", "C0")])
    (name,) = ax.texts
    assert name.xyann == (6, 0) and name.arrow_patch is None
    plt.close(fig)
