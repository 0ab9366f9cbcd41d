"""The one place where images change between uint8 pixels and the toolkit's float convention ([-1, 1]),
and where image files are read and brought to a generator's shape.

One formula: ``x / 127.5 - 1`` from uint8, and ``round((x + 1) * 127.5)`` clipped to [0, 255] back, so a
uint8 image survives the round trip exactly. Bringing an image to another size or channel count is always
asked for (``fit=``, ``channels=``); without it an image of another shape is refused, naming the file.
Images of the wrong dtype (uint8 where float is expected, or the reverse) raise ``ImageDtypeError``, a
``ValueError`` like every other bad image, everywhere in the toolkit.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

# How an image of another size is brought to R x R (the names of NVIDIA's dataset_tool transforms where they exist):
# 'pad': centred on a black square (shrunk first, aspect kept, if larger than R); 'resize': stretched to R x R;
# 'center-crop': the largest centred square, then resized. Resampling is Lanczos, as dataset_tool's.
FITS = ("pad", "resize", "center-crop")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
BATCH_SUFFIXES = (".npy", ".safetensors")


class ImageLoadError(ValueError):
    """An image file cannot be used as given (unreadable, or another size or channel count than asked for)."""


class ImageShapeError(ImageLoadError):
    """An image has another size or channel count than expected; ``name``, ``got`` and ``expected`` are
    ``(channels, height, width)``, ``what`` is ``'size'`` or ``'channels'``."""

    def __init__(self, message: str, name: str, got: tuple, expected: tuple, what: str):
        super().__init__(message)
        self.name, self.got, self.expected, self.what = name, got, expected, what


class ImageDtypeError(ValueError, TypeError):
    """Images of the wrong dtype: uint8 where float images in [-1, 1] are expected, or the reverse.

    The one error for it in the toolkit: a ``ValueError`` like every other bad image (the method contract);
    also a ``TypeError``, what ``to_float``, ``to_uint8``, ``open_dataset`` and the metrics raised before.
    """


def require_float(images: torch.Tensor, what: str = "images") -> None:
    """Raise ``ImageDtypeError`` unless ``images`` is a float tensor (the toolkit's [-1, 1] convention)."""
    if not torch.is_floating_point(images):
        raise ImageDtypeError(
            f"{what} must be a float tensor in [-1, 1], got {images.dtype} (convert uint8 images with "
            "sg2_core.images.to_float, x / 127.5 - 1)"
        )


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., C, H, W]`` in [0, 255] -> float32 in [-1, 1] (0 -> -1, 255 -> 1), on the same device."""
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images))
    if images.dtype != torch.uint8:
        raise ImageDtypeError(f"to_float expects uint8 images in [0, 255], got dtype {images.dtype}")
    return images.to(torch.float32) / 127.5 - 1


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float images in [-1, 1] -> uint8 in [0, 255], rounded to nearest; values outside [-1, 1] are clipped."""
    if not torch.is_floating_point(images):
        raise ImageDtypeError(f"to_uint8 expects float images in [-1, 1], got dtype {images.dtype}")
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
        grid[:, y : y + h, x : x + w] = pixels[i]
    return grid


def save_grid(images: torch.Tensor, path, nrow: int = 8, padding: int = 0) -> Path:
    """Save ``[N, C, H, W]`` images (uint8, or float in [-1, 1]) as one PNG grid with ``nrow`` images a row."""
    from PIL import Image

    grid = make_grid(images, nrow=nrow, padding=padding)
    array = grid.permute(1, 2, 0).numpy()
    image = Image.fromarray(array[:, :, 0], "L") if array.shape[2] == 1 else Image.fromarray(array, "RGB")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_atomic(image, path)
    return path


def save_image(image: torch.Tensor, path, overwrite: bool = True) -> Path:
    """Save one ``[C, H, W]`` image (uint8, or float in [-1, 1]; C = 1 or 3) as a PNG, atomically."""
    if image.ndim != 3:
        raise ValueError(f"expected one image [C, H, W], got shape {tuple(image.shape)}")
    if not overwrite and Path(path).exists():
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    return save_grid(image[None], path, nrow=1)


