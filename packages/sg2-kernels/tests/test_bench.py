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


def test_winograd_table_covers_every_3x3_convolution(capsys):
    """--winograd adds one row per generator 3x3 convolution from 8 px up (here 8 and 16 px: 3 rows)."""
    from .conftest import _impl_device

    _impl_device("cpp", "cpu")
    assert (
        bench.main(["--device", "cpu", "--resolution", "16", "--batch", "1", "--min-seconds", "0", "--winograd"]) == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("3x3")]
    assert [row.split()[-4] for row in rows] == ["8", "8", "16"], rows
    assert all(row.endswith("x") for row in rows)
