"""What the report measures on the inversions themselves, beside their images: how far the codes lie from W
(the spread of the per-layer codes) and, for iterative encoders, the quality at every iteration and when it was
reached."""

from __future__ import annotations

import torch

from ..pixel import mse
from .metrics_table import Metric, MetricAccumulator


class LatentStats:
    """Accumulates over batches: ``w_spread``, the mean over images of the mean over layers of
    ``||w_l - mean_l w||`` (0 for a W code repeated; e4e's codes should lie closer to W than pSp's), and, for
    inversions whose ``extras['reconstructions']`` ``[N, T, C, R, R]`` keep every iteration (ReStyle):
    ``per_iteration_<key>``, each per-image metric of ``iteration_metrics`` (default: MSE) after each
    iteration, and ``per_iteration_seconds``, the seconds per image to the end of each iteration.

    The seconds come from ``laps``: ``(steps, seconds)`` for each step the method reported during a batch's
    timed span (``StepInfo.steps`` and the split time of the span then); the last T reports of T steps are
    the iterations. They are given only when every batch had them.
    """

    def __init__(self, iteration_metrics: list[Metric] | None = None):
        self.spread, self.count = 0.0, 0
        self.iteration_metrics = iteration_metrics or [Metric("mse", "MSE (L2 on [-1,1])", "pixels", mse)]
        self.iterations: list[MetricAccumulator] | None = None
        self.seconds: list[float] | None = []  # None once a batch lacks the iterations' split times

    @torch.no_grad()
    def add(self, images: torch.Tensor, inversion, laps=()) -> None:
        ws = inversion.ws.detach().double()
        self.spread += float((ws - ws.mean(dim=1, keepdim=True)).norm(dim=2).mean(dim=1).sum())
        self.count += len(images)
        steps = inversion.extras.get("reconstructions")
        if not (isinstance(steps, torch.Tensor) and steps.ndim == 5 and steps.shape[0] == len(images)):
            return
        if self.iterations is None:
            self.iterations = [MetricAccumulator(self.iteration_metrics) for _ in range(steps.shape[1])]
        for accumulator, reconstructions in zip(self.iterations, steps.unbind(1)):
            accumulator.add(images, reconstructions)
        splits = [seconds for total, seconds in laps if total == len(self.iterations)][-len(self.iterations) :]
        if self.seconds is None or len(splits) < len(self.iterations):
            self.seconds = None
        else:
            self.seconds = [a + b for a, b in zip(self.seconds, splits)] if self.seconds else splits

    def result(self) -> dict:
        out = {"w_spread": self.spread / self.count if self.count else None}
        if self.iterations:
            values = [accumulator.result()[0] for accumulator in self.iterations]
            for metric in self.iteration_metrics:
                series = [v.get(metric.key) for v in values]
                if None not in series:
                    out[f"per_iteration_{metric.key}"] = series
            if self.seconds:
                out["per_iteration_seconds"] = [s / self.iterations[0].count for s in self.seconds]
        return out
