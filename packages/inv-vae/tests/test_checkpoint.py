"""inv_vae.load reads the official AgileGAN encoder layout (the full-size listing strictly, on the meta device), a
file assembled from the fixture weights in that layout reproduces the fixture's mu, and another method's file or
a damaged one gets one error naming the problem."""

import pytest
import torch

from inv_vae import VAEStyleEncoder, load
from inv_vae.checkpoints import from_dict
from sg2_core import Generator, GeneratorConfig, save_networks
from sg2_core.checkpoints import CheckpointError, CheckpointKeyError
from sg2_core.checkpoints.rosinality import generator_to_rosinality

OPTS = {"input_nc": 3, "checkpoint_path": "pretrain/encoder.pt", "device": "cuda"}  # as test.py sees them


def meta_state(keys, prefix=""):
    return {
        prefix + k: torch.empty(
            shape, device="meta", dtype=torch.int64 if k.endswith("num_batches_tracked") else torch.float32
        )
        for k, shape in keys.items()
    }


@pytest.mark.parametrize("flat", [False, True], ids=["state_dict", "flat"])
def test_full_size_official_layout_loads_strictly_on_meta(official_layout, flat):
    layout = official_layout["layout"]
    state = meta_state(layout["keys"], "encoder.")
    obj = state if flat else {"state_dict": state, "opts": OPTS, "latent_avg": torch.empty(18, 512, device="meta")}
    ckpt = from_dict(obj)
    cfg = ckpt.encoder.config
    assert (cfg.n_styles, cfg.z_dim, cfg.in_channels, cfg.input_size, cfg.widths, cfg.num_layers, cfg.mode) == (
        18,
        512,
        3,
        256,
        (64, 128, 256, 512),
        50,
        "ir_se",
    )
    assert ckpt.generator is None and ckpt.format == "agilegan"
    assert sorted(ckpt.encoder.state_dict()) == sorted(layout["keys"])
    assert sum(p.numel() for p in ckpt.encoder.parameters()) == layout["n_parameters"] == 267_662_016
    assert all(p.is_meta for p in ckpt.encoder.parameters())


@pytest.fixture(scope="module")
def g64():
    """The decoder of the assembled files: 64 px, so 10 W+ entries, z of width 32, as in the fixture."""
    torch.manual_seed(1)
    config = GeneratorConfig(resolution=64, z_dim=32, w_dim=32, channel_base=512, channel_max=32, mapping_layers=2)
    return Generator(config).eval().requires_grad_(False)


def official_file(tmp_path, encoder_state, g64, name="encoder.pt", **top):
    state = {f"encoder.{k}": v for k, v in encoder_state.items()}
    state.update({f"decoder.{k}": v for k, v in generator_to_rosinality(g64.state_dict(), g64.config).items()})
    path = tmp_path / name
    torch.save({"state_dict": state, "opts": OPTS, **top}, path)
    return path


