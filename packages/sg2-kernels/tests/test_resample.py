"""conv2d_resample equals the unfused definitions (upsample then convolve, filter then subsample), and its NNPACK
option stays within float rounding of the exact path, gradients included."""

import pytest
import torch
import torch.nn.functional as F

from sg2_kernels import conv2d_resample, resample, setup_filter, upfirdn2d


def _unfused(x, w, f, up, down, padding, groups):
    """The definitions, with the large intermediate: zero-insert and filter, convolve, filter and subsample.
    Upsampling applies ``w`` as a true convolution (flipped), downsampling as a cross-correlation."""
    fw = f.shape[-1]
    p0 = p1 = padding
    if up > 1:
        p0, p1 = p0 + (fw + up - 1) // 2, p1 + (fw - up) // 2
    if down > 1:
        p0, p1 = p0 + (fw - down + 1) // 2, p1 + (fw - down) // 2
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[p0, p1, p0, p1], gain=up * up, impl="ref")
    x = F.conv2d(x, w.flip([2, 3]) if up > 1 else w, groups=groups)
    return upfirdn2d(x, f, down=down, impl="ref") if down > 1 else x


@pytest.mark.parametrize(
    "up, down, k, groups", [(1, 1, 3, 1), (2, 1, 3, 1), (2, 1, 3, 2), (1, 2, 3, 1), (1, 2, 1, 1), (1, 2, 3, 2)]
)
def test_equals_the_unfused_definition_with_gradients(up, down, k, groups):
    gen = torch.Generator().manual_seed(up * 10 + down + k + groups)
    x = torch.randn(2, 4, 9, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4 // groups, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1]).double()
    fused = conv2d_resample(x, w, f, up=up, down=down, padding=k // 2, groups=groups)
    unfused = _unfused(x, w, f, up, down, k // 2, groups)
    assert fused.shape == (2, 6, 9 * up // down, 9 * up // down) == unfused.shape
    torch.testing.assert_close(fused, unfused, rtol=1e-12, atol=1e-12)
    probe = torch.randn(fused.shape, generator=gen, dtype=torch.float64)
    for a, b in zip(
        torch.autograd.grad((fused * probe).sum(), [x, w]), torch.autograd.grad((unfused * probe).sum(), [x, w])
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_nnpack_only_when_asked_and_within_rounding_of_the_exact_path(monkeypatch):
    """NNPACK's Winograd convolution against oneDNN's, values and first and second-order gradients (as R1
    needs). Measured here (2-core Xeon, AVX2), relative to each result's range: 8.0e-6 for the values, 3.7e-6
    and 7.1e-7 for the two gradients; the tolerance, 1e-4 of the range, leaves 10x for another CPU's kernels."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 32, 32, requires_grad=True)
    w = torch.randn(8, 16, 3, 3, requires_grad=True)
    calls, nnpack_enabled = [], []
    nnpack = torch._nnpack_spatial_convolution
    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", lambda *a: calls.append(1) or nnpack(*a))
    conv2d = F.conv2d
    monkeypatch.setattr(
        F, "conv2d", lambda *a, **k: nnpack_enabled.append(torch._C._get_nnpack_enabled()) or conv2d(*a, **k)
    )

    def run(use_nnpack):
        y = conv2d_resample(x, w, padding=1, nnpack=use_nnpack)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        (gw,) = torch.autograd.grad(gx.square().sum(), w)
        return y, gx, gw

    exact = run(False)
    assert not calls and nnpack_enabled == [False]  # torch's own NNPACK choice is off on the exact path
    assert torch._C._get_nnpack_enabled()  # and restored afterwards
    fast = run(True)
    if resample.nnpack_suits(x, w):
        assert calls
    for a, b in zip(exact, fast):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * float(a.detach().abs().max()))
    calls.clear()
    conv2d_resample(x[:, :, :31, :31], w, padding=1, nnpack=True)  # below NNPACK_MIN_SIZE
    assert not calls


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(up=2, down=2), "up and down cannot both be > 1, got up=2, down=2"),
        (dict(up=2), "up or down > 1 needs the resampling filter f"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv2d_resample(torch.zeros(1, 2, 4, 4), torch.zeros(2, 2, 3, 3), padding=1, **kwargs)
