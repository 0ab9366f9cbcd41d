"""The benchmark CLI runs end to end (a tiny size; timings are printed, never asserted)."""

import torch

from sg2_core import bench
from sg2_kernels._backend import impls_for_device


def test_bench_prints_every_workload_for_every_impl(capsys):
    assert bench.main(["--device", "cpu", "--resolutions", "8", "--batches", "1", "2", "--min-seconds", "0"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("8 ")]
    impls = impls_for_device(torch.device("cpu"))
    assert len(rows) == 2 * 4 * len(impls)  # batches x workloads x implementations
    assert [row[4] for row in rows[::4]] == impls * 2  # each implementation, for each batch size
