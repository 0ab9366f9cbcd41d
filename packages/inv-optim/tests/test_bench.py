"""python -m inv_optim.bench runs end to end (tiny settings): both ways of projection and of PTI, each with
its quality beside its speed."""

import re

import pytest

from inv_optim.bench import main


@pytest.mark.slow
def test_the_bench_runs_and_both_ways_reach_the_same_quality(capsys):
    main(["--n", "2", "--project-steps", "3", "--pti-steps", "2", "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    rows = {
        name: (float(d), float(m))
        for name, d, m in re.findall(
            r"^  (batched|one by one|batched offsets|sequential copies)\s+[\d.]+ img/s  distance ([\d.]+)  mse ([\d.]+)",
            out,
            flags=re.M,
        )
    }
    assert set(rows) == {"batched", "one by one", "batched offsets", "sequential copies"}, out
    # per-image seeds: a batch is its images one at a time, up to float rounding over 3 steps
    assert rows["batched"] == pytest.approx(rows["one by one"], abs=2e-3)
    assert rows["batched offsets"] == pytest.approx(rows["sequential copies"], abs=2e-3)
    assert "speed-up batched / one by one:" in out and "speed-up batched / sequential:" in out


def test_the_collab_bench_runs_and_ranks_its_rows(capsys):
    from inv_optim.bench_collab import main as collab_main

    collab_main(["--n", "2", "--refine-steps", "2", "--project-steps", "2", "--threads", "1"])
    out = capsys.readouterr().out
    rows = re.findall(
        r"^\| (collab \(network only\)|collab \+ 2 iterator steps|sg2-w\+ \(2 steps\)) \|", out, flags=re.M
    )
    assert rows == ["collab (network only)", "collab + 2 iterator steps", "sg2-w+ (2 steps)"], out
