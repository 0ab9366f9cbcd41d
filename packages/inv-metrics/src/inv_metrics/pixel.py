"""Pixel metrics: L2 (MSE), PSNR, SSIM and MS-SSIM, per image.

All take float [N, C, H, W] images in [-1, 1] (the project's convention) and return [N].
``mse`` works on [-1, 1] directly, as pSp/HyperInverter's L2 does (so it is 4x the MSE on [0, 1]).
PSNR, SSIM and MS-SSIM convert to [0, 1] themselves (``(x + 1) / 2``, clamped) and call piq with
``data_range=1`` and its defaults (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, the five standard
MS-SSIM scale weights), which is what HyperInverter's evaluation does. Colour is kept (no grey conversion).
Evaluate at the paper's size with :func:`inv_metrics.images.evaluation_size` first if needed.
"""

from __future__ import annotations

import torch

from .images import check_pair, to_unit

MS_SSIM_MIN_SIZE = 161  # (11 - 1) * 2**4 + 1: the 11-px window must fit at the fifth scale


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on [-1, 1] values (the 'L2' column of the inversion tables)."""
    check_pair(x, y, channels=None)
    return (x - y).square().flatten(1).mean(dim=1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image, piq's ``-10 log10(mse + 1e-8)`` on [0, 1] RGB (80 dB for identical images)."""
    import piq

    check_pair(x, y, channels=None)
    return piq.psnr(to_unit(x), to_unit(y), data_range=1.0, reduction="none")


def ssim(x: torch.Tensor, y: torch.Tensor, downsample: bool = True) -> torch.Tensor:
    """SSIM per image (piq defaults; ``downsample`` as piq: average-pool images larger than 256 px first)."""
    import piq

    check_pair(x, y, channels=None)
    return piq.ssim(to_unit(x), to_unit(y), data_range=1.0, reduction="none", downsample=downsample)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per image (piq defaults). Needs both sides >= 161 px: smaller images raise, never pad."""
    import piq

    check_pair(x, y, channels=None)
    h, w = x.shape[-2:]
    if min(h, w) < MS_SSIM_MIN_SIZE:
        raise ValueError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIZE}x{MS_SSIM_MIN_SIZE} px (five scales "
            f"of an 11x11 window), got {h}x{w}; report SSIM for images this small and say so"
        )
    return piq.multi_scale_ssim(to_unit(x), to_unit(y), data_range=1.0, reduction="none")
