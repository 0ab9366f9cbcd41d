"""Checkpoints written by the reference codebases themselves load, and render what that code rendered.

The files in tests/data (``ada_*``, ``sg3_*``, ``ros_train_16.pt``, ``psp_16.pt``, ``e4e_16.pt``,
``restyle_16.pt``) were made by NVlabs/stylegan2-ada-pytorch, NVlabs/stylegan3, rosinality/stylegan2-pytorch,
eladrich/pixel2style2pixel, omertov/encoder4editing and yuval-alaluf/restyle-encoder (tests/data/README.md says
how), with their outputs for fixed inputs in
``reference_outputs_16.pt``. Values are checked on the exact convolution path (``use_impl("ref")``) and on the
CPU inference path (``use_impl("fast")`` under ``no_grad``: Winograd at 16 px), both to the fixtures' 1e-5
(max-norm relative); NVIDIA's outputs are its float32 ones (``force_fp32=True``), as our networks compute the
fp16 layers in float32.
"""

import warnings
from pathlib import Path

import pytest
import torch

from sg2_core import load_checkpoint, save_checkpoint, use_impl
from sg2_core.checkpoints import CheckpointError, CheckpointWarning
from sg2_kernels.testing import assert_close_rel

DATA = Path(__file__).parent / "data"
VALUES = 1e-5


@pytest.fixture(scope="module")
def refs():
    return torch.load(DATA / "reference_outputs_16.pt", weights_only=True)


@pytest.fixture(params=["exact", "inference"])
def conv_path(request):
    with use_impl("ref" if request.param == "exact" else "fast"), torch.no_grad():
        yield request.param


# file, what its --cfg sets that we must read: mapping layers, w_avg_beta, conv_clamp, D's mbstd group
NVIDIA_FILES = {
    "ada_auto_16.pkl": (2, 0.995, 256, 4),  # stylegan2-ada-pytorch train.py --cfg=auto
    "ada_paper256_16.pkl": (8, 0.995, 256, 8),  # --cfg=paper256 (w_avg NaN, see test_nan_w_avg)
    "ada_stylegan2_16.pkl": (8, 0.995, 256, 4),  # --cfg=stylegan2
    "sg3_stylegan2_16.pkl": (8, 0.998, 256, 4),  # stylegan3 repository, train.py --cfg=stylegan2
}


def _load_quietly(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointWarning)
        return load_checkpoint(path, **kwargs)


@pytest.mark.parametrize("name", NVIDIA_FILES)
def test_nvidia_pickles_read_their_settings(name):
    ckpt = _load_quietly(DATA / name)
    layers, beta, clamp, group = NVIDIA_FILES[name]
    for G in (ckpt.G, ckpt.G_ema):
        assert (G.config.mapping_layers, G.config.w_avg_beta, G.config.conv_clamp) == (layers, beta, clamp)
        assert (G.config.resolution, G.config.z_dim, G.config.w_dim) == (16, 32, 32)
    assert (ckpt.D.config.conv_clamp, ckpt.D.config.mbstd_group_size) == (clamp, group)
    assert ckpt.extra["nvidia_source"] == ("stylegan3" if name.startswith("sg3") else "stylegan2-ada-pytorch")


@pytest.mark.parametrize("name", NVIDIA_FILES)
def test_nvidia_pickles_render_the_reference(name, refs, conv_path):
    ref = refs[name]
    ckpt = _load_quietly(DATA / name)
    G = ckpt.G_ema
    assert_close_rel(G.mapping(ref["z"]), ref["ws"], VALUES, "ws")
    assert_close_rel(G(ref["z"], noise_mode="const"), ref["img_const"], VALUES, "img_const")
    assert_close_rel(G.synthesis(ref["ws"], noise_mode="none"), ref["img_none"], VALUES, "img_none")
    if "img_trunc" in ref:
        assert_close_rel(G(ref["z"], truncation_psi=0.7, noise_mode="const"), ref["img_trunc"], VALUES, "trunc")
    assert_close_rel(ckpt.D(ref["reals"]), ref["d_logits"], VALUES, "d_logits")


def test_conv_clamp_is_active_in_the_fixtures(refs):
    """The fixtures raise one layer's bias so that conv_clamp=256 cuts it: without the clamp, another image."""
    ref = refs["ada_auto_16.pkl"]
    G = _load_quietly(DATA / "ada_auto_16.pkl").G_ema
    G.synthesis.b8.conv0.conv_clamp = None
    with use_impl("ref"), torch.no_grad():
        err = (G(ref["z"], noise_mode="const") - ref["img_const"]).abs().max() / ref["img_const"].abs().max()
    assert err > 1e-2


@pytest.mark.parametrize("name", ["ada_auto_16.pkl", "sg3_stylegan2_16.pkl"])
def test_round_trip_through_the_native_format(name, refs, tmp_path):
    ckpt = _load_quietly(DATA / name)
    out = save_checkpoint(tmp_path / "g.safetensors", ckpt)
    back = load_checkpoint(out)
    for net in ("G", "D", "G_ema"):
        a, b = getattr(ckpt, net), getattr(back, net)
        assert a.config == b.config
        assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    with use_impl("ref"), torch.no_grad():
        assert_close_rel(back.G_ema(refs[name]["z"], noise_mode="const"), refs[name]["img_const"], VALUES, "img")


@pytest.mark.parametrize("name, config", [("sg3_stylegan3-t_16.pkl", "T"), ("sg3_stylegan3-r_16.pkl", "R")])
def test_stylegan3_networks_are_named_and_refused(name, config):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(DATA / name)
    assert str(info.value) == (
        f"{DATA / name}: 'G' is a StyleGAN3 generator (config {config}): StyleGAN3 (config T/R) networks are not "
        "supported, only StyleGAN2 ones (stylegan2-ada-pytorch, or the stylegan3 repository's --cfg=stylegan2)"
    )


