"""Image distances by name: one call, the same interface, each labelled with the network behind it."""

from __future__ import annotations

from torch import nn

DISTANCES = ("lpips-alex", "lpips-vgg", "lpips-squeeze", "fmnist")


def load_distance(name: str, *, weights=None, device=None) -> nn.Module:
    """A module with forward(x, y) -> per-image distance [N] for [-1, 1] images, differentiable, with ``.name``.

    ``lpips-*``: ``weights`` is the torchvision trunk file (default: the torch hub cache, e.g.
    ``~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth``). ``fmnist``: the perceptual distance of the
    shipped Fashion-MNIST network (``weights`` optional, a file from the training script).
    """
    if name.startswith("lpips-") and name in DISTANCES:
        from .lpips_distance import LPIPS

        module = LPIPS(name.removeprefix("lpips-"), weights)
    elif name == "fmnist":
        from .fmnist import FMNISTPerceptual, load_fmnist_net

        module = FMNISTPerceptual(load_fmnist_net(weights))
    else:
        raise ValueError(f"unknown distance {name!r}; choose from {DISTANCES}")
    return module.to(device).eval().requires_grad_(False)
