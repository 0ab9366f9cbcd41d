"""python -m sg2_core.invert: files written, the inversion file reloads and re-renders, refusals before any work."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sg2_core import Inversion, Method, StepInfo, demo, register_method, sefa
from sg2_core.images import fit_image, to_uint8
from sg2_core.invert import main, parse_edit, parse_options
from sg2_core.methods.registry import unregister_method

RES = 32


def _png_u8(path):
    array = np.array(Image.open(path))
    return torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))


def _write_inputs(folder):
    """Two PNGs in a folder and a uint8 .npy batch of two, from the demo's test images."""
    images = to_uint8(demo.load_test_images()[0][:4])
    (folder / "pngs").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(images[i, 0].numpy()).save(folder / "pngs" / f"shoe{i}.png")
    np.save(folder / "more.npy", images[2:, 0].numpy())
    return images


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One real run: sg2-w with 2 steps on the demo generator, batches of 3 over 4 images, one SeFa edit."""
    pytest.importorskip("inv_optim")  # sg2-w is inv-optim's projector
    root = tmp_path_factory.mktemp("invert")
    images = _write_inputs(root)
    argv = [
        str(root / "pngs"),
        str(root / "more.npy"),
        "--method",
        "sg2-w",
        "--options",
        "steps=2",
        "w_avg_samples=500",
        "--edit",
        "sefa:0:3.0",
        "--batch-size",
        "3",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(root / "out"),
    ]
    assert main(argv) == 0
    return root / "out", images, argv


def test_writes_reconstructions_edits_grid_manifest_and_inversion(run_dir):
    out, images, _ = run_dir
    names = ["0000_shoe0.png", "0001_shoe1.png", "0002_more_0.png", "0003_more_1.png"]
    assert sorted(p.name for p in (out / "reconstructions").iterdir()) == names
    assert sorted(p.name for p in (out / "edits" / "sefa0_+3").iterdir()) == names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "sg2-w" and manifest["options"] == {"steps": 2, "w_avg_samples": 500, "seed": 0}
    assert [m["source"].rsplit("/", 1)[-1] for m in manifest["images"]] == [
        "shoe0.png",
        "shoe1.png",
        "more.npy[0]",
        "more.npy[1]",
    ]
    grid = _png_u8(out / "grid.png")
    assert grid.shape == (1, 4 * RES, 3 * RES)  # one row per image: input | reconstruction | edit
    for i in range(4):
        assert torch.equal(grid[:, i * RES : (i + 1) * RES, :RES], images[i])
        assert torch.equal(grid[:, i * RES : (i + 1) * RES, RES : 2 * RES], _png_u8(out / "reconstructions" / names[i]))
    assert not list(out.rglob("*.tmp"))


def test_inversion_file_reloads_and_rerenders_the_saved_pngs(run_dir):
    out, _, _ = run_dir
    G = demo.load_generator()
    inv = Inversion.load(out / "inversion.safetensors", G)
    assert len(inv) == 4 and inv.space == "w"
    assert inv.extras["distance"].shape == (4,)
    with torch.no_grad():
        recon = to_uint8(inv.render()).int()
        edited = to_uint8(inv.edit(sefa(G)[0], 3.0).render()).int()
    files = sorted((out / "reconstructions").iterdir())
    saved = torch.stack([_png_u8(p) for p in files]).int()
    saved_edits = torch.stack([_png_u8(out / "edits" / "sefa0_+3" / p.name) for p in files]).int()
    # the run rendered in batches of 3, this in one batch of 4: equal within uint8 rounding
    assert (recon - saved).abs().max() <= 1
    assert (edited - saved_edits).abs().max() <= 1
    assert (recon - saved).abs().float().mean() < 0.05


def test_refuses_to_overwrite_before_any_work_and_leaves_files_unchanged(run_dir, capsys, toy):
    out, _, argv = run_dir
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    toy_argv = [a if a != "sg2-w" else "test-toy" for a in argv]
    toy_argv = toy_argv[: toy_argv.index("--options")] + toy_argv[toy_argv.index("--edit") :]
    capsys.readouterr()
    assert main(toy_argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out / 'grid.png'}, {out / 'inversion.safetensors'}, ")
    assert err[0].endswith("already exist; pass --overwrite to replace them, or choose another --out")
    assert toy.calls == 0  # refused before the method ran
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


class Toy(Method):
    """A method with no optimisation: the mean w for every image (cheap, for the command's refusals)."""

    name, space, demo_options = "test-toy", "w", {"scale": 1.0}
    calls = 0

    def __init__(self, generator=None, *, callback=None, device=None, scale=1.0):
        super().__init__(generator, callback=callback, device=device)
        self.scale = scale

    def invert(self, images, init):
        type(self).calls += 1
        self.report(StepInfo(0, 1, stage="toy"))
        w = self.generator.mapping.w_avg * self.scale
        return Inversion(w.expand(len(images), -1).clone(), "w", self.generator)


@pytest.fixture
def toy():
    register_method("test-toy")(Toy)
    Toy.calls = 0
    yield Toy
    unregister_method("test-toy")


def _run(capsys, *argv):
    capsys.readouterr()
    rc = main([*map(str, argv), "--device", "cpu"])
    return rc, capsys.readouterr().err


def _one_error(capsys, *argv) -> str:
    rc, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0].removeprefix("error: ")


