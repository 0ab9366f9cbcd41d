"""Every registered method at FFHQ-1024 scale: a real photo in, aligned, inverted, edited and pasted back.

The generator is StyleGAN2 config F at 1024 px (``GENERATOR_PRESETS["ffhq1024-f"]``, random weights), saved once
as a native checkpoint; the photo is scikit-image's astronaut. Each method runs ``python -m sg2_core.invert
--align --paste-back --edit sefa:0:3`` (its ``main``, in this process) with the options its class declares for
a full-size generator (``full_size_options``: its networks at their official sizes with random weights through
``allow_untrained``, optimisers with one step per stage). The optimisers' LPIPS trunks are random files in a
temporary ``$TORCH_HOME`` (the ImageNet files are not here): the same cost, meaningless distances.

Without those weights, each method's default options are refused before any work: exit 2, one ``error:`` line
naming the option, the file and where it comes from, nothing written.

Detection needs dlib and its landmark model; without them the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from sg2_core import Checkpoint, Generator, Inversion, list_methods, save_checkpoint
from sg2_core.images import read_image, to_uint8
from sg2_core.invert import main
from sg2_core.methods.registry import method_spec
from sg2_core.nn.config import GENERATOR_PRESETS
from sg2_core.testing.requirements import require_face_detection

pytestmark = pytest.mark.slow

RESOLUTION = 1024
EDIT = "sefa:0:3"
FACE = "0000_astronaut_face0.png"
PHOTO = "0000_astronaut.png"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    """The photo, the config-F checkpoint, its generator, and a $TORCH_HOME with random LPIPS trunks."""
    require_face_detection()
    import skimage.data

    from inv_metrics.lpips_distance import TRUNK_FILES, save_random_trunk

    root = tmp_path_factory.mktemp("full-scale")
    photo = skimage.data.astronaut()
    Image.fromarray(photo).save(root / "astronaut.png")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = Generator(GENERATOR_PRESETS["ffhq1024-f"]).eval().requires_grad_(False)
        with torch.no_grad():  # a w_avg as training leaves it: the mean mapped w
            G.mapping.w_avg.copy_(G.mapping(torch.randn(1000, G.z_dim))[:, 0].mean(0))
    assert G.img_resolution == RESOLUTION and G.num_ws == 18
    save_checkpoint(root / "ffhq1024-f.safetensors", Checkpoint(G_ema=G))
    torch_home = root / "torch-home"
    for net in TRUNK_FILES:
        save_random_trunk(net, torch_home / "hub" / "checkpoints")
    return {
        "root": root,
        "photo": root / "astronaut.png",
        "photo_size": photo.shape[:2],
        "checkpoint": root / "ffhq1024-f.safetensors",
        "generator": G,  # the native checkpoint holds exactly its weights
        "torch_home": torch_home,
    }


def _invert(workspace, name: str, out: Path, options: dict, *extra: str) -> int:
    argv = [str(workspace["photo"]), "--align", "--method", name, "--generator", str(workspace["checkpoint"])]
    argv += ["--out", str(out), "--device", "cpu", "--no-progress", *extra]
    if options:
        argv += ["--options", *(f"{k}={json.dumps(v)}" for k, v in options.items())]
    return main(argv)


def _size(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as image:
        return image.height, image.width, len(image.getbands())


@pytest.mark.parametrize("name", list_methods())
def test_method_inverts_edits_and_pastes_back_a_real_photo_at_1024(name, workspace, monkeypatch):
    options = method_spec(name).full_size_options
    assert options is not None, f"method {name!r} declares no full_size_options"
    monkeypatch.setenv("TORCH_HOME", str(workspace["torch_home"]))
    out = workspace["root"] / f"out-{name}"
    assert _invert(workspace, name, out, options, "--paste-back", "--edit", EDIT) == 0

    manifest = json.loads((out / "manifest.json").read_text())
    assert [entry["aligned"] for entry in manifest["images"]] == [f"aligned/{FACE}"]  # her face, not the patch
    crop = options.get("input_size", RESOLUTION)  # the method's input: encoders take 256 px crops
    assert _size(out / "aligned" / FACE) == (crop, crop, 3)
    edit_folder = f"edits/{manifest['edits'][0]}"
    for folder in ("reconstructions", edit_folder):
        assert _size(out / folder / FACE) == (RESOLUTION, RESOLUTION, 3), folder
    height, width = workspace["photo_size"]
    photo = read_image(workspace["photo"])
    for folder in ("reconstructions", edit_folder):
        pasted = read_image(out / "pasted" / folder / PHOTO)
        assert pasted.shape == photo.shape == (3, height, width), folder
        changed = (pasted != photo).any(dim=0)
        assert changed.any() and not changed.all(), f"{folder}: the face is pasted in, the rest of the photo kept"
    assert _size(out / "grid.png")[2] == 3

    # The inversion file reloads for the same generator and renders what the run wrote.
    G = workspace["generator"]
    inversion = Inversion.load(out / "inversion.safetensors", G)
    assert len(inversion) == 1 and inversion.ws.shape == (1, G.num_ws, G.w_dim)
    with torch.no_grad():
        rendered = to_uint8(inversion.render()[0])
    written = read_image(out / "reconstructions" / FACE)
    assert (rendered.int() - written.int()).abs().max() <= 1  # the PNG's rounding


def _expected_hint(name: str) -> tuple[str, ...]:
    """What the refusal must name: the option, the file and where such a file comes from."""
    if "own-weights" in method_spec(name).needs:  # a trained network of the method's own
        return ("weights=", "python -m ", "train --method", "allow_untrained=True")
    return ("distance=", ".pth", "https://download.pytorch.org/models/")  # an LPIPS trunk from torchvision


@pytest.mark.parametrize("name", list_methods())
def test_default_options_without_their_weights_are_refused_before_any_work(name, workspace, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(workspace["root"] / "empty-torch-home"))
    out = workspace["root"] / f"refused-{name}"
    capsys.readouterr()
    assert _invert(workspace, name, out, {}) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {name}: "), lines
    for part in _expected_hint(name):
        assert part in lines[0], (part, lines[0])
    assert not out.exists()
