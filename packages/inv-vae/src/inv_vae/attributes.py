"""Each sample's attribute for the attribute-aware generator: given, or predicted from the input image.

AgileGAN picks a path per portrait with a gender classifier. Here the classifier is whatever callable the
user gives (images ``[N, C, R, R]`` in [-1, 1] -> one attribute name or path index per image); on the demo
domain the default is the shipped Fashion-MNIST feature network of ``inv_metrics`` (``load_fmnist_net``),
its ten class probabilities summed over :data:`FMNIST_GROUPS`, the most probable group taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["FMNIST_CLASSES", "FMNIST_GROUPS", "FMNISTGroupClassifier", "resolve_attributes"]

FMNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# The demo's attribute classes: the Fashion-MNIST labels grouped by the shape of the garment
FMNIST_GROUPS = {"clothes": (0, 1, 2, 3, 4, 6), "shoes": (5, 7, 9), "bags": (8,)}


class FMNISTGroupClassifier:
    """images -> the most probable of ``groups`` (names from :data:`FMNIST_GROUPS`) by the shipped network."""

    def __init__(self, groups: Sequence[str] = tuple(FMNIST_GROUPS), device=None):
        unknown = [g for g in groups if g not in FMNIST_GROUPS]
        if unknown:
            raise ValueError(
                f"unknown attribute name(s) {unknown} for the Fashion-MNIST class groups "
                f"({', '.join(FMNIST_GROUPS)}); give attributes= or a classifier for them"
            )
        from inv_metrics.fmnist import load_fmnist_net

        self.groups = tuple(groups)
        self.net = load_fmnist_net(device=device)
        self.members = torch.zeros(len(FMNIST_CLASSES), len(self.groups))  # class -> group membership
        for j, g in enumerate(self.groups):
            self.members[list(FMNIST_GROUPS[g]), j] = 1.0

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, len(groups)]``: the class probabilities summed per group (renormalised over the groups)."""
        p = self.net(images.float()).softmax(dim=1) @ self.members.to(images.device)
        return p / p.sum(dim=1, keepdim=True)

    def __call__(self, images: torch.Tensor) -> list[str]:
        return [self.groups[i] for i in self.probabilities(images).argmax(dim=1).tolist()]


def default_classifier(style, generator) -> Callable | None:
    """The demo's group classifier when ``generator`` is the demo's and every path is a group name."""
    from sg2_core import demo

    if getattr(generator, "config", None) != demo.GENERATOR_CONFIG:
        return None
    return FMNISTGroupClassifier(style.config.attributes, device=next(generator.parameters()).device)


def resolve_attributes(style, generator, images: torch.Tensor, attributes=None, classifier=None) -> list[int]:
    """One path index of ``style`` (an AttributeGenerator) per image.

    ``attributes``: one name/index for all images, one per image, or None / ``'auto'``: predicted by
    ``classifier(images)`` (default on the demo: :class:`FMNISTGroupClassifier` over the style's paths)."""
    n = images.shape[0]
    if attributes is None or (isinstance(attributes, str) and attributes == "auto"):
        if classifier is None:
            classifier = default_classifier(style, generator)
            if classifier is None:
                raise ValueError(
                    f"the style generator has attribute paths {list(style.config.attributes)}: give "
                    "the attribute of each image, or a classifier that predicts it"
                )
        attributes = classifier(images)
    return style.attribute_indices(attributes, n).tolist()