def test_conditional_networks_are_refused():
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(DATA / "ada_auto_cond_16.pkl")
    assert str(info.value) == (
        f"{DATA / 'ada_auto_cond_16.pkl'}: 'G': conditional networks are not supported (c_dim=4); only c_dim=0"
    )


def test_nan_w_avg_is_reported_once_and_computed_on_request():
    path = DATA / "ada_paper256_16.pkl"
    with pytest.warns(CheckpointWarning) as record:
        ckpt = load_checkpoint(path)
    messages = [str(w.message) for w in record if issubclass(w.category, CheckpointWarning)]
    assert len(messages) == 1 and "'G' and 'G_ema' is unknown: it is NaN in the file" in messages[0]
    assert "compute_w_avg=True" in messages[0] and "--compute-w-avg" in messages[0]
    assert torch.isnan(ckpt.G_ema.mapping.w_avg).all()  # kept unknown, not zeros
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        computed = load_checkpoint(path, compute_w_avg=500)
    assert torch.equal(computed.G_ema.mapping.w_avg, computed.G_ema.mean_w(500))
    assert computed.extra["w_avg_source"] == "mean_w(500)"


def test_rosinality_train_checkpoint_renders_the_reference(refs, conv_path):
    """rosinality's own train.py (one iteration on the CPU) wrote this file: g, d, g_ema, optimisers, args."""
    ref = refs["ros_train_16.pt"]
    with pytest.warns(CheckpointWarning, match="the file has no latent_avg"):
        ckpt = load_checkpoint(DATA / "ros_train_16.pt")
    assert ref["keys"] == ["ada_aug_p", "args", "d", "d_optim", "g", "g_ema", "g_optim"]
    assert ckpt.extra["args"]["size"] == 16 and set(ckpt.extra["optimizer_states"]) == {"g_optim", "d_optim"}
    assert torch.isnan(ckpt.G_ema.mapping.w_avg).all()
    assert_close_rel(ckpt.G_ema(ref["z"], noise_mode="const"), ref["img_const"], VALUES, "img_const")
    assert_close_rel(ckpt.D(ref["reals"]), ref["d_logits"], VALUES, "d_logits")
    # g (trained one step) and g_ema (its EMA) differ, and were read apart
    assert not torch.equal(ckpt.G.synthesis.b4.conv1.weight, ckpt.G_ema.synthesis.b4.conv1.weight)


def test_rosinality_without_latent_avg_never_writes_a_made_up_one(tmp_path):
    ckpt = _load_quietly(DATA / "ros_train_16.pt")
    # the fixture's widths are no rosinality channel_multiplier's: every save says so
    small_widths = pytest.warns(CheckpointWarning, match="match no rosinality channel_multiplier")
    with (
        small_widths,
        pytest.warns(CheckpointWarning, match="latent_avg is not written: the generator's mapping.w_avg"),
    ):
        save_checkpoint(tmp_path / "out.pt", ckpt)
    assert "latent_avg" not in torch.load(tmp_path / "out.pt", weights_only=True)
    computed = load_checkpoint(DATA / "ros_train_16.pt", compute_w_avg=True)
    assert torch.isfinite(computed.G_ema.mapping.w_avg).all()
    assert torch.equal(computed.G_ema.mapping.w_avg, computed.G_ema.mean_w(10000))
    with pytest.warns(CheckpointWarning, match="match no rosinality channel_multiplier"):
        save_checkpoint(tmp_path / "known.pt", computed)
    assert torch.equal(torch.load(tmp_path / "known.pt", weights_only=True)["latent_avg"], computed.G_ema.mapping.w_avg)


def test_first_load_does_not_import_dynamo(tmp_path):
    """Building networks on the meta device imported torch._dynamo (8-13 s); the loaders must not."""
    import subprocess
    import sys

    code = (
        "import sys, warnings; warnings.simplefilter('ignore'); import sg2_core; "
        f"sg2_core.load_checkpoint({str(DATA / 'ada_auto_16.pkl')!r}); "
        f"sg2_core.load_checkpoint({str(DATA / 'ros_train_16.pt')!r}); print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "name, size_option",
    [("psp_16.pt", "output_size"), ("e4e_16.pt", "stylegan_size"), ("restyle_16.pt", "output_size")],
)
def test_psp_checkpoint_renders_its_decoder(refs, conv_path, name, size_option):
    """pSp's (and e4e's, ReStyle's) own code built the network (models/psp.py) and its coach's ``__get_save_dict``
    wrote the file: ``state_dict`` (encoder. + decoder.), ``opts``, ``latent_avg`` repeated per style."""
    ref = refs[name]
    assert ref["keys"] == ["latent_avg", "opts", "state_dict"]
    ckpt = load_checkpoint(DATA / name)
    assert ckpt.extra["layout"] == "psp" and ckpt.extra["opts"][size_option] == 16
    assert ref["latent_avg"].shape == (6, 32)  # [n_styles, w_dim], equal rows
    assert torch.equal(ckpt.G_ema.mapping.w_avg, ref["latent_avg"][0])
    assert ckpt.extra["w_avg_source"] == "latent_avg"
    G = ckpt.G_ema
    assert_close_rel(G(ref["z"], noise_mode="const"), ref["img_const"], VALUES, "img_const (z)")
    assert_close_rel(G.synthesis(ref["ws"], noise_mode="const"), ref["img_wplus"], VALUES, "img_wplus (W+ codes)")
