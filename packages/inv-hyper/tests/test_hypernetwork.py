"""The hypernetwork against the official HyperInverter reference (tests/data/README.md says where the data
comes from): the predicted deltas and regressor features from stored W-bar codes, the w_idx mapping, the
full-size official key layout, and rendering the deltas as per-sample weight offsets."""

import gzip
import json
from pathlib import Path

import pytest
import torch

from inv_hyper.hypernetwork import Hypernetwork, target_shapes, w_index
from sg2_core import GENERATOR_PRESETS, Generator, GeneratorConfig

DATA = Path(__file__).parent / "data"
REF = torch.load(DATA / "hyper_hypernet.pt", weights_only=True)


def tiny_generator():
    kw = REF["generator_kwargs"]  # the reference's 32 px SG2-ADA target
    torch.manual_seed(0)
    return Generator(
        GeneratorConfig(
            resolution=kw["img_resolution"],
            z_dim=kw["z_dim"],
            w_dim=kw["w_dim"],
            channel_base=kw["channel_base"],
            channel_max=kw["channel_max"],
            mapping_layers=2,
        )
    ).eval()


def reference_hypernet(dtype=torch.float32):
    cfg = REF["config"]
    net = Hypernetwork.for_generator(
        tiny_generator(),
        input_dim=cfg["hyper_feat"],
        hidden_dim=cfg["hyper_hidden"],
        extractor_dim=cfg["hyper_fe_width"],
    )
    net.load_state_dict({k: v.float() for k, v in REF["hypernet"].items()}, strict=True)
    return net.to(dtype).eval()


def test_targets_and_w_idx_match_the_reference_table():
    shapes = target_shapes(tiny_generator())
    expected = [(name.removesuffix(".weight"), tuple(shape), idx) for name, shape, idx in REF["target_shape"]]
    assert [(name, shape, w_index(name)) for name, shape in shapes.items()] == expected


def test_w_index_full_size_rule_and_bad_names():
    assert [
        w_index(n)
        for n in ["b4.conv1", "b4.torgb", "b8.torgb", "b1024.conv0", "b1024.conv1", "synthesis.b1024.torgb.weight"]
    ] == [0, 1, 3, 16, 17, 17]
    for bad in ["b4.conv0", "b12.conv0", "b8.affine", "mapping.fc0"]:
        with pytest.raises(ValueError, match="not a synthesis conv or toRGB layer"):
            w_index(bad)


def test_predicted_deltas_and_features_float32():
    net = reference_hypernet()
    with torch.no_grad():
        deltas, features = net(REF["w_image_codes"], REF["w_bar_codes"], return_features=True)
    assert set(deltas) == {name.removesuffix(".weight") for name in REF["predicted"]}
    for name, expected in REF["predicted"].items():
        torch.testing.assert_close(deltas[name.removesuffix(".weight")], expected, rtol=1e-4, atol=2e-6)
    assert set(features) == set(REF["regressor_features"])
    for key, expected in REF["regressor_features"].items():
        torch.testing.assert_close(features[key], expected, rtol=0, atol=1e-5)


def test_predicted_deltas_float64():
    net = reference_hypernet(torch.float64)
    with torch.no_grad():
        deltas = net(REF["w_image_codes_f64"].double(), REF["w_bar_codes_f64"].double())
    for name, expected in REF["predicted_f64"].items():
        got = deltas[name.removesuffix(".weight")]
        assert got.dtype == torch.float64
        # the reference float64 values were stored as float32
        torch.testing.assert_close(got.float(), expected, rtol=1e-5, atol=1e-7)


def test_view_is_not_a_transpose():
    # b32.conv0 is [16, 32, 3, 3]: out != in, so a transpose would give other values (or fail outright)
    net = reference_hypernet()
    reg = net.weight_regressors["b32_conv0_weight"]
    f = REF["regressor_features"]["b32_conv0_weight"]
    with torch.no_grad():
        t = (f @ reg.w1 + reg.b1).reshape(2, 32, 8) @ reg.w2 + reg.b2  # [N, in, out*k*k]
        got = reg.predict(f)
    assert got.shape == (2, 16, 32, 3, 3)
    assert torch.equal(got.flatten(1), t.flatten(1))
    assert not torch.allclose(got, t.reshape(2, 32, 16, 3, 3).transpose(1, 2))


def test_full_size_layout_matches_the_official_checkpoint_on_meta():
    layout = json.loads(gzip.decompress((DATA / "hypernetwork_D128_1024_keys.json.gz").read_bytes()))
    with torch.device("meta"):
        net = Hypernetwork.for_generator(Generator(GENERATOR_PRESETS["ffhq1024-f"]), input_dim=512, hidden_dim=128)
    state = net.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == layout["keys"]
    assert len(net.weight_regressors) == 26 and len(state) == layout["n_keys"] == 364
    assert sum(v.numel() for v in state.values()) == layout["n_parameters"]
    meta_state = {k: torch.empty(v, device="meta") for k, v in layout["keys"].items()}
    result = net.load_state_dict(meta_state, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_deltas_render_as_weight_offsets_in_one_batched_pass():
    G = tiny_generator()
    net = reference_hypernet()
    ws = G.mapping(torch.randn(2, G.z_dim)).detach()
    with torch.no_grad():
        deltas = net(REF["w_image_codes"], REF["w_bar_codes"])
        batched = G.synthesis(ws, weight_offsets=deltas, noise_mode="const")
        plain = G.synthesis(ws, noise_mode="const")
        for i in range(2):  # the reference's way: the deltas added to a generator's weights, one image at a time
            saved = {name: G.synthesis.layer(name).weight.clone() for name in deltas}
            for name, delta in deltas.items():
                G.synthesis.layer(name).weight.add_(delta[i])
            single = G.synthesis(ws[i : i + 1], noise_mode="const")
            for name, weight in saved.items():
                G.synthesis.layer(name).weight.copy_(weight)
            torch.testing.assert_close(batched[i : i + 1], single, rtol=1e-4, atol=1e-5)
    assert (batched - plain).abs().max() > 1e-3  # the deltas do change the image


def test_bad_codes_are_refused_with_the_expected_shape():
    net = reference_hypernet()
    codes = REF["w_bar_codes"]
    with pytest.raises(ValueError, match=r"w_bar_codes must be \[N, >=8, 32, 8, 8\].*got \[2, 8, 32, 4, 4\]"):
        net(codes, codes[..., :4, :4])
    with pytest.raises(ValueError, match=r"w_image_codes must be \[N, >=8, 32, 8, 8\].*got \[2, 7, 32, 8, 8\]"):
        net(codes[:, :7], codes)
    with pytest.raises(ValueError, match="must have the same shape"):
        net(codes, codes[:1])
    with pytest.raises(ValueError, match=r"layers \['b64.conv0'\] are not in the generator"):
        Hypernetwork.for_generator(tiny_generator(), layers=["b64.conv0"])
