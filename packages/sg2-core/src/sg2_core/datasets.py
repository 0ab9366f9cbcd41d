"""Training data for StyleGAN2: image folders, zips, numpy arrays and IDX files as one uint8 dataset.

``open_dataset(source)`` gives an ``ImageDataset`` whose items are ``(uint8 [C, H, W], int label)`` (label -1
when the source has none); ``make_loader`` turns it into an endless, resumable stream of batches whose order
depends only on the seed (``InfiniteSampler``). Pixels stay uint8 until the training step: convert them
with ``sg2_core.images.to_float``.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from sg2_core.images import IMAGE_EXTENSIONS, ImageDtypeError, to_float

__all__ = [
    "IMAGE_EXTENSIONS",
    "FASHION_MNIST_DIR",
    "ImageDataset",
    "InfiniteSampler",
    "make_loader",
    "open_dataset",
    "read_idx",
    "to_float",
]

# Where the Debian package dataset-fashion-mnist installs the four IDX files.
# SG2_FASHION_MNIST_DIR points elsewhere (a copy of the four .gz files).
FASHION_MNIST_DIR = Path(os.environ.get("SG2_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_FILES = {
    "fmnist-train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "fmnist-test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# ------------------------------------------------------------------------------------------------ IDX

# The IDX type byte -> numpy dtype (multi-byte values are big-endian).
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":  # gzip magic
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({e})") from None
    return data


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not, as a numpy array.

    The header is checked: two zero bytes, a known type byte, the number of dimensions, then the sizes,
    which must account for exactly the bytes that follow.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file (bad magic number {data[:4].hex() or 'empty file'}; "
            "expected 0000 then a type byte 08/09/0b/0c/0d/0e and the number of dimensions)"
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions, {len(data)} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: IDX header says shape {shape} ({expected} bytes of {dtype.name}) but the file "
            f"holds {len(data) - header} bytes after the header (truncated or corrupt)"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_labels_path(images_path: Path) -> Path | None:
    """The labels file next to an IDX images file (``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz``)."""
    name = images_path.name
    if "images" not in name:
        return None
    candidate = images_path.with_name(name.replace("images", "labels").replace("idx3", "idx1"))
    return candidate if candidate.is_file() else None


# ------------------------------------------------------------------------------------------------ sources
# A source knows how many raw images it holds and how to read image i as uint8 [C, H, W]. The dataset
# does the checks, padding, channel conversion and mirroring, the same for every source.


def _array_to_chw(array: np.ndarray, where: str) -> np.ndarray:
    """A uint8 image stack [N,H,W], [N,H,W,C] or [N,C,H,W] (C in 1, 3) as [N,C,H,W] (a view when possible)."""
    if array.dtype != np.uint8:
        raise ImageDtypeError(f"{where}: expected uint8 images in [0, 255], got dtype {array.dtype}")
    if array.ndim == 3:
        return array[:, None]
    if array.ndim == 4:
        if array.shape[1] in (1, 3) and array.shape[2] == array.shape[3]:
            return array
        if array.shape[3] in (1, 3) and array.shape[1] == array.shape[2]:
            return array.transpose(0, 3, 1, 2)
        if array.shape[1] in (1, 3) or array.shape[3] in (1, 3):
            raise ValueError(f"{where}: images must be square, got shape {array.shape}")
    raise ValueError(
        f"{where}: expected images [N, H, W], [N, H, W, C] or [N, C, H, W] with C = 1 or 3, got shape {array.shape}"
    )


class _ArraySource:
    def __init__(self, array: np.ndarray, name: str, labels=None):
        self.array = _array_to_chw(array, name)
        self.name, self.count, self.shape = name, len(self.array), tuple(self.array.shape[1:])
        if labels is not None and len(labels) != self.count:
            raise ValueError(f"{name}: {len(labels)} labels for {self.count} images")
        self.labels = labels

    def __len__(self):
        return self.count

    def read(self, i: int, mode: str | None) -> np.ndarray:
        return np.array(self.array[i])  # a writable copy (the source may be read-only)


class _NpySource(_ArraySource):
    """A .npy file, memory-mapped and re-opened in each process (nothing large is pickled to workers)."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__(np.load(path, mmap_mode="r"), str(path))
        self.array = None  # opened lazily per process

    def __getstate__(self):
        return {**self.__dict__, "array": None}

    def read(self, i, mode):
        if self.array is None:
            self.array = _array_to_chw(np.load(self.path, mmap_mode="r"), str(self.path))
        return np.array(self.array[i])  # a writable copy (the source may be read-only)


