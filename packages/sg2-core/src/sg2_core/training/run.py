"""What every training run here shares: start-up and tear-down, the process world, signals, snapshot files,
logs, optimiser state.

Both loops use it: the GAN trainer (:mod:`sg2_core.training.gan`) and the method-training loop
(:mod:`sg2_core.training.fit`, which the families' trainers build on).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist

from sg2_core import threads
from sg2_core.devices import resolve_device


def launch(args, train: Callable[[torch.device], int]) -> int:
    """Run a training command's body ``train(device) -> exit code`` as every trainer here starts and ends.

    Threads follow ``args.threads``; the device is ``args.device`` (default ``cuda:LOCAL_RANK`` or the CPU).
    Under torchrun (``WORLD_SIZE`` > 1) the process joins the group (nccl on CUDA, gloo otherwise) unless it
    already has, and leaves it at the end only if it joined here. Bad input (``ValueError``,
    ``FileNotFoundError``) becomes one line on stderr and exit code 2.
    """
    threads.configure(args.threads)
    joined = False
    try:
        device = resolve_device(args.device, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            joined = True
        return train(device)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if joined:
            dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, world size) of this process ((0, 1) without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def mean_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    size = world()[1]
    if size > 1:
        dist.all_reduce(tensor)
        tensor /= size
    return tensor


class StopOnSignal:
    """Turns the first SIGINT/SIGTERM into a flag that the loop checks; a second one acts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum, self._previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def stop_agreed(stop: StopOnSignal, device) -> bool:
    """Whether any rank was signalled (all ranks call this at the same step)."""
    flag = torch.tensor([0.0 if stop.signum is None else 1.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


SNAPSHOT_PATTERN = re.compile(r"snapshot-(\d+)\.safetensors$")


def snapshot_name(count: int) -> str:
    """The file name of the snapshot taken at ``count`` (images or steps); zero-padded so names sort."""
    return f"snapshot-{count:09d}.safetensors"


def latest_snapshot(path) -> Path:
    """``path`` itself if it is a file, else the snapshot with the most images in that directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"--resume: {path} is neither a snapshot file nor a run directory")
    found = snapshots(path)
    if not found:
        raise FileNotFoundError(f"--resume: no snapshot-*.safetensors in {path}")
    return max(found)[1]


def snapshots(folder: Path) -> list[tuple[int, Path]]:
    return [(int(m.group(1)), p) for p in folder.iterdir() if (m := SNAPSHOT_PATTERN.search(p.name))]


def trim_log(path: Path, count: int, key: str = "images") -> None:
    """Drop the log rows whose ``key`` passed the resumed snapshot's ``count`` (the resumed run logs them again)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and json.loads(line).get(key, 0) <= count]
    if len(kept) != len(lines):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)


def optimizer_state_out(state: dict) -> dict:
    """An optimizer state with string keys (the checkpoint's metadata is JSON)."""
    return {"state": {str(k): v for k, v in state["state"].items()}, "param_groups": state["param_groups"]}


def optimizer_state_in(state: dict) -> dict:
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in state["param_groups"]]
    return {"state": {int(k): v for k, v in state["state"].items()}, "param_groups": groups}
