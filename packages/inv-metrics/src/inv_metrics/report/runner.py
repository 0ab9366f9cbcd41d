"""One method under the report's protocol: build, warm up, time every batch, reconstruct and edit.

Whatever goes wrong (an unknown name, bad options, an exception while inverting) ends up in
``MethodResult.error`` instead of stopping the report.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import torch

from ..timing import Timer, TimingResult


@dataclass
class MethodResult:
    name: str
    options: dict
    reconstructions: torch.Tensor | None = None  # [N, C, R, R] on the images' device
    edits: torch.Tensor | None = None  # the first ``edit_count`` images edited
    timing: TimingResult | None = None
    space: str | None = None
    error: str | None = None
    details: dict = field(default_factory=dict)


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def run_method(name: str, generator, images: torch.Tensor, *, batch_size: int, options: dict, direction=None,
               edit_strength: float = 3.0, edit_count: int = 8, warmup_images: int = 1,
               progress=None) -> MethodResult:
    """Build ``name`` with ``options`` and run it on ``images`` batch by batch.

    The warm-up is one untimed call on the first ``warmup_images`` images. Each batch's timed span runs
    from the method call to its rendered reconstruction, the device synchronised at both ends.
    ``progress`` (a tqdm bar or None) is advanced by the number of images of each batch.
    """
    from sg2_core import create_method

    result = MethodResult(name, options)
    stage = "building it"
    try:
        method = create_method(name, generator=generator, **options)
        result.space = method.space
        stage = "the warm-up call"
        method(images[:warmup_images])
        recon, edits, seconds = [], [], []
        for i, batch in enumerate(images.split(batch_size)):
            stage = f"batch {i}"
            with Timer(batch.device) as t:
                inversion = method(batch)
                with torch.no_grad():
                    recon.append(inversion.render().detach())
            seconds.append(t.seconds)
            if direction is not None and sum(len(e) for e in edits) < edit_count:
                with torch.no_grad():
                    part = inversion[: edit_count - sum(len(e) for e in edits)]
                    edits.append(part.edit(direction, edit_strength).render().detach())
            if progress is not None:
                progress.update(len(batch))
    except Exception as error:  # noqa: BLE001 - a failing method becomes a row with its error
        result.error = f"{_error_text(error)} (while {stage})"
        result.details["traceback"] = traceback.format_exc(limit=-3)
        return result
    total, count = sum(seconds), len(images)
    result.timing = TimingResult(total / count, count / total if total > 0 else float("inf"), total, count,
                                 warmup_batches=1, batch_seconds=seconds)
    result.reconstructions = torch.cat(recon)
    result.edits = torch.cat(edits) if edits else None
    if tuple(result.reconstructions.shape) != tuple(images.shape):
        result.error = (f"the reconstructions have shape {list(result.reconstructions.shape)}, the images "
                        f"{list(images.shape)}")
        result.reconstructions = result.edits = None
    return result