def _decode(data_or_path, name: str, mode: str | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(data_or_path) as image:
            image = image.convert(mode or _channel_mode(image.mode))
            array = np.array(image)  # writable, so torch.from_numpy can share it
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"cannot read image {name}: {e}") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _channel_mode(mode: str) -> str:
    """Greyscale files stay one channel; everything else (palette, RGBA, CMYK...) becomes RGB."""
    return "L" if mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else "RGB"


class _FileSource:
    """Image files on disk (a folder) or inside a zip; only the headers are read when opening."""

    def __init__(self, name: str, members: list[str], zip_path: Path | None = None, folder: Path | None = None):
        self.name, self.members, self.zip_path, self.folder = name, members, zip_path, folder
        self.labels = None
        self._zip, self._zip_pid = None, None
        self.shape = self._scan()

    def __len__(self):
        return len(self.members)

    def __getstate__(self):  # an open zip handle must not travel to DataLoader workers
        return {**self.__dict__, "_zip": None, "_zip_pid": None}

    def _open(self, member: str):
        if self.zip_path is None:
            return self.folder / member
        if self._zip is None or self._zip_pid != os.getpid():  # one handle per process (fork copies the parent's)
            self._zip, self._zip_pid = zipfile.ZipFile(self.zip_path), os.getpid()
        return io.BytesIO(self._zip.read(member))

    def _describe(self, member: str) -> str:
        return f"{self.zip_path}:{member}" if self.zip_path else str(self.folder / member)

    def _scan(self) -> tuple[int, int, int]:
        """Check that every file is a readable image of one size and channel count (headers only)."""
        from PIL import Image, UnidentifiedImageError

        shapes: dict[tuple[int, int, int], str] = {}
        for member in self.members:
            try:
                with Image.open(self._open(member)) as image:
                    shape = (1 if _channel_mode(image.mode) == "L" else 3, image.height, image.width)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
                raise ValueError(f"cannot read image {self._describe(member)}: {e}") from None
            shapes.setdefault(shape, member)
            if len(shapes) > 1:
                (s0, m0), (s1, m1) = shapes.items()
                what = "channels" if s0[1:] == s1[1:] else "sizes"
                raise ValueError(
                    f"{self.name}: images of mixed {what}: {m0} is {_fmt(s0)}, {m1} is {_fmt(s1)}; "
                    "all images of a dataset must share one size and channel count"
                )
        if self.zip_path is not None:
            self._zip = None  # do not keep the handle the scan used
        return next(iter(shapes))

    def read(self, i: int, mode: str | None) -> np.ndarray:
        member = self.members[i]
        array = _decode(self._open(member), self._describe(member), mode or ("L" if self.shape[0] == 1 else "RGB"))
        if array.shape[1:] != self.shape[1:]:
            raise ValueError(f"image {self._describe(member)} is {_fmt(array.shape)}, expected {_fmt(self.shape)}")
        return array


def _fmt(shape) -> str:
    c, h, w = shape
    return f"{w}x{h} with {c} channel{'s' if c > 1 else ''}"


# ------------------------------------------------------------------------------------------------ dataset


