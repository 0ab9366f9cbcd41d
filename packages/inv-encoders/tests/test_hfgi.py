"""HFGI's ADA and consultation encoder, and the generator fused with their conditions, equal the official code run
small on the CPU (data/hfgi_reference.pt, made by data/make_hfgi_reference.py), in float32 and float64."""

from pathlib import Path

import pytest
import torch

from inv_encoders.hfgi import HFGIConfig, HFGINetwork, config_for, default_condition_layer
from sg2_core.checkpoints.rosinality import generator_from_rosinality

DATA = Path(__file__).resolve().parent / "data"
EPS32, EPS64 = torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps
# Bounds in eps * max|expected|, against the reference's float64 run. Measured here: ADA + consultation in float64
# 6.2 (aligned) / 10.5 (scale) / 10.3 (shift) eps64 (summation order, folded BatchNorms): 1000 eps64 leaves 95x.
# float32: aligned 5.4, scale 7.4, shift 6.9 eps32 (the reference's own float32 run: 5.5, 7.1, 7.3); the generator
# renders images0 at 10.0 and images at 10.9 eps32 (the reference: 3.7, 4.3); 64 eps32 leaves 5.8x over the largest
# The whole pipeline in float64: images0 3.2, scale 9.8, images 3.8 eps64 (1000 leaves 100x) with the generator's
# demodulation as rosinality's (_rosinality_demodulation); as loaded, 2.0e7 eps64 = 4.3e-9 * max|image|: not
# rounding but the demodulation's 1e-8 added to other sums, below float32's noise
TOL64 = 1000
TOL32 = 64


@pytest.fixture(scope="module")
def reference():
    return torch.load(DATA / "hfgi_reference.pt", weights_only=True)


@pytest.fixture(scope="module")
def state(reference, hfgi_formula):
    return hfgi_formula(reference["shapes"])


def _prefixed(state, prefix):
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _network(state, dtype) -> HFGINetwork:
    config = HFGIConfig(condition_channels=32, condition_size=64)
    net = HFGINetwork(config)
    net.load_state_dict({k: v for k, v in state.items() if k.startswith(("residue.", "grid_align."))}, strict=True)
    return net.to(dtype).eval()


def _generator(state):
    return generator_from_rosinality(_prefixed(state, "decoder.")).eval()


def _assert_near(ours, expected, eps_multiple, eps=EPS32):
    expected = expected.to(torch.float64)
    atol = eps_multiple * eps * expected.abs().max().item()
    err = (ours.to(torch.float64) - expected).abs().max().item()
    assert err <= atol, f"max |diff| {err:.3g} > {atol:.3g}"


