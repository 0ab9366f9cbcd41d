"""The perceptual distance the optimisers minimise: a name resolved through inv-metrics, or any module.

A distance takes two image batches ``[N, C, H, W]`` in [-1, 1] and returns one differentiable value per
image, ``[N]``. Names are resolved lazily (``inv_metrics.load_distance``), at the first call, so
building a method costs little; :meth:`Distance.check_weights` makes sure at build time that the weight file
a named distance will need is there, so a missing file is one line before any work, not a traceback from
deep inside the first step.
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

    def check_weights(self, method: str, option: str = "distance") -> None:
        """Raises ``sg2_core.methods.weights.MissingWeightsError`` (a ValueError) naming ``method``'s ``option``,
        the file and where it comes from, when this is a named LPIPS distance whose trunk file is missing."""
        if not (isinstance(self.spec, str) and self.spec.startswith("lpips-")):
            return
        try:
            from inv_metrics.errors import MissingWeightsError as NotFound
            from inv_metrics.lpips_distance import TRUNK_FILES, trunk_path
        except ImportError:  # reported with its fix at the first call (resolve)
            return
        net = self.spec.removeprefix("lpips-")
        if net not in TRUNK_FILES:
            return  # an unknown name: load_distance lists the known ones
        try:
            trunk_path(net)
        except NotFound as error:
            from sg2_core.methods.weights import MissingWeightsError

            file = TRUNK_FILES[net]
            raise MissingWeightsError(
                f"{method}: {option}={self.spec!r} needs torchvision's ImageNet {net} weights {file}, not found in "
                f"{', '.join(error.searched)}: put the file there (it is "
                f"https://download.pytorch.org/models/{file}, which torchvision saves there; $TORCH_HOME moves "
                f"the folder), or pass {option}= another distance"
            ) from None

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
