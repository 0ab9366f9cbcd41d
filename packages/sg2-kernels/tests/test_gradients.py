"""gradcheck and gradgradcheck in float64 for every implementation (R1 and path length need both)."""

import pytest
import torch

from sg2_kernels import ACTIVATIONS, bias_act, upfirdn2d

UPFIRDN_CONFIGS = {
    "up2": dict(up=2, padding=[2, 1, 2, 1], f="2d"),
    "down2": dict(down=2, padding=[1, 1, 1, 1], f="2d"),
    "up2-down2-crop": dict(up=2, down=2, padding=[1, -1, 0, 2], f="2d"),
    "anisotropic-flip": dict(up=[2, 1], down=[1, 2], padding=[0, 1, -1, 2], f="3x2", flip_filter=True, gain=2.0),
    "separable": dict(up=2, down=1, padding=[2, 1, 1, 2], f="1d", gain=4.0),
}


def _filter(kind, device):
    gen = torch.Generator().manual_seed(3)
    shape = {"2d": (4, 4), "3x2": (3, 2), "1d": (4,)}[kind]
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(device)


@pytest.mark.parametrize("config", list(UPFIRDN_CONFIGS), ids=str)
def test_upfirdn2d_gradcheck(impl_device, config):
    impl, device = impl_device
    kwargs = dict(UPFIRDN_CONFIGS[config])
    f = _filter(kwargs.pop("f"), device)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, device=device, requires_grad=True)

    def op(x):
        return upfirdn2d(x, f, impl=impl, **kwargs)

    assert torch.autograd.gradcheck(op, (x,))
    assert torch.autograd.gradgradcheck(op, (x,))


@pytest.mark.parametrize("act", list(ACTIVATIONS), ids=str)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
def test_bias_act_gradcheck(impl_device, act, with_bias):
    impl, device = impl_device
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    # keep v = x + b away from the kinks at 0, where finite differences are meaningless
    x = (x + 0.1 * x.sign()).to(device).requires_grad_(True)
    b = torch.zeros(3, dtype=torch.float64, device=device, requires_grad=True) if with_bias else None
    inputs = (x, b) if with_bias else (x,)

    def op(x, b=None):
        return bias_act(x, b, act=act, impl=impl)

    assert torch.autograd.gradcheck(op, inputs)
    assert torch.autograd.gradgradcheck(op, inputs)


def test_bias_act_gradcheck_with_clamp_and_dim(impl_device):
    impl, device = impl_device
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    x = (x + 0.1 * x.sign()).to(device).requires_grad_(True)
    b = (0.1 * torch.randn(4, generator=gen, dtype=torch.float64)).to(device).requires_grad_(True)

    def op(x, b):
        # clamp 0.9 cuts some outputs (gradient zero there); keep values away from the clamp edge
        return bias_act(x, b, dim=1, act="tanh", gain=1.3, clamp=0.9, impl=impl)

    unclamped = bias_act(x, b, dim=1, act="tanh", gain=1.3, impl="ref")
    assert not ((unclamped.abs() - 0.9).abs() < 1e-3).any() and (unclamped.abs() > 0.9).any()
    assert torch.autograd.gradcheck(op, (x, b))
    assert torch.autograd.gradgradcheck(op, (x, b))