class ImageDataset(torch.utils.data.Dataset):
    """uint8 images ``[C, H, W]`` with int labels (-1 when there are none); build it with ``open_dataset``.

    With ``xflip=True`` the dataset has ``2 * num_images`` items: item ``i >= num_images`` is item
    ``i - num_images`` mirrored left-right (as in StyleGAN2-ADA).
    """

    def __init__(self, source, *, channels: int | None, pad_to: int | None, xflip: bool):
        self._source = source
        self.name = source.name
        self.num_images = len(source)
        self.xflip = bool(xflip)
        self._mode = None if channels is None else ("L" if channels == 1 else "RGB")
        self._channels = channels or source.shape[0]
        self._pad = 0 if pad_to is None else (pad_to - source.shape[1]) // 2
        self._resolution = source.shape[1] + 2 * self._pad
        labels = (
            torch.full((self.num_images,), -1, dtype=torch.int64)
            if source.labels is None
            else torch.as_tensor(np.asarray(source.labels), dtype=torch.int64)
        )
        self._labels = torch.cat([labels, labels]) if self.xflip else labels

    def __len__(self) -> int:
        return 2 * self.num_images if self.xflip else self.num_images

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def labels(self) -> torch.Tensor:
        """int64 ``[len(self)]``, -1 where an image has no label."""
        return self._labels

    @property
    def has_labels(self) -> bool:
        return bool((self._labels >= 0).any())

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        index %= len(self)
        raw = index % self.num_images
        image = self._convert(self._source.read(raw, self._mode))
        if self._pad:
            padded = np.zeros((image.shape[0], self._resolution, self._resolution), np.uint8)
            padded[:, self._pad : self._pad + image.shape[1], self._pad : self._pad + image.shape[2]] = image
            image = padded
        if index >= self.num_images:
            image = image[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(image)), int(self._labels[index])

    def _convert(self, image: np.ndarray) -> np.ndarray:
        """Channel conversion for array sources (file sources already decode to the requested mode)."""
        if image.shape[0] == self._channels:
            return image
        if self._channels == 3:  # grey -> RGB
            return np.repeat(image, 3, axis=0)
        # RGB -> grey with ITU-R 601-2 luma weights, in the fixed point PIL's convert("L") uses (same pixels)
        rgb = image.astype(np.uint32)
        luma = (rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16
        return luma[None].astype(np.uint8)

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.name!r}, {self.num_images} images{' + mirrored' if self.xflip else ''}, "
            f"{self.channels}x{self.resolution}x{self.resolution}, labels={self.has_labels})"
        )


