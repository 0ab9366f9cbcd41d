"""The trade-off chart (``tradeoff.png``): reconstruction error against seconds per image, drawn from the
report's own numbers.

One panel per error column (MSE and each LPIPS(-like) distance the report has), x on a log scale. Every
method that produced a row is a point at its table values, labelled with its name; an iterative method whose
row records ``per_iteration_seconds`` and ``per_iteration_<key>`` (ReStyle) also gets a line through its
iterations, from the first to its row's point. matplotlib draws on an Agg canvas made here: no pyplot, no
global backend.
"""

from __future__ import annotations

import io
import math

PANEL_KEYS = ("mse", "lpips_alex", "lpips_fmnist")  # the error columns drawn, when the report has them
FILE = "tradeoff.png"
CAPTION = (
    "one point per method: its error against its seconds per image (log scale), the table's values; a line "
    "through an iterative method's iterations (error and seconds per image after each iteration, split times "
    "of the same timed batches), ending at its row"
)
# Where a label may sit around its point (offset in points, alignment), tried in order; then further out.
_PLACES = [
    (5, 2, "left", "bottom"),
    (5, -2, "left", "top"),
    (-5, 2, "right", "bottom"),
    (-5, -2, "right", "top"),
    (0, 6, "center", "bottom"),
    (0, -6, "center", "top"),
    (7, 0, "left", "center"),
    (-7, 0, "right", "center"),
]
_PLACES += [(3 * dx, 3 * dy, ha, va) for dx, dy, ha, va in _PLACES] + [
    (5 * dx, 5 * dy, ha, va) for dx, dy, ha, va in _PLACES
]
# A label beside its point (no leader line) must be this many times nearer its own point than any other
# method's point; otherwise a reader attributes it to the other method.
_OWN_NEARER = 1.5


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def drawn_rows(report: dict) -> list[dict]:
    """The rows with a positive time (the others cannot sit on a log axis: failed methods)."""
    return [
        r
        for r in report["rows"]
        if r.get("error") is None and _finite(r.get("seconds_per_image")) and r["seconds_per_image"] > 0
    ]


def panels(report: dict) -> list[dict]:
    """The report's columns drawn, one panel each."""
    return [c for c in report["columns"] if c["key"] in PANEL_KEYS]


def iterations(row: dict, key: str) -> tuple[list[float], list[float]] | None:
    """``(seconds, values)`` after each iteration of an iterative method's row, or None."""
    seconds, values = row.get("per_iteration_seconds"), row.get(f"per_iteration_{key}")
    if not seconds or not values or len(seconds) != len(values):
        return None
    pairs = [(s, v) for s, v in zip(seconds, values) if _finite(s) and s > 0 and _finite(v)]
    return ([s for s, _ in pairs], [v for _, v in pairs]) if pairs else None


