"""Bad input raises a ValueError that names the argument."""

import pytest
import torch

from sg2_kernels import bias_act, downsample2d, setup_filter, upfirdn2d, upsample2d

X = torch.zeros(1, 2, 8, 8)
F4 = torch.ones(4, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=torch.zeros(2, 8, 8)), r"x must have shape \[N, C, H, W\].*rank 3"),
        (dict(x=torch.zeros(1, 2, 8, 8, dtype=torch.int64)), "x must be a floating-point"),
        (dict(f=torch.ones(2, 2, 2)), "f must be a 1-D or 2-D filter"),
        (dict(f=torch.ones(4, 4, dtype=torch.int32)), "f must be a floating-point"),
        (dict(f=torch.ones(12, 12)), "f of size 12x12 is larger than the upsampled and padded input"),
        (dict(f=torch.ones(4, 4), padding=-3), "larger than the upsampled and padded input"),
        (dict(up=1.5), "up must be a positive int"),
        (dict(up=0), "up must be >= 1"),
        (dict(down=[2, 2, 2]), "down must be a positive int or a pair"),
        (dict(down=True), "down must be a positive int"),
        (dict(padding=[1, 2, 3]), "padding must be an int"),
        (dict(padding=0.5), "padding must be an int"),
        (dict(gain="2"), "gain must be a real number"),
        (dict(impl="fast"), "impl must be one of"),
    ],
)
def test_upfirdn2d_bad_input(kwargs, match):
    args = dict(x=X, f=F4, padding=[2, 1, 2, 1])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        upfirdn2d(**args)


def test_helpers_bad_input():
    with pytest.raises(ValueError, match="up must be"):
        upsample2d(X, F4, up=2.0)
    with pytest.raises(ValueError, match="down must be"):
        downsample2d(X, F4, down=-1)
    with pytest.raises(ValueError, match="f must be a non-empty"):
        setup_filter([])


def test_compiled_impl_on_wrong_device():
    with pytest.raises(ValueError, match="impl='cuda' runs on cuda tensors, but x is on cpu"):
        upfirdn2d(X, F4, padding=[2, 1, 2, 1], impl="cuda")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(act="gelu"), "act must be one of"),
        (dict(b=torch.zeros(3)), r"b must be a 1-D tensor of length x.shape\[1\] = 2"),
        (dict(b=torch.zeros(2, 1)), "b must be a 1-D tensor"),
        (dict(dim=4), "dim must be an int in"),
        (dict(dim=1.0), "dim must be an int in"),
        (dict(clamp=-1.0), "clamp must be >= 0"),
        (dict(gain=float("nan")), "gain must be a finite real number"),
        (dict(alpha="0.2"), "alpha must be a finite real number"),
        (dict(x=torch.zeros(2, 2, dtype=torch.int32)), "x must be a floating-point tensor"),
    ],
)
def test_bias_act_bad_input(kwargs, match):
    args = dict(x=torch.zeros(1, 2, 3, 3), act="lrelu")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        bias_act(**args)
