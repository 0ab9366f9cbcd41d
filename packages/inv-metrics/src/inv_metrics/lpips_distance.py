"""LPIPS v0.1 through the ``lpips`` package, with the ImageNet trunk loaded from a local file only.

``lpips.LPIPS`` would fetch the torchvision trunk through the hub; here the network is built with a random
trunk (``pnet_rand=True``, heads from the wheel) and the trunk is then overwritten from the user's
torchvision checkpoint, every trunk tensor required, so no number can come from a random trunk.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn

from .errors import find_weights
from .images import check_pair, to_rgb

# lpips net name -> the torchvision checkpoint file its trunk comes from.
TRUNK_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


def _trunk_key(lpips_key: str) -> str:
    # lpips keeps torchvision's feature index inside each slice: slice{k}.{i}.weight <- features.{i}.weight
    return re.sub(r"^slice\d+\.", "features.", lpips_key)


def trunk_path(net: str, weights=None):
    return find_weights(
        TRUNK_FILES[net], weights, hint=f"torchvision's ImageNet {net} checkpoint; LPIPS never uses a random trunk"
    )


def load_trunk(model, net: str, path) -> None:
    """Copy the torchvision ``features.*`` tensors of the checkpoint at ``path`` into ``model.net``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    wanted = {key: _trunk_key(key) for key in model.net.state_dict()}
    missing = [src for src in wanted.values() if src not in state]
    if missing:
        raise ValueError(
            f"{path} is not a torchvision {net} checkpoint: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    model.net.load_state_dict({key: state[src] for key, src in wanted.items()}, strict=True)


class LPIPS(nn.Module):
    """forward(x, y): per-image LPIPS [N] of [-1, 1] images (1-channel input is replicated to RGB)."""

    def __init__(self, net: str = "alex", weights=None):
        super().__init__()
        if net not in TRUNK_FILES:
            raise ValueError(f"unknown LPIPS network {net!r}; choose from {sorted(TRUNK_FILES)}")
        path = trunk_path(net, weights)  # before building: a missing file fails fast
        import lpips

        with warnings.catch_warnings():  # lpips still passes torchvision's deprecated `pretrained=` argument
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        load_trunk(self.model, net, path)
        self.name = f"lpips-{net}"
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_pair(x, y)
        return self.model(to_rgb(x), to_rgb(y)).flatten()


def save_random_trunk(net: str, folder, seed: int = 0):
    """Writes a random ``net`` trunk as ``folder/TRUNK_FILES[net]`` (torchvision's layout) and returns its path.

    For tests and benchmarks that must run LPIPS where the ImageNet file is absent: it costs the same time and
    memory as the real trunk, but its distances mean nothing. Point ``$TORCH_HOME`` at the folder above
    ``hub/checkpoints`` (or pass the path as ``weights=``) to use it."""
    if net not in TRUNK_FILES:
        raise ValueError(f"unknown LPIPS network {net!r}; choose from {sorted(TRUNK_FILES)}")
    import lpips

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    path = Path(folder) / TRUNK_FILES[net]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({_trunk_key(key): t for key, t in model.net.state_dict().items()}, path)
    return path
