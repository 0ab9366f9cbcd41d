"""The official AgileGAN two-path generator (DualGenerator) read into an AttributeGenerator reproduces the
reference's own output (tests/data/agile_dual_generator.pt, see tests/data/README.md), with strict keys."""

from pathlib import Path

import pytest
import torch

from inv_vae.dual_checkpoint import from_dual_state_dict, load_dual
from sg2_core.checkpoints import CheckpointError, CheckpointKeyError

FIXTURE = Path(__file__).resolve().parent / "data" / "agile_dual_generator.pt"
TOL = dict(rtol=0, atol=5e-5)  # measured max |diff| 1.2e-5 (path A) and 5.1e-6 (path B) on images up to |4.9|


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def _reference_noise(net, data):
    """The noise the reference fed each layer: its buffers, but layers 1 and 2 (8 px) and the shared 128 px
    blocks, which re-read noise[1] and noise[2] in its loop, all got the stored 1x1 maps."""
    synthesis = net.path(0).synthesis
    noise = {}
    for j, name in enumerate(synthesis.noise_layer_names):
        r = synthesis.layer(name).resolution
        source = data["g_ema"][f"noises.noise_{j}"]
        if name in ("b8.conv0", "b128.conv0"):
            source = data["noise_1"]
        elif name in ("b8.conv1", "b128.conv1"):
            source = data["noise_2"]
        noise[name] = source.expand(1, 1, r, r)
    return noise


def test_reproduces_the_reference_two_path_generator(fixture):
    net = load_dual(FIXTURE)
    config = net.config
    assert config.attributes == ("female", "male") and config.split == (8, 16, 32, 64)
    assert (config.generator.resolution, config.generator.z_dim, config.generator.mapping_layers) == (128, 16, 2)
    assert sorted(net.shared) == ["b128", "b4"]
    z = fixture["z"]  # Z+: one z per layer, each through the (shared) mapping network
    with torch.no_grad():
        ws = torch.stack([net.mapping(z[:, i])[:, 0] for i in range(z.shape[1])], dim=1)
        images = net.synthesize(ws, ["female", "male"], noise=_reference_noise(net, fixture))
    torch.testing.assert_close(images[0], fixture["image_a0"], **TOL)  # sample 0 on path A
    torch.testing.assert_close(images[1], fixture["image_b1"], **TOL)  # sample 1 on path B
    # each layer keeps its own noise buffer (the reference's constant-noise forward fails at 128 px)
    assert torch.equal(net.path(1).synthesis.b128.conv1.noise_const, fixture["g_ema"]["noises.noise_10"][0, 0])
    assert torch.equal(net.path(1).synthesis.b8.conv0.noise_const, fixture["g_ema"]["noises.noise_1"][0, 0])
    with torch.no_grad():
        assert torch.isfinite(net.synthesize(ws, [0, 1], noise_mode="const")).all()


def test_keys_are_checked_strictly_in_the_files_names(fixture):
    state = dict(fixture["g_ema"])
    del state["convsB.3.conv.weight"], state["convsC.1.noise.weight"]
    state["convsD.0.conv.weight"] = torch.zeros(1)
    state["to_rgbsA.0.bias"] = torch.zeros(1, 3, 2, 2)
    with pytest.raises(CheckpointKeyError) as error:
        from_dual_state_dict(state)
    e = error.value
    assert sorted(k for k, _ in e.missing) == ["convsB.3.conv.weight", "convsC.1.noise.weight"]
    assert [k for k, _ in e.unexpected] == ["convsD.0.conv.weight"]
    assert [(k, g) for k, _, g in e.mismatched] == [("to_rgbsA.0.bias", (1, 3, 2, 2))]
    assert (
        "the AgileGAN two-path generator (DualGenerator names) does not match its architecture: 2 missing "
        "(convsB.3.conv.weight" in str(e)
    )


def test_other_files_are_named(tmp_path, fixture):
    plain = {k: v for k, v in fixture["g_ema"].items() if not k.startswith(("convsB", "to_rgbsB"))}
    with pytest.raises(CheckpointError, match="not an AgileGAN two-path generator: no 'convsA.\\*' keys"):
        from_dual_state_dict({k.replace("convsA", "convs"): v for k, v in plain.items()})
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list, not a dict"):
        load_dual(tmp_path / "list.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt: no such file"):
        load_dual(tmp_path / "missing.pt")


def test_stylize_reads_it_as_a_style_generator(fixture):
    from inv_vae.stylize import load_style
    from sg2_core import Generator

    G = Generator(load_dual(FIXTURE).config.generator)  # an encoder's generator of the same architecture
    style = load_style(str(FIXTURE), G)
    assert style.config.attributes == ("female", "male")
    assert torch.equal(style.paths[1]["b64"].conv1.weight, load_dual(FIXTURE).paths[1]["b64"].conv1.weight)
    with pytest.raises(
        ValueError,
        match=r"has another architecture than the encoder's generator: resolution 128 "
        r"\(encoder's generator: 64\)",
    ):
        load_style(str(FIXTURE), Generator(G.config.replace(resolution=64)))


def test_an_unreadable_pt_style_is_named(tmp_path, capsys):
    from inv_vae.stylize import main

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["--style", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "out")]) == 2
    assert "junk.pt: not a readable torch checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
