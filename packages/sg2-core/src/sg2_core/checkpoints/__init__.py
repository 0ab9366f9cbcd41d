"""Checkpoint I/O: our safetensors format, rosinality ``.pt`` files and NVIDIA network pickles.

* :func:`load_checkpoint` reads any of them, recognising the format by content (safetensors header,
  zip / pickle magic, the keys inside), and returns a :class:`Checkpoint` with ready networks.
* :func:`save_checkpoint` writes our format (``.safetensors``) or rosinality's (``.pt``).
* ``python -m sg2_core.convert IN OUT`` converts between them.

Reading is one pipeline for every format: read the file, classify what it holds, configure each network,
map its keys to ours, build it, settle ``w_avg`` (:mod:`sg2_core.checkpoints.base`); each format module gives
its own steps (``native``, ``rosinality``, ``nvidia``, whose pickles ``nvidia_pickle`` reads as plain data).

Reading never executes code from a file: torch files are read with ``weights_only=True`` and NVIDIA
pickles with an allow-list unpickler that never runs their embedded source. Mismatched tensors are
refused with one error listing every missing, unexpected and mis-shaped key; unreadable files raise
:class:`CheckpointError` naming the file. Writes are atomic.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sg2_core.checkpoints import native, nvidia, nvidia_pickle, rosinality
from sg2_core.checkpoints._io import check_input, sniff, torch_load
from sg2_core.checkpoints.base import Checkpoint, build_checkpoint
from sg2_core.checkpoints.errors import CheckpointError, CheckpointKeyError, CheckpointWarning, UnsafePickleError

FORMATS = ("native", "rosinality", "nvidia-pickle", "nvidia-state")
"""Readable formats. ``nvidia-state`` is a ``torch.save``'d NVIDIA-named state dict (``G.state_dict()``),
or a dict of them under ``G`` / ``D`` / ``G_ema``."""
WRITABLE_FORMATS = ("native", "rosinality")
_EXTENSIONS = {".safetensors": "native", ".pt": "rosinality", ".pth": "rosinality", ".ckpt": "rosinality"}

__all__ = [
    "FORMATS",
    "WRITABLE_FORMATS",
    "Checkpoint",
    "CheckpointError",
    "CheckpointKeyError",
    "CheckpointWarning",
    "UnsafePickleError",
    "detect_format",
    "load_checkpoint",
    "native",
    "nvidia",
    "nvidia_pickle",
    "output_format",
    "rosinality",
    "save_checkpoint",
]

_READERS = {r.format: r for r in (native.READER, rosinality.READER, nvidia.SNAPSHOT, nvidia.STATE_DICT)}
_ROSINALITY_MARKERS = ("style.1.weight", "input.input", "final_linear.0.weight", "convs.0.0.weight")


def load_checkpoint(
    path, format: str | None = None, *, g_config=None, d_config=None, compute_w_avg: bool | int = False, device=None
) -> Checkpoint:
    """Read a checkpoint in any supported format; the format is recognised from the content.

    Args:
        format: one of :data:`FORMATS` to skip detection.
        g_config / d_config: for formats without stored configs (rosinality, NVIDIA state dicts): a
            config to use instead of inferring one from the tensors, or a dict of overrides for it.
        compute_w_avg: where a generator's ``mapping.w_avg`` is unknown (a rosinality file without
            ``latent_avg``, a NaN in the file), estimate it with ``Generator.mean_w`` (``True`` = 10000
            samples, or an int). Without it such a ``w_avg`` stays NaN, with one warning.
        device: move the networks there (they are built on the CPU).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable, corrupt or unsafe file; CheckpointKeyError (a subclass) when the
            tensors do not match the architecture, listing every key.
    """
    path = check_input(path)
    format, raw = _read(path, format)
    ckpt = build_checkpoint(
        _READERS[format], raw, path, g_config=g_config, d_config=d_config, compute_w_avg=compute_w_avg
    )
    return ckpt.to(device) if device is not None else ckpt


def detect_format(path) -> str:
    """One of :data:`FORMATS`, from the file's content (not its extension)."""
    return _detect(check_input(path))[0]


def _read(path: Path, format: str | None) -> tuple[str, object]:
    """Stage 1: ``(format, the file read as that format's raw object)``; the format is detected unless given."""
    raw = None
    if format is None:
        format, raw = _detect(path)
    elif format not in FORMATS:
        raise ValueError(f"unknown checkpoint format {format!r}; known: {FORMATS}")
    return format, _READERS[format].read(path) if raw is None else raw


def _detect(path: Path) -> tuple[str, object]:
    """``(format, the loaded object or None)``: a torch file is loaded to tell its format, and only once."""
    kind = sniff(path)
    if kind == "safetensors":
        return "native", None
    if kind == "pickle":
        return "nvidia-pickle", None
    if kind is None:
        size = path.stat().st_size
        cause = (
            "the file is empty"
            if size == 0
            else ("unrecognised file format: not safetensors, a torch checkpoint (zip or legacy) or a pickle")
        )
        raise CheckpointError(cause, path)
    obj = torch_load(path)
    format = _torch_format(obj)
    if format is None:
        shown = sorted(map(str, obj))[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(f"unrecognised torch checkpoint: neither rosinality nor NVIDIA keys ({shown})", path)
    return format, obj


def _torch_format(obj) -> str | None:
    """The format of a dict read with torch.load, from its keys."""
    if not isinstance(obj, Mapping):
        return None
    keys = {k for k in obj if isinstance(k, str)}
    if keys & {"g_ema", "g", "d"} or any(k in keys for k in _ROSINALITY_MARKERS):
        return "rosinality"
    if (
        "state_dict" in keys
        and isinstance(obj["state_dict"], Mapping)
        and any(isinstance(k, str) and k.startswith("decoder.") for k in obj["state_dict"])
    ):
        return "rosinality"
    if any(k.startswith(("mapping.fc", "synthesis.b")) for k in keys) or "b4.fc.weight" in keys:
        return "nvidia-state"
    if keys & {"G", "D", "G_ema"} and all(isinstance(obj[k], Mapping) for k in keys & {"G", "D", "G_ema"}):
        return "nvidia-state"
    return None


def output_format(path, format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given, else from the extension."""
    if format is not None:
        if format not in WRITABLE_FORMATS:
            raise ValueError(f"cannot write format {format!r}; writable: {WRITABLE_FORMATS}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix == ".pkl":
        raise ValueError(
            "writing NVIDIA pickles is not supported (they embed NVIDIA's source code); "
            "write .safetensors (native) or .pt (rosinality)"
        )
    if suffix not in _EXTENSIONS:
        raise ValueError(
            f"cannot tell the output format from the extension {suffix or '(none)'!r}: use "
            ".safetensors (native) or .pt (rosinality), or pass the format explicitly"
        )
    return _EXTENSIONS[suffix]


def save_checkpoint(path, checkpoint: Checkpoint, format: str | None = None) -> Path:
    """Write ``checkpoint``'s networks as ``native`` (with ``extra``) or ``rosinality``; atomic."""
    format = output_format(path, format)
    if format == "native":
        return native.save(path, G=checkpoint.G, D=checkpoint.D, G_ema=checkpoint.G_ema, extra=checkpoint.extra)
    return rosinality.save(path, G=checkpoint.G, D=checkpoint.D, G_ema=checkpoint.G_ema)