def test_official_layout_at_full_size(reference):
    with torch.device("meta"):
        net = HFGINetwork(HFGIConfig())
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == reference["layouts"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ada_and_consultation_equal_the_reference(dtype, reference, state, inputs):
    tag = "f32" if dtype == torch.float32 else "f64"
    net = _network(state, dtype)
    with torch.no_grad():
        aligned = net.align(inputs["x256"].to(dtype), reference["images0_f64"].to(dtype))
        scale, shift = net.residue(aligned)
    multiple, eps = (TOL32, EPS32) if dtype == torch.float32 else (TOL64, EPS64)
    _assert_near(aligned[:, :, ::4, ::4], reference["aligned_f64"], multiple, eps)
    _assert_near(scale[:, :, ::4, ::4], reference["scale_f64"], multiple, eps)
    _assert_near(shift[:, :, ::4, ::4], reference["shift_f64"], multiple, eps)
    assert aligned.dtype == dtype and reference[f"scale_{tag}"].dtype == dtype


def _rosinality_demodulation(G):
    """Scale each demodulated conv's weights by 1/sqrt(fan-in) as rosinality does before demodulating, so that the
    1e-8 under the square root lands on the same sums. NVIDIA's layout (ours) demodulates the unscaled weights; the
    outputs differ by ~4e-9 relative, seen only in float64."""
    with torch.no_grad():
        for name in G.synthesis.weight_layer_names:
            if not name.endswith("torgb"):
                weight = G.synthesis.layer(name).weight
                weight.mul_(weight[0].numel() ** -0.5)
    return G


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_pipeline_equals_the_reference(dtype, reference, state, inputs):
    """scripts/inference.py's steps: render, align, condition, render again, every network in ``dtype``."""
    G = _generator(state).to(dtype)
    if dtype == torch.float64:
        G = _rosinality_demodulation(G)
    net = _network(state, dtype)
    net.check_generator(G.synthesis)
    codes = reference["codes"].to(dtype)
    with torch.no_grad():
        images0 = G.synthesis(codes, noise_mode="const")
        conditions = net(inputs["x256"].to(dtype), images0)
        images = G.synthesis(codes, noise_mode="const", feature_conditions=conditions)
    multiple, eps = (TOL32, EPS32) if dtype == torch.float32 else (TOL64, EPS64)
    cond = conditions["b64.conv0"]
    assert images0.dtype == cond.scale.dtype == images.dtype == dtype
    _assert_near(images0, reference["images0_f64"], multiple, eps)
    _assert_near(cond.scale[:, :, ::4, ::4], reference["scale_f64"], multiple, eps)
    _assert_near(images, reference["images_f64"], multiple, eps)
    assert (images - images0).abs().max() > 1e3 * multiple * eps  # the conditions matter at this tolerance


def test_condition_layer_follows_the_generator():
    from sg2_core.nn.config import GeneratorConfig
    from sg2_core.nn.generator import SynthesisNetwork

    small = SynthesisNetwork(GeneratorConfig(z_dim=32, w_dim=32, resolution=32, channel_base=512, channel_max=32))
    assert default_condition_layer(small) == "b16.conv0"
    config = config_for(small, 32)
    assert (config.condition_layer, config.condition_channels, config.condition_size) == ("b16.conv0", 32, 16)
    HFGINetwork(config).check_generator(small)
    with pytest.raises(ValueError, match="the generator's layer has 32 channels at 16 px"):
        HFGINetwork(HFGIConfig(img_channels=1, input_size=32, condition_layer="b16.conv0")).check_generator(small)
    with pytest.raises(ValueError, match="which the generator lacks"):
        HFGINetwork(HFGIConfig(img_channels=1, input_size=32)).check_generator(small)


def test_bad_config_and_input_are_named():
    with pytest.raises(ValueError, match="divisible by 8"):
        HFGIConfig(input_size=36)
    with pytest.raises(ValueError, match="aligner_widths must be 4 positive ints"):
        HFGIConfig(aligner_widths=(16, 32))
    net = HFGINetwork(HFGIConfig(img_channels=1, input_size=16, condition_channels=8, condition_size=8))
    with pytest.raises(ValueError, match=r"HFGI takes images \[N, 1, 16, 16\]"):
        net(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 32, 32))


# --- the official checkpoint layout and the method ---------------------------------------------------------------


def _official_file(tmp_path, reference, state, psp_data, drop=(), add=None, hfgi_parts=True):
    """A file in HFGI's checkpoint layout at the fixtures' small widths: e4e (the pSp/e4e fixture's encoder),
    the reference's generator and HFGI networks, ``latent_avg`` and the trainer's default options."""
    full = {f"encoder.{k}": v for k, v in psp_data["state_dict"].items()}
    full.update({k: v for k, v in state.items() if hfgi_parts or k.startswith("decoder.")})
    full.update(add or {})
    for key in drop:
        del full[key]
    opts = dict(reference["trainer_opts"], stylegan_size=64, start_from_latent_avg=True)
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": full, "opts": opts, "latent_avg": torch.zeros(10, 32)}, path)
    return path


