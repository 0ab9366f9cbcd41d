"""The kernels benchmark runs end to end (a tiny size; timings are printed, never asserted)."""

import torch

from sg2_kernels import bench
from sg2_kernels._backend import impls_for_device


def test_bench_prints_every_group_for_every_impl(capsys):
    assert bench.main(["--device", "cpu", "--resolution", "16", "--batch", "1", "--min-seconds", "0"]) == 0
    out = capsys.readouterr().out
    groups = bench.stylegan2_op_groups(16, 1)
    for name in groups:
        impls = [line.split()[-5] for line in out.splitlines() if line.startswith(name)]
        assert impls == impls_for_device(torch.device("cpu")), name
