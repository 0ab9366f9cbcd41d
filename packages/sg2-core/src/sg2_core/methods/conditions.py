"""Input conditions of image-to-image methods: what a user hands pSp instead of a generator image.

An image-to-image method (``Method.input_condition = "edges"``) takes a condition map and returns a
generator image. Its trainer makes the training pairs with :func:`apply_condition`, the report makes its
inputs the same way from the test images and scores the outputs against the originals, and a user can
turn their own images into the same kind of input::

    edges    Pillow's FIND_EDGES (a 3x3 Laplacian) per channel, stretched to 0-255 by autocontrast: an
             edge drawing, white outlines on black (Pillow leaves the 1-pixel border unfiltered: black
             for the demo's zero padding)
    lowres   the image averaged over 4x4 blocks and shown at full size (nearest): a 4x super-resolution input

Images are float ``[N, C, H, W]`` in [-1, 1]; the condition has the same shape, dtype and device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sg2_core.images import to_float, to_uint8

__all__ = ["CONDITIONS", "apply_condition", "edge_drawing", "edges", "lowres"]

LOWRES_FACTOR = 4


def edge_drawing(channel: np.ndarray) -> np.ndarray:
    """One uint8 ``[H, W]`` channel -> its edge drawing, uint8 ``[H, W]`` (Pillow FIND_EDGES + autocontrast);
    the one implementation (``edges`` per channel, AgileGAN's ``fmnist-edges`` exemplars)."""
    from PIL import Image, ImageFilter, ImageOps

    return np.asarray(ImageOps.autocontrast(Image.fromarray(channel).filter(ImageFilter.FIND_EDGES)))


def edges(images: torch.Tensor) -> torch.Tensor:
    """The edge drawing of every channel of every image (Pillow FIND_EDGES + autocontrast)."""
    u8 = to_uint8(images).cpu().numpy()
    drawn = np.stack([[edge_drawing(c) for c in image] for image in u8])
    return to_float(torch.from_numpy(drawn)).to(images.device, images.dtype)


def lowres(images: torch.Tensor, factor: int = LOWRES_FACTOR) -> torch.Tensor:
    """The image at ``1/factor`` of its size (block means), shown back at full size (nearest)."""
    h, w = images.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"lowres needs a size divisible by {factor}, got {h}x{w}")
    return F.interpolate(F.avg_pool2d(images, factor), scale_factor=factor, mode="nearest")


CONDITIONS = {"edges": edges, "lowres": lowres}


def apply_condition(name: str, images: torch.Tensor) -> torch.Tensor:
    """``CONDITIONS[name](images)`` after checking both (a clear error for an unknown name or bad images)."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown input condition {name!r}; known: {sorted(CONDITIONS)}")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not torch.is_floating_point(images):
        got = f"{images.dtype} {list(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"input condition {name!r} needs float images [N, C, H, W] in [-1, 1], got {got}")
    with torch.no_grad():
        return CONDITIONS[name](images.detach())
