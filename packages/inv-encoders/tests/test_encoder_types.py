"""Every ``encoder_type`` that the official pSp, e4e, ReStyle and HyperInverter ``set_encoder`` functions accept
loads with ``inv_encoders.load``: the full-size layouts their code builds (``data/encoder_types.json.gz``, made by
running their ``set_encoder``) load strictly on the meta device with their trainers' default options, and the
networks sg2-core's fixtures do not cover (ResNet34 trunks, pSp's W+ linear head, e4e's SingleStyleCodeEncoder)
give the reference code's outputs (``data/reference_variants.pt``: their classes run at reduced widths). See
``data/README.md`` for how both files were made."""

import gzip
import json
from pathlib import Path

import pytest
import torch

import inv_encoders
from sg2_core import Generator, GeneratorConfig, create_method
from sg2_core.checkpoints import CheckpointError, CheckpointKeyError

DATA = Path(__file__).resolve().parent / "data"
with gzip.open(DATA / "encoder_types.json.gz", "rt", encoding="utf-8") as _f:
    TYPES = json.load(_f)
RUNS = torch.load(DATA / "reference_variants.pt", weights_only=True)

# the trainer whose options a file of each set_encoder carries (HyperInverter's copies of e4e and ReStyle: theirs)
TRAINER = {
    "models.e4e.psp.pSp.set_encoder": "e4e:options.train_options",
    "models.restyle.psp.pSp.set_encoder": "restyle:options.train_options",
    "models.restyle.e4e.e4e.set_encoder": "restyle:options.e4e_train_options",
}
# (framework, encoder_type) -> kind, trunk mode, pyramid, head
IR, RESNET = "ir_se", "resnet"
EXPECTED = {
    ("psp", "GradualStyleEncoder"): ("psp", IR, True, "styles"),
    ("psp", "BackboneEncoderUsingLastLayerIntoW"): ("psp-w", IR, False, "styles"),
    ("psp", "BackboneEncoderUsingLastLayerIntoWPlus"): ("psp", IR, False, "linear"),
    ("psp", "ResNetEncoderUsingLastLayerIntoW"): ("psp-w", RESNET, False, "styles"),
    ("e4e", "GradualStyleEncoder"): ("psp", IR, True, "styles"),
    ("e4e", "Encoder4Editing"): ("e4e", IR, True, "styles"),
    ("e4e", "SingleStyleCodeEncoder"): ("e4e-w", IR, False, "styles"),
    ("restyle", "GradualStyleEncoder"): ("restyle-psp", IR, True, "styles"),
    ("restyle", "ResNetGradualStyleEncoder"): ("restyle-psp", RESNET, True, "styles"),
    ("restyle", "BackboneEncoder"): ("restyle-psp", IR, False, "styles"),
    ("restyle", "ResNetBackboneEncoder"): ("restyle-psp", RESNET, False, "styles"),
    ("restyle", "ProgressiveBackboneEncoder"): ("restyle-e4e", IR, False, "styles"),
    ("restyle", "ResNetProgressiveBackboneEncoder"): ("restyle-e4e", RESNET, False, "styles"),
}


def framework_of(entry) -> str:
    if entry["repo"] != "hyper":
        return entry["repo"]
    return "e4e" if ".e4e.psp." in entry["set_encoder"] else "restyle" if ".restyle." in entry["set_encoder"] else "psp"


def meta(keys: dict, prefix: str = "encoder.") -> dict:
    return {
        prefix + k: torch.empty(s, device="meta", dtype=torch.int64 if k.endswith("num_batches_tracked") else None)
        for k, s in keys.items()
    }


def opts_for(entry) -> dict:
    """The options the entry's trainer saves (``vars`` of its parsed TrainOptions), for this encoder_type."""
    trainer = entry["trainer"] or TRAINER[entry["set_encoder"]]
    return dict(TYPES["trainer_opts"][trainer], encoder_type=entry["encoder_type"], device="cuda:0")


def test_the_table_has_every_type_each_set_encoder_accepts():
    found = {(framework_of(e), e["encoder_type"]) for e in TYPES["types"]}
    assert found == set(EXPECTED)
    assert len(TYPES["types"]) == 23  # 3 pSp, 3 e4e, 6 ReStyle, HyperInverter's 3 + its copies' 2 + 6