def _save_atomic(image, path: Path) -> None:
    """Write to a temporary file beside ``path`` and rename it: a reader never sees half a PNG, and an
    interrupted write leaves what was there before."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- reading files and fitting them to a generator's shape -----------------------------------------------------


def _describe(shape) -> str:
    c, h, w = shape
    return f"{c}x{h}x{w} (channels x height x width)"


def image_files(paths) -> list[Path]:
    """The files behind ``paths`` (a path or a list): image files and batch files as given, folders
    expanded to their image and batch files (recursive, sorted). Raises ``ImageLoadError`` for a missing
    path, an unknown file type or a folder with no images."""
    known = (*IMAGE_EXTENSIONS, *BATCH_SUFFIXES)
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ImageLoadError("no images given")
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in known)
            if not found:
                raise ImageLoadError(f"{path}: no images found (looked recursively for {', '.join(known)})")
            files += found
        elif not path.exists():
            raise ImageLoadError(f"{path}: no such file or folder")
        elif path.suffix.lower() not in known:
            raise ImageLoadError(f"{path}: not an image file (known: {', '.join(known)})")
        else:
            files.append(path)
    return files


def read_image(path) -> torch.Tensor:
    """One image file as uint8 ``[C, H, W]``: grey files (L, I, F, 1 modes) as one channel, everything else
    (palette, RGBA, CMYK, ...) as RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            grey = image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
            array = np.array(image.convert("L" if grey else "RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(f"cannot read image {path}: {error}") from None
    return torch.from_numpy(array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1)))


