"""Generator and discriminator behaviour beyond the reference values: weight offsets, configs, errors."""

import copy

import pytest
import torch

from sg2_core.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.discriminator import Discriminator
from sg2_core.generator import Generator, truncate


def test_per_sample_weight_offsets_equal_per_sample_generator_copies(g32, io32):
    ws = io32["ws"][:3]
    gen = torch.Generator().manual_seed(0)
    names = ["b4.conv1", "b8.conv0", "synthesis.b16.torgb.weight", "b32.conv1"]  # names with and without prefixes
    offsets = {}
    for name in names:
        key = name.removeprefix("synthesis.").removesuffix(".weight")
        weight = g32.synthesis.layer(key).weight
        offsets[name] = 0.3 * torch.randn(3, *weight.shape, generator=gen)
    batched = g32.synthesis(ws, noise_mode="const", weight_offsets=offsets)
    for i in range(3):
        copy_i = copy.deepcopy(g32)
        with torch.no_grad():
            for name, offset in offsets.items():
                key = name.removeprefix("synthesis.").removesuffix(".weight")
                copy_i.synthesis.layer(key).weight += offset[i]
        single = copy_i.synthesis(ws[i : i + 1], noise_mode="const")
        torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=1e-5)
    assert (batched - g32.synthesis(ws, noise_mode="const")).abs().max() > 1e-2  # the offsets did something


def test_weight_offsets_are_differentiable(g32, io32):
    offset = torch.zeros(2, *g32.synthesis.b8.conv1.weight.shape, requires_grad=True)
    g32.synthesis(io32["ws"][:2], noise_mode="const", weight_offsets={"b8.conv1": offset}).square().sum().backward()
    assert offset.grad is not None and offset.grad.abs().sum() > 0


def test_noise_modes(g32, io32):
    ws = io32["ws"][:2]
    torch.manual_seed(0)
    a, b = g32.synthesis(ws), g32.synthesis(ws)
    assert not torch.equal(a, b)  # random noise differs between calls
    assert torch.equal(g32.synthesis(ws, noise_mode="const"), g32.synthesis(ws, noise_mode="const"))
    zero_noise = {name: torch.zeros(1, 1, int(name.split(".")[0][1:]), int(name.split(".")[0][1:]))
                  for name in g32.synthesis.noise_layer_names}
    torch.testing.assert_close(g32.synthesis(ws, noise=zero_noise), g32.synthesis(ws, noise_mode="none"))


def test_truncation_cutoff(g32, io32):
    ws = g32.mapping(io32["z"])
    cut = g32.mapping(io32["z"], truncation_psi=0.5, truncation_cutoff=3)
    torch.testing.assert_close(cut[:, :3], g32.mapping.w_avg.lerp(ws[:, :3], 0.5))
    torch.testing.assert_close(cut[:, 3:], ws[:, 3:])
    torch.testing.assert_close(truncate(ws, g32.mapping.w_avg, 0.0), g32.mapping.w_avg.expand_as(ws))


def test_w_avg_tracking_in_training():
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=8, channel_base=64, channel_max=16, w_avg_beta=0.5))
    z = torch.randn(16, 8)
    w = G.mapping(z)[:, 0]
    G.mapping(z, update_w_avg=True)
    torch.testing.assert_close(G.mapping.w_avg, 0.5 * w.mean(0))


