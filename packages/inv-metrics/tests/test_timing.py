"""Timing arithmetic with an injected clock and synchronisation (no real time is measured)."""

import pytest
import torch

from inv_metrics import Timer, time_per_image


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_warmup_excluded_and_synchronised_around_each_batch():
    clock, events = FakeClock(), []
    batches = [torch.zeros(4, 3, 2, 2), torch.zeros(4, 3, 2, 2), torch.zeros(2, 3, 2, 2)]

    def fn(batch):
        events.append(("run", len(batch)))
        clock.now += 0.5 * len(batch)  # "work" costs 0.5 s per image

    result = time_per_image(fn, batches, warmup=2, clock=clock, synchronize=lambda d: events.append(("sync", d)))
    assert result.num_images == 10 and result.warmup_batches == 2
    assert result.batch_seconds == [2.0, 2.0, 1.0]  # the two warm-up runs are not counted
    assert result.seconds_per_image == pytest.approx(0.5)
    assert result.images_per_second == pytest.approx(2.0)
    assert events[:2] == [("run", 4), ("run", 4)]  # warm-up
    assert events[2][0] == "sync" and events[3] == ("run", 4) and events[4][0] == "sync"
    assert "ms/image" in str(result)


def test_timer_context_and_errors():
    clock = FakeClock()
    with Timer("cpu", clock=clock, synchronize=lambda d: None) as t:
        clock.now = 3.25
    assert t.seconds == 3.25
    syncs = []
    with Timer("cpu", clock=clock, synchronize=syncs.append) as t:
        clock.now = 4.0
        assert t.lap() == pytest.approx(0.75) and len(syncs) == 2  # a split time, the device synchronised
        clock.now = 5.0
    assert t.seconds == pytest.approx(1.75) and len(syncs) == 3
    with pytest.raises(ValueError, match="at least one batch"):
        time_per_image(lambda b: None, [])
    with pytest.raises(ValueError, match="warmup"):
        time_per_image(lambda b: None, [torch.zeros(1)], warmup=-1)


def test_real_clock_on_cpu_runs():
    result = time_per_image(lambda b: b * 2, [torch.zeros(3, 1, 4, 4)])
    assert result.num_images == 3 and result.total_seconds >= 0
