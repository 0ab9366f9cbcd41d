"""One method under the report's protocol: build, warm up, time every batch, reconstruct and edit.

Whatever goes wrong (an unknown name, bad options, an exception while inverting) ends up in
``MethodResult.error`` instead of stopping the report. Reconstructions are handed batch by batch to
``on_batch`` (the metrics) and only the first ``keep`` are kept (the grid), so memory does not grow with
the number of images. An image-to-image method (``input_condition``, e.g. 'edges') is given the condition
maps of the images (``sg2_core.methods.conditions``) and scored against the images themselves.
"""

from __future__ import annotations

import inspect
import traceback
from dataclasses import dataclass, field

import torch

from ..timing import Timer, TimingResult
from .inputs import as_source
from .latent_stats import LatentStats


@dataclass
class MethodResult:
    name: str
    options: dict
    reconstructions: torch.Tensor | None = None  # the first ``keep`` reconstructions [k, C, R, R]
    edits: torch.Tensor | None = None  # the first ``keep`` images edited
    grid_edits: dict = field(default_factory=dict)  # {label: the first ``keep`` images} of each of ``grid_edits``
    condition: str | None = None  # an image-to-image method's input condition
    inputs: torch.Tensor | None = None  # the first ``keep`` condition maps it was given
    showcase: dict = field(default_factory=dict)  # {label: the first ``keep`` images} from Method.showcase
    timing: TimingResult | None = None
    space: str | None = None
    error: str | None = None
    details: dict = field(default_factory=dict)


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def accepts_callback(name: str) -> bool:
    """Whether method ``name`` takes ``callback=`` (every ``sg2_core.Method`` does; older factories may not)."""
    from sg2_core import method_factory

    try:
        factory = method_factory(name)
    except Exception:  # noqa: BLE001 - create_method reports it in the row
        return False
    try:
        from sg2_core.methods.method import Method

        if isinstance(factory, type) and issubclass(factory, Method):
            return True
    except ImportError:
        pass
    try:
        return "callback" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def run_method(
    name: str,
    generator,
    images,
    *,
    batch_size: int,
    options: dict,
    direction=None,
    edit_strength: float = 3.0,
    edit_count: int = 8,
    warmup_images: int = 1,
    progress=None,
    on_batch=None,
    on_step=None,
    on_edits=None,
    iteration_metrics=None,
    grid_edits=None,
) -> MethodResult:
    """Build ``name`` with ``options`` and run it on ``images`` (a tensor or an ``ImageSource``) batch by batch.

    The warm-up is one untimed call on the first ``warmup_images`` images. Each batch's timed span runs
    from the method call to its rendered reconstruction, the device synchronised at both ends.
    ``on_batch(inputs, reconstructions)`` receives every batch after its timed span; ``on_step(batch,
    batches, info)`` every ``sg2_core.StepInfo`` of methods that take ``callback=``; ``progress`` (a tqdm bar
    or None) is advanced by the number of images of each batch; ``on_edits(inputs, edited)`` receives every
    batch's edit along ``direction`` (untimed). ``grid_edits`` (``{label: (direction, strength)}``) are more
    edits, made of the first ``edit_count`` images only (the grid's, untimed). ``details`` gets :class:`LatentStats`' figures (with
    ``iteration_metrics`` after each iteration of an iterative method, and the split times of its iterations:
    the device is synchronised at every step a method reports). The condition maps of an image-to-image
    method are made before the timed span (a user hands them in).
    """
    from sg2_core import create_method
    from sg2_core.methods.conditions import apply_condition

    source = as_source(images)
    result = MethodResult(name, options)
    stage, current = "building it", {"batch": 0, "timer": None}
    num_batches = -(-len(source) // batch_size)
    laps = []  # (steps, split seconds) of each step reported in the current batch's timed span

    def step(info) -> None:
        if current["timer"] is not None:
            laps.append((info.steps, current["timer"].lap()))
        if on_step is not None:
            on_step(current["batch"], num_batches, info)

    try:
        extra = {"callback": step} if accepts_callback(name) else {}
        method = create_method(name, generator=generator, **options, **extra)
        result.space = method.space
        result.condition = getattr(method, "input_condition", None)

        def given(images):
            return images if result.condition is None else apply_condition(result.condition, images)

        stage = "the warm-up call"
        current["batch"] = -1  # the warm-up
        method(given(source.batch(0, warmup_images)))
        kept, edits, inputs, seconds, stats = [], [], [], [], LatentStats(iteration_metrics)
        showcase = getattr(method, "showcase", None)
        shown: dict[str, list] = {}
        grid_edited: dict[str, list] = {}
        for i, batch in enumerate(source.batches(batch_size)):
            stage, current["batch"] = f"batch {i}", i
            method_input = given(batch)
            laps.clear()
            timer = current["timer"] = Timer(batch.device)
            with timer:
                inversion = method(method_input)
                with torch.no_grad():
                    recon = inversion.render().detach()
            seconds.append(timer.seconds)
            current["timer"] = None
            if tuple(recon.shape) != tuple(batch.shape):
                raise ValueError(f"the reconstructions have shape {list(recon.shape)}, the images {list(batch.shape)}")
            if on_batch is not None:
                on_batch(batch, recon)
            stats.add(batch, inversion, laps)
            edited = None
            if direction is not None and (on_edits is not None or sum(len(e) for e in edits) < edit_count):
                with torch.no_grad():
                    edited = inversion.edit(direction, edit_strength).render().detach()
                if on_edits is not None:
                    on_edits(batch, edited)
            held = sum(len(k) for k in kept)
            if held < edit_count:
                kept.append(recon[: edit_count - held])
                if result.condition is not None:
                    inputs.append(method_input[: edit_count - held])
                if edited is not None:
                    edits.append(edited[: edit_count - held])
                with torch.no_grad():
                    for label, (grid_direction, strength) in (grid_edits or {}).items():
                        moved = inversion[: edit_count - held].edit(grid_direction, strength).render().detach()
                        grid_edited.setdefault(label, []).append(moved)
                if showcase is not None:
                    stage = f"batch {i}'s showcase"
                    with torch.no_grad():
                        for label, images in showcase(inversion, method_input).items():
                            shown.setdefault(label, []).append(images.detach()[: edit_count - held])
            if progress is not None:
                progress.update(len(batch))
    except Exception as error:  # noqa: BLE001 - a failing method becomes a row with its error
        result.error = f"{_error_text(error)} (while {stage})"
        result.details["traceback"] = traceback.format_exc(limit=-3)
        return result
    total, count = sum(seconds), len(source)
    result.timing = TimingResult(
        total / count,
        count / total if total > 0 else float("inf"),
        total,
        count,
        warmup_batches=1,
        batch_seconds=seconds,
    )
    result.details.update(stats.result())
    result.reconstructions = torch.cat(kept)
    result.edits = torch.cat(edits) if edits else None
    result.inputs = torch.cat(inputs) if result.condition is not None else None
    result.showcase = {label: torch.cat(images) for label, images in shown.items()}
    result.grid_edits = {label: torch.cat(images) for label, images in grid_edited.items()}
    return result
