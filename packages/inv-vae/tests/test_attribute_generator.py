"""The attribute-aware generator equals its source generator while every path holds the source's weights, takes
each sample's own path, keeps constant noise right above 64 px, and round-trips through the native format."""

import pytest
import torch

from inv_vae.attribute_generator import AttributeGenerator, AttributeGeneratorConfig, default_split
from sg2_core import Generator, GeneratorConfig, Inversion, demo, load_networks, save_networks

# samples grouped by path run in other batches: float32 round-off. Each render is within 46 eps * max|image| of a
# float64 run (this CPU; AVX2- and SSE-capped kernels) and the 128 px images reach |25|: 256 eps * 25 = 7.6e-4
TOL = dict(rtol=0, atol=8e-4)
TINY128 = GeneratorConfig(resolution=128, z_dim=16, w_dim=16, channel_base=256, channel_max=8, mapping_layers=2)


@pytest.fixture(scope="module")
def g128():
    torch.manual_seed(4)
    G = Generator(TINY128).eval().requires_grad_(False)
    with torch.no_grad():  # non-zero noise strengths, so constant noise shows in the images
        for name in G.synthesis.noise_layer_names:
            G.synthesis.layer(name).noise_strength.fill_(0.5)
    return G


def test_default_split_is_8_to_64_below_the_output():
    assert default_split(1024) == default_split(128) == (8, 16, 32, 64)
    assert default_split(32) == (8, 16) and default_split(8) == ()


def test_equals_the_source_above_64_px_with_constant_noise(g128):
    ag = AttributeGenerator.from_generator(g128, ("A", "B", "C"))
    assert ag.config.split == (8, 16, 32, 64) and sorted(ag.shared) == ["b128", "b4"]
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = g128(z, noise_mode="const")
        got = ag(z, torch.tensor([0, 1, 2, 1]), noise_mode="const")
        by_name = ag(z, ["A", "B", "C", "B"], noise_mode="const")
    assert got.shape == (4, 3, 128, 128)
    torch.testing.assert_close(got, expected, **TOL)
    assert torch.equal(got, by_name)


def test_each_sample_takes_its_own_path(g128):
    ag = AttributeGenerator.from_generator(g128)
    with torch.no_grad():
        ag.paths[1]["b16"].conv1.weight.mul_(-1)
        ws = g128.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(1)))
        got = ag.synthesize(ws, [0, 1], noise_mode="const")
        plain = g128.synthesis(ws, noise_mode="const")
        flipped = ag.path("B").synthesis(ws, noise_mode="const")
    torch.testing.assert_close(got[0], plain[0], **TOL)
    assert (got[1] - plain[1]).abs().max() > 1e-2
    torch.testing.assert_close(got[1], flipped[1], **TOL)
    assert g128.synthesis.b16.conv1.weight.sum() != ag.paths[1]["b16"].conv1.weight.sum()  # the source is untouched


def test_explicit_noise_and_offsets_follow_their_samples(g128):
    ag = AttributeGenerator.from_generator(g128)
    ws = g128.mapping(torch.randn(3, 16, generator=torch.Generator().manual_seed(2)))
    noise = {
        name: torch.randn(3, 1, g128.synthesis.layer(name).resolution, g128.synthesis.layer(name).resolution)
        for name in g128.synthesis.noise_layer_names
    }
    offsets = {"b8.conv1": 0.01 * torch.randn(3, *g128.synthesis.b8.conv1.weight.shape)}
    with torch.no_grad():
        got = ag.synthesize(ws, [1, 0, 1], noise=noise, weight_offsets=offsets)
        expected = g128.synthesis(ws, noise=noise, weight_offsets=offsets)
    torch.testing.assert_close(got, expected, **TOL)


def test_demo_generator_split_and_render_through_a_path():
    G = demo.load_generator()
    ag = AttributeGenerator.from_generator(G, ("tops", "shoes"))
    assert ag.config.split == (8, 16) and sorted(ag.shared) == ["b32", "b4"]
    inv = Inversion(torch.randn(2, G.num_ws, G.z_dim, generator=torch.Generator().manual_seed(3)), "z+", G)
    with torch.no_grad():
        torch.testing.assert_close(inv.render(generator=ag.path("shoes")), inv.render(), **TOL)
        torch.testing.assert_close(ag.synthesize(inv.ws, "tops", noise_mode="const"), inv.render(), **TOL)


def test_native_format_round_trip(g128, tmp_path):
    ag = AttributeGenerator.from_generator(g128, ("x", "y"), split=(8, 16))
    with torch.no_grad():
        ag.paths[0]["b8"].conv0.weight.add_(0.1)
    path = save_networks(tmp_path / "ag.safetensors", {"G": ag})
    loaded = load_networks(path)["G"]
    assert isinstance(loaded, AttributeGenerator) and loaded.config == ag.config
    assert loaded.config.generator == TINY128 and loaded.config.attributes == ("x", "y")
    ws = g128.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(5)))
    with torch.no_grad():
        got, expected = (net.synthesize(ws, [0, 1], noise_mode="const") for net in (loaded, ag))
    assert torch.equal(got, expected)
    assert torch.equal(loaded.path(0).synthesis.b8.conv0.weight, ag.paths[0]["b8"].conv0.weight)


def test_views_follow_moves_and_modes(g128):
    ag = AttributeGenerator.from_generator(g128).double().train()
    assert ag.path(1).synthesis.b8.conv1.weight.dtype == torch.float64
    assert ag.path(1).synthesis.b8.conv1.weight is ag.paths[1]["b8"].conv1.weight
    assert ag.path(0).training and not ag.eval().path(0).training


def test_unknown_attributes_are_refused(g128):
    ag = AttributeGenerator.from_generator(g128, ("female", "male"))
    ws = g128.mapping(torch.randn(2, 16))
    with pytest.raises(
        ValueError,
        match=r"unknown attribute index 2; this generator has 2 paths, indices 0..1 "
        r"\(\['female', 'male'\]\)",
    ):
        ag.synthesize(ws, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"unknown attribute 'child'; this generator's attributes are"):
        ag.synthesize(ws, ["female", "child"])
    with pytest.raises(ValueError, match=r"one attribute per sample \(2\) or one for all, got 3"):
        ag.synthesize(ws, [0, 1, 1])
    with pytest.raises(ValueError, match="attributes must be a 1-d integer tensor"):
        ag.synthesize(ws, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"split must list distinct block resolutions above 4 .* got \[4, 256\]"):
        AttributeGeneratorConfig(TINY128, split=(4, 256))
    with pytest.raises(ValueError, match="attributes must be distinct non-empty names"):
        AttributeGeneratorConfig(TINY128, attributes=("a", "a"))
