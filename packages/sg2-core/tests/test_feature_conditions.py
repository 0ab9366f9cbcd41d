"""Feature conditions (HFGI's consultation fusion): the synthesis network, the checks, and Inversion carrying them."""

import copy

import pytest
import torch

from sg2_core import Inversion
from sg2_core.nn.feature_conditions import FeatureCondition
from sg2_core.nn.generator import Generator
from sg2_kernels import upsample2d

from .conftest import G32

LAYER = "b16.conv0"  # an upsampling conv, as HFGI's b64.conv0 on a 1024 generator


@pytest.fixture
def generator():
    torch.manual_seed(0)
    G = Generator(G32).eval()
    with torch.no_grad():  # non-zero noise strengths and biases, so the order of noise, bias and condition matters
        for name, p in G.synthesis.named_parameters():
            if name.endswith(("noise_strength", "bias")):
                p.normal_(0, 0.5)
    return G


def _condition(G, n, seed=1, dtype=torch.float32):
    shape = [n, G.synthesis.layer(LAYER).weight.shape[0], 16, 16]
    gen = torch.Generator().manual_seed(seed)
    return FeatureCondition(0.5 * torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)).map(
        lambda t: t.to(dtype)
    )


def _plain_forward(synthesis, ws, layer, condition):
    """HFGI's generator loop written out: each conv, then at the conditioned layer ``out * (1 + scale) + shift``
    on its output (after noise, bias and activation), then the next conv and toRGB read the changed features."""
    x = img = None
    w_index = 0
    for block in synthesis.blocks():
        if hasattr(block, "const"):
            x = block.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        for i, name in enumerate(block.conv_names):
            x = getattr(block, name)(x, ws[:, w_index + i], "const")
            if f"b{block.resolution}.{name}" == layer:
                x = x * (1 + condition.scale) + condition.shift
        y = block.torgb(x, ws[:, w_index + len(block.conv_names)])
        img = y if img is None else upsample2d(img, block.resample_filter) + y
        w_index += len(block.conv_names)
    return img


def test_equals_the_reference_fusion(generator, exact_path):
    ws = generator.mapping(torch.randn(3, G32.z_dim, generator=torch.Generator().manual_seed(2)))
    cond = _condition(generator, 3)
    ours = generator.synthesis(ws, noise_mode="const", feature_conditions={LAYER: cond})
    g64, cond64 = copy.deepcopy(generator).double(), cond.map(torch.Tensor.double)
    expected = _plain_forward(g64.synthesis, ws.double(), LAYER, cond64)
    # float32 against the float64 reference: measured 4.7 eps32 * max|image| here; 32 eps leaves 6.8x
    atol = 32 * torch.finfo(torch.float32).eps * expected.abs().max().item()
    assert torch.allclose(ours.double(), expected, rtol=0, atol=atol)
    # a float64 network renders in float64, running the plain loop's layers in its order: measured bit-identical
    ours64 = g64.synthesis(ws.double(), noise_mode="const", feature_conditions={LAYER: cond64})
    assert ours64.dtype == torch.float64 and torch.equal(ours64, expected)
    plain = generator.synthesis(ws, noise_mode="const")
    assert (ours - plain).abs().max() > 0.05  # the condition changes the image


def test_zero_condition_changes_nothing(generator):
    ws = generator.mapping(torch.randn(2, G32.z_dim, generator=torch.Generator().manual_seed(3)))
    cond = _condition(generator, 2).map(torch.zeros_like)
    plain = generator.synthesis(ws, noise_mode="const")
    assert torch.equal(generator.synthesis(ws, noise_mode="const", feature_conditions={LAYER: cond}), plain)


def test_scale_or_shift_alone(generator, exact_path):
    ws = generator.mapping(torch.randn(2, G32.z_dim, generator=torch.Generator().manual_seed(4)))
    cond = _condition(generator, 2)
    zeros = torch.zeros_like(cond.shift)
    shift_only = generator.synthesis(
        ws, noise_mode="const", feature_conditions={LAYER: FeatureCondition(None, cond.shift)}
    )
    both = generator.synthesis(ws, noise_mode="const", feature_conditions={LAYER: FeatureCondition(zeros, cond.shift)})
    assert torch.equal(shift_only, both)  # 1 + 0 multiplies exactly


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("b16.conv9", lambda c: c, "unknown layer"),
        ("b16.torgb", lambda c: c, "unknown layer"),
        (LAYER, lambda c: FeatureCondition(c.scale[:, :, :8]), r"must have shape \[2, "),
        (LAYER, lambda c: (c.scale, c.shift), "must be a FeatureCondition"),
        (LAYER, lambda c: FeatureCondition(c.scale[:1]), r"must have shape \[2, "),
        (LAYER, lambda c: FeatureCondition(c.scale * float("nan")), "finite"),
    ],
)
def test_bad_conditions_are_named(generator, name, make, message):
    ws = generator.mapping(torch.randn(2, G32.z_dim))
    with pytest.raises(ValueError, match=message):
        generator.synthesis(ws, feature_conditions={name: make(_condition(generator, 2))})


