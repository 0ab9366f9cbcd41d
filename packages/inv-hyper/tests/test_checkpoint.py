"""inv_hyper.load and the official checkpoint layout: the full-size layout loads strictly on the meta device, a
small file in the official layout (the reference hypernetwork from tests/data) loads and predicts the reference
deltas, and files for another generator or with missing/unexpected keys are refused with errors that say why."""

import gzip
import json
from pathlib import Path

import pytest
import torch

import inv_hyper
from inv_hyper.checkpoints import CheckpointError, networks_from_state
from inv_hyper.networks import HyperConfig, discriminator_config
from sg2_core import GENERATOR_PRESETS, Discriminator, Generator, GeneratorConfig
from sg2_core.encoders import PyramidStyleEncoder, WEncoder

DATA = Path(__file__).parent / "data"
REF = torch.load(DATA / "hyper_hypernet.pt", weights_only=True)
SMALL = dict(widths=(16, 32, 48, 64))


def official_layout():
    layouts = json.loads(gzip.decompress((DATA / "hyperinverter_official_layouts.json.gz").read_bytes()))
    hyper = json.loads(gzip.decompress((DATA / "hypernetwork_D128_1024_keys.json.gz").read_bytes()))
    layouts["hypernet."] = hyper
    return layouts


def test_the_full_size_official_layout_loads_strictly_on_meta():
    layouts = official_layout()
    state = {
        prefix + key: torch.empty(
            shape, device="meta", dtype=torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        )
        for prefix in ("w_encoder.", "w_bar_encoder.", "hypernet.", "discriminator.")
        for key, shape in layouts[prefix]["keys"].items()
    }
    assert len(state) == 387 + 477 + 364 + 82
    with torch.device("meta"):
        G = Generator(GENERATOR_PRESETS["ffhq1024-f"])
    nets = networks_from_state(state, layouts["opts"], G)
    assert nets.config.sizes() == HyperConfig() and nets.config.discriminator  # the official sizes are the defaults
    for prefix in ("w_encoder.", "w_bar_encoder.", "hypernet.", "discriminator."):
        part = getattr(nets, prefix[:-1]).state_dict()
        assert all(v.is_meta for v in part.values())
        assert sum(p.numel() for p in getattr(nets, prefix[:-1]).parameters()) == layouts[prefix]["n_parameters"]


def small_checkpoint(generator, **opts):
    """A file in the official layout for the 32 px fixture generator: the reference hypernetwork (tests/data),
    W and W-bar encoders in the fixture widths (random), and the generator's discriminator."""
    torch.manual_seed(3)
    parts = {
        "w_encoder": WEncoder(3, w_dim=generator.w_dim, **SMALL),
        "w_bar_encoder": PyramidStyleEncoder(8, 3, style_dim=32, style_spatial=8, **SMALL),
        "discriminator": Discriminator(discriminator_config(generator)),
    }
    state = {f"{p}.{k}": v for p, m in parts.items() for k, v in m.state_dict().items()}
    state.update({f"hypernet.{k}": v for k, v in REF["hypernet"].items()})  # float16, as the fixture stores it
    return {
        "state_dict": state,
        "opts": {
            "hidden_dim": 8,
            "output_size": 32,
            "target_shape_name": "conv_without_bias",
            "encoder_type": "LayerWiseEncoder",
            **opts,
        },
    }


def test_a_small_official_file_loads_and_predicts_the_reference_deltas(tmp_path, generator):
    ckpt = small_checkpoint(generator)
    torch.save(ckpt, tmp_path / "hyper.pt")
    loaded = inv_hyper.load(tmp_path / "hyper.pt", generator)
    assert isinstance(loaded, inv_hyper.HyperCheckpoint) and loaded.format == "hyperinverter"
    assert loaded.generator is generator and loaded.opts["hidden_dim"] == 8 and loaded.path == tmp_path / "hyper.pt"
    assert loaded.networks.config.sizes() == HyperConfig(
        widths=(16, 32, 48, 64), feature_dim=32, hidden_dim=8, extractor_dim=16
    )
    assert loaded.networks.config.discriminator
    own = loaded.networks.state_dict()
    assert set(own) == set(ckpt["state_dict"])
    assert all(torch.equal(own[k], v.to(own[k].dtype)) for k, v in ckpt["state_dict"].items())
    with torch.no_grad():
        deltas = loaded.networks.hypernet(REF["w_image_codes"], REF["w_bar_codes"])
    for name, expected in REF["predicted"].items():
        torch.testing.assert_close(deltas[name.removesuffix(".weight")], expected, rtol=1e-4, atol=2e-6)
    # and the method builds from the same file
    method = inv_hyper.HyperInverter(generator, weights=tmp_path / "hyper.pt", input_resolution=None)
    assert all(torch.equal(a, b) for a, b in zip(method.networks.state_dict().values(), own.values()))
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert method(images).render().shape == (2, 3, 32, 32)


