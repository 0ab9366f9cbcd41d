"""The compiled implementations agree with the reference on random shapes, odd sizes, non-contiguous
and channels-last inputs, every activation and low-precision dtypes."""

import pytest
import torch

from sg2_kernels import ACTIVATIONS, bias_act, upfirdn2d
from sg2_kernels.testing import assert_close_rel


def _random_case(seed):
    gen = torch.Generator().manual_seed(seed)

    def pick(lo, hi):
        return int(torch.randint(lo, hi + 1, (), generator=gen))

    up, down = [pick(1, 3), pick(1, 3)], [pick(1, 3), pick(1, 3)]
    f = torch.randn(pick(1, 5), pick(1, 5), generator=gen) if seed % 3 else torch.randn(pick(2, 8), generator=gen)
    padding = [pick(-2, 4) for _ in range(4)]
    x = torch.randn(pick(1, 3), pick(1, 5), pick(3, 13), pick(3, 13), generator=gen)
    fw = f.shape[-1]
    fh = f.shape[0]
    # keep only configurations with an output
    if x.shape[3] * up[0] + padding[0] + padding[1] < fw or x.shape[2] * up[1] + padding[2] + padding[3] < fh:
        padding = [p + max(fw, fh) for p in padding]
    return x, f, dict(up=up, down=down, padding=padding, flip_filter=bool(seed % 2), gain=1.0 + seed % 4)


@pytest.mark.parametrize("seed", range(24))
def test_upfirdn2d_random_configs_agree(compiled_impl_device, seed):
    impl, device = compiled_impl_device
    x, f, kwargs = _random_case(seed)
    x, f = x.to(device).requires_grad_(True), f.to(device)
    expected = upfirdn2d(x, f, impl="ref", **kwargs)
    actual = upfirdn2d(x, f, impl=impl, **kwargs)
    assert_close_rel(actual, expected, 1e-5, f"y {kwargs}")
    dy = torch.randn_like(expected)
    (dx_ref,) = torch.autograd.grad(expected, x, dy)
    (dx,) = torch.autograd.grad(actual, x, dy)
    assert_close_rel(dx, dx_ref, 1e-5, f"dx {kwargs}")


@pytest.mark.parametrize("layout", ["channels_last", "transposed", "sliced"])
def test_upfirdn2d_memory_layouts(compiled_impl_device, layout):
    impl, device = compiled_impl_device
    base = torch.randn(2, 6, 11, 9, device=device)
    x = {
        "channels_last": base.to(memory_format=torch.channels_last),
        "transposed": base.transpose(2, 3),
        "sliced": base[:, ::2, 1:, ::2],
    }[layout]
    assert not x.is_contiguous()
    f = torch.randn(4, 4, device=device)
    for kwargs in (dict(up=2, padding=[2, 1, 2, 1], gain=4), dict(down=2, padding=1)):
        assert_close_rel(
            upfirdn2d(x, f, impl=impl, **kwargs),
            upfirdn2d(x.contiguous(), f, impl="ref", **kwargs),
            1e-5,
            f"{layout} {kwargs}",
        )


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_bias_act_agrees_on_every_activation(compiled_impl_device, act):
    impl, device = compiled_impl_device
    x = (3 * torch.randn(3, 7, 5, 3, device=device)).to(memory_format=torch.channels_last).requires_grad_(True)
    b = torch.randn(7, device=device, requires_grad=True)
    kwargs = dict(act=act, clamp=2.5 if act in ("lrelu", "swish") else None)
    expected = bias_act(x, b, impl="ref", **kwargs)
    actual = bias_act(x, b, impl=impl, **kwargs)
    assert_close_rel(actual, expected, 1e-5, f"y {act}")
    dy = torch.randn_like(expected)
    grads_ref = torch.autograd.grad(expected, (x, b), dy)
    grads = torch.autograd.grad(actual, (x, b), dy)
    assert_close_rel(grads[0], grads_ref[0], 1e-5, f"dx {act}")
    assert_close_rel(grads[1], grads_ref[1], 1e-5, f"db {act}")


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_bias_act_dim(compiled_impl_device, dim):
    impl, device = compiled_impl_device
    x = torch.randn(4, 5, 6, device=device)[:, :, ::2]  # non-contiguous too
    b = torch.randn(x.shape[dim], device=device)
    assert_close_rel(
        bias_act(x, b, dim=dim, act="lrelu", impl=impl),
        bias_act(x, b, dim=dim, act="lrelu", impl="ref"),
        1e-6,
        f"dim={dim}",
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(compiled_impl_device, dtype):
    impl, device = compiled_impl_device
    x = torch.randn(2, 8, 16, 16, device=device)
    f = torch.randn(4, 4, device=device)
    b = torch.randn(8, device=device)
    tol = 1e-2 if dtype == torch.float16 else 5e-2
    y = upfirdn2d(x.to(dtype), f, up=2, padding=[2, 1, 2, 1], impl=impl)
    assert y.dtype == dtype
    assert_close_rel(y, upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], impl="ref"), tol, f"upfirdn2d {dtype}")
    y = bias_act(x.to(dtype), b, act="lrelu", impl=impl)
    assert y.dtype == dtype
    assert_close_rel(y, bias_act(x, b, act="lrelu", impl="ref"), tol, f"bias_act {dtype}")
