"""rosinality .pt checkpoints: reading (all layouts), writing, the key mapping and its refusals."""

import argparse
import warnings
from pathlib import Path

import pytest
import torch

from sg2_core.checkpoints import CheckpointError, CheckpointKeyError, CheckpointWarning, load_checkpoint, rosinality
from sg2_core.checkpoints.base import solve_channels
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.generator import Generator

DATA = Path(__file__).parent / "data"
G32 = GeneratorConfig(z_dim=64, w_dim=64, resolution=32, channel_base=1024, channel_max=96)
D32 = DiscriminatorConfig(resolution=32, channel_base=1024, channel_max=96)


@pytest.fixture(scope="module")
def ros():
    return torch.load(DATA / "g32_rosinality.pt", weights_only=True)


@pytest.fixture(scope="module")
def nv():
    return (
        torch.load(DATA / "g32_nvidia_state.pt", weights_only=True),
        torch.load(DATA / "d32_nvidia_state.pt", weights_only=True),
    )


def assert_state_equal(net, expected):
    got = net.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, equal_nan=True, msg=key)


def test_reads_the_fixture_checkpoint_bitwise(nv):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # latent_avg is present: nothing to warn about
        ckpt = load_checkpoint(DATA / "g32_rosinality.pt")
    assert ckpt.format == "rosinality"
    assert ckpt.G.config == G32 and ckpt.G_ema.config == G32 and ckpt.D.config == D32  # inferred from tensors
    assert_state_equal(ckpt.G_ema, nv[0])  # every tensor, buffers (resample_filter, noise_const, w_avg) included
    assert_state_equal(ckpt.G, nv[0])
    assert_state_equal(ckpt.D, nv[1])
    # the file's g and g_ema are the same tensors; ours must not share memory
    assert ckpt.G.synthesis.b4.const.data_ptr() != ckpt.G_ema.synthesis.b4.const.data_ptr()
    assert not ckpt.G_ema.training and ckpt.extra["w_avg_source"] == "latent_avg"


def test_loaded_generator_reproduces_the_reference_image(io32):
    G = load_checkpoint(DATA / "g32_rosinality.pt").G_ema
    with torch.no_grad():
        img = G(io32["z"], truncation_psi=0.7, noise_mode="const")
    assert (img - io32["img_const_trunc"]).abs().max() <= 1e-5 * io32["img_const_trunc"].abs().max()


def test_export_reproduces_the_fixture_bitwise(tmp_path, g32, d32, ros):
    out = tmp_path / "exported.pt"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rosinality.save(out, G=g32, D=d32, G_ema=g32)
    # the fixture's channel table is not one of rosinality's stock ones: say so
    assert any("channel_multiplier" in str(w.message) for w in caught)
    written = torch.load(out, weights_only=True)
    assert set(written) == {"g_ema", "g", "d", "latent_avg"}
    assert torch.equal(written["latent_avg"], ros["latent_avg"])
    for part in ("g_ema", "g", "d"):
        assert set(written[part]) == set(ros[part]), part  # kernel buffers and noises recreated, nothing extra
        for key, value in ros[part].items():
            assert written[part][key].shape == value.shape and torch.equal(written[part][key], value), (part, key)
    # and back: NVIDIA -> rosinality -> ours is the identity
    back = load_checkpoint(out)
    assert_state_equal(back.G_ema, g32.state_dict())
    assert_state_equal(back.D, d32.state_dict())


def test_kernel_buffer_gains(io32, nv):
    """rosinality's kernels are the normalised [1,3,3,1] filter times the fixture's gains (4 in G, 1 in D)."""
    exported = {**rosinality.generator_to_rosinality(nv[0], G32), **rosinality.discriminator_to_rosinality(nv[1], D32)}
    base = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64
    gains = io32["rosinality_kernel_buffer_gain"]
    assert {k for k in exported if k.endswith(".kernel")} == set(gains)
    for key, gain in gains.items():
        assert torch.equal(exported[key], base * gain), key


