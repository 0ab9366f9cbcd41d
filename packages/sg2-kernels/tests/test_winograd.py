"""sg2_kernels.winograd against the direct convolutions it replaces (float64 references)."""

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from sg2_kernels import winograd

from .conftest import _impl_device


@pytest.fixture(params=["ref", "cpp"])
def impl(request):
    return _impl_device(request.param, "cpu")[0]


def _direct(x, w, up, in_scale, out_scale):
    x = x.double() * in_scale.double()[:, :, None, None]
    w = w.double()
    y = F.conv2d(x, w, padding=1) if up == 1 else F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
    return y * out_scale.double()[:, :, None, None]


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("shape", [(2, 16, 24, 13, 20), (1, 8, 8, 6, 6), (1, 5, 3, 9, 7)], ids=str)
def test_equals_direct_convolution(impl, up, shape):
    """Odd sizes, partial border tiles, batches, per-sample scales; 5 and 3 channels take the reference path."""
    n, c, o, h, w = shape
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w)
    weight = torch.randn(o, c, 3, 3) / (3 * c**0.5)
    in_scale, out_scale = torch.rand(n, c) + 0.5, torch.rand(n, o) + 0.5
    expected = _direct(x, weight, up, in_scale, out_scale)
    y = winograd.conv3x3(x, winograd.transform_weight(weight, up), up, in_scale, out_scale, impl=impl)
    assert y.shape == expected.shape == (n, o, winograd.output_size(h, up), winograd.output_size(w, up))
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), expected, rtol=0, atol=5e-5 * float(expected.abs().max()))
    plain = winograd.conv3x3(x, winograd.transform_weight(weight, up), up, impl=impl)
    torch.testing.assert_close(
        plain.double(),
        _direct(x, weight, up, torch.ones(n, c), torch.ones(n, o)),
        rtol=0,
        atol=5e-5 * float(expected.abs().max()),
    )


@pytest.mark.parametrize("up", [1, 2])
def test_large_channel_counts_stay_accurate(impl, up):
    torch.manual_seed(1)
    x, weight = torch.randn(1, 512, 16, 16), torch.randn(64, 512, 3, 3) / 68
    expected = _direct(x, weight, up, torch.ones(1, 512), torch.ones(1, 64))
    y = winograd.conv3x3(x, winograd.transform_weight(weight, up), up, impl=impl)
    torch.testing.assert_close(y.double(), expected, rtol=0, atol=5e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("up", [1, 2])
def test_transform_matrices_compute_the_convolution_exactly(up):
    """In float64 the three transforms reproduce the direct result to rounding (1e-12), so the float32
    error above is rounding in the transforms, not a wrong matrix."""
    torch.manual_seed(2)
    x, weight = torch.randn(1, 3, 12, 12, dtype=torch.float64), torch.randn(2, 3, 3, 3, dtype=torch.float64)
    y = winograd.conv3x3(x, winograd.transform_weight(weight, up), up, impl="ref")
    torch.testing.assert_close(y, _direct(x, weight, up, torch.ones(1, 3), torch.ones(1, 2)), rtol=0, atol=1e-12)


def test_baseline_kernels_match():
    """The kernels built for CPUs without AVX2 (forced by SG2_KERNELS_CPU_ISA=baseline) give the same results."""
    _impl_device("cpp", "cpu")
    code = (
        "import torch, torch.nn.functional as F; from sg2_kernels import winograd as W; torch.manual_seed(0)\n"
        "x, w = torch.randn(2, 16, 20, 17), torch.randn(8, 16, 3, 3)\n"
        "for up in (1, 2):\n"
        "    ref = W.conv3x3(x, W.transform_weight(w, up), up, impl='ref')\n"
        "    cpp = W.conv3x3(x, W.transform_weight(w, up), up, impl='cpp')\n"
        "    assert (ref - cpp).abs().max() < 1e-4 * ref.abs().max(), up\n"
        "print('ok')\n"
    )
    env = {**os.environ, "SG2_KERNELS_CPU_ISA": "baseline"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_bad_arguments():
    w = torch.randn(8, 8, 3, 3)
    with pytest.raises(ValueError, match=r"w must be \[O, I, 3, 3\]"):
        winograd.transform_weight(torch.randn(8, 8, 5, 5))
    with pytest.raises(ValueError, match="up must be 1 or 2"):
        winograd.transform_weight(w, up=4)
    with pytest.raises(ValueError, match=r"u must be \[64, 16, O\]"):
        winograd.conv3x3(torch.randn(1, 16, 8, 8), winograd.transform_weight(w))


def test_writes_into_a_given_buffer(impl):
    torch.manual_seed(3)
    x, weight = torch.randn(2, 16, 10, 9), torch.randn(8, 16, 3, 3)
    u = winograd.transform_weight(weight, 2)
    out = torch.full((2, 8, 21, 19), float("nan"))
    y = winograd.conv3x3(x, u, 2, out=out, impl=impl)
    assert y.data_ptr() == out.data_ptr()
    torch.testing.assert_close(out, winograd.conv3x3(x, u, 2, impl=impl))
    if impl == "cpp":
        with pytest.raises(RuntimeError, match=r"out must be \[2, 8, 21, 19\]"):
            winograd.conv3x3(x, u, 2, out=torch.empty(2, 8, 20, 19), impl=impl)


def test_upsampling_weight_has_64_distinct_rows():
    """The 169 points of up=2 use 64 distinct transformed weights; weight_index maps each point to its row."""
    torch.manual_seed(4)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    g = winograd.matrices(2)[1]
    every_point = torch.einsum("pk,oikl,ql->pqio", g, weight, g).flatten(0, 1)
    u = winograd.transform_weight(weight, 2)
    assert u.shape == (winograd.WEIGHT_POINTS, 3, 4)
    torch.testing.assert_close(u[winograd.weight_index(2)], every_point, rtol=0, atol=1e-12)
    assert len(torch.unique(every_point.flatten(1), dim=0)) == winograd.WEIGHT_POINTS
