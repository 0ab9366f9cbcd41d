"""sg2_core.encoders against the reference encoders (shared/fixtures/encoders, reduced widths, float16 weights).

Fixture checks run the encoders as users do (in eval mode without gradients: the inference path) in float32 against the
reference's float32 values, and in float64 against its float64 values (``*_f64``). Tolerances: the fixture
README's for float32; for float64 against float64, 1e-9, which any float32 step would exceed by 1e3 (the
float32-float64 gap is 8e-6 on the codes) while leaving room for another summation order.
"""

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sg2_core.encoders import (
    EqualLinear,
    GradualStyleBlock,
    IRBackbone,
    IRTrunk,
    PyramidStyleEncoder,
    WEncoder,
    ir_se,
)
from sg2_core.testing.fixture_packs import unpack_state as unpack

DATA = Path(__file__).parent / "data" / "encoders"
SMALL = dict(widths=(16, 32, 48, 64))  # config R of the fixture README
F64_TOL = dict(atol=1e-9, rtol=0)
CODES_TOL = dict(atol=1e-4, rtol=1e-4)
MAPS_TOL = dict(atol=2e-4, rtol=1e-4)


def load(name):
    return torch.load(DATA / name, weights_only=True)


def loaded(module, packed, dtype):
    module.load_state_dict(unpack(packed), strict=True)
    return module.to(dtype).eval()


@pytest.fixture(scope="module")
def inputs():
    return load("inputs.pt")


@pytest.fixture(scope="module")
def psp_ref():
    return load("psp_fpn.pt")


