"""The one place where images change between uint8 pixels and the toolkit's float convention ([-1, 1])."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., C, H, W]`` in [0, 255] -> float32 in [-1, 1] (0 -> -1, 255 -> 1), on the same device."""
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images))
    if images.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images in [0, 255], got dtype {images.dtype}")
    return images.to(torch.float32) / 127.5 - 1


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float images in [-1, 1] -> uint8 in [0, 255], rounded to nearest; values outside [-1, 1] are clipped."""
    if not torch.is_floating_point(images):
        raise TypeError(f"to_uint8 expects float images in [-1, 1], got dtype {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError("to_uint8: the images contain NaN or inf")
    return ((images.detach() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 0) -> torch.Tensor:
    """Tile ``[N, C, H, W]`` images (uint8 or float in [-1, 1]) into one uint8 ``[C, rows*H, nrow*W]`` image.

    Empty cells (when N is not a multiple of ``nrow``) and the ``padding`` between cells are black.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(images.shape)}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {images.shape[1]} (shape {tuple(images.shape)})")
    if images.shape[0] == 0:
        raise ValueError("make_grid: no images")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    pixels = images.detach().cpu() if images.dtype == torch.uint8 else to_uint8(images.cpu())
    n, c, h, w = pixels.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.zeros(c, rows * (h + padding) - padding, cols * (w + padding) - padding, dtype=torch.uint8)
    for i in range(n):
        y, x = (i // cols) * (h + padding), (i % cols) * (w + padding)
        grid[:, y:y + h, x:x + w] = pixels[i]
    return grid


def save_grid(images: torch.Tensor, path, nrow: int = 8, padding: int = 0) -> Path:
    """Save ``[N, C, H, W]`` images (uint8, or float in [-1, 1]) as one PNG grid with ``nrow`` images a row."""
    from PIL import Image

    grid = make_grid(images, nrow=nrow, padding=padding)
    array = grid.permute(1, 2, 0).numpy()
    image = Image.fromarray(array[:, :, 0], "L") if array.shape[2] == 1 else Image.fromarray(array, "RGB")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