@pytest.mark.parametrize(
    "entry", TYPES["types"], ids=[f"{e['set_encoder'].rsplit('.', 2)[0]}:{e['encoder_type']}" for e in TYPES["types"]]
)
def test_every_official_encoder_type_loads_strictly_at_full_size(entry):
    kind, mode, pyramid, head = EXPECTED[(framework_of(entry), entry["encoder_type"])]
    obj = {
        "state_dict": meta(entry["keys"]),
        "opts": opts_for(entry),
        "latent_avg": torch.empty(18, 512, device="meta"),
    }
    ckpt = inv_encoders.checkpoints.from_dict(obj)
    cfg = ckpt.encoder.config
    assert (ckpt.kind, cfg.mode, cfg.pyramid, cfg.head) == (kind, mode, pyramid, head)
    assert (cfg.n_styles, cfg.style_dim, cfg.in_channels, cfg.widths) == (
        18,
        512,
        entry["input_nc"],
        (64, 128, 256, 512),
    )
    assert cfg.num_layers == (34 if mode == RESNET else 50)
    state = ckpt.encoder.encoder.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == entry["keys"]
    assert sum(p.numel() for p in ckpt.encoder.encoder.parameters()) == entry["n_parameters"]
    assert inv_encoders.checkpoints.from_dict(obj, kind=kind).kind == kind  # and the method's own kind= accepts it


def reference_file(run, encoder_type, formula):
    keys = {k: tuple(s) for k, s in run["keys"].items()}
    state = {f"encoder.{k}": v for k, v in formula(keys).items()}
    opts = dict(run["opts"], encoder_type=encoder_type)
    return {"state_dict": state, "opts": opts, "latent_avg": torch.zeros(10, 32)}


CASES = [(name, key) for name, run in RUNS.items() for key in run["outputs"] if not key.endswith("_f64")]
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float64: dict(rtol=0, atol=1e-10)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name,output", CASES, ids=[o for _, o in CASES])
def test_the_reference_codes_of_the_new_networks(name, output, dtype, inputs, formula):
    run = RUNS[name]
    encoder_type = output.removesuffix("_stage0")
    ckpt = inv_encoders.checkpoints.from_dict(reference_file(run, encoder_type, formula))
    net = ckpt.encoder.to(dtype)
    x = inputs["x256"] if net.config.in_channels == 3 else torch.cat([inputs["x256"], inputs["y256"]], dim=1)
    with torch.no_grad():
        codes = net(x.to(dtype), stage=0 if output.endswith("_stage0") else None)
    expected = run["outputs"][output + ("_f64" if dtype == torch.float64 else "")].to(dtype)
    if encoder_type == "SingleStyleCodeEncoder":  # e4e repeats its one w over the styles; ours returns the w
        assert torch.equal(expected, expected[:, :1].expand_as(expected))
        expected = expected[:, 0]
    assert codes.shape == expected.shape
    torch.testing.assert_close(codes, expected, **TOL[dtype])


def test_an_e4e_trainers_pyramid_encoder_takes_its_size_from_stylegan_size(psp_data):
    opts = dict(
        TYPES["trainer_opts"]["e4e:options.train_options"], encoder_type="GradualStyleEncoder", stylegan_size=64
    )
    obj = {"state_dict": {f"encoder.{k}": v for k, v in psp_data["state_dict"].items()}, "opts": opts}
    ckpt = inv_encoders.checkpoints.from_dict(obj)
    assert (ckpt.kind, ckpt.encoder.config.n_styles) == ("psp", 10)


def test_hyperinverter_files_are_sent_to_inv_hyper():
    opts = TYPES["trainer_opts"]["hyper:options.train_options"]  # its default encoder_type: LayerWiseEncoder
    hint = r"read it with inv_hyper\.load\(path, G\) or create_method\('hyperinverter'"
    with pytest.raises(
        CheckpointError, match=r"HyperInverter checkpoint \(opts.encoder_type 'LayerWiseEncoder'.*" + hint
    ):
        inv_encoders.checkpoints.from_dict({"state_dict": {"hypernet.x": torch.zeros(1)}, "opts": opts})
    with pytest.raises(CheckpointError, match=r"HyperInverter checkpoint \(keys w_bar_encoder\.\*.*" + hint):
        inv_encoders.checkpoints.from_dict({"state_dict": {"w_bar_encoder.x": torch.zeros(1)}, "opts": {}})