def test_training_checkpoint_with_args_and_optimizers(tmp_path, ros):
    """train.py's layout: args is an argparse.Namespace (weights_only alone refuses it), no latent_avg."""
    path = tmp_path / "050000.pt"
    g_optim = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))]).state_dict()
    torch.save(
        {
            "g": ros["g"],
            "d": ros["d"],
            "g_ema": ros["g_ema"],
            "g_optim": g_optim,
            "d_optim": g_optim,
            "args": argparse.Namespace(size=32, batch=16, ckpt=None, lr=0.002),
            "ada_aug_p": 0.25,
        },
        path,
    )
    with pytest.warns(CheckpointWarning, match="no latent_avg"):
        ckpt = load_checkpoint(path)
    assert ckpt.extra["args"] == {"size": 32, "batch": 16, "ckpt": None, "lr": 0.002}
    assert ckpt.extra["ada_aug_p"] == 0.25 and set(ckpt.extra["optimizer_states"]) == {"g_optim", "d_optim"}
    assert torch.isnan(ckpt.G_ema.mapping.w_avg).all() and ckpt.extra["w_avg_source"] == "unknown"  # not zeros

    computed = load_checkpoint(path, compute_w_avg=512)
    expected = computed.G_ema.mean_w(512)
    assert torch.equal(computed.G_ema.mapping.w_avg, expected) and computed.extra["w_avg_source"] == "mean_w(512)"
    # the estimate is close to the fixture's own 4096-sample mean
    assert (expected - ros["latent_avg"]).abs().max() < 0.25 * ros["latent_avg"].abs().max()


def test_psp_style_checkpoint(tmp_path, ros, nv):
    state = {f"decoder.{k}": v for k, v in ros["g_ema"].items()}
    state["encoder.body.0.weight"] = torch.zeros(3)
    path = tmp_path / "psp_ffhq_encode.pt"
    torch.save(
        {
            "state_dict": state,
            "opts": {"encoder_type": "GradualStyleEncoder", "output_size": 32},
            "latent_avg": ros["latent_avg"].repeat(8, 1),
        },
        path,
    )
    ckpt = load_checkpoint(path)
    assert ckpt.G is None and ckpt.D is None and ckpt.extra["layout"] == "psp"
    assert ckpt.extra["opts"]["encoder_type"] == "GradualStyleEncoder"
    assert_state_equal(ckpt.G_ema, nv[0])


def test_bare_generator_state_dict(tmp_path, ros, nv):
    path = tmp_path / "g_ema_only.pt"
    torch.save(ros["g_ema"], path)
    with pytest.warns(CheckpointWarning, match="no latent_avg"):
        ckpt = load_checkpoint(path)
    assert torch.isnan(ckpt.G_ema.mapping.w_avg).all()  # unknown, not a made-up zero
    assert_state_equal(ckpt.G_ema, dict(nv[0], **{"mapping.w_avg": ckpt.G_ema.mapping.w_avg}))


def test_mismatched_keys_are_all_listed(ros):
    bad = dict(ros["g_ema"])
    del bad["convs.3.activate.bias"]
    bad["foo.bar"] = torch.zeros(3)
    bad["style.3.weight"] = torch.zeros(64, 32)
    with pytest.raises(CheckpointKeyError) as info:
        rosinality.generator_from_rosinality(bad, path="ckpt.pt")
    message = str(info.value)
    assert message.startswith("ckpt.pt: generator (rosinality names) does not match")
    assert (
        "does not match its architecture: 1 missing (convs.3.activate.bias [64]), 1 unexpected (foo.bar [3]), "
        "1 mis-shaped (style.3.weight expected [64, 64], got [64, 32]) (architecture inferred or given: "
        "GeneratorConfig("
    ) in message and "\n" not in message
    assert info.value.missing == [("convs.3.activate.bias", (64,))]
    assert isinstance(info.value, ValueError)


