"""The perceptual distance the optimisers minimise: a name resolved through inv-metrics, or any module.

A distance takes two image batches ``[N, C, H, W]`` in [-1, 1] and returns one differentiable value per
image, ``[N]``. Names are resolved lazily (``inv_metrics.load_distance``), at the first call, so
building a method costs nothing and a missing weight file is reported when it is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Above this size both images are area-downsampled first, as the official projector does.
MAX_DISTANCE_RESOLUTION = 256


def default_distance(generator, family: str = "projector") -> str:
    """``'fmnist'`` for the 1-channel 32 px demo domain; else LPIPS-VGG (NVIDIA's projector) or
    LPIPS-Alex (PTI's tuning loss) by ``family``."""
    if generator.img_channels == 1 and generator.img_resolution == 32:
        return "fmnist"
    return "lpips-alex" if family == "pti" else "lpips-vgg"


def downsample(images: torch.Tensor, size: int = MAX_DISTANCE_RESOLUTION) -> torch.Tensor:
    if images.shape[-1] <= size:
        return images
    return F.interpolate(images, size=(size, size), mode="area")


class Distance:
    """Wraps a distance name or callable; resolves a name on first use, on the images' device."""

    def __init__(self, distance, device=None):
        if not (isinstance(distance, str) or callable(distance)):
            raise ValueError(
                f"distance must be a name (e.g. 'lpips-vgg') or a callable (x, y) -> [N], got {type(distance).__name__}"
            )
        self.spec, self.device = distance, device
        self._fn = None if isinstance(distance, str) else distance

    @property
    def name(self) -> str:
        return self.spec if isinstance(self.spec, str) else getattr(self.spec, "name", type(self.spec).__name__)

    def resolve(self, device=None):
        if self._fn is None:
            try:
                from inv_metrics import load_distance
            except ImportError as error:
                raise ImportError(
                    f"distance {self.spec!r} is resolved through inv_metrics.load_distance, which "
                    f"could not be imported ({error}); install inv-metrics or pass a module"
                ) from error
            fn = load_distance(self.spec, device=self.device or device)
            if isinstance(fn, torch.nn.Module):
                fn.eval().requires_grad_(False)
            self._fn = fn
        return self._fn

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = self.resolve(x.device)(x, y)
        if not isinstance(d, torch.Tensor) or d.shape != (x.shape[0],):
            got = list(d.shape) if isinstance(d, torch.Tensor) else type(d).__name__
            raise ValueError(f"distance {self.name!r} must return one value per image [{x.shape[0]}], got {got}")
        return d