def test_overwrite_replaces_and_progress_is_fed_by_the_callback(tmp_path, capsys, toy):
    _write_inputs(tmp_path)
    args = [tmp_path / "pngs", "--method", "test-toy", "--out", tmp_path / "o"]
    rc, err = _run(capsys, *args)
    assert rc == 0 and toy.calls == 1
    assert "toy" in err and "images" in err  # the steps bar (stage 'toy', from StepInfo) and the images bar
    first = (tmp_path / "o" / "inversion.safetensors").read_bytes()
    rc, _ = _run(capsys, *args, "--overwrite", "--options", "scale=0.0", "--no-progress")
    assert rc == 0 and toy.calls == 2
    assert (tmp_path / "o" / "inversion.safetensors").read_bytes() != first
    inv = Inversion.load(tmp_path / "o" / "inversion.safetensors", demo.load_generator())
    assert torch.equal(inv.latents, torch.zeros(2, 128))


@pytest.mark.parametrize("fit", ["pad", "resize", "center-crop"])
def test_fit_modes_bring_other_sizes_to_the_generator(tmp_path, capsys, toy, fit):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "odd.png")
    rc, err = _run(
        capsys,
        tmp_path / "odd.png",
        "--method",
        "test-toy",
        "--fit",
        fit,
        "--grey",
        "--no-progress",
        "--out",
        tmp_path / "o",
    )
    assert rc == 0, err
    grid = _png_u8(tmp_path / "o" / "grid.png")
    assert grid.shape == (1, RES, 2 * RES)
    grey = torch.from_numpy(np.array(Image.fromarray(rgb).convert("L")))[None]
    assert torch.equal(grid[:, :, :RES], fit_image(grey, RES, fit))  # the input column: the fitted image


