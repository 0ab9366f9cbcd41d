"""Checkpoint load time against ``torch.load`` of the same tensors: ``python -m sg2_core.bench_load [FILE ...]``.

Without FILE, a 256 px config-F generator, its discriminator and a G_ema copy (random weights) are written
as native ``.safetensors`` and rosinality ``.pt`` files in a temporary folder; with FILE, those checkpoints
are timed instead (any readable format, NVIDIA pickles included). The baseline is a ``torch.save`` of the
networks' state dicts as loaded, read back with ``torch.load(weights_only=True)``.

Two numbers per file, each as a ratio to the baseline:

* first load: ``load_checkpoint`` as the first thing a fresh process does after ``import sg2_core``,
  against ``torch.load`` as the first thing another fresh process does (best of ``--processes``);
* warm: best of ``--repeat`` loads in this process, interleaved with the baseline.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

_CHILD = """
import sys, time, torch, sg2_core
t = time.perf_counter()
if sys.argv[1] == "torch":
    torch.load(sys.argv[2], map_location="cpu", weights_only=True)
else:
    sg2_core.load_checkpoint(sys.argv[2])
print(time.perf_counter() - t)
"""


def _first_load(kind: str, path: Path, processes: int) -> float:
    """Best time of ``processes`` fresh interpreters doing one load right after ``import sg2_core``."""
    times = []
    for _ in range(processes):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, kind, str(path)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _make_files(folder: Path) -> list[Path]:
    from sg2_core import Checkpoint, Discriminator, Generator, save_checkpoint
    from sg2_core.nn.config import GENERATOR_PRESETS, DiscriminatorConfig

    torch.manual_seed(0)
    G = Generator(GENERATOR_PRESETS["config-f-256"]).eval()
    ckpt = Checkpoint(G=G, D=Discriminator(DiscriminatorConfig(resolution=256)).eval(), G_ema=copy.deepcopy(G))
    G.mapping.w_avg.normal_()  # a known w_avg, so no warning about it
    ckpt.G_ema.mapping.w_avg.copy_(G.mapping.w_avg)
    files = [folder / "config-f-256.safetensors", folder / "config-f-256.pt"]
    for f in files:
        save_checkpoint(f, ckpt)
    return files


def _baseline(path: Path, folder: Path) -> Path:
    """The networks' state dicts of ``path``, as a torch.save file."""
    from sg2_core import load_checkpoint

    ckpt = load_checkpoint(path)
    out = folder / f"{path.name}.torch.pt"
    torch.save({name: net.state_dict() for name, net in ckpt.networks().items()}, out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sg2_core.bench_load", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="checkpoints to time (default: config F 256)")
    p.add_argument("--repeat", type=int, default=5, help="warm loads per file (best is reported)")
    p.add_argument("--processes", type=int, default=3, help="fresh processes per first-load measurement")
    args = p.parse_args(argv)
    from sg2_core import load_checkpoint

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory(prefix="sg2-bench-load-") as tmp:
        folder = Path(tmp)
        files = args.files or _make_files(folder)
        rows = []
        for path in files:
            base = _baseline(path, folder)
            warm_ours, warm_torch = [], []
            for _ in range(args.repeat):  # interleaved, so machine load hits both alike
                warm_ours.append(_timed(lambda: load_checkpoint(path)))
                warm_torch.append(_timed(lambda: torch.load(base, map_location="cpu", weights_only=True)))
            first_ours = _first_load("sg2", path, args.processes)
            first_torch = _first_load("torch", base, args.processes)
            rows.append(
                dict(
                    file=path.name,
                    mb=path.stat().st_size / 2**20,
                    first=first_ours,
                    first_torch=first_torch,
                    warm=min(warm_ours),
                    warm_torch=min(warm_torch),
                )
            )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"{'file':<28} {'MB':>7} {'first load':>11} {'torch.load':>11} {'ratio':>6} {'warm':>8} "
        f"{'torch.load':>11} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['file']:<28} {r['mb']:7.1f} {r['first']:10.3f}s {r['first_torch']:10.3f}s "
            f"{r['first'] / r['first_torch']:5.2f}x {r['warm']:7.3f}s {r['warm_torch']:10.3f}s "
            f"{r['warm'] / r['warm_torch']:5.2f}x"
        )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
