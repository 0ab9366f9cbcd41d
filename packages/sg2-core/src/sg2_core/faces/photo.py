"""A photo in any of the forms users hold, as the one array the face tools work on: uint8 RGB ``[H, W, 3]``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from sg2_core.images import ImageLoadError


def read_photo(photo, name: str | None = None) -> tuple[np.ndarray, str]:
    """``(pixels uint8 [H, W, 3], name)`` of ``photo``: a file path, a PIL image, a uint8 array ``[H, W, 3]`` /
    ``[H, W]`` or a uint8 tensor ``[3, H, W]`` / ``[1, H, W]`` (``sg2_core.images.read_image``'s layout).

    Files are turned upright by their EXIF orientation (as viewers show them; the references read the raw
    pixels, which only differs for such files); grey, palette and RGBA images become RGB. ``name`` (for
    messages) defaults to the file's path, else ``'the photo'``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(photo, (str, os.PathLike)):
        path = Path(photo)
        try:
            with Image.open(path) as image:
                pixels = np.array(ImageOps.exif_transpose(image).convert("RGB"))  # writable, as torch wants it
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise ImageLoadError(f"cannot read photo {path}: {error}") from None
        return pixels, name or str(path)
    name = name or "the photo"
    if isinstance(photo, Image.Image):
        return np.asarray(photo.convert("RGB")), name
    if isinstance(photo, torch.Tensor):
        if photo.ndim != 3 or photo.shape[0] not in (1, 3):
            raise ValueError(f"{name}: a photo tensor must be [3, H, W] or [1, H, W], got {list(photo.shape)}")
        photo = photo.detach().cpu().permute(1, 2, 0).numpy()
    pixels = np.asarray(photo)
    if pixels.dtype != np.uint8:
        raise ValueError(
            f"{name}: a photo must be uint8 pixels (a file, a PIL image, or a uint8 array or tensor), "
            f"got dtype {pixels.dtype}"
        )
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"{name}: a photo array must be [H, W, 3] or [H, W], got {list(pixels.shape)}")
    return np.ascontiguousarray(pixels), name
