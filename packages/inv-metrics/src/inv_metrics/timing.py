"""Inference time: warm-up excluded, the device synchronised before each clock read, seconds per image.

The reference evaluation times each batch with ``time.time()`` without synchronising and with the first batch
included; on a GPU that measures kernel launches, not work. Here CUDA work is waited for
(``torch.cuda.synchronize``) whenever the tensors live on a CUDA device. The clock and the synchronisation are
injectable, so the arithmetic is testable without a GPU or real time passing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch


def synchronize_for(tensor_or_device) -> None:
    """Wait for queued work on the device of a tensor (or a device); nothing to do on the CPU."""
    device = tensor_or_device.device if isinstance(tensor_or_device, torch.Tensor) else torch.device(tensor_or_device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """``with Timer(device) as t: ...`` then ``t.seconds``; synchronises the device on entry and exit (and at
    each ``t.lap()``)."""

    def __init__(
        self,
        device="cpu",
        clock: Callable[[], float] = time.perf_counter,
        synchronize: Callable[[object], None] = synchronize_for,
    ):
        self.device, self.clock, self.synchronize = device, clock, synchronize
        self.seconds: float | None = None

    def __enter__(self) -> Timer:
        self.synchronize(self.device)
        self._start = self.clock()
        return self

    def __exit__(self, *exc) -> None:
        self.synchronize(self.device)
        self.seconds = self.clock() - self._start

    def lap(self) -> float:
        """Seconds since entry so far (the device synchronised): a split time inside the span."""
        self.synchronize(self.device)
        return self.clock() - self._start


@dataclass
class TimingResult:
    seconds_per_image: float
    images_per_second: float
    total_seconds: float
    num_images: int
    warmup_batches: int
    batch_seconds: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.seconds_per_image * 1000:.3f} ms/image ({self.images_per_second:.2f} images/s) over "
            f"{self.num_images} images, {self.warmup_batches} warm-up batch(es) excluded"
        )


def time_per_image(
    fn: Callable[[torch.Tensor], object],
    batches: Sequence[torch.Tensor],
    *,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
    synchronize: Callable[[object], None] = synchronize_for,
) -> TimingResult:
    """Run ``fn`` on the first batch ``warmup`` times untimed, then time ``fn`` on every batch.

    Each batch's time runs from a synchronised start to a synchronised end on the batch's device.
    Returns seconds per image (total time / total images) and images per second.
    """
    batches = list(batches)
    if not batches:
        raise ValueError("time_per_image needs at least one batch")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    with torch.no_grad():
        for _ in range(warmup):
            fn(batches[0])
        times, count = [], 0
        for batch in batches:
            with Timer(batch.device, clock, synchronize) as t:
                fn(batch)
            times.append(t.seconds)
            count += len(batch)
    total = sum(times)
    return TimingResult(total / count, count / total if total > 0 else float("inf"), total, count, warmup, times)
