"""The per-layer noise maps the projector optimises: the autocorrelation regulariser and renormalisation.

Maps are ``[N, 1, r, r]`` (one per sample), and both functions work per sample, so a sample's
result never depends on the others in its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def noise_regularization(maps) -> torch.Tensor:
    """Per-sample ``[N]`` penalty on spatial autocorrelation of the noise maps, at every scale.

    For each map and its 2x average-pooled versions (down to 8x8, or the map itself when smaller):
    ``mean(n * roll(n, 1, W))^2 + mean(n * roll(n, 1, H))^2``, the means taken per sample.
    Pure white noise scores about 0; any structure the optimiser hides in a map scores higher.
    """
    total = None
    for n in maps:
        while True:
            dims = list(range(1, n.ndim))
            across = (n * n.roll(shifts=1, dims=-1)).mean(dim=dims).square()
            down = (n * n.roll(shifts=1, dims=-2)).mean(dim=dims).square()
            total = across + down if total is None else total + across + down
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    if total is None:
        raise ValueError("noise_regularization needs at least one noise map")
    return total


@torch.no_grad()
def normalize_maps_(maps) -> None:
    """In place, each sample's map to zero mean and unit (population) std, as after every projector step."""
    for n in maps:
        dims = list(range(1, n.ndim))
        n.sub_(n.mean(dim=dims, keepdim=True))
        n.mul_(n.square().mean(dim=dims, keepdim=True).rsqrt())
