"""setup_filter and the resampling helpers follow StyleGAN2's conventions."""

import pytest
import torch

from sg2_kernels import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d


def test_setup_filter_conventions():
    f = setup_filter([1, 3, 3, 1])
    assert torch.allclose(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    long = setup_filter([1] * 8)  # 8 taps and more stay 1-D: separable filtering is cheaper
    assert long.shape == (8,) and torch.allclose(long.sum(), torch.tensor(1.0))
    assert setup_filter([1, 2], normalize=False, gain=4).sum().item() == pytest.approx(9 * 4)
    assert torch.equal(
        setup_filter([[1.0, 2.0], [3.0, 4.0]], normalize=False, flip_filter=True),
        torch.tensor([[4.0, 3.0], [2.0, 1.0]]),
    )


@pytest.mark.parametrize("impl", ["ref", None])
def test_resampling_helpers_use_stylegan2_paddings(impl):
    x = torch.randn(2, 3, 8, 8)
    f = setup_filter([1, 3, 3, 1])
    up = upsample2d(x, f, impl=impl)
    assert up.shape == (2, 3, 16, 16)
    assert torch.allclose(up, upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl="ref"), atol=1e-6)
    down = downsample2d(x, f, impl=impl)
    assert down.shape == (2, 3, 4, 4)
    assert torch.allclose(down, upfirdn2d(x, f, down=2, padding=[1, 1, 1, 1], impl="ref"), atol=1e-6)
    same = filter2d(x, f, impl=impl)
    assert same.shape == x.shape
    # a normalised filter keeps a constant image constant away from the borders, at every rate
    ones = torch.ones(1, 1, 8, 8)
    assert torch.allclose(upsample2d(ones, f, impl=impl)[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    assert torch.allclose(downsample2d(ones, f, impl=impl)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))


def test_separable_equals_outer_product():
    x = torch.randn(1, 2, 9, 7)
    taps = torch.tensor([1.0, 2.0, 4.0, 1.0])
    kwargs = dict(up=2, down=1, padding=[2, 1, 0, 3], gain=3.0)
    assert torch.allclose(upfirdn2d(x, taps, **kwargs), upfirdn2d(x, torch.outer(taps, taps), **kwargs), atol=1e-5)


def test_identity_filter():
    x = torch.randn(1, 1, 5, 5)
    assert torch.equal(upfirdn2d(x, None), x)
    assert torch.equal(upfirdn2d(x, None, padding=[-1, -1, 0, 0]), x[..., 1:-1])