def test_bad_resnet_and_w_plus_files_get_one_error(formula):
    run = RUNS["restyle_ResNetBackboneEncoder"]
    obj = reference_file(run, "ResNetBackboneEncoder", formula)
    del obj["state_dict"]["encoder.body.15.conv1.weight"]
    with pytest.raises(CheckpointKeyError, match=r"1 missing \(body\.15\.conv1\.weight \[64, 64, 3, 3\]\)"):
        inv_encoders.checkpoints.from_dict(obj)
    obj = reference_file(run, "ResNetBackboneEncoder", formula)
    obj["state_dict"] = {k: v for k, v in obj["state_dict"].items() if not k.startswith("encoder.body.15.")}
    with pytest.raises(CheckpointError, match="ResNet trunk .* has 15 units; ResNet34 has 16"):
        inv_encoders.checkpoints.from_dict(obj)
    obj = reference_file(run, "ResNetBackboneEncoder", formula)
    del obj["state_dict"]["encoder.body.7.conv1.weight"]
    with pytest.raises(CheckpointError, match=r"the encoder trunk has no body\.7\.conv1\.weight \(key 'encoder\.body"):
        inv_encoders.checkpoints.from_dict(obj)
    # pSp's W+ linear head sits on the IR-SE trunk only
    obj = reference_file(run, "BackboneEncoderUsingLastLayerIntoWPlus", formula)
    obj["opts"].pop("n_iters_per_batch")
    obj["state_dict"].update({"encoder.linear.weight": torch.zeros(320, 32), "encoder.output_layer_2.3.weight": 0})
    with pytest.raises(CheckpointError, match="'BackboneEncoderUsingLastLayerIntoWPlus': head='linear' is pSp's"):
        inv_encoders.checkpoints.from_dict(obj)
    obj["opts"]["encoder_type"] = "NoSuchEncoder"
    with pytest.raises(
        CheckpointError, match=r"encoder_type 'NoSuchEncoder' is not supported \(supported: .*SingleStyleCodeEncoder"
    ):
        inv_encoders.checkpoints.from_dict(obj)


@pytest.fixture(scope="module")
def g64():
    """A decoder for the reference runs' codes: 64 px, so 10 W+ entries of width 32."""
    torch.manual_seed(1)
    config = GeneratorConfig(resolution=64, z_dim=32, w_dim=32, channel_base=512, channel_max=32, mapping_layers=2)
    return Generator(config).eval().requires_grad_(False)


@pytest.mark.parametrize(
    "name,encoder_type,method",
    [
        ("e4e_SingleStyleCodeEncoder", "SingleStyleCodeEncoder", "e4e-w"),
        ("psp_BackboneEncoderUsingLastLayerIntoWPlus", "BackboneEncoderUsingLastLayerIntoWPlus", "psp"),
        ("restyle_ResNetBackboneEncoder", "ResNetProgressiveBackboneEncoder", "restyle-e4e"),
        ("hyper_ResNetEncoderUsingLastLayerIntoW", "ResNetEncoderUsingLastLayerIntoW", "psp-w"),
    ],
)
def test_files_on_disk_load_and_invert_with_their_method(name, encoder_type, method, tmp_path, inputs, formula, g64):
    """The trainers' file (torch.save of state_dict, opts, latent_avg) read by load and by the method's weights=."""
    run = RUNS[name]
    obj = reference_file(run, encoder_type, formula)
    avg = torch.randn(32, generator=torch.Generator().manual_seed(0))
    obj["latent_avg"] = avg.expand(10, 32).clone()  # the trainers repeat one average over the styles
    obj["opts"]["start_from_latent_avg"] = True
    path = tmp_path / f"{name}.pt"
    torch.save(obj, path)
    ckpt = inv_encoders.load(path)
    assert (ckpt.kind, ckpt.generator, ckpt.opts["encoder_type"]) == (method, None, encoder_type)
    inv = create_method(method, generator=g64, weights=str(path))(inputs["x256"])
    assert inv.latents.shape == ((1, 32) if method.endswith("-w") else (1, 10, 32))
    if method == "restyle-e4e":  # iterates on its own renders: the reference's codes were for y256
        assert inv.extras["iteration_latents"].shape == (1, 5, 10, 32)
        return
    expected = run["outputs"][encoder_type]
    expected = expected[:, 0] if encoder_type == "SingleStyleCodeEncoder" else expected
    torch.testing.assert_close(inv.latents - avg, expected, rtol=1e-4, atol=1e-4)
