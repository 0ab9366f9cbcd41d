"""noise_bias_lrelu_ (in place, inference) against bias_act of x + noise."""

import pytest
import torch

from sg2_kernels import bias_act, noise_bias_lrelu_

from .conftest import _impl_device


@pytest.fixture(params=["ref", "cpp"])
def impl(request):
    return _impl_device(request.param, "cpu")[0]


@pytest.mark.parametrize("noise_shape", [None, (7, 9), (3, 1, 7, 9), (1, 1, 7, 9)], ids=str)
@pytest.mark.parametrize("clamp", [None, 0.5])
def test_equals_bias_act_of_the_noisy_input(impl, noise_shape, clamp):
    torch.manual_seed(0)
    x, b = torch.randn(3, 5, 7, 9), torch.randn(5)
    noise = None if noise_shape is None else torch.randn(noise_shape)
    expected = bias_act(x if noise is None else x + noise, b, act="lrelu", clamp=clamp, impl="ref")
    y = x.clone()
    out = noise_bias_lrelu_(y, b, noise, clamp=clamp, impl=impl)
    assert out is y
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-6)


def test_non_contiguous_input_takes_the_plain_path(impl):
    x, b = torch.randn(2, 4, 6, 6).transpose(2, 3), torch.randn(4)
    expected = bias_act(x, b, act="lrelu")
    torch.testing.assert_close(noise_bias_lrelu_(x, b, impl=impl), expected)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"b \[C\]"):
        noise_bias_lrelu_(torch.randn(1, 4, 3, 3), torch.randn(3))
    with pytest.raises(ValueError, match="clamp must be a finite real number"):
        noise_bias_lrelu_(torch.randn(1, 4, 3, 3), torch.randn(4), clamp=float("nan"))
