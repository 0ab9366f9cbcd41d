"""What the report measures on the inversions themselves, beside their images: how far the codes lie from W
(the spread of the per-layer codes) and, for iterative encoders, the quality at every iteration."""

from __future__ import annotations

import torch


class LatentStats:
    """Accumulates over batches: ``w_spread``, the mean over images of the mean over layers of
    ``||w_l - mean_l w||`` (0 for a W code repeated; e4e's codes should lie closer to W than pSp's), and the
    MSE of ``extras['reconstructions']`` ``[N, T, C, R, R]`` at each iteration t (ReStyle)."""

    def __init__(self):
        self.spread, self.count = 0.0, 0
        self.iteration_sums: list[float] | None = None

    @torch.no_grad()
    def add(self, images: torch.Tensor, inversion) -> None:
        ws = inversion.ws.detach().double()
        self.spread += float((ws - ws.mean(dim=1, keepdim=True)).norm(dim=2).mean(dim=1).sum())
        self.count += len(images)
        steps = inversion.extras.get("reconstructions")
        if isinstance(steps, torch.Tensor) and steps.ndim == 5 and steps.shape[0] == len(images):
            err = (steps.double() - images.double()[:, None]).square().flatten(2).mean(2).sum(0)
            sums = err.tolist()
            self.iteration_sums = (
                sums if self.iteration_sums is None else [a + b for a, b in zip(self.iteration_sums, sums)]
            )

    def result(self) -> dict:
        out = {"w_spread": self.spread / self.count if self.count else None}
        if self.iteration_sums is not None:
            out["per_iteration_mse"] = [s / self.count for s in self.iteration_sums]
        return out