def test_missing_noise_buffers_are_filled_with_a_warning(ros):
    partial = {k: v for k, v in ros["g_ema"].items() if not k.startswith("noises.")}
    with pytest.warns(CheckpointWarning, match="7 noise buffer"):
        G = rosinality.generator_from_rosinality(partial)
    assert G.synthesis.b32.conv1.noise_const.std() > 0.5


def test_inconsistent_channel_table_is_refused(ros):
    bad = dict(ros["g_ema"])
    bad["convs.2.conv.weight"] = torch.zeros(1, 80, 96, 3, 3)  # 16 px would have 80 channels
    with pytest.raises(
        CheckpointError,
        match=r"channel counts per resolution \{4: 96, 8: 96, 16: 80, 32: 32\} "
        r"cannot be written as min\(channel_base // res, channel_max\)",
    ):
        rosinality.generator_from_rosinality(bad)


def test_wrong_blur_kernel_is_refused(ros):
    bad = dict(ros["g_ema"], **{"convs.0.conv.blur.kernel": ros["g_ema"]["convs.0.conv.blur.kernel"] / 4})
    with pytest.raises(
        CheckpointError,
        match=r"generator: the blur kernels \['convs.0.conv.blur.kernel'\] differ from 4 x the normalised "
        r"resample_filter=\[1, 3, 3, 1\]; pass a config with the matching resample_filter",
    ):
        rosinality.generator_from_rosinality(bad)


def test_config_overrides_and_explicit_configs(ros):
    G = rosinality.generator_from_rosinality(ros["g_ema"], {"mapping_lr_multiplier": 0.1})
    assert G.config == G32.replace(mapping_lr_multiplier=0.1)
    wrong = GeneratorConfig(z_dim=64, w_dim=64, resolution=32, channel_base=2048, channel_max=96)
    with pytest.raises(CheckpointKeyError, match="mis-shaped"):
        rosinality.generator_from_rosinality(ros["g_ema"], wrong)


@pytest.mark.parametrize(
    "table, expected",
    [
        ({4: 96, 8: 96, 16: 64, 32: 32}, (1024, 96)),  # the fixture
        ({r: min(32768 // r, 512) for r in [4, 8, 16, 32, 64, 128, 256, 512, 1024]}, (32768, 512)),  # config F
        ({4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}, (32768, 512)),  # rosinality 256, mult 2
        ({4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}, (16384, 512)),  # NVIDIA paper256
        ({4: 256, 8: 128, 16: 64}, (1024, 512)),  # nothing clamped: the default channel_max fits
    ],
)
def test_solve_channels(table, expected):
    assert solve_channels(table) == expected


def test_export_refuses_what_rosinality_cannot_hold():
    G = Generator(G32.replace(z_dim=32))
    with pytest.raises(CheckpointError, match="z_dim .32. != w_dim .64."):
        rosinality.save("unused.pt", G_ema=G)


def test_noise_free_generator_exports_as_zero_noise(tmp_path, g32, io32, ros):
    quiet = Generator(G32.replace(use_noise=False)).eval()
    quiet.load_state_dict({k: v for k, v in g32.state_dict().items() if "noise" not in k})
    with pytest.warns(CheckpointWarning):
        rosinality.save(tmp_path / "quiet.pt", G_ema=quiet)
    written = torch.load(tmp_path / "quiet.pt", weights_only=True)["g_ema"]
    assert set(written) == set(ros["g_ema"])  # rosinality always has noise layers: they are zero here
    assert not written["convs.3.noise.weight"].any() and not written["noises.noise_6"].any()
    back = load_checkpoint(tmp_path / "quiet.pt").G_ema
    with torch.no_grad():
        assert torch.equal(back.synthesis(io32["ws"], noise_mode="random"), quiet.synthesis(io32["ws"]))