@pytest.mark.parametrize("resolution", [4, 8, 64])
def test_configurable_sizes(resolution):
    cfg = GeneratorConfig(z_dim=16, w_dim=24, resolution=resolution, img_channels=1, mapping_layers=2,
                          channel_base=256, channel_max=32)
    G = Generator(cfg)
    assert G.num_ws == 2 * resolution.bit_length() - 4
    img, features = G.synthesis(G.mapping(torch.randn(2, 16)), return_features=True)
    assert img.shape == (2, 1, resolution, resolution)
    assert list(features) == [f"b{2**k}" for k in range(2, resolution.bit_length())]
    if resolution >= 8:
        D = Discriminator(DiscriminatorConfig(resolution=resolution, img_channels=1, channel_base=256, channel_max=32))
        assert D(img).shape == (2, 1)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda G, D: G.mapping(torch.randn(2, 63)), r"z must have shape \[N, 64\], got \[2, 63\]"),
        (lambda G, D: G.synthesis(torch.randn(2, 7, 64)), r"ws must have shape \[N, 8, 64\], got \[2, 7, 64\]"),
        (lambda G, D: G.synthesis(torch.randn(2, 8, 64), noise_mode="fixed"), "noise_mode must be one of"),
        (lambda G, D: G.synthesis(torch.randn(2, 8, 64), weight_offsets={"b8.conv2": torch.zeros(2)}),
         r"unknown layer 'b8.conv2'"),
        (lambda G, D: G.synthesis(torch.randn(2, 8, 64), weight_offsets={"b8.conv1": torch.zeros(2, 96, 96, 3, 2)}),
         r"weight_offsets\['b8.conv1'\] must have shape \[2, 96, 96, 3, 3\]"),
        (lambda G, D: G.synthesis(torch.randn(2, 8, 64), noise=[torch.zeros(2, 1, 4, 4)]), "noise must hold 7 maps"),
        (lambda G, D: D(torch.randn(2, 3, 16, 16)), r"img must have shape \[N, 3, 32, 32\], got \[2, 3, 16, 16\]"),
        (lambda G, D: D(torch.randn(2, 1, 32, 32)), r"img must have shape \[N, 3, 32, 32\]"),
        (lambda G, D: D(torch.randn(6, 3, 32, 32)), "must be a multiple of the minibatch-std group size"),
    ],
)
def test_bad_input_names_the_argument(g32, d32, call, match):
    with pytest.raises(ValueError, match=match):
        call(g32, d32)


def test_bad_config():
    with pytest.raises(ValueError, match="resolution must be a power of two"):
        GeneratorConfig(resolution=48)
    with pytest.raises(ValueError, match="unknown GeneratorConfig fields"):
        GeneratorConfig.from_dict({"resolution": 32, "fmaps": 1})


def test_winograd_convolutions_agree_with_direct_ones(monkeypatch):
    """NNPACK's Winograd path (3x3 convolutions on maps of 32 px and more) against oneDNN's direct path,
    values and first and second-order gradients."""
    from sg2_core import layers

    torch.manual_seed(0)
    x = torch.randn(2, 16, 32, 32, dtype=torch.float32, requires_grad=True)
    w = torch.randn(8, 16, 3, 3, requires_grad=True)
    calls = []
    original = torch._nnpack_spatial_convolution
    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", lambda *a: calls.append(1) or original(*a))

    def run(enabled):
        monkeypatch.setattr(layers, "WINOGRAD", enabled)
        y = layers.conv2d_resample(x, w, padding=1)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        (gw,) = torch.autograd.grad(gx.square().sum(), w)  # second order, as R1 needs
        return y, gx, gw

    direct = run(False)
    assert not calls
    winograd = run(True)
    if layers._nnpack_ready:
        assert calls
    for a, b in zip(direct, winograd):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * float(a.detach().abs().max()))


def test_inference_path_equals_the_gradient_path():
    """Without gradients, CPU synthesis takes sg2_core.cpu_inference: Winograd for 16-128 px convolutions
    and upsampling ones from 32-128 px inputs (styles and demodulation in the tile transforms, cached
    weight transforms), one image at a time elsewhere, bias + lrelu in place. It must equal the ordinary
    path, also after the weights change."""
    from sg2_core import Generator, GeneratorConfig, cpu_inference
    from sg2_kernels._backend import unavailable_reason

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(resolution=256, z_dim=32, w_dim=32, channel_base=4096, channel_max=32)).eval()
    ws = G.mapping(torch.randn(3, 32)).detach()
    taken = []
    original = cpu_inference.winograd.conv3x3
    counting = lambda x, u, up=1, *a, **k: taken.append((x.shape[2], up)) or original(x, u, up, *a, **k)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpu_inference.winograd, "conv3x3", counting)
        for step in range(2):
            expected = G.synthesis(ws, noise_mode="const")  # parameters require grad: the ordinary path
            assert not taken
            with torch.no_grad():
                fast = G.synthesis(ws, noise_mode="const")
                single = G.synthesis(ws[:1], noise_mode="const")
            if unavailable_reason("cpp") is None:
                assert sorted(set(taken)) == [(16, 1), (32, 1), (32, 2), (64, 1), (64, 2), (128, 1), (128, 2)]
            taken.clear()
            expected = expected.detach()
            tolerance = 1e-4 * float(expected.abs().max())
            torch.testing.assert_close(fast, expected, rtol=0, atol=tolerance)
            torch.testing.assert_close(single, fast[:1], rtol=0, atol=tolerance)
            with torch.no_grad():  # an optimiser step: the cached transforms must follow
                for p in G.synthesis.parameters():
                    p.add_(0.1 * torch.randn_like(p))
