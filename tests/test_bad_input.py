"""Every command against bad input: one ``error:`` line naming the problem, exit code 2, nothing of the
user's changed. One table, one row per (command, bad input); a new command joins by adding rows.

Each row runs ``python -m MODULE ARGS`` in a subprocess (as a user would) inside one shared workspace
(see ``workspace``): ``{w}`` in an argument is the workspace folder. ``keep`` names workspace paths
(files, or folders compared file by file) that must be byte-identical afterwards: the data-loss rows.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

NO_FMNIST = {"SG2_FASHION_MNIST_DIR": "/nonexistent/fashion-mnist"}  # as on a machine without the package
FMNIST_HINT = "install it with: apt-get install dataset-fashion-mnist"


@dataclass(frozen=True)
class Row:
    module: str
    args: tuple[str, ...]
    message: str  # a part of the one error line
    code: int = 2
    keep: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    needs_no_gpu: bool = False  # --device cuda rows only mean something without a GPU

    @property
    def id(self) -> str:
        return f"{self.module.split('.')[-1]}: {' '.join(self.args)}".replace("{w}/", "")


TRAIN = ("--preset", "tiny", "--workers", "0", "--no-progress")
FID = ("{w}/grey", "--reference", "{w}/grey", "--cache-dir", "{w}/cache")
COLLAB = ("--data", "{w}/c32.npy", "--steps", "2")

ROWS = [
    # python -m sg2_core.train
    Row(
        "sg2_core.train",
        ("--data", "{w}/squares.npy", "--out", "{w}/new", "--kimg", "0", *TRAIN),
        "error: --kimg must be a positive number of thousands of images, got 0.0",
    ),
    Row(
        "sg2_core.train",
        ("--data", "{w}/squares.npy", "--out", "{w}/new", "--kimg", "-1", *TRAIN),
        "error: --kimg must be a positive number of thousands of images, got -1.0",
    ),
    Row(
        "sg2_core.train",
        ("--data", "{w}/squares.npy", "--out", "{w}/new", "--snap-kimg", "0", *TRAIN),
        "error: --snap-kimg must be a positive number",
    ),
    Row(
        "sg2_core.train",
        ("--data", "{w}/squares.npy", "--out", "{w}/run", "--kimg", "1", *TRAIN),
        "error: --out {w}/run is not empty (log.jsonl, run.json, samples-000000008.png, ...); continue that run "
        "with --resume {w}/run",
        keep=("run",),
    ),
    Row(
        "sg2_core.train",
        ("--data", "{w}/squares.npy", "--out", "{w}/run", "--resume", "{w}/run", "--kimg", "0.008", *TRAIN),
        "error: the snapshot snapshot-000000016.safetensors has already trained on 16 images, more than --kimg "
        "0.008 (8 images)",
        keep=("run",),
    ),
    Row(
        "sg2_core.train",
        ("--data", "{w}/squares.npy", "--out", "{w}/other", "--resume", "{w}/run", *TRAIN),
        "is not empty and is not the folder of the resumed snapshot",
        keep=("run", "other"),
    ),
    Row(
        "sg2_core.train",
        ("--data", "{w}/squares.npy", "--out", "{w}/new", "--resume", "{w}/nothing", *TRAIN),
        "error: --resume: {w}/nothing is neither a snapshot file nor a run directory",
    ),
    Row("sg2_core.train", ("--data", "fmnist-train", "--out", "{w}/new", *TRAIN), FMNIST_HINT, env=NO_FMNIST),
    Row(
        "sg2_core.train",
        ("--data", "{w}/squares.npy", "--out", "{w}/new", "--device", "cuda", *TRAIN),
        "error: --device cuda: ",
        needs_no_gpu=True,
    ),
    # python -m inv_metrics.fid
    Row(
        "inv_metrics.fid",
        ("{w}/missing", "--reference", "{w}/grey"),
        "inv_metrics.fid: error: {w}/missing: no such file or folder",
    ),
    Row(
        "inv_metrics.fid",
        ("{w}/grey", "--reference", "{w}/missing"),
        "inv_metrics.fid: error: --reference {w}/missing: no such folder",
    ),
    Row("inv_metrics.fid", (*FID, "--num-samples", "0"), "inv_metrics.fid: error: --num-samples must be >= 1, got 0"),
    Row("inv_metrics.fid", (*FID, "--batch-size", "0"), "inv_metrics.fid: error: --batch-size must be >= 1, got 0"),
    Row("inv_metrics.fid", (*FID, "--kid-subsets", "0"), "inv_metrics.fid: error: --kid-subsets must be >= 1"),
    Row(
        "inv_metrics.fid",
        ("{w}/grey", "--reference", "fmnist-test", "--cache-dir", "{w}/cache"),
        FMNIST_HINT,
        env=NO_FMNIST,
    ),
    Row(
        "inv_metrics.fid",
        ("{w}/user.safetensors", "--reference", "{w}/grey"),
        "inv_metrics.fid: error: ",
        keep=("user.safetensors",),
    ),
    Row("inv_metrics.fid", (*FID, "--device", "cuda"), "inv_metrics.fid: error: --device cuda: ", needs_no_gpu=True),
    # python -m inv_metrics.report
    Row(
        "inv_metrics.report",
        ("--methods", "nope", "--out", "{w}/report", "--no-progress"),
        "inv_metrics.report: error: --methods: unknown method(s) nope; registered: ",
    ),
    Row(
        "inv_metrics.report",
        ("--num-images", "0", "--out", "{w}/report"),
        "inv_metrics.report: error: --num-images must be >= 1, got 0",
    ),
    Row(
        "inv_metrics.report",
        ("--batch-size", "0", "--out", "{w}/report"),
        "inv_metrics.report: error: --batch-size must be >= 1, got 0",
    ),
    Row(
        "inv_metrics.report",
        ("{w}/user.safetensors", "--out", "{w}/report"),
        "inv_metrics.report: error: cannot load the generator checkpoint {w}/user.safetensors",
        keep=("user.safetensors",),
    ),
    Row(
        "inv_metrics.report",
        ("--device", "cuda", "--out", "{w}/report"),
        "inv_metrics.report: error: --device cuda: ",
        needs_no_gpu=True,
    ),
    # python -m inv_metrics.train_fmnist_features
    Row("inv_metrics.train_fmnist_features", ("--out", "{w}/f.safetensors"), FMNIST_HINT, env=NO_FMNIST),
    Row(
        "inv_metrics.train_fmnist_features",
        ("--out", "{w}/f.safetensors", "--epochs", "0"),
        "inv_metrics.train_fmnist_features: error: --epochs must be >= 1, got 0",
    ),
    # python -m inv_optim.train
    Row(
        "inv_optim.train",
        ("--out", "{w}/user.safetensors", *COLLAB),
        "error: --out {w}/user.safetensors exists; pass --overwrite to replace it",
        keep=("user.safetensors",),
    ),
    Row(
        "inv_optim.train",
        ("--out", "{w}/c.safetensors", "--data", "{w}/c32.npy", "--steps", "0"),
        "error: --steps must be >= 1, got 0",
    ),
    Row(
        "inv_optim.train",
        ("--out", "{w}/c.safetensors", "--data", "{w}/c32.npy", "--minutes", "0"),
        "error: --minutes must be > 0, got 0.0",
    ),
    Row(
        "inv_optim.train",
        ("--out", "{w}/no/such/folder.safetensors", *COLLAB),
        "error: --out {w}/no/such/folder.safetensors: the folder {w}/no/such does not exist",
    ),
    Row("inv_optim.train", ("--out", "{w}/c.safetensors", "--steps", "2"), FMNIST_HINT, env=NO_FMNIST),
    Row(
        "inv_optim.train",
        ("--out", "{w}/c.safetensors", *COLLAB, "--device", "cuda"),
        "error: --device cuda: ",
        needs_no_gpu=True,
    ),
    # python -m sg2_core.invert (demo generator: 1 x 32 x 32)
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--method", "nope", "--out", "{w}/inv"),
        "error: unknown method 'nope'. Known methods: ",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--method", "sg2-w", "--options", "steps=1", "--out", "{w}/inv_done"),
        "error: {w}/inv_done/grid.png already exist; pass --overwrite to replace them",
        keep=("inv_done",),
    ),
    Row(
        "sg2_core.invert",
        ("{w}/squares.npy", "--method", "sg2-w", "--out", "{w}/inv"),
        "takes 1x32x32; pass --fit pad | resize | center-crop to bring it to 32x32",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--options", "steps", "--out", "{w}/inv"),
        "error: --options expects key=value with a name as key (e.g. steps=50), got 'steps'",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--method", "sg2-w", "--options", "steps=-1", "--out", "{w}/inv"),
        "error: method 'sg2-w': steps must be an int >= 0, got -1",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--edit", "sefa:x:3", "--out", "{w}/inv"),
        "error: --edit 'sefa:x:3': INDEX must be an integer and STRENGTH a number",
    ),
    Row("sg2_core.invert", ("{w}/missing.png", "--out", "{w}/inv"), "error: {w}/missing.png: no such file or folder"),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--edit", "sefa:0:nan", "--out", "{w}/inv"),
        "error: --edit 'sefa:0:nan': STRENGTH must be a finite number, got nan",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--edit", "interfacegan:3", "--out", "{w}/inv"),
        "error: --edit 'interfacegan:3': expected interfacegan:FILE:STRENGTH",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--edit", "interfacegan:{w}/smile.npy:3", "--out", "{w}/inv"),
        "error: --edit 'interfacegan:{w}/smile.npy:3': no boundary file '{w}/smile.npy'",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--edit", "interfacegan:{w}/boundary.npy:x", "--out", "{w}/inv"),
        "error: --edit 'interfacegan:{w}/boundary.npy:x': STRENGTH must be a number",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--edit", "interfacegan:{w}/user.safetensors:3", "--out", "{w}/inv"),
        "error: --edit: cannot read directions from {w}/user.safetensors: not a readable safetensors file",
        keep=("user.safetensors",),
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--edit", "interfacegan:{w}/two_directions.npy:3", "--out", "{w}/inv"),
        "error: --edit: {w}/two_directions.npy holds 2 directions, an InterFaceGAN boundary file holds one; pick "
        "one with {w}/two_directions.npy:INDEX:STRENGTH",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--edit", "interfacegan:{w}/boundary.npy:3", "--out", "{w}/inv"),
        "error: --edit: {w}/boundary.npy is a boundary in 8 dimensions, the generator's w_dim is 128",
    ),
    # python -m sg2_core.interfacegan
    Row(
        "sg2_core.interfacegan",
        ("fit", "--w", "{w}/w.npy", "--scores", "{w}/scores.npy", "--ratio", "0.9", "--out", "{w}/b.safetensors"),
        "error: ratio must be in (0, 0.5] (the share of samples taken as each class), got 0.9",
    ),
    Row(
        "sg2_core.interfacegan",
        ("fit", "--w", "{w}/w.npy", "--scores", "{w}/squares.npy", "--out", "{w}/b.safetensors"),
        "error: scores must hold one score per latent ([50] or [50, 1]), got [16, 16, 16]",
    ),
    Row(
        "sg2_core.interfacegan",
        ("fit", "--w", "{w}/missing.npy", "--scores", "{w}/scores.npy", "--out", "{w}/b.safetensors"),
        "error: --w {w}/missing.npy: no such file",
    ),
    Row(
        "sg2_core.interfacegan",
        ("fit", "--w", "{w}/w.npy", "--scores", "{w}/scores.npy", "--out", "{w}/user.safetensors"),
        "error: --out {w}/user.safetensors exists; pass --overwrite to replace it",
        keep=("user.safetensors",),
    ),
    Row(
        "sg2_core.interfacegan",
        (
            "fit",
            "--w",
            "{w}/w.npy",
            "--scores",
            "{w}/scores.npy",
            "--condition",
            "{w}/two_directions.npy",
            "--out",
            "{w}/b.safetensors",
        ),
        "error: --condition {w}/two_directions.npy holds 2 directions; a boundary file holds one",
    ),
    Row(
        "sg2_core.interfacegan",
        ("project", "{w}/boundary.npy", "--out", "{w}/b.safetensors"),
        "error: the following arguments are required: --condition (see --help)",
    ),
    Row(
        "sg2_core.interfacegan",
        ("project", "{w}/boundary.npy", "--condition", "{w}/boundary.npy", "--out", "{w}/b.safetensors"),
        "error: --condition: the primal boundary lies in the span of the conditions: nothing is left to move along",
    ),
    Row(
        "sg2_core.interfacegan",
        ("sample", "--num", "4", "--out", "{w}/inv_done"),
        "error: --out {w}/inv_done is not an empty folder; pick a new one",
        keep=("inv_done",),
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--paste-back", "--out", "{w}/inv"),
        "error: --paste-back needs --align: it pastes the aligned faces back into their photos",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--align", "--grey", "--out", "{w}/inv_done", "--overwrite"),
        "error: {w}/grey/0.png: no face found; invert it without --align (add --fit center-crop for a photo of "
        "another size), or leave it out",
        keep=("inv_done",),
    ),
    Row(
        "sg2_core.invert",
        ("{w}/grey", "--align", "--landmarks", "{w}/missing.dat", "--out", "{w}/inv"),
        "error: --landmarks {w}/missing.dat: no such file; --align needs it: apt-get install libdlib-data",
    ),
    Row(
        "sg2_core.invert",
        ("{w}/broken.png", "--align", "--out", "{w}/inv"),
        "error: cannot read photo {w}/broken.png: ",
    ),
    # python -m sg2_core.convert
    Row(
        "sg2_core.convert",
        ("{w}/user.safetensors", "{w}/user.safetensors"),
        "refusing to overwrite the input file",
        keep=("user.safetensors",),
    ),
    # python -m inv_encoders.bench (the official code's checkout is given by the user)
    Row(
        "inv_encoders.bench",
        ("--psp-repo", "{w}/missing"),
        "inv_encoders.bench: error: --psp-repo {w}/missing: no such folder (a checkout of pixel2style2pixel)",
    ),
    Row(
        "inv_encoders.bench",
        ("--psp-repo", "{w}/grey"),
        "error: --psp-repo {w}/grey: no models/encoders/psp_encoders.py there (not a checkout of pixel2style2pixel)",
    ),
    Row(
        "inv_encoders.bench",
        ("--psp-repo", "{w}/grey", "--e4e-repo", "{w}/missing", "--batches", "0"),
        "error: --batches must be >= 1, got [0]",
    ),
    # python -m inv_optim.train (the trainers of the method contract)
    Row("inv_optim.train", ("--method", "nope"), "error: 'nope' is not a trainable method of inv_optim"),
    # python -m inv_hyper.train and inv_encoders.train (sg2_core.training.fit), inv_hyper.interpolate
    Row(
        "inv_hyper.train",
        ("--phase", "2", "--steps", "2", "--run-dir", "{w}/new"),
        "error: --phase 2 needs --phase1 FILE",
    ),
    Row(
        "inv_hyper.train",
        ("--phase", "1", "--steps", "0", "--run-dir", "{w}/new"),
        "error: --steps must be >= 1, got 0",
    ),
    Row(
        "inv_hyper.train",
        ("--phase", "1", "--steps", "2", "--run-dir", "{w}/run"),
        "error: --run-dir {w}/run is not empty",
        keep=("run",),
    ),
    Row(
        "inv_hyper.train",
        (
            "--phase",
            "2",
            "--phase1",
            "{w}/user.safetensors",
            "--steps",
            "2",
            "--run-dir",
            "{w}/new",
            "--data",
            "{w}/c32.npy",
        ),
        "cannot read the file as safetensors",
        keep=("user.safetensors",),
    ),
    Row("inv_hyper.interpolate", ("{w}/grey",), "error: give two images (A and B), got 1"),
    Row("inv_hyper.interpolate", ("--steps", "1"), "error: --steps must be >= 2, got 1"),
    Row(
        "inv_hyper.interpolate",
        ("--phase1", "sg2-w+", "--out", "{w}/x.png"),
        "error: phase1='sg2-w+' is a 'w+'-space method; HyperInverter's phase I must be a W-space method",
    ),
    Row("inv_hyper.interpolate", ("--out", "{w}/inv_done/grid.png"), "exists; pass --overwrite", keep=("inv_done",)),
    Row("inv_encoders.train", ("--method", "nope"), "error: 'nope' is not a trainable method of inv_encoders"),
    Row(
        "inv_encoders.train",
        (
            "--method",
            "psp",
            "--steps",
            "2",
            "--run-dir",
            "{w}/new",
            "--data",
            "{w}/c32.npy",
            "--id-weights",
            "{w}/missing-arcface.pth",
        ),
        "missing-arcface.pth",
    ),
    # python -m inv_vae.stylize and inv_vae.train (AgileGAN)
    Row(
        "inv_vae.stylize",
        ("--attribute", "hats", "--out", "{w}/new"),
        "error: attributes were given but the style generator has no attribute paths",
    ),
    Row(
        "inv_vae.stylize",
        ("--style", "{w}/user.safetensors", "--out", "{w}/new"),
        "user.safetensors: cannot read the file as safetensors",
        keep=("user.safetensors",),
    ),
    Row("inv_vae.stylize", ("--out", "{w}/inv_done"), "inv_done/grid.png exists; pass --overwrite", keep=("inv_done",)),
    Row(
        "inv_vae.stylize",
        ("{w}/grey28.png", "--out", "{w}/new"),
        "grey28.png is 28x28, the generator makes 32x32 images",
    ),
    Row(
        "inv_vae.train",
        ("style", "--exemplars", "{w}/grey", "--batch-size", "8", "--steps", "2", "--run-dir", "{w}/new"),
        "holds 3 images, fewer than --batch-size 8",
    ),
    Row("inv_vae.train", ("encoder", "--steps", "0", "--run-dir", "{w}/new"), "error: --steps must be >= 1, got 0"),
]


def _digest(path: Path) -> dict:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """What the rows use: a user's file, small data sets, an image folder, and a finished training run."""
    import torch
    from PIL import Image

    from sg2_core.training.gan import train

    w = tmp_path_factory.mktemp("bad-input")
    (w / "user.safetensors").write_bytes(b"a file the user cares about \x00\x01" * 8)
    squares = np.zeros((16, 16, 16), np.uint8)
    for i in range(16):
        squares[i, i % 10 : i % 10 + 6, (3 * i) % 10 : (3 * i) % 10 + 6] = 255
    np.save(w / "squares.npy", squares)
    np.save(w / "c32.npy", (np.random.default_rng(0).random((8, 32, 32)) * 255).astype(np.uint8))
    (w / "grey").mkdir()
    for i in range(3):
        Image.fromarray((np.random.default_rng(i).random((32, 32)) * 255).astype(np.uint8)).save(
            w / "grey" / f"{i}.png"
        )
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(w / "grey28.png")
    (w / "broken.png").write_bytes(b"\x89PNG but not really")
    (w / "inv_done").mkdir()
    (w / "inv_done" / "grid.png").write_bytes(b"a grid the user made earlier")
    latents = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    np.save(w / "w.npy", latents)
    np.save(w / "scores.npy", latents[:, 0])
    np.save(w / "boundary.npy", np.eye(8, dtype=np.float32)[:1])  # InterFaceGAN's layout, [1, w_dim]
    np.save(w / "two_directions.npy", np.eye(128, dtype=np.float32)[:2])
    (w / "other").mkdir()
    (w / "other" / "notes.txt").write_text("not a run")
    torch.set_num_threads(1)
    train(
        w / "squares.npy",
        w / "run",
        preset="tiny",
        kimg=0.016,
        snap_kimg=0.008,
        tick_kimg=0.008,
        workers=0,
        progress=False,
    )
    return w


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_bad_input(workspace, row):
    import torch

    if row.needs_no_gpu and torch.cuda.is_available():
        pytest.skip("a GPU is present: --device cuda is valid here")
    w = str(workspace)
    before = {k: _digest(workspace / k) for k in row.keep}
    args = [a.replace("{w}", w) for a in row.args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **row.env}
    result = subprocess.run(
        [sys.executable, "-m", row.module, *args], capture_output=True, text=True, env=env, cwd=workspace, timeout=120
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == row.code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr  # one line, the error
    assert row.message.replace("{w}", w) in lines[0]
    assert {k: _digest(workspace / k) for k in row.keep} == before


@pytest.mark.parametrize(
    "images, quads, message",
    [
        (1, [[[100, 10], [100, 30], [120, 30], [120, 10]]], "face 0's quad is centred at (110.0, 20.0), outside"),
        (2, [[[10, 10], [10, 30], [30, 30], [30, 10]]], "2 image(s) for 1 face(s): give one image per face"),
    ],
    ids=["a quad of another photo", "a transform count that does not match"],
)
def test_paste_back_refuses_transforms_that_do_not_belong_to_the_photo(images, quads, message):
    """The library call behind --paste-back (sg2_core.faces.paste_back): one ValueError line naming the problem."""
    import torch

    from sg2_core.faces import paste_back

    photo = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(ValueError) as error:
        paste_back(photo, torch.zeros(images, 3, 8, 8, dtype=torch.uint8), quads)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_every_command_has_rows():
    """The commands that take files or options from a user; a new one must bring its rows."""
    assert {r.module for r in ROWS} >= {
        "sg2_core.train",
        "inv_metrics.fid",
        "inv_metrics.report",
        "inv_metrics.train_fmnist_features",
        "inv_optim.train",
        "sg2_core.invert",
        "sg2_core.convert",
        "inv_optim.train",
        "inv_encoders.bench",
        "inv_hyper.train",
        "inv_hyper.interpolate",
        "inv_encoders.train",
        "inv_vae.stylize",
        "inv_vae.train",
    }


@pytest.mark.slow
def test_train_collab_sigint_saves_the_network_and_exits_130(workspace, tmp_path):
    out, run_dir = tmp_path / "collab.safetensors", tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inv_optim.train",
            "--out",
            str(out),
            "--run-dir",
            str(run_dir),
            "--data",
            str(workspace / "c32.npy"),
            "--steps",
            "100000",
            "--batch-size",
            "4",
            "--log-every",
            "1",
            "--val-images",
            "4",
            "--threads",
            "1",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log, deadline = run_dir / "log.jsonl", time.monotonic() + 120
    while not (log.is_file() and log.read_text().strip()) and time.monotonic() < deadline:  # the loop is running
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopped by SIGINT at step" in err
    assert f"the networks so far are in {out}; continue with --run-dir {run_dir} --resume" in err
    from inv_optim.embedding import load_embedding

    assert load_embedding(out) is not None and len(list(run_dir.glob("snapshot-*.safetensors"))) == 1
