"""Input checks and conversions shared by every metric: images are float [N, C, H, W] in [-1, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sg2_core.images import require_float, to_float, to_uint8
from sg2_core.moved import renamed

__all__ = ["check_images", "check_pair", "evaluation_size", "to_float", "to_rgb", "to_uint8", "to_unit"]


def check_images(x, what: str = "images", channels=(1, 3)) -> None:
    """Raise a clear error unless ``x`` is a float [N, C, H, W] tensor with C in ``channels``, no NaN (a wrong
    dtype: ``sg2_core.images.ImageDtypeError``, a ValueError, as every method raises)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{what} must be [N, C, H, W], got shape {tuple(x.shape)}")
    require_float(x, what)
    if channels is not None and x.shape[1] not in channels:
        raise ValueError(f"{what} must have {' or '.join(map(str, channels))} channels, got {x.shape[1]}")
    if x.numel() and torch.isnan(x).any():
        raise ValueError(f"{what} contains NaN")


def check_pair(x, y, channels=(1, 3)) -> None:
    check_images(x, "x", channels)
    check_images(y, "y", channels)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (clamped), what piq and ToTensor-based code expect."""
    return ((x + 1) / 2).clamp(0, 1)


# The converters are sg2-core's (to_float, to_uint8), so the whole toolkit has one formula: x / 127.5 - 1
# (ToTensor() then Normalize(0.5, 0.5) up to float rounding), and back with rounding and clipping (what saving a
# PNG does). from_uint8 was a second name for to_float.
__getattr__ = renamed(__name__, {"from_uint8": "sg2_core.images.to_float"}, removed_in="inv-metrics 0.7")


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Replicate a single channel to three (for ImageNet-trained networks)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def evaluation_size(x: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    """Resize [-1, 1] images to the evaluation size the way the reference scripts' file pipelines do.

    ``mode='bilinear'``: torchvision ``Resize`` with antialiasing (L2 and LPIPS at 256 in pSp/HyperInverter);
    ``mode='bicubic'``: antialiased bicubic, close to PIL's default ``resize`` (PSNR / MS-SSIM). Works on
    floats, so it differs from resizing uint8 files by the rounding only. A no-op at the same size.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"mode must be 'bilinear' or 'bicubic', got {mode!r}")
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)
