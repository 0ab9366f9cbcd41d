"""``python -m sg2_core.bench_methods --quick``: the table it writes is made of its own run's numbers, one fresh
process per measurement, with each method's options stated."""

from __future__ import annotations

import json

import pytest

from sg2_core import bench_methods
from sg2_core.methods.registry import list_methods, method_spec


def _cells(markdown: str, name: str) -> list[str]:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {name} |")]
    assert len(rows) == 1, markdown
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


@pytest.mark.slow
def test_quick_bench_tables_its_own_measurements(tmp_path):
    name = next(n for n in (*bench_methods.QUICK_METHODS, *list_methods()) if n in list_methods())
    assert bench_methods.main(["--quick", "--methods", name, "--batch", "1", "2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench_methods.json").read_text())
    rows = {r["batch"]: r for r in report["results"]}
    assert sorted(rows) == [1, 2] and report["batches"] == [1, 2]
    for batch, row in rows.items():
        assert "error" not in row, row
        assert row["options"] == json.loads(json.dumps(method_spec(name).test_options))
        assert row["s_per_image"] == pytest.approx(row["invert_s"] / batch)
        assert row["s_per_image"] > 0 and 0 < row["peak_before_call_gb"] <= row["peak_gb"]
    markdown = (tmp_path / "bench_methods.md").read_text()
    assert report["machine"] in markdown.splitlines()[0]
    cells = _cells(markdown, name)
    assert cells[1] == bench_methods._options_text(method_spec(name).test_options)
    assert cells[2:6] == [
        f"{rows[1]['s_per_image']:.2f}",
        f"{rows[1]['peak_gb']:.2f}",
        f"{rows[2]['s_per_image']:.2f}",
        f"{rows[2]['peak_gb']:.2f}",
    ]


def test_table_marks_failures_and_peaks_over_the_goal():
    goal = bench_methods.MEMORY_GOAL_GB
    results = [
        {"method": "m", "batch": 1, "s_per_image": 2.0, "peak_gb": goal + 1, "stages": [], "options": {"steps": 1}},
        {"method": "m", "batch": 4, "error": "out of memory", "options": {"steps": 1}},
    ]
    cells = _cells(bench_methods.table(results, [1, 4]), "m")
    assert cells == ["m", "steps=1", "2.00", f"**{goal + 1:.2f}** (> {goal:g})", "failed: out of memory", "-", "-"]


def test_stages_time_each_stage_from_the_previous_report():
    events = [(1.0, "pivot", 0, 1), (3.0, "tune", 0, 2), (5.0, "tune", 1, 2)]  # (seconds, stage, step, steps)
    assert bench_methods._stages(events) == [
        {"stage": "pivot", "steps": 1, "seconds": 1.0, "s_per_step": 1.0},
        {"stage": "tune", "steps": 2, "seconds": 4.0, "s_per_step": 2.0},
    ]
