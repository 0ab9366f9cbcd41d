"""The per-sample weight path's own operations against their plain counterparts: the upsampling convolution as
a batched matrix product and a fold, the one-sum finite check, the Winograd weight transform as one product."""

import copy

import pytest
import torch

from sg2_core import Generator, GeneratorConfig, use_impl
from sg2_core.nn.cpu_inference import transform_weight
from sg2_core.nn.offsets import check_offsets
from sg2_kernels import winograd


@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_offsets_values_and_gradients_equal_per_sample_copies(impl):
    """Every conv (the upsampling ones included) and toRGB offset, with gradients: the batch against a copy
    of the generator per sample, its weights moved by that sample's offsets."""
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(resolution=32, z_dim=16, w_dim=16, channel_base=256, channel_max=16)).eval()
    ws = G.mapping(torch.randn(3, 16)).detach()
    names = G.synthesis.weight_layer_names
    offsets = {k: (0.2 * torch.randn(3, *G.synthesis.layer(k).weight.shape)).requires_grad_(True) for k in names}
    with use_impl(impl):
        batch = G.synthesis(ws, noise_mode="const", weight_offsets=offsets)
        grads = torch.autograd.grad(batch.square().sum(), list(offsets.values()))
        for i in range(3):
            single_g = copy.deepcopy(G)
            with torch.no_grad():
                for k, offset in offsets.items():
                    single_g.synthesis.layer(k).weight += offset[i]
            single = single_g.synthesis(ws[i : i + 1], noise_mode="const")
            weights = [single_g.synthesis.layer(k).weight for k in names]
            single_grads = torch.autograd.grad(single.square().sum(), weights)
            torch.testing.assert_close(batch[i : i + 1], single, atol=1e-5, rtol=1e-5)
            for name, grad, expected in zip(names, grads, single_grads):
                torch.testing.assert_close(
                    grad[i],
                    expected,
                    atol=1e-5 * float(expected.abs().max()),
                    rtol=1e-4,
                    msg=lambda m, name=name: f"{name}: {m}",
                )
    assert (batch - G.synthesis(ws, noise_mode="const")).abs().max() > 1e-2  # the offsets did something


def test_finite_check_is_exact():
    G = Generator(GeneratorConfig(resolution=8, z_dim=8, w_dim=8, channel_base=64, channel_max=8))
    shape = (2, *G.synthesis.b8.conv0.weight.shape)
    huge = torch.full(shape, 3e38)  # finite, but its sum is not: the full test accepts it
    assert check_offsets(G.synthesis, {"b8.conv0": huge})["b8.conv0"] is huge
    for bad in (float("nan"), float("inf")):
        t = torch.zeros(shape)
        t[1, 2, 3, 1, 0] = bad
        with pytest.raises(ValueError, match=r"weight_offsets\['b8.conv0'\] contains NaN or inf"):
            check_offsets(G.synthesis, {"b8.conv0": t})
    t = torch.zeros(shape)
    t[0, 0, 0, 0, 0], t[0, 0, 0, 0, 1] = float("inf"), float("-inf")  # sums to NaN: still refused
    with pytest.raises(ValueError, match="contains NaN or inf"):
        check_offsets(G.synthesis, {"b8.conv0": t})


@pytest.mark.parametrize("up", [1, 2])
def test_weight_transform_equals_sg2_kernels(up):
    w = torch.randn(24, 16, 3, 3, generator=torch.Generator().manual_seed(up))
    expected = winograd.transform_weight(w, up)
    got = transform_weight(w, up)
    assert got.shape == expected.shape and got.is_contiguous()
    torch.testing.assert_close(got, expected, atol=1e-6 * float(expected.abs().max()), rtol=0)