def psp_encoder(ref, dtype):
    return loaded(PyramidStyleEncoder(10, 3, style_dim=32, **SMALL), ref["weights"], dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_psp_pyramid_maps_and_codes(psp_ref, inputs, dtype):
    enc = psp_encoder(psp_ref, dtype)
    x = inputs["x256_0"].to(dtype)
    with torch.no_grad():
        maps, codes = enc.forward_pyramid(x), enc(x)
    for name in ("c2", "c3", "p2"):  # float32 values only in the fixture, so MAPS_TOL for float64 too
        torch.testing.assert_close(maps[name][0], psp_ref[f"{name}_sample0"].to(dtype), **MAPS_TOL)
    for name in ("c1", "p1"):  # channels 0-3 stored (size); the fine codes read all of p1
        torch.testing.assert_close(maps[name][0, :4], psp_ref[f"{name}_sample0_ch0to3"].to(dtype), **MAPS_TOL)
    assert codes.shape == (1, 10, 32) and codes.dtype == dtype
    torch.testing.assert_close(codes, psp_ref["codes_0"].to(dtype), **CODES_TOL)
    if dtype == torch.float64:
        torch.testing.assert_close(codes, psp_ref["codes_f64_0"], **F64_TOL)
    assert enc.style_sources == ("c3",) * 3 + ("p2",) * 4 + ("p1",) * 3


def e4e_codes(enc, maps, stage):
    """e4e from the parts (what inv-encoders does): styles[0] on c3 is the base w, repeated; styles 1..stage add
    deltas, each read from its own pyramid map."""
    w = enc.styles[0](maps["c3"]).unsqueeze(1).repeat(1, enc.n_styles, 1)
    for i in range(1, min(stage + 1, enc.n_styles)):
        w[:, i] += enc.styles[i](maps[enc.style_sources[i]])
    return w


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_e4e_stages_from_the_parts(psp_ref, inputs, dtype):
    enc = psp_encoder(psp_ref, dtype)
    with torch.no_grad():
        maps = enc.forward_pyramid(inputs["x256_0"].to(dtype))
    for stage in (0, 3, 8, 18):
        with torch.no_grad():
            w = e4e_codes(enc, maps, stage)
        torch.testing.assert_close(w, psp_ref[f"e4e_w_stage{stage}_0"].to(dtype), **CODES_TOL)
        if dtype == torch.float64:
            torch.testing.assert_close(w, psp_ref[f"e4e_w_stage{stage}_f64_0"], **F64_TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_w_encoder(inputs, dtype):
    ref = load("w_encoder.pt")
    enc = loaded(WEncoder(3, w_dim=32, **SMALL), ref["weights"], dtype)
    with torch.no_grad():
        w = enc(inputs["x256_0"].to(dtype))
    assert w.shape == (1, 32) and w.dtype == dtype
    torch.testing.assert_close(w, ref["w_0"].to(dtype), **CODES_TOL)
    if dtype == torch.float64:
        torch.testing.assert_close(w, ref["w_f64_0"], **F64_TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_arcface_embedding(inputs, dtype):
    ref = load("arcface.pt")
    net = loaded(IRBackbone(50, "ir_se", 112, embedding_size=32, dropout=0.6, **SMALL), ref["weights"], dtype)
    with torch.no_grad():
        emb = net(inputs["x112"].to(dtype))
    torch.testing.assert_close(emb, ref["emb_x112"].to(dtype), atol=1e-5, rtol=0)
    if dtype == torch.float64:
        torch.testing.assert_close(emb, ref["emb_x112_f64"], **F64_TOL)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2, dtype=dtype))


def test_batch_equals_one_at_a_time(psp_ref):
    enc = psp_encoder(psp_ref, torch.float32)
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        batch = enc(x)
        single = torch.cat([enc(x[i : i + 1]) for i in range(2)])
    # other batch sizes may pick other convolution algorithms (rounding ~1e-5, like the thread count in the
    # fixture README); a leak between samples (batch statistics) would be of order 1
    torch.testing.assert_close(batch, single, **CODES_TOL)


# ---------------------------------------------------------------------------------------------- feature taps


@pytest.mark.parametrize(
    "num_layers, stage_ends, in_channels",
    [(50, [2, 6, 20, 23], 1), (100, [2, 15, 45, 48], 6), (152, [2, 10, 46, 49], 2)],
)
def test_feature_info_describes_the_taps(num_layers, stage_ends, in_channels):
    trunk = IRTrunk(num_layers, "ir", in_channels=in_channels, widths=(4, 8, 12, 16)).eval()
    info = trunk.feature_info
    assert [t["unit"] for t in info] == [-1] + stage_ends
    assert [t["module"] for t in info] == ["input_layer"] + [f"body.{i}" for i in stage_ends]
    assert [(t["num_chs"], t["reduction"]) for t in info] == [(4, 1), (4, 2), (8, 4), (12, 8), (16, 16)]
    x = torch.randn(2, in_channels, 32, 48)  # not square, so rows and columns are told apart
    with torch.no_grad():
        taps = trunk.forward_intermediates(x)
        assert trunk(x).equal(taps[-1])
    for t, fmap in zip(info, taps):
        assert fmap.shape == (2, t["num_chs"], 32 // t["reduction"], 48 // t["reduction"])


def test_forward_intermediates_indices():
    torch.manual_seed(0)
    trunk = IRTrunk(50, "ir_se", **SMALL).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        every = trunk.forward_intermediates(x)
        c1, c2, c3 = trunk.forward_intermediates(x, [2, 3, 4])  # pSp's taps
        assert [m.shape[1:] for m in (c1, c2, c3)] == [(32, 16, 16), (48, 8, 8), (64, 4, 4)]
        assert all(a.equal(b) for a, b in zip((c1, c2, c3), every[2:]))
        assert all(a.equal(b) for a, b in zip(trunk.forward_intermediates(x, 2), every[3:]))  # the last 2
        flipped = trunk.forward_intermediates(x, [-1, 0])  # the order asked, negatives from the end
        assert flipped[0].equal(every[4]) and flipped[1].equal(every[0])
        units = trunk.forward_features(x, taps=(6, 20, 23))  # body-unit taps, as before
        assert all(a.equal(b) for a, b in zip(units, (c1, c2, c3)))
    with pytest.raises(ValueError, match=r"tap indices must be integers in \[-5, 4\] \(5 taps\), got \(5,\)"):
        trunk.forward_intermediates(x, [5])
    with pytest.raises(ValueError, match="asked for the last 6 taps of 5"):
        trunk.forward_intermediates(x, 6)


def test_forward_intermediates_stops_after_the_deepest_tap():
    trunk = IRTrunk(50, "ir_se", **SMALL).eval()
    ran = []
    for i, unit in enumerate(trunk.body):
        unit.register_forward_hook(lambda *_, i=i: ran.append(i))
    with torch.no_grad():
        trunk.forward_intermediates(torch.randn(1, 3, 32, 32), [0, 2])
    assert ran == list(range(7))  # units 0..6, c1 being the output of unit 6


# ---------------------------------------------------------------------------------------------- variants


def test_restyle_layout_every_style_reads_the_last_map():
    enc = PyramidStyleEncoder(10, 6, pyramid=False, style_dim=32, **SMALL).eval()
    assert not hasattr(enc, "latlayer1") and set(enc.style_sources) == {"c3"}
    assert all(len(s.convs) == 8 for s in enc.styles)  # 4 stride-2 convs from 16x16, each with its activation
    with torch.no_grad():
        codes = enc(torch.randn(2, 6, 256, 256))
        c3 = enc.forward_pyramid(torch.zeros(1, 6, 256, 256))["c3"]
    assert codes.shape == (2, 10, 32) and c3.shape == (1, 64, 16, 16)


def test_hyperinverter_style_blocks_stop_at_8x8():
    enc = PyramidStyleEncoder(8, 3, style_spatial=8, style_dim=32, **SMALL).eval()
    assert [len(s.convs) // 2 for s in enc.styles] == [1] * 3 + [2] * 4 + [3]
    assert all(s.linear is None for s in enc.styles)
    assert not any(".linear." in k for k in enc.state_dict())
    with torch.no_grad():
        assert enc(torch.randn(2, 3, 256, 256)).shape == (2, 8, 32, 8, 8)


def test_small_domain_and_one_channel():
    enc = PyramidStyleEncoder(6, 1, input_size=32, widths=(16, 16, 16, 16), style_dim=8).eval()
    assert [s.spatial for s in enc.styles] == [2, 2, 2, 4, 4, 4]
    with torch.no_grad():
        assert enc(torch.randn(3, 1, 32, 32)).shape == (3, 6, 8)
    w = WEncoder(1, w_dim=8, widths=(16, 16, 16, 16)).eval()
    with torch.no_grad():
        assert w(torch.randn(2, 1, 32, 32)).shape == (2, 8)


def test_gradients_reach_every_parameter():
    enc = PyramidStyleEncoder(8, 3, input_size=64, style_dim=8, widths=(16, 16, 16, 16))
    enc(torch.randn(2, 3, 64, 64)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_equal_linear_scales_at_run_time():
    torch.manual_seed(0)
    lin = EqualLinear(16, 4, lr_mul=0.01, bias_init=1.0)
    assert lin.weight.std() > 10  # stored as N(0, 1) / lr_mul
    x = torch.randn(2, 5, 16)  # any leading dimensions
    expected = F.linear(x, lin.weight * 0.01 / 4, lin.bias * 0.01)
    torch.testing.assert_close(lin(x), expected)
    act = EqualLinear(16, 4, activation="fused_lrelu")
    torch.testing.assert_close(act(x[0]), F.leaky_relu(F.linear(x[0], act.weight / 4, act.bias), 0.2) * 2**0.5)
    with pytest.raises(ValueError, match="activation must be None or 'fused_lrelu', got 'relu'"):
        EqualLinear(16, 4, activation="relu")


# ---------------------------------------------------------------------------------------------- bad input


def test_clear_errors():
    enc = PyramidStyleEncoder(4, 6, input_size=64, style_dim=8, widths=(16, 16, 16, 16))
    with pytest.raises(ValueError, match=r"PyramidStyleEncoder takes images \[N, 6, H, W\], got \(1, 3, 64, 64\)"):
        enc(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="was built for 64x64 inputs, got 128x128"):
        enc(torch.zeros(1, 6, 128, 128))
    with pytest.raises(ValueError, match="input_size must be a power of two >= 32"):
        PyramidStyleEncoder(4, input_size=48)
    with pytest.raises(ValueError, match="spatial / out_spatial = 2, 4, 8, ... .*got spatial 4 and out_spatial 8"):
        PyramidStyleEncoder(4, input_size=64, style_spatial=8, widths=(16, 16, 16, 16))
    with pytest.raises(ValueError, match="n_styles must be a positive integer, got 0"):
        PyramidStyleEncoder(0)
    with pytest.raises(ValueError, match="num_layers must be 50, 100 \\(101\\) or 152, got 34"):
        IRTrunk(34)
    with pytest.raises(ValueError, match="mode must be 'ir' or 'ir_se', got 'resnet'"):
        IRTrunk(50, "resnet")
    with pytest.raises(ValueError, match=r"widths must be 4 integers >= 16 .*SE reduction.*got \(8, 16, 32, 64\)"):
        IRTrunk(50, "ir_se", widths=(8, 16, 32, 64))
    with pytest.raises(ValueError, match="in_channels must be a positive integer, got 0"):
        WEncoder(0)
    with pytest.raises(ValueError, match="takes 112x112 crops, got 100x100"):
        ir_se(50, widths=(16, 32, 48, 64), embedding_size=8)(torch.zeros(1, 3, 100, 100))
    with pytest.raises(RuntimeError, match="without an embedding head"):
        ir_se(50, widths=(16, 32, 48, 64), embedding_size=None)(torch.zeros(1, 3, 112, 112))
    with pytest.raises(ValueError, match=r"style block takes \[N, 16, 4, 4\] maps, got \(1, 16, 8, 8\)"):
        GradualStyleBlock(16, 8, 4)(torch.zeros(1, 16, 8, 8))


def test_readme_example_runs():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Encoder parts", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's Encoder parts section has no python example"
    for block in blocks:
        exec(compile(block, "README.md (Encoder parts)", "exec"), {})