def read_batch(path) -> torch.Tensor:
    """A batch file as ``[N, C, H, W]``: ``.npy`` or ``.safetensors`` (its ``images`` tensor, or its only one).

    uint8 arrays may be ``[N, H, W]``, ``[N, H, W, C]`` or ``[N, C, H, W]`` (C = 1 or 3); float arrays must be
    ``[N, C, H, W]`` in [-1, 1] and are returned as float32.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            array = torch.from_numpy(np.array(np.load(path, allow_pickle=False)))
        else:
            from safetensors.torch import load_file

            tensors = load_file(str(path))
            if "images" in tensors:
                array = tensors["images"]
            elif len(tensors) == 1:
                array = next(iter(tensors.values()))
            else:
                raise ValueError(f"it holds {sorted(tensors)} but no 'images' tensor")
    except (OSError, ValueError, RuntimeError) as error:
        raise ImageLoadError(f"cannot read images from {path}: {error}") from None
    if array.dtype == torch.uint8:
        if array.ndim == 3:
            array = array[:, None]
        elif array.ndim == 4 and array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
            array = array.permute(0, 3, 1, 2)
    elif array.is_floating_point():
        array = array.to(torch.float32)
    else:
        raise ImageLoadError(f"{path}: images must be uint8 or float in [-1, 1], got {array.dtype}")
    if array.ndim != 4 or array.shape[1] not in (1, 3) or array.shape[0] == 0:
        raise ImageLoadError(
            f"{path}: expected images [N, C, H, W] with C = 1 or 3 (uint8 also [N, H, W] or "
            f"[N, H, W, C]), got shape {list(array.shape)}"
        )
    if array.is_floating_point() and not torch.isfinite(array).all():
        raise ImageLoadError(f"{path}: the images contain NaN or inf")
    return array.contiguous()


def read_images(paths) -> list[tuple[str, torch.Tensor]]:
    """``[(name, image [C, H, W])]`` for every image in ``paths`` (files, folders, batch files), as stored:
    uint8, or float in [-1, 1] from float batch files. Batch entries are named ``file[i]``."""
    items = []
    for path in image_files(paths):
        if path.suffix.lower() in BATCH_SUFFIXES:
            items += [(f"{path}[{i}]", image) for i, image in enumerate(read_batch(path))]
        else:
            items.append((str(path), read_image(path)))
    return items


def convert_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """``[..., C, H, W]`` grey <-> RGB: grey repeated to three channels; RGB to grey with ITU-R 601-2 luma
    (uint8 in the fixed point of PIL's ``convert('L')``, so the same pixels as converting the file)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    have = image.shape[-3]
    if have == channels:
        return image
    if have not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {have}")
    if channels == 3:
        return image.repeat_interleave(3, dim=-3)
    r, g, b = image.unbind(-3)
    if image.dtype == torch.uint8:
        luma = (r.int() * 19595 + g.int() * 38470 + b.int() * 7471 + 0x8000) >> 16
        return luma.to(torch.uint8).unsqueeze(-3)
    return (r * 0.299 + g * 0.587 + b * 0.114).unsqueeze(-3)


def _resample(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Lanczos resampling of one ``[C, H, W]`` image: PIL's for uint8; for floats torch's antialiased bicubic."""
    if tuple(image.shape[1:]) == (height, width):
        return image
    if image.dtype != torch.uint8:
        return torch.nn.functional.interpolate(
            image[None], size=(height, width), mode="bicubic", align_corners=False, antialias=True
        )[0]
    from PIL import Image

    planes = [Image.fromarray(plane.numpy()).resize((width, height), Image.Resampling.LANCZOS) for plane in image]
    return torch.from_numpy(np.stack([np.asarray(p) for p in planes]))


def fit_image(image: torch.Tensor, resolution: int, fit: str) -> torch.Tensor:
    """One ``[C, H, W]`` image (uint8 or float in [-1, 1]) brought to ``[C, resolution, resolution]`` by ``fit``
    (see ``FITS``); an image of that size already is returned unchanged."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    _, h, w = image.shape
    r = resolution
    if (h, w) == (r, r):
        return image
    if fit == "resize":
        return _resample(image, r, r)
    if fit == "center-crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return _resample(image[:, top : top + side, left : left + side], r, r)
    if max(h, w) > r:  # pad: shrink a larger image first, keeping its aspect ratio
        scale = r / max(h, w)
        image = _resample(image, max(1, round(h * scale)), max(1, round(w * scale)))
        h, w = image.shape[1:]
    black = 0 if image.dtype == torch.uint8 else -1.0
    out = torch.full((image.shape[0], r, r), black, dtype=image.dtype)
    top, left = (r - h) // 2, (r - w) // 2
    out[:, top : top + h, left : left + w] = image
    return out


def prepare_image(
    image: torch.Tensor,
    name: str,
    channels: int | None,
    resolution: int | None,
    fit: str | None = None,
    convert: bool = False,
) -> torch.Tensor:
    """``image [C, H, W]`` checked against (and, when asked, brought to) ``channels`` x ``resolution``^2.

    A channel mismatch is converted only with ``convert=True`` and a size mismatch fitted only with ``fit``;
    otherwise an ``ImageShapeError`` names the image, its shape and the expected one.
    """
    c, h, w = image.shape
    if channels is not None and c != channels:
        if not convert:
            raise ImageShapeError(
                f"image {name} is {_describe((c, h, w))} but {channels}-channel images are "
                f"expected; convert it on request (convert=True)",
                name,
                (c, h, w),
                (channels, resolution or h, resolution or w),
                "channels",
            )
        image = convert_channels(image, channels)
    if resolution is not None and (h, w) != (resolution, resolution):
        if fit is None:
            raise ImageShapeError(
                f"image {name} is {_describe((c, h, w))} but {resolution}x{resolution} images "
                f"are expected; fit it on request (fit={' | '.join(map(repr, FITS))})",
                name,
                (c, h, w),
                (channels or c, resolution, resolution),
                "size",
            )
        image = fit_image(image, resolution, fit)
    return image


def load_images(
    paths, channels: int | None, resolution: int | None, fit: str | None = None, convert: bool = False
) -> torch.Tensor:
    """Images from files, folders or batch files as one float batch ``[N, C, R, R]`` in [-1, 1].

    ``channels`` / ``resolution``: the expected shape (a generator's ``img_channels`` / ``img_resolution``);
    ``None`` keeps the files' own, which must then agree. ``fit`` (``'pad'``, ``'resize'``,
    ``'center-crop'``) brings other sizes to ``resolution``, ``convert=True`` converts grey <-> RGB; without
    them an image of another shape is refused with an ``ImageShapeError`` naming it.
    """
    if fit is not None and fit not in FITS:
        raise ValueError(f"fit must be None or one of {', '.join(FITS)}, got {fit!r}")
    items = read_images(paths)
    c0, h0, w0 = items[0][1].shape
    channels = c0 if channels is None else channels
    if resolution is None and (h0 != w0 or fit is not None):
        raise ValueError(f"give a resolution: the first image, {items[0][0]}, is {_describe((c0, h0, w0))}")
    resolution = h0 if resolution is None else resolution
    return torch.stack(
        [as_float(prepare_image(image, name, channels, resolution, fit, convert)) for name, image in items]
    )


def as_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 -> [-1, 1] float (``to_float``); float images pass through as float32."""
    return to_float(image) if image.dtype == torch.uint8 else image.to(torch.float32)
