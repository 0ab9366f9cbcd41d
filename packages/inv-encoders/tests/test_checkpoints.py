"""inv_encoders.load reads official pSp / e4e / ReStyle files: the full-size layouts strictly (on the meta
device), a file assembled from the fixture weights in the official layout reproduces the fixture codes, and bad
files get one error naming the problem."""

import pytest
import torch

import inv_encoders
from inv_encoders import load
from sg2_core import Generator, GeneratorConfig
from sg2_core.checkpoints import CheckpointError, CheckpointKeyError
from sg2_core.checkpoints.rosinality import generator_to_rosinality

# (layout, opts as the official training code saves them, our kind)
OFFICIAL = {
    "psp_GradualStyleEncoder": (
        {
            "encoder_type": "GradualStyleEncoder",
            "input_nc": 3,
            "output_size": 1024,
            "start_from_latent_avg": True,
            "learn_in_w": False,
        },
        "psp",
    ),
    "e4e_Encoder4Editing": (
        {"encoder_type": "Encoder4Editing", "stylegan_size": 1024, "start_from_latent_avg": True},
        "e4e",
    ),
    "restyle_BackboneEncoder_6ch": (
        {
            "encoder_type": "BackboneEncoder",
            "input_nc": 6,
            "output_size": 1024,
            "n_iters_per_batch": 5,
            "start_from_latent_avg": True,
        },
        "restyle-psp",
    ),
    "restyle_ProgressiveBackboneEncoder_6ch": (
        {
            "encoder_type": "ProgressiveBackboneEncoder",
            "input_nc": 6,
            "output_size": 1024,
            "n_iters_per_batch": 5,
            "start_from_latent_avg": True,
        },
        "restyle-e4e",
    ),
    "psp_BackboneEncoderUsingLastLayerIntoW": (
        {
            "encoder_type": "BackboneEncoderUsingLastLayerIntoW",
            "input_nc": 3,
            "output_size": 1024,
            "start_from_latent_avg": True,
        },
        "psp-w",
    ),
    # the same layout written by e4e's training code (its options have the latent discriminator's weight)
    "e4e_BackboneEncoderUsingLastLayerIntoW": (
        {
            "encoder_type": "BackboneEncoderUsingLastLayerIntoW",
            "stylegan_size": 1024,
            "start_from_latent_avg": True,
            "w_discriminator_lambda": 0.1,
        },
        "e4e-w",
    ),
}
LAYOUT = {"e4e_BackboneEncoderUsingLastLayerIntoW": "psp_BackboneEncoderUsingLastLayerIntoW"}


def meta_state(layout, prefix=""):
    return {
        prefix + k: torch.empty(
            shape, device="meta", dtype=torch.int64 if k.endswith("num_batches_tracked") else torch.float32
        )
        for k, shape in layout["keys"].items()
    }


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_full_size_official_layouts_load_strictly_on_meta(name, layouts):
    opts, kind = OFFICIAL[name]
    name = LAYOUT.get(name, name)
    state = meta_state(layouts[name], "encoder.")
    extra = {}
    if kind == "e4e":
        extra["discriminator_state_dict"] = meta_state(layouts["e4e_LatentCodesDiscriminator"])
    obj = {"state_dict": state, "opts": opts, "latent_avg": torch.empty(18, 512, device="meta"), **extra}
    ckpt = inv_encoders.checkpoints.from_dict(obj, kind=kind)
    assert ckpt.kind == kind and ckpt.generator is None
    cfg = ckpt.encoder.config
    assert (cfg.n_styles, cfg.style_dim, cfg.input_size, cfg.widths, cfg.in_channels) == (
        18,
        512,
        256,
        (64, 128, 256, 512),
        6 if kind.startswith("restyle") else 3,
    )
    assert cfg.pyramid == (kind in ("psp", "e4e"))
    assert sum(p.numel() for p in ckpt.encoder.encoder.parameters()) == layouts[name]["n_parameters"]
    assert sorted(ckpt.encoder.encoder.state_dict()) == sorted(layouts[name]["keys"])
    if kind == "e4e":
        n = sum(p.numel() for p in ckpt.discriminator.parameters())
        assert n == layouts["e4e_LatentCodesDiscriminator"]["n_parameters"] == 788_481


