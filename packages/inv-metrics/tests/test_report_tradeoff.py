"""The trade-off chart (tradeoff.png) is drawn from the report's own numbers, and the report records an
iterative method's error and time after each iteration."""

import io
import itertools
import json
import math
import subprocess
import sys
import time

import pytest
import torch
from matplotlib.text import Text
from PIL import Image

import sg2_core
from inv_metrics.report import run_report
from inv_metrics.report.tradeoff import tradeoff_figure, tradeoff_png
from sg2_core import Generator, GeneratorConfig, Inversion

COLUMNS = [
    {"key": "mse", "label": "MSE (L2 on [-1,1])"},
    {"key": "psnr", "label": "PSNR (dB)"},
    {"key": "lpips_fmnist", "label": "LPIPS-like (fmnist-features)"},
    {"key": "fid_fmnist", "label": "FID (fmnist-features)"},
]


def row(method, seconds, mse, lpips, error=None, **extra):
    metrics = {"mse": mse, "psnr": 20.0, "lpips_fmnist": lpips, "fid_fmnist": 3.0}
    return {"method": method, "metrics": metrics, "seconds_per_image": seconds, "error": error, **extra}


ROWS = [
    row("fast", 0.002, 0.10, 0.90),
    row("also-fast", 0.0021, 0.095, 0.88),
    row("slow", 0.75, 0.02, 0.20),
    row(
        "iterative",
        0.009,
        0.05,
        0.45,
        per_iteration_seconds=[0.002, 0.004, 0.008],
        per_iteration_mse=[0.09, 0.06, 0.05],
        per_iteration_lpips_fmnist=[0.8, 0.5, 0.45],
    ),
    {"method": "broken", "metrics": {}, "seconds_per_image": None, "error": "ValueError: boom"},
]
REPORT = {"setup": {"device": "cpu"}, "num_images": 32, "columns": COLUMNS, "rows": ROWS}


@pytest.fixture(scope="module")
def figure():
    return tradeoff_figure(REPORT)


def by_gid(ax, prefix):
    return {
        line.get_gid().split(":", 1)[1]: line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)
    }


def test_one_panel_per_error_column_on_a_log_time_axis(figure):
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["MSE (L2 on [-1,1])", "LPIPS-like (fmnist-features)"]
    for ax in axes:
        assert ax.get_xscale() == "log"
        assert ax.get_xlabel() == "seconds per image (log scale)"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["method (table row)", "after each iteration"]
    assert axes[0].get_ylabel().startswith("MSE (L2 on [-1,1])")


@pytest.mark.parametrize("panel, key", [(0, "mse"), (1, "lpips_fmnist")])
def test_points_and_iteration_lines_are_the_rows_values(figure, panel, key):
    ax = figure.axes[panel]
    points = by_gid(ax, "point:")
    assert sorted(points) == ["also-fast", "fast", "iterative", "slow"]  # the failed row has no point
    for r in ROWS[:4]:
        assert list(points[r["method"]].get_xdata()) == [r["seconds_per_image"]]
        assert list(points[r["method"]].get_ydata()) == [r["metrics"][key]]
    lines = by_gid(ax, "iterations:")
    assert list(lines) == ["iterative"]  # only the row with per-iteration numbers
    it = ROWS[3]
    assert list(lines["iterative"].get_xdata()) == [*it["per_iteration_seconds"], it["seconds_per_image"]]
    assert list(lines["iterative"].get_ydata()) == [*it[f"per_iteration_{key}"], it["metrics"][key]]


def test_every_point_labelled_once_without_overlaps(figure):
    renderer = figure.canvas.get_renderer()
    for ax, key in zip(figure.axes, ("mse", "lpips_fmnist")):
        labels = {t.get_text(): t for t in ax.texts}
        assert sorted(labels) == ["also-fast", "fast", "iterative", "slow"]
        for r in ROWS[:4]:
            assert labels[r["method"]].xy == (r["seconds_per_image"], r["metrics"][key])
        for t in ax.texts:
            t.update_positions(renderer)
        boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]  # the text, not its leader line
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b)
        frame = ax.get_window_extent(renderer)
        assert all(frame.contains(b.x0, b.y0) and frame.contains(b.x1, b.y1) for b in boxes)


def distance(box, xy):
    return math.hypot(max(box.x0 - xy[0], 0, xy[0] - box.x1), max(box.y0 - xy[1], 0, xy[1] - box.y1))


