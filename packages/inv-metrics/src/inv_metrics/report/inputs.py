"""The report's generator and images: the shipped demo ones, or a checkpoint and an image folder.

Images are never resized or converted between channel counts: a folder's images must have exactly the
generator's channels and resolution. Files that cannot be used (unreadable, another size or channel count)
are skipped with a message as long as some usable images remain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class ReportInputError(ValueError):
    """The report cannot run at all with these inputs (the message says why and what to give instead)."""


class ImageSource:
    """The report's images, read batch by batch: a float tensor ``[N, C, R, R]`` in [-1, 1], or a dataset
    of uint8 images (``sg2_core.datasets.ImageDataset``), read from disk a batch at a time so that
    thousands of large images never sit in memory together."""

    def __init__(self, images, device=None, count: int | None = None):
        self.images, self.device = images, device
        total = len(images)
        self.count = total if count is None else min(count, total)
        if isinstance(images, torch.Tensor):
            self.channels, self.resolution = images.shape[1], images.shape[-1]
        else:
            self.channels, self.resolution = images.channels, images.resolution

    def __len__(self) -> int:
        return self.count

    def to(self, device) -> ImageSource:
        return ImageSource(self.images, device, self.count)

    def batch(self, start: int, stop: int) -> torch.Tensor:
        stop = min(stop, self.count)
        if isinstance(self.images, torch.Tensor):
            out = self.images[start:stop]
        else:
            from sg2_core.images import to_float

            out = to_float(torch.stack([self.images[i][0] for i in range(start, stop)]))
        return out.to(device=self.device, dtype=torch.float32)

    def batches(self, batch_size: int):
        for start in range(0, self.count, batch_size):
            yield self.batch(start, start + batch_size)


def as_source(images, device=None) -> ImageSource:
    if isinstance(images, ImageSource):
        return images if device is None else images.to(device)
    return ImageSource(images, device)


def _shape(c: int, r: int) -> str:
    return f"{c}x{r}x{r} (channels x height x width)"


def load_generator(checkpoint=None, device=None):
    """``(generator, description)``: G_ema (else G) of ``checkpoint``, or the shipped demo generator."""
    import sg2_core
    from sg2_core import demo

    if checkpoint is None:
        try:
            return demo.load_generator(device), "sg2_core demo generator (Fashion-MNIST 32x32, shipped)"
        except FileNotFoundError as error:
            raise ReportInputError(
                f"the embedded default needs the shipped demo generator, which is missing "
                f"({error}); pass a generator checkpoint instead"
            ) from None
    try:
        ckpt = sg2_core.load_checkpoint(checkpoint)
    except (FileNotFoundError, ValueError, sg2_core.CheckpointError) as error:
        raise ReportInputError(f"cannot load the generator checkpoint {checkpoint}: {error}") from None
    g = ckpt.generator
    if g is None:
        raise ReportInputError(f"{checkpoint} holds no generator (only {sorted(ckpt.networks())})")
    return g.to(device).eval().requires_grad_(False), f"{Path(checkpoint).name} ({ckpt.format} checkpoint)"


def demo_images(generator, num_images: int | None):
    """The first ``num_images`` shipped test images, if the generator makes 1x32x32 images."""
    from sg2_core import demo

    want = (generator.img_channels, generator.img_resolution)
    if want != (1, 32):
        raise ReportInputError(
            f"the shipped test images are {_shape(1, 32)} but the generator makes "
            f"{_shape(*want)}; pass an image folder of that size"
        )
    images = demo.load_test_images()[0]
    return images[:num_images], f"sg2_core demo test images (first {len(images[:num_images])} of {len(images)})"


def _decode_each(folder: Path, channels: int, resolution: int) -> tuple[list[np.ndarray], list[str]]:
    """Every image file of ``folder`` that decodes to exactly [channels, resolution, resolution]."""
    from PIL import Image, UnidentifiedImageError

    from sg2_core.datasets import IMAGE_EXTENSIONS

    kept, skipped = [], []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()):
        try:
            with Image.open(path) as image:
                c = 1 if image.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
                array = np.array(image.convert("L" if c == 1 else "RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            skipped.append(f"skipped {path.name}: unreadable image ({error})")
            continue
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        if array.shape != (channels, resolution, resolution):
            skipped.append(
                f"skipped {path.name}: it is {_shape(array.shape[0], array.shape[1])}"
                f"{'' if array.shape[1] == array.shape[2] else ' (not square)'}, "
                f"the generator makes {_shape(channels, resolution)}"
            )
            continue
        kept.append(array)
    return kept, skipped


def folder_images(folder, generator, num_images: int | None = None):
    """``(ImageSource of [N, C, R, R] in [-1, 1], description, problems)`` from an image folder (or zip / array
    file); the images are read a batch at a time.

    The folder is opened with ``sg2_core.datasets.open_dataset``; when that refuses it (an unreadable file,
    mixed sizes or channels), each file is read on its own and the unusable ones are skipped and listed.
    """
    from sg2_core.datasets import open_dataset

    c, r = generator.img_channels, generator.img_resolution
    problems: list[str] = []
    try:
        dataset = open_dataset(folder)
    except FileNotFoundError as error:
        raise ReportInputError(str(error)) from None
    except ValueError as error:
        if not Path(folder).is_dir():
            raise ReportInputError(f"cannot read the images: {error}") from None
        problems.append(f"{folder}: {error}; reading each file on its own")
        kept, skipped = _decode_each(Path(folder), c, r)
        problems += skipped
        if not kept:
            raise ReportInputError(
                f"{folder}: no usable image of the generator's size {_shape(c, r)}: " + "; ".join(problems)
            ) from None
        dataset = open_dataset(np.stack(kept))
    if (dataset.channels, dataset.resolution) != (c, r):
        raise ReportInputError(
            f"{folder}: the images are {_shape(dataset.channels, dataset.resolution)} but the "
            f"generator makes {_shape(c, r)}; images are never resized or converted, give "
            "images of the generator's size (or a generator of the images' size)"
        )
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    return ImageSource(dataset, count=n), f"{folder} ({n} of {len(dataset)} images)", problems