@pytest.fixture(scope="module")
def g64():
    """The decoder of the assembled files: 64 px, so 10 W+ entries of width 32, as in the fixtures."""
    torch.manual_seed(1)
    config = GeneratorConfig(resolution=64, z_dim=32, w_dim=32, channel_base=512, channel_max=32, mapping_layers=2)
    return Generator(config).eval().requires_grad_(False)


def official_file(tmp_path, encoder_state, opts, g64, latent_avg, extra_state=None, name="ckpt.pt"):
    state = {f"encoder.{k}": v for k, v in encoder_state.items()}
    state.update({f"decoder.{k}": v for k, v in generator_to_rosinality(g64.state_dict(), g64.config).items()})
    state.update(extra_state or {})
    obj = {"state_dict": state, "opts": opts}
    if latent_avg is not None:
        obj["latent_avg"] = latent_avg
    path = tmp_path / name
    torch.save(obj, path)
    return path


CODES = dict(rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("avg_shape", [(10, 32), (1, 32), (32,)])
def test_an_assembled_psp_file_reproduces_the_fixture_codes(avg_shape, tmp_path, psp_data, inputs, g64):
    avg = torch.randn(32)
    path = official_file(
        tmp_path,
        psp_data["state_dict"],
        {"encoder_type": "GradualStyleEncoder", "input_nc": 3, "output_size": 64, "start_from_latent_avg": True},
        g64,
        avg.expand(avg_shape).clone(),
    )
    ckpt = load(path)
    assert ckpt.kind == "psp" and ckpt.encoder.config.input_size == 256
    with torch.no_grad():
        codes = ckpt.encoder(inputs["x256"])
    torch.testing.assert_close(codes - avg, psp_data["codes"], **CODES)
    # the decoder went through sg2-core's rosinality reader: the same generator
    ws = g64.mapping(torch.randn(2, 32, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        torch.testing.assert_close(
            ckpt.generator.synthesis(ws, noise_mode="const"), g64.synthesis(ws, noise_mode="const"), rtol=0, atol=1e-5
        )
    torch.testing.assert_close(ckpt.generator.mapping.w_avg, avg)


def test_an_assembled_e4e_file_reproduces_the_fixture_stages(tmp_path, psp_data, inputs, g64, disc_data):
    avg = torch.randn(32).expand(10, 32).clone()  # the official files repeat one average
    path = official_file(
        tmp_path,
        psp_data["state_dict"],
        {"encoder_type": "Encoder4Editing", "stylegan_size": 64, "start_from_latent_avg": True},
        g64,
        avg,
        {f"discriminator.{k}": v for k, v in disc_data["state_dict"].items()},
    )
    ckpt = load(path, generator=g64, kind="e4e")
    assert ckpt.generator is g64
    with torch.no_grad():
        for stage in (0, 3, 8, 18):
            torch.testing.assert_close(
                ckpt.encoder(inputs["x256"], stage=stage) - avg, psp_data[f"w_stage{stage}"], **CODES
            )
        torch.testing.assert_close(ckpt.discriminator(inputs["disc_codes"]), disc_data["logits"], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "encoder_type,kind", [("BackboneEncoder", "restyle-psp"), ("ProgressiveBackboneEncoder", "restyle-e4e")]
)
def test_an_assembled_restyle_file_reproduces_the_fixture_codes(
    encoder_type, kind, tmp_path, restyle_data, inputs, g64
):
    avg = torch.randn(32).expand(10, 32).clone()  # the official files repeat one average
    path = official_file(
        tmp_path,
        restyle_data["state_dict"],
        {"encoder_type": encoder_type, "input_nc": 6, "output_size": 64, "n_iters_per_batch": 3},
        g64,
        avg,
    )
    ckpt = load(path)
    assert (ckpt.kind, ckpt.encoder.config.n_iters, ckpt.encoder.config.pyramid) == (kind, 3, False)
    expected = restyle_data["codes" if kind == "restyle-psp" else "progressive_w_stage18"]
    with torch.no_grad():
        codes = ckpt.encoder(torch.cat([inputs["x256"], inputs["y256"]], dim=1))
    torch.testing.assert_close(codes - avg, expected, **CODES)


def test_another_methods_file_is_refused_naming_both(tmp_path, psp_data, g64):
    e4e = official_file(
        tmp_path,
        psp_data["state_dict"],
        {"encoder_type": "Encoder4Editing", "stylegan_size": 64},
        g64,
        torch.zeros(10, 32),
        name="e4e.pt",
    )
    with pytest.raises(
        CheckpointError,
        match=r"e4e\.pt: this is a e4e checkpoint \(opts.encoder_type "
        r"'Encoder4Editing'\), not a pSp one; use the 'e4e' method",
    ):
        load(e4e, kind="psp")
    psp = official_file(
        tmp_path,
        psp_data["state_dict"],
        {"encoder_type": "GradualStyleEncoder", "output_size": 64},
        g64,
        torch.zeros(10, 32),
        name="psp.pt",
    )
    with pytest.raises(CheckpointError, match="this is a pSp checkpoint .* not a e4e one"):
        load(psp, kind="e4e")


def test_the_two_w_encoders_share_a_layout_and_the_caller_may_name_either(layouts):
    state = meta_state(layouts["psp_BackboneEncoderUsingLastLayerIntoW"], "encoder.")
    obj = {
        "state_dict": state,
        "opts": {"encoder_type": "BackboneEncoderUsingLastLayerIntoW", "output_size": 1024},
        "latent_avg": torch.empty(18, 512, device="meta"),
    }
    assert inv_encoders.checkpoints.from_dict(obj).kind == "psp-w"  # pSp's options
    assert inv_encoders.checkpoints.from_dict(obj, kind="e4e-w").kind == "e4e-w"
    with pytest.raises(CheckpointError, match="this is a pSp W-encoder checkpoint .* not a pSp one"):
        inv_encoders.checkpoints.from_dict(obj, kind="psp")


def test_a_truncated_file_is_one_error(tmp_path, psp_data, g64):
    path = official_file(tmp_path, psp_data["state_dict"], {"output_size": 64}, g64, torch.zeros(32))
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(
        CheckpointError,
        match=r"ckpt\.pt: cannot read the file as a torch checkpoint "
        r"\(corrupt or truncated\?\)",
    ):
        load(path)


def test_a_missing_key_is_listed(tmp_path, psp_data, g64):
    state = dict(psp_data["state_dict"])
    del state["styles.4.linear.weight"]
    path = official_file(tmp_path, state, {"output_size": 64}, g64, torch.zeros(32))
    with pytest.raises(
        CheckpointKeyError,
        match=r"the pSp encoder does not match its architecture: 1 missing "
        r"\(styles\.4\.linear\.weight \[32, 32\]\)",
    ) as info:
        load(path)
    assert info.value.missing == [("styles.4.linear.weight", (32, 32))]


def test_other_bad_files(tmp_path, psp_data, g64):
    unsupported = official_file(
        tmp_path,
        psp_data["state_dict"],
        {"encoder_type": "MyStyleEncoder", "output_size": 64},
        g64,
        torch.zeros(32),
    )
    with pytest.raises(CheckpointError, match="encoder_type 'MyStyleEncoder' is not supported"):
        load(unsupported)
    wrong_size = official_file(tmp_path, psp_data["state_dict"], {"output_size": 1024}, g64, torch.zeros(32))
    with pytest.raises(CheckpointKeyError, match=r"112 missing \(styles\.10\.convs\.0\.weight"):  # 18 styles, not 10
        load(wrong_size, generator=g64)
    no_avg = official_file(
        tmp_path, psp_data["state_dict"], {"output_size": 64, "start_from_latent_avg": True}, g64, None
    )
    assert torch.equal(load(no_avg, generator=g64).encoder.latent_avg[0], g64.mapping.w_avg)  # G's average instead
    with (
        pytest.warns(Warning, match="w_avg of 'G_ema' is unknown"),
        pytest.raises(
            CheckpointError, match="the file has no latent_avg, which pSp starts from, and no generator w_avg"
        ),
    ):
        load(no_avg)
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(3)}, plain)
    with pytest.raises(CheckpointError, match=r"not a pSp/e4e/ReStyle checkpoint: expected a dict with 'state_dict'"):
        load(plain)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.pt")