def tradeoff_figure(report: dict):
    """The chart as a ``matplotlib.figure.Figure`` on an Agg canvas, or None when no row can be drawn."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    rows, columns = drawn_rows(report), panels(report)
    if not rows or not columns:
        return None
    fig = Figure(figsize=(6.5 * len(columns), 5.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    colors = colormaps["tab20" if len(rows) > 10 else "tab10"]
    placements = []  # (axes, its points to label) once the layout is fixed
    for ax, column in zip(fig.subplots(1, len(columns), squeeze=False)[0], columns):
        key, labelled = column["key"], []
        for i, row in enumerate(rows):
            value = row["metrics"].get(key)
            if not _finite(value):
                continue
            color = colors(i % colors.N)
            steps = iterations(row, key)
            if steps:
                ax.plot(
                    [*steps[0], row["seconds_per_image"]],
                    [*steps[1], value],
                    "-",
                    color=color,
                    lw=1,
                    marker=".",
                    ms=5,
                    gid=f"iterations:{row['method']}",
                )
            ax.plot([row["seconds_per_image"]], [value], "o", color=color, ms=6, gid=f"point:{row['method']}")
            labelled.append((row, value, color))
        ax.set_xscale("log")
        ax.margins(x=0.12, y=0.08)
        ax.set_xlabel("seconds per image (log scale)")
        ax.set_ylabel(f"{column['label']}, lower is better")
        ax.set_title(column["label"])
        ax.grid(True, which="both", lw=0.4, alpha=0.4)
        if any(line.get_gid().startswith("iterations:") for line in ax.get_lines()):
            ax.legend(
                handles=[
                    Line2D([], [], ls="", marker="o", color="0.3", label="method (table row)"),
                    Line2D([], [], marker=".", color="0.3", lw=1, label="after each iteration"),
                ],
                loc="upper right",
                fontsize=8,
            )
        placements.append((ax, labelled))
    fig.suptitle(
        f"Reconstruction error against time ({report.get('num_images', '?')} images, "
        f"{report['setup'].get('device', '?')})"
    )
    fig.canvas.draw()  # fixes the constrained layout; labels are then placed around the points
    fig.set_layout_engine("none")
    for ax, labelled in placements:
        _place_labels(ax, labelled, fig.canvas.get_renderer())
    return fig


def _area(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _obstacles(ax, renderer) -> list:
    """Display boxes a label should not cover: the legend, every marker and the lines between markers."""
    import numpy as np
    from matplotlib.transforms import Bbox

    boxes = [ax.get_legend().get_window_extent(renderer)] if ax.get_legend() else []
    for line in ax.get_lines():
        xy = ax.transData.transform(line.get_xydata())
        along = [
            a + t * (b - a) for a, b in zip(xy, xy[1:]) for t in np.linspace(0, 1, int(np.hypot(*(b - a)) // 4) + 2)
        ]
        boxes += [Bbox.from_extents(x - 1, y - 1, x + 1, y + 1) for x, y in along]
        boxes += [Bbox.from_extents(x - 4, y - 4, x + 4, y + 4) for x, y in xy]
    return boxes


def _distance(box, xy) -> float:
    """Display distance from a point to a box (0 inside it)."""
    x, y = xy
    return math.hypot(max(box.x0 - x, 0, x - box.x1), max(box.y0 - y, 0, y - box.y1))


def _place_labels(ax, labelled, renderer) -> None:
    """Each label at the first place around its point that covers nothing (:func:`_obstacles`, the labels
    placed before), else at the place that covers least; a label away from its point gets a leader line. A
    place beside the point that is not clearly nearer its own point than another method's (``_OWN_NEARER``)
    is skipped; a leader-line place that is costs as much as covering a whole label."""
    from matplotlib.text import Text

    frame, taken = ax.get_window_extent(renderer), _obstacles(ax, renderer)
    points = [ax.transData.transform((row["seconds_per_image"], value)) for row, value, _ in labelled]
    for i, (row, value, color) in enumerate(labelled):
        others, best = points[:i] + points[i + 1 :], None
        for dx, dy, ha, va in _PLACES:
            with_leader = abs(dx) + abs(dy) > 10
            leader = {"arrowstyle": "-", "color": color, "lw": 0.6, "shrinkA": 0, "shrinkB": 3}
            text = ax.annotate(
                row["method"],
                (row["seconds_per_image"], value),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=8,
                color="0.1",
                arrowprops=leader if with_leader else None,
            )
            text.update_positions(renderer)
            box = Text.get_window_extent(text, renderer)  # the text alone, not its leader line
            own = _OWN_NEARER * _distance(box, points[i])
            misleading = any(_distance(box, p) < own for p in others)
            if misleading and not with_leader:
                text.remove()
                continue
            outside = box.width * box.height - _area(box, frame)
            # a leader line names the point, but leaders that cross (labels swapped) still mislead
            cost = sum(_area(box, other) for other in taken) + 10 * outside + misleading * box.width * box.height
            if best is not None and cost >= best[0]:
                text.remove()
                continue
            if best is not None:
                best[1].remove()
            best = (cost, text, box)
            if cost == 0:
                break
        taken.append(best[2])


def tradeoff_png(report: dict) -> bytes | None:
    """The chart as PNG bytes (what ``tradeoff.png`` holds), or None when no row can be drawn."""
    fig = tradeoff_figure(report)
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
