"""Small pieces the projector and PTI share: per-sample random streams, frozen rows (the per-image seed rule is
sg2-core's, ``sg2_core.methods.seeds.per_image_seeds``)."""

from __future__ import annotations

import torch

from sg2_core import StepInfo  # noqa: F401 - re-exported: the progress record every method reports
from sg2_core.methods.method import check_device, generator_device  # noqa: F401 - re-exported


def sample_generators(seeds, device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]


def per_sample_randn(generators, shape, device) -> torch.Tensor:
    """``[N, *shape]``, sample ``i`` drawn from ``generators[i]``."""
    return torch.stack([torch.randn(shape, generator=g, device=device) for g in generators])


class FrozenRows:
    """Keeps the rows (samples) of some tensors unchanged across an optimiser step: how a sample that met
    its stop distance stops changing while the rest of the batch goes on (Adam's momentum would move it)."""

    def __init__(self, tensors, done: torch.Tensor):
        self.done = done
        self.saved = [t.detach()[done].clone() for t in tensors] if done.any() else None
        self.tensors = tensors

    @torch.no_grad()
    def restore(self) -> None:
        if self.saved is not None:
            for t, s in zip(self.tensors, self.saved):
                t[self.done] = s