def _fashion_mnist(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    images_file, labels_file = FASHION_MNIST_FILES[name]
    images_path, labels_path = FASHION_MNIST_DIR / images_file, FASHION_MNIST_DIR / labels_file
    if not images_path.is_file() or not labels_path.is_file():
        raise FileNotFoundError(
            f"{name}: Fashion-MNIST is not installed ({images_path} or {labels_path} is "
            f"missing); install it with: apt-get install {FASHION_MNIST_PACKAGE} "
            "(or pass the path of an IDX images file)"
        )
    return read_idx(images_path), read_idx(labels_path), str(images_path)


def _source_for(source):
    if isinstance(source, (np.ndarray, torch.Tensor)):
        array = source.numpy() if isinstance(source, torch.Tensor) else source
        return _ArraySource(array, "array")
    if isinstance(source, str) and source in FASHION_MNIST_FILES:
        images, labels, name = _fashion_mnist(source)
        return _ArraySource(images, name, labels)
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {path}")
    if path.is_dir():
        files = sorted(
            p.relative_to(path).as_posix()
            for p in path.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not files:
            raise ValueError(f"{path}: no images found (looked recursively for {', '.join(IMAGE_EXTENSIONS)})")
        return _FileSource(str(path), files, folder=path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                members = sorted(n for n in z.namelist() if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
        except zipfile.BadZipFile as e:
            raise ValueError(f"{path}: not a readable zip file ({e})") from None
        if not members:
            raise ValueError(f"{path}: the zip holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return _FileSource(str(path), members, zip_path=path)
    if suffix == ".npy":
        return _NpySource(path)
    if suffix == ".npz":
        with np.load(path) as npz:
            keys = list(npz.keys())
            key = "images" if "images" in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise ValueError(
                    f"{path}: cannot tell which array holds the images (keys {keys}); "
                    "name it 'images' (and the labels 'labels')"
                )
            labels = npz["labels"] if "labels" in keys else None
            return _ArraySource(npz[key], str(path), labels)
    if suffix in IMAGE_EXTENSIONS:
        raise ValueError(f"{path} is a single image; pass the folder or zip that holds the dataset")
    # anything else is tried as an IDX file, which checks its magic number
    try:
        images = read_idx(path)
    except ValueError as e:
        raise ValueError(
            f"{path}: unsupported dataset ({e}); expected an image folder, a .zip of images, "
            ".npy/.npz arrays, an IDX images file, or 'fmnist-train'/'fmnist-test'"
        ) from None
    labels_path = _idx_labels_path(path)
    labels = read_idx(labels_path) if labels_path else None
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{labels_path} holds {len(labels)} labels for {len(images)} images in {path}")
    return _ArraySource(images, str(path), labels)


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def open_dataset(
    source,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    xflip: bool = False,
    pad_to: int | None = None,
) -> ImageDataset:
    """Open training images as an ``ImageDataset`` of uint8 ``[C, H, W]`` items.

    ``source``: an image folder (png/jpg/jpeg/webp/bmp, recursive, sorted by path), a ``.zip`` of images,
    a uint8 array or ``.npy``/``.npz`` file (``[N,H,W]``, ``[N,H,W,C]`` or ``[N,C,H,W]``; an ``.npz`` may
    hold ``images`` and ``labels``), an IDX images file (labels from the matching ``-labels-idx1`` file
    when present), or ``"fmnist-train"`` / ``"fmnist-test"`` (Debian package ``dataset-fashion-mnist``).

    ``resolution``: the expected final size (checked, never resized). ``channels``: 1 or 3 to convert.
    ``pad_to``: zero-pad smaller square images to this size, centred (Fashion-MNIST 28 -> 32).
    ``xflip``: append a mirrored copy of every image. Images must be square with one size and channel count,
    and the final size a power of two.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3 (or None to keep the images'), got {channels}")
    src = _source_for(source)
    if len(src) == 0:
        raise ValueError(f"{src.name}: the dataset is empty")
    c, h, w = src.shape
    if h != w:
        raise ValueError(f"{src.name}: images must be square, got {w}x{h} (width x height)")
    size = h
    if pad_to is not None:
        if pad_to < size:
            raise ValueError(f"pad_to={pad_to} is smaller than the images ({size}x{size})")
        if (pad_to - size) % 2:
            raise ValueError(
                f"pad_to={pad_to} cannot centre {size}x{size} images (the padding {pad_to - size} must be even)"
            )
        size = pad_to
    if resolution is not None and resolution != size:
        hint = "" if pad_to is not None or resolution < size else f" (pad_to={resolution} pads them)"
        raise ValueError(f"{src.name}: images are {size}x{size}, not the requested resolution {resolution}{hint}")
    if not _is_power_of_two(size):
        raise ValueError(
            f"{src.name}: resolution {size} is not a power of two (StyleGAN2 needs 2^k); "
            f"pad_to={1 << size.bit_length()} pads the images"
        )
    return ImageDataset(src, channels=channels, pad_to=pad_to, xflip=xflip)


# ------------------------------------------------------------------------------------------------ sampling


class InfiniteSampler(torch.utils.data.Sampler):
    """An endless stream of dataset indices whose order depends only on ``seed``: epoch ``e`` is a fresh
    permutation from a ``torch.Generator`` seeded with ``seed + e`` (or ``0..n-1`` when ``shuffle=False``).

    Rank ``r`` of ``world_size`` takes items ``r, r + world_size, ...`` of that global stream, and ``start``
    skips the first ``start`` items of this rank's stream, so a resumed run continues exactly where it stopped.
    """

    def __init__(
        self,
        dataset_len: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ):
        dataset_len = len(dataset_len) if hasattr(dataset_len, "__len__") else int(dataset_len)
        if dataset_len < 1:
            raise ValueError(f"InfiniteSampler needs a non-empty dataset, got length {dataset_len}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self.dataset_len, self.seed, self.shuffle = dataset_len, int(seed), bool(shuffle)
        self.rank, self.world_size, self.start = rank, world_size, int(start)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The global order of epoch ``epoch`` (all ranks together)."""
        if not self.shuffle:
            return torch.arange(self.dataset_len)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.dataset_len, generator=generator)

    def __iter__(self) -> Iterator[int]:
        position = self.start * self.world_size + self.rank  # in the global stream
        epoch, offset = divmod(position, self.dataset_len)
        while True:
            order = self.epoch_order(epoch)
            while offset < self.dataset_len:
                yield int(order[offset])
                offset += self.world_size
            epoch, offset = epoch + 1, offset - self.dataset_len


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the main process, which stops the run cleanly and then
    shuts them down (a Ctrl-C reaches the whole process group)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(
    dataset,
    batch_size: int,
    *,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    start_batch: int = 0,
    num_workers: int | None = None,
    shuffle: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An endless iterator of ``(uint8 images [B, C, H, W], int64 labels [B])`` batches for this rank.

    Batch ``k`` is the same whatever the number of workers, and ``start_batch=k`` resumes at batch ``k``.
    ``num_workers`` defaults to ``min(2, os.cpu_count())`` (0 reads in the calling process); workers persist
    between batches, and memory is pinned only when CUDA is available.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers is None:
        num_workers = min(2, os.cpu_count() or 1)
    sampler = InfiniteSampler(
        len(dataset), seed=seed, shuffle=shuffle, rank=rank, world_size=world_size, start=start_batch * batch_size
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
        prefetch_factor=2 if num_workers > 0 else None,
        worker_init_fn=_ignore_stop_signals if num_workers > 0 else None,
    )
    return iter(loader)