def test_labels_of_close_points_are_nearer_their_own_point_or_have_a_leader_line():
    # the report's ReStyle rows: two points a few pixels apart, among others that set the axes' scale
    close = [
        row("fast", 0.002, 0.13, 1.0),
        row("restyle-e4e", 0.0108, 0.0706, 0.645),
        row("restyle-psp", 0.0111, 0.0656, 0.654),
        row("slow", 0.8, 0.03, 0.2),
    ]
    figure = tradeoff_figure({**REPORT, "rows": close})
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        points = {name: ax.transData.transform(line.get_xydata()[0]) for name, line in by_gid(ax, "point:").items()}
        for t in ax.texts:
            t.update_positions(renderer)
            box = Text.get_window_extent(t, renderer)
            own = distance(box, points[t.get_text()])
            nearest_other = min(distance(box, xy) for name, xy in points.items() if name != t.get_text())
            assert own < nearest_other or t.arrow_patch is not None, (ax.get_title(), t.get_text())


def test_png_and_the_cases_without_a_chart():
    png = tradeoff_png(REPORT)
    assert Image.open(io.BytesIO(png)).size == (1300, 550)  # two panels of 6.5 x 5.5 in at 100 dpi
    one_panel = {**REPORT, "columns": COLUMNS[:2]}  # no perceptual distance: MSE alone
    assert [ax.get_title() for ax in tradeoff_figure(one_panel).axes] == ["MSE (L2 on [-1,1])"]
    assert tradeoff_figure({**REPORT, "rows": ROWS[:3]}).axes[0].get_legend() is None  # no iterations to explain
    assert tradeoff_figure({**REPORT, "rows": ROWS[4:]}) is None  # nothing ran: no chart
    assert tradeoff_png({**REPORT, "rows": []}) is None


def test_matplotlib_is_not_imported_with_the_report():
    code = "import sys, inv_metrics.report, inv_metrics.report.tradeoff; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


N = 6  # images, in a batch of 4 and one of 2


class Iterative(sg2_core.Method):
    """An iterative stand-in: T steps from w 0 towards the mean w, each rendered, reported and ~10 ms long."""

    name, space, steps = "test-iterative", "w+", 3

    def invert(self, images, init):
        g, renders = self.generator, []
        for t in range(self.steps):
            ws = (g.mapping.w_avg * (t + 1) / self.steps).expand(len(images), g.num_ws, -1).clone()
            renders.append(g.synthesis(ws, noise_mode="const"))
            time.sleep(0.01)
            self.report(sg2_core.StepInfo(t + 1, self.steps, stage="iteration"))
        return Inversion(ws, "w+", g, extras={"reconstructions": torch.stack(renders, dim=1)})


def test_iterative_rows_record_each_iteration_and_the_chart_draws_them(tmp_path):
    torch.manual_seed(0)
    config = GeneratorConfig(
        z_dim=16, w_dim=16, resolution=16, img_channels=1, mapping_layers=2, channel_base=64, channel_max=16
    )
    generator = Generator(config).eval().requires_grad_(False)
    with torch.no_grad():
        generator.mapping.w_avg.copy_(generator.mean_w(200))
        images = generator.synthesis(generator.mapping(torch.randn(N, 16)), noise_mode="const").clamp(-1, 1)
    sg2_core.register_method("test-iterative", replace=True)(Iterative)
    try:
        rep = run_report(generator, images, tmp_path, methods=["test-iterative"], batch_size=4, progress=False)
    finally:
        sg2_core.methods.registry.unregister_method("test-iterative")
    row = rep["rows"][0]
    assert row["error"] is None
    w_avg = generator.mapping.w_avg.expand(N, generator.num_ws, -1)
    with torch.no_grad():
        renders = [generator.synthesis(w_avg * (t + 1) / 3, noise_mode="const") for t in range(3)]
    expected = [(render - images).square().mean().item() for render in renders]
    assert row["per_iteration_mse"] == pytest.approx(expected, rel=1e-5)
    assert row["per_iteration_mse"][-1] == pytest.approx(row["metrics"]["mse"], rel=1e-5)
    seconds = row["per_iteration_seconds"]  # split times of the timed spans, per image
    assert len(seconds) == 3 and all(b - a >= 0.01 * 2 / N for a, b in zip(seconds, seconds[1:]))
    assert 0.01 * 2 / N <= seconds[0] and seconds[-1] <= row["seconds_per_image"]
    assert sum(row["batch_seconds"]) / N == pytest.approx(row["seconds_per_image"])
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["rows"][0]["per_iteration_seconds"] == pytest.approx(seconds)
    (ax,) = tradeoff_figure(saved).axes  # the chart of the saved report: MSE only at 16 px
    line = next(line for line in ax.get_lines() if line.get_gid() == "iterations:test-iterative")
    assert list(line.get_xdata()) == pytest.approx([*seconds, row["seconds_per_image"]])
    assert list(line.get_ydata()) == pytest.approx([*row["per_iteration_mse"], row["metrics"]["mse"]])
    assert (tmp_path / "tradeoff.png").is_file() and rep["tradeoff"]["panels"] == ["mse"]
    assert "![error against seconds per image](tradeoff.png)" in (tmp_path / "report.md").read_text()