def test_other_size_or_channels_without_fit_are_refused(tmp_path, capsys, toy):
    Image.fromarray(np.zeros((20, 28), dtype=np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "colour.png")
    out = tmp_path / "o"
    assert _one_error(capsys, tmp_path / "small.png", "--method", "test-toy", "--out", out) == (
        f"image {tmp_path / 'small.png'} is 1x20x28 (channels x height x width), method 'test-toy' on this "
        "generator takes 1x32x32; pass --fit pad | resize | center-crop to bring it to 32x32"
    )
    assert _one_error(capsys, tmp_path / "colour.png", "--method", "test-toy", "--out", out) == (
        f"image {tmp_path / 'colour.png'} is 3x32x32 (channels x height x width), method 'test-toy' on this "
        "generator takes 1x32x32; pass --grey to convert it"
    )
    assert _one_error(capsys, tmp_path / "colour.png", "--rgb", "--method", "test-toy", "--out", out) == (
        "--rgb converts to 3 channel(s) but method 'test-toy' on this generator takes 1-channel images"
    )
    assert toy.calls == 0


def test_bad_inputs_give_one_line_errors(tmp_path, capsys, toy):
    _write_inputs(tmp_path)
    pngs, out = tmp_path / "pngs", tmp_path / "o"
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    assert _one_error(capsys, pngs, "--method", "test-tyo", "--out", out).startswith(
        "unknown method 'test-tyo'; did you mean 'test-toy'"
    )
    assert _one_error(capsys, tmp_path / "broken.png", "--method", "test-toy", "--out", out).startswith(
        f"cannot read image {tmp_path / 'broken.png'}: "
    )
    assert _one_error(capsys, tmp_path / "nope.png", "--method", "test-toy", "--out", out) == (
        f"{tmp_path / 'nope.png'}: no such file or folder"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--options", "steps", "--out", out) == (
        "--options expects key=value with a name as key (e.g. steps=50), got 'steps'"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--options", "steps=3", "--out", out).startswith(
        "method 'test-toy' got unknown options ['steps']"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--edit", "sefa:first:3", "--out", out) == (
        "--edit 'sefa:first:3': INDEX must be an integer and STRENGTH a number"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--edit", "dirs.npy:0:3", "--out", out) == (
        "--edit 'dirs.npy:0:3': 'dirs.npy' is neither 'sefa', 'ganspace' nor a direction file"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--edit", "sefa:999:1", "--out", out) == (
        "--edit: sefa has 128 directions, index 999 is out of range"
    )
    for strength in ("nan", "inf", "-1e999"):
        assert _one_error(capsys, pngs, "--method", "test-toy", "--edit", f"sefa:0:{strength}", "--out", out) == (
            f"--edit 'sefa:0:{strength}': STRENGTH must be a finite number, got {float(strength)}"
        )
    np.save(tmp_path / "nan.npy", np.full((2, 128), np.nan, np.float32))
    assert _one_error(capsys, pngs, "--method", "test-toy", "--edit", f"{tmp_path / 'nan.npy'}:1:2", "--out", out) == (
        f"--edit: direction 1 of {tmp_path / 'nan.npy'} contains NaN or inf"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--faces", "2", "--face-size", "64", "--out", out) == (
        "--faces, --face-size only apply with --align"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--align", "--fit", "pad", "--out", out) == (
        "--fit does not apply with --align: the aligned faces are squares of the method's size"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--align", "--faces", "0", "--out", out) == (
        "argument --faces: expected all, largest or a number of faces >= 1, got '0' (see --help)"
    )
    assert _one_error(capsys, pngs, "--method", "test-toy", "--fit", "stretch", "--out", out).startswith(
        "argument --fit: invalid choice: 'stretch'"
    )
    (tmp_path / "file").write_text("x")
    assert _one_error(capsys, pngs, "--method", "test-toy", "--out", tmp_path / "file") == (
        f"--out {tmp_path / 'file'} exists and is not a folder"
    )
    assert toy.calls == 0 and not out.exists()


def test_a_direction_file_edits_like_the_same_vector(tmp_path, capsys, toy):
    _write_inputs(tmp_path)
    G = demo.load_generator()
    np.save(tmp_path / "dirs.npy", sefa(G).vectors[:3].numpy())
    rc, err = _run(
        capsys,
        tmp_path / "pngs",
        "--method",
        "test-toy",
        "--edit",
        f"{tmp_path / 'dirs.npy'}:2:-2.5",
        "--edit",
        "sefa:2:-2.5",
        "--no-progress",
        "--out",
        tmp_path / "o",
    )
    assert rc == 0, err
    for name in ("0000_shoe0.png", "0001_shoe1.png"):
        assert torch.equal(
            _png_u8(tmp_path / "o" / "edits" / "dirs2_-2.5" / name),
            _png_u8(tmp_path / "o" / "edits" / "sefa2_-2.5" / name),
        )


def test_an_interfacegan_edit_moves_along_the_boundarys_unit_normal(tmp_path, capsys, toy):
    _write_inputs(tmp_path)
    G = demo.load_generator()
    boundary = 2 * sefa(G).vectors[2:3]  # InterFaceGAN's own layout, .npy [1, w_dim]; not unit length
    np.save(tmp_path / "smile.npy", boundary.numpy())
    np.save(tmp_path / "unit.npy", (boundary.double() / boundary.double().norm()).float().numpy())
    rc, err = _run(
        capsys,
        tmp_path / "pngs",
        "--method",
        "test-toy",
        "--edit",
        f"interfacegan:{tmp_path / 'smile.npy'}:-2.5",
        "--edit",
        f"{tmp_path / 'unit.npy'}:0:-2.5",
        "--no-progress",
        "--out",
        tmp_path / "o",
    )
    assert rc == 0, err
    for name in ("0000_shoe0.png", "0001_shoe1.png"):
        assert torch.equal(
            _png_u8(tmp_path / "o" / "edits" / "interfacegan_smile_-2.5" / name),
            _png_u8(tmp_path / "o" / "edits" / "unit0_-2.5" / name),
        )
    edit = parse_edit(f"interfacegan:{tmp_path / 'smile.npy'}:3")
    assert (edit.source, edit.boundary, edit.strength, edit.label) == (
        "interfacegan",
        str(tmp_path / "smile.npy"),
        3.0,
        "interfacegan_smile_+3",
    )


def test_parse_options_and_edits():
    assert parse_options(
        [
            "steps=50",
            "lr=0.01",
            'pivot="sg2-w"',
            "name=sg2-w",
            "flag=true",
            "pivot_options.steps=2",
            "pivot_options.lr=1e-3",
            "layers=[0, 1]",
        ]
    ) == {
        "steps": 50,
        "lr": 0.01,
        "pivot": "sg2-w",
        "name": "sg2-w",
        "flag": True,
        "pivot_options": {"steps": 2, "lr": 0.001},
        "layers": [0, 1],
    }
    edit = parse_edit("sefa:0:3.0")
    assert (edit.source, edit.index, edit.strength, edit.label) == ("sefa", 0, 3.0, "sefa0_+3")


def test_runs_as_a_module_and_fails_with_exit_status_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sg2_core.invert", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'missing.png'}: no such file or folder"


def test_defaults_demo_generator_demo_options_and_out_folder(tmp_path, capsys, toy, monkeypatch):
    _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc, err = _run(capsys, "pngs", "--method", "test-toy", "--no-progress")
    assert rc == 0, err
    manifest = json.loads((tmp_path / "inversions" / "manifest.json").read_text())
    assert manifest["options"] == {"scale": 1.0}  # the method's demo options, on the demo generator
    assert manifest["generator"].startswith("the demo generator")
    from sg2_core import Checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "g.safetensors", Checkpoint(G_ema=demo.load_generator()))
    rc, err = _run(
        capsys,
        "pngs",
        "--method",
        "test-toy",
        "--generator",
        tmp_path / "g.safetensors",
        "--out",
        "o2",
        "--no-progress",
    )
    assert rc == 0, err
    assert json.loads((tmp_path / "o2" / "manifest.json").read_text())["options"] == {}  # not on another generator


def test_default_method_is_an_installed_one():
    from sg2_core.invert import default_method
    from sg2_core.methods.registry import list_methods

    name = default_method()
    assert name in list_methods()
    if "sg2-w+" in list_methods():
        assert name == "sg2-w+"


def test_results_do_not_depend_on_the_batch_size(tmp_path):
    """Image i of the run gets seed + i whatever batch it falls in (the projector draws per-image noise)."""
    import numpy as np
    from safetensors.torch import load_file

    from sg2_core import demo

    batch = tmp_path / "batch.npy"
    np.save(batch, ((demo.load_test_images()[0][:3] + 1) * 127.5).round().to(torch.uint8).numpy())
    latents = []
    for size in (1, 3):
        out = tmp_path / f"out{size}"
        assert (
            main(
                [
                    str(batch),
                    "--method",
                    "sg2-w",
                    "--options",
                    "steps=2",
                    "w_avg_samples=100",
                    "--batch-size",
                    str(size),
                    "--out",
                    str(out),
                    "--no-progress",
                ]
            )
            == 0
        )
        latents.append(load_file(str(out / "inversion.safetensors"))["latents"])
    assert torch.allclose(latents[0], latents[1], atol=1e-4)
