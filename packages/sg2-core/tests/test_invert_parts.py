"""python -m sg2_core.invert in parts: each batch's inversion on disk as it finishes, --resume after a SIGKILL
ends equal to an uninterrupted run, torchrun processes share one folder, and what a resume refuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sg2_core import Inversion, Method, demo, register_method
from sg2_core.images import to_uint8
from sg2_core.invert import main
from sg2_core.methods.registry import unregister_method

# A cheap method that is deterministic given its per-image seeds, with weight offsets and extras, and the
# command run through it; with KILL_AFTER_FIRST_PART set the process kills itself with SIGKILL right after
# the first part is written, as a crash or the out-of-memory killer would.
SCRIPT = """
import os, signal, sys
import torch
from sg2_core import Inversion, Method, register_method
from sg2_core import invert, invert_parts
from sg2_core.methods.seeds import per_image_seeds

@register_method("test-seeded")
class Seeded(Method):
    name, space = "test-seeded", "w+"

    def __init__(self, generator=None, *, callback=None, device=None, seed=0):
        super().__init__(generator, callback=callback, device=device)
        self.seed = seed

    def invert(self, images, init):
        G = self.generator
        noise = torch.stack([
            torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(s))
            for s in per_image_seeds(self.seed, len(images))
        ])
        ws = G.mapping.w_avg + 0.5 * noise + images.mean(dim=(1, 2, 3))[:, None, None]
        rgb = f"b{G.img_resolution}.torgb"
        offsets = {rgb: 0.05 * noise[:, 0, 0, None, None, None, None] * G.synthesis.layer(rgb).weight}
        return Inversion(ws, "w+", G, offsets, extras={"distance": images.square().mean(dim=(1, 2, 3))})

