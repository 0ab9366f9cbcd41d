"""The parts of a run of ``python -m sg2_core.invert``, so that a long run loses no finished work and several
processes can share one run.

``DIR/parts/run.json`` records what the run is (its images, method, options, generator, batch size, ...);
``DIR/parts/part-NNNNN.safetensors`` is batch NNNNN's ``Inversion`` (``Inversion.save``), written atomically
after the batch's PNGs, so a part on disk says its batch is done. ``--resume`` continues a run of the same
record and skips its done batches; ``inversion.safetensors`` is assembled from the parts at the end.

Under ``torchrun --nproc_per_node N``, process ``r`` of ``N`` inverts batches ``r, r + N, ...``: the batches,
seeds and files are those of one process. The processes meet once, to agree that every one of them passed its
checks before any writes; after that each works alone, and whichever finds every part written when it
finishes assembles the outputs (two that finish together write the same files, each atomically).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist

from sg2_core.errors import UsageError
from sg2_core.training.run import world

PARTS = "parts"
RECORD = "run.json"


def part_path(out: Path, batch: int) -> Path:
    return out / PARTS / f"part-{batch:05d}.safetensors"


def record_path(out: Path) -> Path:
    return out / PARTS / RECORD


def batch_ranges(count: int, batch_size: int) -> list[range]:
    """The run's batches: image positions ``[k * batch_size, (k + 1) * batch_size)``, the last one shorter."""
    return [range(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]


def my_batches(count: int) -> list[int]:
    """The batches this process inverts: every one alone, batch ``r + k * N`` as process ``r`` of ``N``."""
    rank, size = world()
    return list(range(rank, count, size))


def is_done(out: Path, batch: int, files: list[Path]) -> bool:
    """Whether a batch's part and all its PNGs (``files``) are there."""
    return part_path(out, batch).is_file() and all(f.is_file() for f in files)


def resumable(out: Path, record: dict, resume: bool) -> bool:
    """Whether ``out`` holds this very run to continue (``--resume`` and a ``run.json`` recording the same
    run); ``--resume`` of another run is refused, naming what differs."""
    path = record_path(out)
    if not resume or not path.is_file():
        return False
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"--resume: cannot read {path}: {error}") from None
    ours = json.loads(json.dumps(record))  # tuples as lists, as stored
    differ = sorted(k for k in {*recorded, *ours} if recorded.get(k) != ours.get(k))
    if differ:
        raise UsageError(
            f"--resume: {out} holds another run (its {', '.join(differ)} differ, {path}); resume it with the "
            "arguments it was started with, or choose another --out"
        )
    return True


def write_json(data, path: Path) -> None:
    """``data`` as JSON, atomically (a reader never sees half a file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def start(out: Path, record: dict, overwrite: bool) -> None:
    """Before the first part: the parts of an earlier run go (``--overwrite``; its parts could otherwise pass
    for this run's on a resume), then every process waits for that, and writes the record."""
    if overwrite and world()[0] == 0:
        for stale in (out / PARTS).glob("part-*.safetensors"):
            stale.unlink()
    barrier()
    write_json(record, record_path(out))  # every process: a part on disk always has its record beside it


def write_part(inversion, out: Path, batch: int) -> Path:
    """A finished batch's inversion, atomically (after its PNGs: the part says the batch is done)."""
    return inversion.to("cpu").save(part_path(out, batch), overwrite=True)


def assemble(out: Path, count: int, generator):
    """The run's ``Inversion``: its ``count`` parts in order (made for this generator: the record says so)."""
    from sg2_core import Inversion

    return Inversion.cat([Inversion.load(part_path(out, k), generator, check_weights=False) for k in range(count)])


# --- several processes (torchrun) ------------------------------------------------------------------------------


def join_world() -> bool:
    """Join the other processes when torchrun started this one among several; True when this call did.
    gloo: the processes only exchange one flag, whatever device they invert on."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
        return True
    return False


def leave_world() -> None:
    dist.destroy_process_group()


def agree(ok: bool) -> bool:
    """Whether every process passed its checks (``ok`` is this one's); no process goes on before all have
    told, and a process that failed tells too, so the others stop instead of waiting."""
    if world()[1] == 1:
        return ok
    flag = torch.tensor([0 if ok else 1])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag.item() == 0


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()
