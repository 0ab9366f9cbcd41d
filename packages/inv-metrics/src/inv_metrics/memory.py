"""Peak memory of one call, as the benchmarks report it: the CUDA allocator's peak on a GPU, else the growth of
the process's resident set sampled every millisecond (after freed heap is given back to the OS, so that every
measurement starts from the same point)."""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from collections.abc import Callable

import torch

__all__ = ["peak_growth"]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement starts from a less settled heap
        pass


def peak_growth(fn: Callable[[], object], device=None) -> tuple[object, int]:
    """``(fn(), peak memory growth in bytes while it ran)`` on ``device`` (default: the CPU)."""
    _trim()
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        return out, torch.cuda.max_memory_allocated(device) - start
    start, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        out = fn()
    finally:
        done.set()
        thread.join()
    return out, max(peak[0], _rss()) - start