if os.environ.get("KILL_AFTER_FIRST_PART"):
    write_part = invert_parts.write_part

    def write_then_die(*args, **kwargs):
        write_part(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    invert_parts.write_part = write_then_die
sys.exit(invert.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The script, five demo test images (three batches of 2, 2 and 1) and one uninterrupted run's folder."""
    root = tmp_path_factory.mktemp("parts")
    (root / "invert.py").write_text(SCRIPT)
    np.save(root / "images.npy", to_uint8(demo.load_test_images()[0][:5])[:, 0].numpy())
    done = _command(root, root / "reference")
    assert done.returncode == 0, done.stderr
    return root


def _argv(root: Path, out: Path, *more) -> list[str]:
    return [
        str(root / "images.npy"),
        "--method",
        "test-seeded",
        "--options",
        "seed=7",
        "--edit",
        "sefa:0:2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
        *more,
    ]


def _command(root: Path, out: Path, *more, processes: int = 1, kill: bool = False):
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}  # one thread: bit-equal runs
    if kill:
        env["KILL_AFTER_FIRST_PART"] = "1"
    return subprocess.run(
        [sys.executable, *(launcher if processes > 1 else []), str(root / "invert.py"), *_argv(root, out, *more)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _files(folder: Path) -> dict:
    """Every file's content: bytes, or a safetensors file's metadata and tensors (the order of its header's
    metadata differs from process to process)."""
    from safetensors import safe_open

    contents = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".safetensors":
            with safe_open(str(path), "pt") as f:
                tensors = {k: (f.get_tensor(k).dtype, f.get_tensor(k).numpy().tobytes()) for k in f.keys()}
                contents[str(path.relative_to(folder))] = (f.metadata(), tensors)
        else:
            contents[str(path.relative_to(folder))] = path.read_bytes()
    return contents


def test_each_batch_leaves_its_part_and_the_inversion_is_assembled_from_them(setup):
    out = setup / "reference"
    parts = sorted(p.name for p in (out / "parts").iterdir())
    assert parts == ["part-00000.safetensors", "part-00001.safetensors", "part-00002.safetensors", "run.json"]
    G = demo.load_generator()
    loaded = [Inversion.load(out / "parts" / name, G) for name in parts[:3]]
    assert [len(part) for part in loaded] == [2, 2, 1]
    whole = Inversion.load(out / "inversion.safetensors", G)
    assert torch.equal(whole.latents, torch.cat([part.latents for part in loaded]))
    (layer,) = whole.weight_offsets
    assert torch.equal(whole.weight_offsets[layer], torch.cat([part.weight_offsets[layer] for part in loaded]))
    assert torch.equal(whole.extras["distance"], torch.cat([part.extras["distance"] for part in loaded]))
    record = json.loads((out / "parts" / "run.json").read_text())
    assert record["batch_size"] == 2 and record["options"] == {"seed": 7} and len(record["images"]) == 5


@pytest.mark.slow
def test_a_killed_run_resumes_to_what_an_uninterrupted_run_writes(setup):
    out = setup / "killed"
    killed = _command(setup, out, kill=True)
    assert killed.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["part-00000.safetensors", "run.json"]
    assert not (out / "inversion.safetensors").exists()
    first_part = (out / "parts" / "part-00000.safetensors").stat().st_mtime_ns
    resumed = _command(setup, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 1 finished batch(es) skipped" in resumed.stderr
    assert (out / "parts" / "part-00000.safetensors").stat().st_mtime_ns == first_part  # not inverted again
    assert _files(out) == _files(setup / "reference")  # latents, offsets, PNGs, grid, manifest: byte for byte


@pytest.mark.slow
def test_two_gloo_processes_write_the_files_one_process_writes(setup):
    out = setup / "two"
    done = _command(setup, out, processes=2)
    assert done.returncode == 0, done.stderr
    assert "process 0 of 2" in done.stderr and "process 1 of 2" in done.stderr
    assert _files(out) == _files(setup / "reference")


class Toy(Method):
    """The mean w for every image, moved by ``scale``."""

    name, space = "test-parts-toy", "w"
    calls = 0

    def __init__(self, generator=None, *, callback=None, device=None, scale=1.0):
        super().__init__(generator, callback=callback, device=device)
        self.scale = scale

    def invert(self, images, init):
        type(self).calls += 1
        w = self.generator.mapping.w_avg * self.scale
        return Inversion(w.expand(len(images), -1).clone(), "w", self.generator)


@pytest.fixture
def toy():
    register_method(Toy.name)(Toy)
    Toy.calls = 0
    yield Toy
    unregister_method(Toy.name)


def _run(capsys, root: Path, *more) -> tuple[int, str]:
    capsys.readouterr()
    argv = [str(root / "images.npy"), "--method", Toy.name, "--device", "cpu", "--no-progress", *map(str, more)]
    return main(argv), capsys.readouterr().err


def test_resume_refuses_another_run_and_overwrite_drops_the_old_parts(setup, tmp_path, capsys, toy):
    out = tmp_path / "o"
    assert _run(capsys, setup, "--batch-size", "1", "--out", out)[0] == 0
    assert len(list((out / "parts").glob("part-*"))) == 5 and toy.calls == 5
    before = _files(out)
    rc, err = _run(capsys, setup, "--batch-size", "2", "--options", "scale=0.5", "--resume", "--out", out)
    assert rc == 2 and err.strip() == (
        f"error: --resume: {out} holds another run (its batch_size, options differ, {out / 'parts' / 'run.json'}); "
        "resume it with the arguments it was started with, or choose another --out"
    )
    assert _files(out) == before and toy.calls == 5
    rc, err = _run(capsys, setup, "--batch-size", "1", "--resume", "--out", out)  # a finished run: assembled again
    assert rc == 0 and "resuming: 5 finished batch(es) skipped" in err and toy.calls == 5
    assert _files(out) == before
    rc, err = _run(capsys, setup, "--resume", "--overwrite", "--out", out)
    assert rc == 2 and err.strip() == "error: argument --overwrite: not allowed with argument --resume (see --help)"
    assert _run(capsys, setup, "--batch-size", "2", "--overwrite", "--out", out)[0] == 0
    assert sorted(p.name for p in (out / "parts").glob("part-*")) == [f"part-0000{k}.safetensors" for k in range(3)]
    (out / "inversion.safetensors").unlink()  # as a run stopped before its end leaves it
    rc, err = _run(capsys, setup, "--batch-size", "2", "--out", out)
    assert rc == 2 and err.strip().endswith(
        "already exist; pass --resume to continue that run or --overwrite to start it over, or choose another --out"
    )
