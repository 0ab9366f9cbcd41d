"""A small Fashion-MNIST classifier whose features measure the demo domain (32x32 grey images).

ImageNet networks (Inception, AlexNet) see little in 32x32 grey clothing, so on the demo domain FID/KID use
this network's pooled features and the perceptual distance uses its channel-normalised intermediate features
(the LPIPS recipe with uniform weights). Every number it produces is labelled with its ``name``.

Input: [N, 1, 32, 32] in [-1, 1] (28x28 Fashion-MNIST padded by 2 px with zeros, i.e. -1). Three-channel
input is averaged to grey first; other sizes are refused rather than resized.
The weights ship as ``assets/fmnist_features.safetensors`` and are rebuilt by
``python -m inv_metrics.train_fmnist_features``.
"""

from __future__ import annotations

import gzip
import os
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import MissingWeightsError
from .images import check_images, to_float

# The Debian package dataset-fashion-mnist's folder (or $SG2_FASHION_MNIST_DIR), as sg2_core.datasets reads it.
FMNIST_DIR = Path(os.environ.get("SG2_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist")
WEIGHTS_FILE = "fmnist_features.safetensors"
RESOLUTION = 32
WIDTHS = (16, 32, 64, 128)
FEATURE_DIM = WIDTHS[-1]
NUM_CLASSES = 10


# ---------------------------------------------------------------------------------------------- data


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): big-endian magic (type 0x08 = uint8, ndim), then the dims, then data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an uint8 IDX file")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fmnist_files(split: str = "test", root=None) -> list[Path]:
    """The images and labels files of a split; raises FileNotFoundError naming the package to install."""
    from sg2_core.datasets import FASHION_MNIST_PACKAGE

    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else FMNIST_DIR
    paths = [root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"Fashion-MNIST is not installed ({path} is missing); install it with: "
                f"apt-get install {FASHION_MNIST_PACKAGE} (or pass the folder holding the "
                ".gz files)"
            )
    return paths


def load_fmnist(split: str = "test", root=None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images padded to 32x32 (uint8 [N, 32, 32]) and labels (uint8 [N]); split 'train' or 'test'."""
    images_path, labels_path = fmnist_files(split, root)
    images = np.pad(_read_idx(images_path), ((0, 0), (2, 2), (2, 2)))
    return images, _read_idx(labels_path)


def to_model_input(u8) -> torch.Tensor:
    """uint8 [N, 32, 32] (numpy or torch) -> float [N, 1, 32, 32] in [-1, 1]."""
    u8 = u8 if isinstance(u8, torch.Tensor) else torch.from_numpy(np.array(u8))  # copy: IDX buffers are read-only
    return to_float(u8).unsqueeze(1)


# ---------------------------------------------------------------------------------------------- network


class FMNISTNet(nn.Module):
    """Four conv-BN-ReLU stages (32x32 -> 4x4), global average pool (the features), linear classifier."""

    def __init__(self, widths=WIDTHS, num_classes: int = NUM_CLASSES):
        super().__init__()
        stages, in_ch = [], 1
        for width in widths:
            stages.append(
                nn.Sequential(nn.Conv2d(in_ch, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
            )
            in_ch = width
        self.stages = nn.ModuleList(stages)
        self.classifier = nn.Linear(in_ch, num_classes)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ReLU outputs of every stage (32, 16, 8 and 4 px); 2x2 max-pooling between stages."""
        out = []
        for i, stage in enumerate(self.stages):
            if i:
                x = nn.functional.max_pool2d(x, 2)
            x = stage(x)
            out.append(x)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.taps(x)[-1].mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _grey(x: torch.Tensor, what: str) -> torch.Tensor:
    check_images(x, what, channels=(1, 3))
    if x.shape[-2:] != (RESOLUTION, RESOLUTION):
        raise ValueError(
            f"{what}: the fmnist network takes {RESOLUTION}x{RESOLUTION} images, got "
            f"{x.shape[-2]}x{x.shape[-1]}; resize them first (not done silently)"
        )
    return x.mean(dim=1, keepdim=True) if x.shape[1] == 3 else x


def load_fmnist_net(weights=None, device=None) -> FMNISTNet:
    """The shipped classifier (or ``weights``, a safetensors file from the training script), eval mode, frozen."""
    from safetensors.torch import load_file

    net = FMNISTNet()
    if weights is None:
        resource = files("inv_metrics").joinpath("assets", WEIGHTS_FILE)
        if not resource.is_file():
            raise MissingWeightsError(
                WEIGHTS_FILE, [str(resource.parent)], hint="rebuild it with python -m inv_metrics.train_fmnist_features"
            )
        with as_file(resource) as path:
            state = load_file(str(path))
    else:
        if not Path(weights).is_file():
            raise MissingWeightsError(Path(weights).name, [str(Path(weights).parent)])
        state = load_file(str(weights))
    net.load_state_dict(state)
    return net.to(device).eval().requires_grad_(False)


class FMNISTFeatures(nn.Module):
    """[-1, 1] 32x32 images -> [N, 128] pooled features of the Fashion-MNIST classifier (for FID/KID)."""

    name = "fmnist-features"

    def __init__(self, net: FMNISTNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(_grey(x, "images"))


class FMNISTPerceptual(nn.Module):
    """LPIPS-like distance: per stage, unit-normalise features over channels, squared difference summed over
    channels, spatial mean; summed over the first three stages with uniform weights. Returns [N]."""

    name = "fmnist-perceptual"
    num_taps = 3
    eps = 1e-10  # same guard as LPIPS against an all-zero feature vector

    def __init__(self, net: FMNISTNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        total = 0
        for fx, fy in zip(self.net.taps(_grey(x, "x"))[: self.num_taps], self.net.taps(_grey(y, "y"))[: self.num_taps]):
            fx = fx / (fx.norm(dim=1, keepdim=True) + self.eps)
            fy = fy / (fy.norm(dim=1, keepdim=True) + self.eps)
            total = total + (fx - fy).square().sum(dim=1).mean(dim=(1, 2))
        return total
