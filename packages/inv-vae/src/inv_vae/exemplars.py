"""The style exemplars a style generator is transfer-learned on: a user's folder, checked against the
generator, or the demo's ``fmnist-edges`` built from real Fashion-MNIST images.

``fmnist-edges``: the first ``n`` Fashion-MNIST training images, zero-padded to 32 px as the demo's data, each
turned into an edge drawing by Pillow's ``ImageFilter.FIND_EDGES`` (a 3x3 Laplacian) and stretched to the full
0-255 range with ``ImageOps.autocontrast`` (``sg2_core.methods.conditions.edge_drawing``, the ``edges`` input
condition's drawing): outlines of the garments on black, a style no one here drew.
"""

from __future__ import annotations

import os
from pathlib import Path

from sg2_core.methods.conditions import edge_drawing as _edge_drawing
from sg2_core.moved import renamed

__all__ = ["DEMO_EXEMPLARS", "check_exemplars", "fmnist_edges", "resolve_exemplars"]

# edge_drawing was written here too; sg2-core's (the edges condition's) is the one.
__getattr__ = renamed(__name__, {"edge_drawing": "sg2_core.methods.conditions.edge_drawing"}, removed_in="inv-vae 0.5")

DEMO_EXEMPLARS = "fmnist-edges"
DEMO_COUNT = 100


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sg2-toolkit" / "inv_vae"


def fmnist_edges(folder: Path | None = None, n: int = DEMO_COUNT) -> Path:
    """Write the ``n`` demo exemplars as PNGs into ``folder`` (default: the user cache) and return it; a folder
    already holding exactly these files is reused (they are deterministic)."""
    from PIL import Image

    from sg2_core.datasets import open_dataset

    folder = Path(folder) if folder is not None else _cache_root() / f"{DEMO_EXEMPLARS}-{n}"
    names = [f"{i:04d}.png" for i in range(n)]
    if folder.is_dir() and sorted(p.name for p in folder.iterdir()) == names:
        return folder
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"{folder} holds other files; give an empty or new folder for the {DEMO_EXEMPLARS} exemplars")
    folder.mkdir(parents=True, exist_ok=True)
    data = open_dataset("fmnist-train", pad_to=32)
    for i, name in enumerate(names):
        image = data[i][0][0].numpy()
        Image.fromarray(_edge_drawing(image)).save(folder / name)
    return folder


def check_exemplars(folder, batch_size: int, channels: int, resolution: int) -> int:
    """Refuse an exemplar folder the generator cannot be tuned on; returns the number of images."""
    from sg2_core.datasets import open_dataset

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--exemplars {folder}: no such folder (give a folder of images, or '{DEMO_EXEMPLARS}')")
    try:
        data = open_dataset(folder)
    except ValueError as error:
        raise ValueError(f"--exemplars {folder}: {error}") from None
    c, r = data.channels, data.resolution
    if (c, r) != (channels, resolution):
        raise ValueError(
            f"--exemplars {folder}: the images are {r}x{r} with {c} channel(s), the generator makes "
            f"{resolution}x{resolution} with {channels} channel(s); resize or convert them first"
        )
    if len(data) < batch_size:
        raise ValueError(
            f"--exemplars {folder} holds {len(data)} images, fewer than --batch-size {batch_size}; "
            "add exemplars or lower --batch-size"
        )
    return len(data)


def resolve_exemplars(spec: str, batch_size: int, channels: int, resolution: int) -> tuple[Path, int]:
    """``spec`` (a folder, or ``fmnist-edges``) -> (checked folder, number of images)."""
    folder = fmnist_edges() if spec == DEMO_EXEMPLARS else Path(spec)
    return folder, check_exemplars(folder, batch_size, channels, resolution)