def test_the_official_layout_loads_and_equals_the_reference(tmp_path, reference, state, psp_data, inputs):
    from inv_encoders.hfgi_checkpoints import load_hfgi

    ckpt = load_hfgi(_official_file(tmp_path, reference, state, psp_data))
    assert ckpt.hfgi.config == HFGIConfig(condition_channels=32)  # widths read from the shapes, 256 px from e4e
    assert ckpt.encoder.config.kind == "e4e" and ckpt.opts["encoder_type"] == "Encoder4Editing"
    with torch.no_grad():
        images0 = ckpt.generator.synthesis(reference["codes"], noise_mode="const")
        conditions = ckpt.hfgi(inputs["x256"], images0)
        images = ckpt.generator.synthesis(reference["codes"], noise_mode="const", feature_conditions=conditions)
    _assert_near(images, reference["images_f64"], TOL32)


def test_the_full_size_layout_loads_strictly_on_meta(reference, layouts):
    from inv_encoders.hfgi_checkpoints import hfgi_from_dict

    def meta(shapes, prefix=""):
        dtype = {True: torch.int64, False: torch.float32}
        return {
            prefix + k: torch.empty(s, device="meta", dtype=dtype[k.endswith("num_batches_tracked")])
            for k, s in shapes.items()
        }

    state = {**meta(layouts["e4e_Encoder4Editing"]["keys"], "encoder."), **meta(reference["layouts"])}
    obj = {"state_dict": state, "opts": reference["trainer_opts"], "latent_avg": torch.empty(18, 512, device="meta")}
    ckpt = hfgi_from_dict(obj)
    assert ckpt.hfgi.config == HFGIConfig()  # the official widths, 512 channels at b64.conv0, 256 px
    assert ckpt.generator is None and ckpt.encoder.config.n_styles == 18


def test_bad_official_files_are_named(tmp_path, reference, state, psp_data):
    from inv_encoders.hfgi_checkpoints import load_hfgi
    from sg2_core.checkpoints import CheckpointError, CheckpointKeyError

    path = _official_file(
        tmp_path,
        reference,
        state,
        psp_data,
        drop=["residue.condition_shift3.2.bias"],
        add={"grid_align.extra.weight": torch.zeros(1)},
    )
    with pytest.raises(CheckpointKeyError, match=r"residue\.condition_shift3\.2\.bias[\s\S]*grid_align\.extra\.weight"):
        load_hfgi(path)
    e4e_only = _official_file(tmp_path, reference, state, psp_data, hfgi_parts=False)
    with pytest.raises(CheckpointError, match="an e4e checkpoint, not HFGI's"):
        load_hfgi(e4e_only)


def test_the_method_reads_the_official_file(tmp_path, reference, state, psp_data, inputs):
    from sg2_core import create_method

    path = _official_file(tmp_path, reference, state, psp_data)
    from inv_encoders.hfgi_checkpoints import load_hfgi

    ckpt = load_hfgi(path)
    method = create_method("hfgi", generator=ckpt.generator, weights=path)
    result = method(inputs["x256"])
    assert list(result.feature_conditions) == ["b64.conv0"] and result.extras["aligned"].shape == (1, 3, 256, 256)
    with torch.no_grad():
        codes = ckpt.encoder(inputs["x256"])
        expected = ckpt.hfgi(inputs["x256"], ckpt.generator.synthesis(codes, noise_mode="const"))["b64.conv0"]
    assert torch.equal(result.latents, codes)  # the same e4e on the same input
    # the same kernels on the same data
    assert torch.equal(result.feature_conditions["b64.conv0"].shift, expected.shift)
    # the official edit re-aligns to the edited render; at strength 0 it is the inversion itself
    same = method.realigned_edit(inputs["x256"], result, torch.randn(32), 0.0)
    assert torch.equal(same.feature_conditions["b64.conv0"].scale, expected.scale)
    moved = method.realigned_edit(
        inputs["x256"], result, torch.randn(32, generator=torch.Generator().manual_seed(1)), 3
    )
    assert (moved.feature_conditions["b64.conv0"].scale - expected.scale).abs().max() > 1e-4