def test_empty_condition_refused():
    with pytest.raises(ValueError, match="needs a scale, a shift or both"):
        FeatureCondition()


def test_synthesis_prefix_names_the_same_layer(generator):
    ws = generator.mapping(torch.randn(2, G32.z_dim, generator=torch.Generator().manual_seed(5)))
    cond = _condition(generator, 2)
    a = generator.synthesis(ws, noise_mode="const", feature_conditions={LAYER: cond})
    b = generator.synthesis(ws, noise_mode="const", feature_conditions={f"synthesis.{LAYER}": cond})
    assert torch.equal(a, b)


def _inversion(G, n, seed):
    ws = G.mapping(torch.randn(n, G32.z_dim, generator=torch.Generator().manual_seed(seed)))
    return Inversion(ws, "w+", G, feature_conditions={LAYER: _condition(G, n, seed)})


def _assert_conditions_equal(a: Inversion, b: Inversion):
    assert set(a.feature_conditions or {}) == set(b.feature_conditions or {})
    for name, ca in (a.feature_conditions or {}).items():
        cb = b.feature_conditions[name]
        assert [p for p, _ in ca.parts()] == [p for p, _ in cb.parts()]
        assert all(torch.equal(x, y) for (_, x), (_, y) in zip(ca.parts(), cb.parts()))


def test_inversion_renders_with_its_conditions(generator):
    inv = _inversion(generator, 2, 6)
    direct = generator.synthesis(inv.ws, noise_mode="const", feature_conditions=inv.feature_conditions)
    assert torch.equal(inv.render(), direct)
    assert "feature_conditions=['b16.conv0']" in repr(inv)


def test_inversion_slices_concatenates_and_edits(generator):
    inv = _inversion(generator, 3, 7)
    parts = Inversion.cat([inv[0], inv[1:]])
    _assert_conditions_equal(parts, inv)  # pure data movement: bit-equal
    edited = inv.edit(torch.randn(G32.w_dim), 1.0)
    _assert_conditions_equal(edited, inv)  # edits keep the conditions
    with_plain = Inversion.cat([inv[:1], Inversion(inv.latents[1:], "w+", generator)])
    cond = with_plain.feature_conditions[LAYER]
    assert torch.equal(cond.scale[:1], inv.feature_conditions[LAYER].scale[:1])
    assert torch.equal(cond.scale[1:], torch.zeros_like(cond.scale[1:]))  # a missing condition counts as zero


def test_inversion_interpolates_conditions(generator):
    a, b = _inversion(generator, 2, 8), _inversion(generator, 2, 9)
    mid = a.interpolate(b, 0.5)
    ends = a.feature_conditions[LAYER].shift, b.feature_conditions[LAYER].shift
    expected = 0.5 * (ends[0] + ends[1])
    # elementwise: a + 0.5 (b - a) and 0.5 (a + b) each round twice, within an ulp of max(|a|, |b|); 4 eps leaves 2x
    bound = 4 * torch.finfo(torch.float32).eps * torch.maximum(ends[0].abs(), ends[1].abs()).max()
    torch.testing.assert_close(mid.feature_conditions[LAYER].shift, expected, rtol=0, atol=bound)
    plain = Inversion(b.latents, "w+", generator)
    half = a.interpolate(plain, torch.tensor([0.0, 1.0]))  # per sample: the first keeps, the second loses them
    assert torch.equal(half.feature_conditions[LAYER].scale[0], a.feature_conditions[LAYER].scale[0])
    assert torch.equal(half.feature_conditions[LAYER].scale[1], torch.zeros_like(a.feature_conditions[LAYER].scale[1]))


def test_inversion_file_round_trip(generator, tmp_path):
    inv = _inversion(generator, 2, 10)
    inv = Inversion(
        inv.latents,
        "w+",
        generator,
        feature_conditions={LAYER: FeatureCondition(shift=inv.feature_conditions[LAYER].shift)},
    )
    loaded = Inversion.load(inv.save(tmp_path / "inv.safetensors"), generator)
    _assert_conditions_equal(loaded, inv)  # stored tensors: exact
    assert loaded.feature_conditions[LAYER].scale is None
    rendered = inv.render()
    # the same tensors and kernels; only memory alignment may change vector lanes: a few ulps, 8 eps of margin
    assert torch.allclose(
        loaded.render(), rendered, rtol=0, atol=8 * torch.finfo(torch.float32).eps * rendered.abs().max().item()
    )


def test_inversion_refuses_conditions_of_another_batch(generator):
    ws = generator.mapping(torch.randn(2, G32.z_dim))
    with pytest.raises(ValueError, match=r"must have shape \[2, "):
        Inversion(ws, "w+", generator, feature_conditions={LAYER: _condition(generator, 3)})
