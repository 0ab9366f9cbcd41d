"""The device a command runs on: the GPU when there is one, else the CPU; a named device is checked first.

Commands call ``resolve_device(args.device)`` before any work, so ``--device cuda`` on a machine without a
usable GPU is a one-line error instead of a RuntimeError deep inside torch. This is the one implementation;
``sg2_core.invert``, the trainers and the metrics commands all use it.
"""

from __future__ import annotations

import torch

from sg2_core.errors import UsageError


def default_device(local_rank: int = 0) -> torch.device:
    """``cuda:local_rank`` when CUDA is available, else ``cpu``."""
    return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")


def resolve_device(spec=None, *, option: str = "--device", local_rank: int = 0) -> torch.device:
    """``spec`` (e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``) checked against this machine, or the default.

    Raises ``UsageError`` (a ``ValueError``) with a one-line message for an unknown device or one that is not
    present (CUDA or MPS missing, a CUDA index past the device count).
    """
    if spec is None or spec == "":
        return default_device(local_rank)
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError, ValueError) as error:
        raise UsageError(f"{option} {spec!r} is not a device (e.g. cpu, cuda, cuda:1): {error}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise UsageError(f"{option} {spec}: {why} (torch {torch.__version__}); use {option} cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UsageError(f"{option} {spec}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{option} {spec}: MPS is not available here; use {option} cpu")
    return device
