"""Feature networks for FID / KID, by name; each maps [-1, 1] images to [N, D] and carries a ``name``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from .errors import find_weights
from .images import check_images, to_rgb, to_uint8

FEATURES = ("inception", "fmnist")
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's hub-cache name


def file_digest(path, length: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


class InceptionFeatures(nn.Module):
    """torch-fidelity's ``inception-v3-compat`` 2048-d pool features (TF1 bilinear resize to 299 inside).

    Images are quantised to uint8 first, as when they are written to PNG and read back: this is what the
    folder-based reference evaluation sees. Not differentiable (a metric, not a loss).
    """

    name = "inception"

    def __init__(self, weights_path):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        # torch-fidelity unpickles with weights_only=False; refuse files that are not plain tensors first.
        try:
            torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any failure means we will not hand it to an unsafe load
            raise ValueError(f"{weights_path} is not a plain Inception state dict loadable safely: {err}") from None
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights_path)
        )
        self.weights_id = file_digest(weights_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
        return self.forward_uint8(to_uint8(to_rgb(x)))

    def forward_uint8(self, u8: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [N, 3, H, W] straight to the network (bit-identical to torch-fidelity on files)."""
        with torch.no_grad():
            return self.net(u8)[0]


def load_features(name: str, *, weights=None, device=None) -> nn.Module:
    """A frozen module mapping [-1, 1] images [N, C, H, W] to features [N, D], with ``.name``.

    ``inception``: ``weights`` = the torch-fidelity Inception file (default: the torch hub cache,
    ``~/.cache/torch/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``).
    ``fmnist``: the shipped Fashion-MNIST classifier's 128-d pooled features (32x32 grey input).
    """
    if name == "inception":
        path = find_weights(INCEPTION_FILE, weights, hint="torch-fidelity's Inception-v3 (TF port) weights")
        module = InceptionFeatures(path)
    elif name == "fmnist":
        from .fmnist import WEIGHTS_FILE, FMNISTFeatures, load_fmnist_net

        module = FMNISTFeatures(load_fmnist_net(weights))
        if weights is not None:
            module.weights_id = file_digest(weights)
        else:
            from importlib.resources import as_file, files

            with as_file(files("inv_metrics").joinpath("assets", WEIGHTS_FILE)) as path:
                module.weights_id = file_digest(Path(path))
    else:
        raise ValueError(f"unknown feature network {name!r}; choose from {FEATURES}")
    return module.to(device).eval().requires_grad_(False)