def test_an_official_file_reproduces_the_fixture(tmp_path, agile_data, g64):
    latent_avg = torch.randn(32).expand(10, 32).clone()  # pSp's layout: the W average repeated per style
    path = official_file(tmp_path, agile_data["state_dict"], g64, latent_avg=latent_avg)
    ckpt = load(path)
    assert ckpt.encoder.config.n_styles == 10 and torch.equal(ckpt.latent_avg, latent_avg)
    assert torch.equal(ckpt.generator.mapping.w_avg, latent_avg[0])
    with torch.no_grad():
        mu, logvar = ckpt.encoder.posterior(agile_data["x"])
    torch.testing.assert_close(mu, agile_data["mu"][:1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logvar, agile_data["logvar"][:1], rtol=1e-4, atol=1e-4)
    # the decoder came back as the generator whose mapping turns each z into a w
    z = torch.randn(2, 32)
    torch.testing.assert_close(ckpt.generator.mapping(z), g64.mapping(z), rtol=0, atol=1e-6)
    assert load(path, generator=g64).generator is g64


def test_missing_and_unexpected_keys_are_listed(tmp_path, agile_data, g64):
    state = dict(agile_data["state_dict"])
    del state["fc_var.bias"]
    state["fc_extra.weight"] = torch.zeros(3)
    with pytest.raises(
        CheckpointKeyError,
        match=r"the AgileGAN encoder does not match its architecture: 1 missing "
        r"\(fc_var.bias \[32\]\), 1 unexpected \(fc_extra.weight \[3\]\)",
    ):
        load(official_file(tmp_path, state, g64))


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("psp", r"this is a pSp/e4e encoder checkpoint \(no encoder.fc_mu / encoder.fc_var"),
        ("restyle", r"this is a ReStyle encoder checkpoint"),
        ("hyper", r"this is a HyperInverter checkpoint \('hypernet.\*' keys\), not an AgileGAN encoder"),
        ("rosinality", r"this is a rosinality generator checkpoint \('g_ema'\), not an AgileGAN encoder"),
        ("native-generator", r"this sg2-toolkit file holds \{'G': 'Generator'\}, not an AgileGAN encoder"),
        ("nothing", r"no 'encoder.\*' keys"),
    ],
)
def test_another_methods_checkpoint_is_named(tmp_path, agile_data, g64, case, pattern):
    enc = {f"encoder.{k}": v for k, v in agile_data["state_dict"].items() if not k.startswith("fc_")}
    path = tmp_path / "other.pt"
    if case == "psp":
        torch.save({"state_dict": enc, "opts": {"encoder_type": "GradualStyleEncoder"}}, path)
    elif case == "restyle":
        torch.save({"state_dict": enc, "opts": {"n_iters_per_batch": 5}}, path)
    elif case == "hyper":
        torch.save({"state_dict": {"hypernet.x": torch.zeros(1), "w_encoder.y": torch.zeros(1)}, "opts": {}}, path)
    elif case == "rosinality":
        torch.save({"g_ema": generator_to_rosinality(g64.state_dict(), g64.config)}, path)
    elif case == "native-generator":
        path = save_networks(tmp_path / "g.safetensors", {"G": g64})
    else:
        torch.save({"state_dict": {"decoder.style.1.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match=pattern):
        load(path)


class Payload:
    pass


def test_a_file_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "opts": Payload()}, path)
    with pytest.raises(CheckpointError, match="refusing to load: the file references the global"):
        load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.pt")


def test_a_generator_of_another_size_is_refused(tmp_path, agile_data, g64):
    path = official_file(tmp_path, agile_data["state_dict"], g64)
    small = Generator(
        GeneratorConfig(resolution=32, z_dim=32, w_dim=32, channel_base=256, channel_max=32, mapping_layers=2)
    )
    with pytest.raises(CheckpointError, match="the encoder predicts 10 z of width 32 but the generator takes 8 W"):
        load(path, generator=small)


def test_opts_input_nc_must_agree_with_the_tensors(tmp_path, agile_data, g64):
    path = official_file(tmp_path, agile_data["state_dict"], g64)
    obj = torch.load(path, weights_only=True)
    obj["opts"]["input_nc"] = 1
    with pytest.raises(CheckpointError, match="opts.input_nc is 1 but the encoder's input layer takes 3 channels"):
        from_dict(obj)


def test_a_native_file_round_trips_with_its_generator(tmp_path, agile_data, g64):
    net = VAEStyleEncoder(from_dict({"encoder." + k: v for k, v in agile_data["state_dict"].items()}).encoder.config)
    net.load_state_dict(agile_data["state_dict"])
    path = save_networks(tmp_path / "agile.safetensors", {"encoder": net, "generator": g64})
    ckpt = load(path)
    assert ckpt.format == "native" and isinstance(ckpt.generator, Generator)
    with torch.no_grad():
        torch.testing.assert_close(
            ckpt.encoder.posterior(agile_data["x"])[0], agile_data["mu"][:1], rtol=1e-4, atol=1e-4
        )
