"""The embedded demo: a small StyleGAN2 trained by us on Fashion-MNIST at 32x32, and held-out test images.

Everything here ships inside the package, so benchmarks and examples run on a fresh machine with no
download. ``tools/train_demo.py`` (in the repository) retrains the networks from the Debian package
``dataset-fashion-mnist``; ``scripts/make_demo_testset.py`` rebuilds the test subset.
"""

from __future__ import annotations

import json
from importlib.resources import as_file, files

import torch

from sg2_core.checkpoints import load_checkpoint
from sg2_core.images import to_float
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.generator import Generator

# 32x32 grey images (28x28 Fashion-MNIST padded by 2 px); 64 channels keep CPU training at tens of images/s.
GENERATOR_CONFIG = GeneratorConfig(
    z_dim=128, w_dim=128, resolution=32, img_channels=1, mapping_layers=4, channel_base=1024, channel_max=64
)
DISCRIMINATOR_CONFIG = DiscriminatorConfig(resolution=32, img_channels=1, channel_base=1024, channel_max=64)

CHECKPOINT = "fmnist32.safetensors"
TEST_IMAGES = "fmnist32_test256.safetensors"

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _data_file(name: str):
    path = files("sg2_core").joinpath("assets", name)
    if not path.is_file():
        raise FileNotFoundError(
            f"the demo file {name} is missing from the sg2_core package (expected at {path}); "
            "reinstall sg2-core or rebuild it with tools/train_demo.py (in the repository)"
        )
    return path


def _load(network: str, device) -> torch.nn.Module:
    with as_file(_data_file(CHECKPOINT)) as path:  # a real path for a regular install, a temporary one from a zip
        net = getattr(load_checkpoint(path), network)
    return net.to(device).eval().requires_grad_(False)


def load_generator(device=None) -> Generator:
    """The demo's EMA generator (32x32, one channel), in eval mode with gradients off."""
    return _load("G_ema", device)


def load_discriminator(device=None) -> Discriminator:
    """The demo's discriminator (what adversarial losses of the inversion families need)."""
    return _load("D", device)


def load_test_images(device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """256 Fashion-MNIST test images never seen in training: ``[256, 1, 32, 32]`` in [-1, 1], and their labels."""
    from safetensors.torch import load_file

    with as_file(_data_file(TEST_IMAGES)) as path:
        data = load_file(str(path))
    images = to_float(data["images"]).to(device)
    return images, data["labels"].to(device)


def fmnist_test_indices() -> list[int]:
    """Where the 256 test images come from: their indices in the Fashion-MNIST test split (``fmnist-test``),
    recorded in the file by ``scripts/make_demo_testset.py``."""
    from safetensors import safe_open

    with as_file(_data_file(TEST_IMAGES)) as path, safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["info"])["indices"]