def test_the_old_load_call_shapes_still_give_the_method_with_a_warning(tmp_path, generator):
    torch.save(small_checkpoint(generator), tmp_path / "hyper.pt")
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    expected = inv_hyper.HyperInverter(generator, weights=tmp_path / "hyper.pt", input_resolution=None)(images)
    with pytest.warns(DeprecationWarning, match=r"returning the method is deprecated.*create_method\('hyperinverter'"):
        method = inv_hyper.load(tmp_path / "hyper.pt", generator, input_resolution=None)
    assert isinstance(method, inv_hyper.HyperInverter)
    torch.testing.assert_close(method(images).render(), expected.render(), rtol=0, atol=0)
    loaded = inv_hyper.load(tmp_path / "hyper.pt", generator)  # no options: the checkpoint, usable as before
    with pytest.warns(DeprecationWarning, match="inv_hyper.load returns a HyperCheckpoint after inv-hyper 0.4"):
        assert loaded.name == "hyperinverter"
    with pytest.warns(DeprecationWarning, match="returns a HyperCheckpoint"):
        assert loaded(images).render().shape == (2, 3, 32, 32)


def test_a_checkpoint_for_another_generator_is_refused_naming_the_layer_and_both_shapes(tmp_path, generator):
    torch.save(small_checkpoint(generator), tmp_path / "hyper.pt")
    wider = Generator(GeneratorConfig(resolution=32, z_dim=32, w_dim=32, channel_base=1024, channel_max=64))
    with pytest.raises(
        CheckpointError,
        match=r"predicts b4\.conv1 weights of shape \[32, 32, 3, 3\], but the "
        r"generator's b4\.conv1\.weight is \[64, 64, 3, 3\]",
    ):
        inv_hyper.load(tmp_path / "hyper.pt", wider)
    smaller = Generator(GeneratorConfig(resolution=16, z_dim=32, w_dim=32, channel_base=512, channel_max=32))
    with pytest.raises(
        CheckpointError,
        match=r"trained for a 32 px generator \(opts.output_size\), the given "
        r"generator is 16 px",
    ):
        inv_hyper.load(tmp_path / "hyper.pt", smaller)
    ckpt = small_checkpoint(generator)
    del ckpt["opts"]["output_size"]  # opts say nothing: the shapes still do
    with pytest.raises(
        CheckpointError,
        match=r"predicts layers the generator does not have: \['b32\.conv0', "
        r"'b32\.conv1', 'b32\.torgb'\]",
    ):
        networks_from_state(ckpt["state_dict"], ckpt["opts"], smaller)


def test_missing_unexpected_and_mis_shaped_keys_are_listed(tmp_path, generator):
    ckpt = small_checkpoint(generator)
    state = ckpt["state_dict"]
    del state["w_bar_encoder.latlayer1.bias"]
    state["hypernet.extra"] = torch.zeros(1)
    state["w_encoder.linear.bias"] = torch.zeros(7)
    with pytest.raises(
        CheckpointError,
        match=r"missing keys \['w_bar_encoder\.latlayer1\.bias'\]; unexpected keys "
        r"\['hypernet\.extra'\]; mis-shaped \['w_encoder\.linear\.bias: file \[7\], "
        r"expected \[32\]'\]",
    ):
        networks_from_state(state, ckpt["opts"], generator)
    state = small_checkpoint(generator)["state_dict"]
    state["encoder.x"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected state_dict prefixes \['encoder\.'\]"):
        networks_from_state(state, {}, generator)
    state = {k: v for k, v in small_checkpoint(generator)["state_dict"].items() if not k.startswith("hypernet.")}
    with pytest.raises(CheckpointError, match=r"no \['hypernet\.'\] weights"):
        networks_from_state(state, {}, generator)


@pytest.mark.parametrize(
    "opts, message",
    [
        ({"output_size": 1024}, "trained for a 1024 px generator"),
        ({"hidden_dim": 128}, "opts.hidden_dim=128 but its regressors have D=8"),
        ({"target_shape_name": "conv"}, "only 'conv_without_bias'"),
    ],
)
def test_opts_that_disagree_are_refused(generator, opts, message):
    ckpt = small_checkpoint(generator, **opts)
    with pytest.raises(CheckpointError, match=message):
        networks_from_state(ckpt["state_dict"], ckpt["opts"], generator)


class Boom:
    def __reduce__(self):
        return (print, ("code from the file ran",))


def test_files_are_read_without_running_their_code(tmp_path, generator, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "opts": Boom()}, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="not a readable HyperInverter checkpoint"):
        inv_hyper.load(path, generator)
    assert "code from the file ran" not in capsys.readouterr().out
    assert path.read_bytes() == before
    (tmp_path / "list.pt").write_bytes(b"")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="a dict with 'state_dict' and 'opts', got list"):
        inv_hyper.load(tmp_path / "list.pt", generator)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        inv_hyper.load(tmp_path / "missing.pt", generator)


def test_checkpoint_error_is_sg2_cores_one_class():
    import sg2_core

    assert CheckpointError is sg2_core.CheckpointError
