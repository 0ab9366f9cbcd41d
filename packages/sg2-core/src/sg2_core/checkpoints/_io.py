"""File handling shared by the formats: existence checks, format sniffing, safe torch loading, atomic writes."""

from __future__ import annotations

import argparse
import errno
import os
import re
import tempfile
from pathlib import Path

import torch

from sg2_core.checkpoints.errors import CheckpointError

# torch.save's legacy (non-zip) stream begins with the pickled magic number 0x1950a86a20f9469cfc6c.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C.to_bytes(10, "little")


def check_input(path) -> Path:
    """``path`` as a Path; a clear FileNotFoundError when it does not exist."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "checkpoint file not found", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "expected a checkpoint file, got a directory", str(path))
    return path


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, with its type."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def sniff(path: Path) -> str | None:
    """What the bytes are: 'safetensors', 'torch-zip', 'torch-legacy', 'pickle', or None."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head[8:10] in (b'{"', b"{}"):
        return "safetensors"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "torch-zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        if head[2:4] == b"\x8a\x0a" and head[4:14] == _TORCH_LEGACY_MAGIC:
            return "torch-legacy"
        return "pickle"
    return None


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def torch_load(path: Path):
    """``torch.load(weights_only=True)`` onto the CPU, also accepting ``argparse.Namespace`` (rosinality's
    ``args``); every failure becomes a CheckpointError naming the file."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name and a one-line cause
        match = _UNSUPPORTED_GLOBAL.search(str(exc))
        if match:
            cause = (
                f"refusing to load: the file references the global '{match.group(1)}', which a weights-only "
                "load does not allow (unpickling it could run code); nothing was executed"
            )
        else:
            cause = f"cannot read the file as a torch checkpoint (corrupt or truncated?): {one_line(exc)}"
        raise CheckpointError(cause, path) from exc


def refuse_overwriting_input(out: Path, inputs) -> None:
    for src in inputs:
        if src is None:
            continue
        src = Path(src)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            same = os.path.samefile(out, src)
        if same:
            raise CheckpointError(f"refusing to overwrite the input file {src}", out)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write) -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then move it into place.

    A failure leaves ``path`` as it was (absent or the old file) and removes the temporary file.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the output directory does not exist", str(parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
