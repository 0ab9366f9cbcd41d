"""Per-sample feature conditions of the synthesis network: feature maps that modulate one layer's output.

HFGI's consultation branch (and StyleRes- or StyleFeatureEditor-style methods) change the generator's
features, not its weights: at a named layer the output ``F`` (after its bias, activation and clamp) becomes
``F * (1 + scale) + shift`` for that sample, and the rest of the network runs on the changed features.
``SynthesisNetwork(ws, feature_conditions={"b64.conv0": FeatureCondition(scale, shift)})`` renders a batch in
one pass; ``Inversion`` carries them beside the weight offsets.

Layer names are those of the weight offsets (``b64.conv0``; ``synthesis.b64.conv0`` is the same layer); only the
convolution layers have features to condition. ``scale`` and ``shift`` are ``[N, C, R, R]`` with the layer's
output channels and resolution; either may be ``None`` (no scaling / no shift). A missing condition equals zero
scale and zero shift, which is how batches with and without conditions concatenate and interpolate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sg2_core.nn.offsets import _all_finite, check_batch_shape, layer_entries

__all__ = ["FeatureCondition", "blend_conditions", "cat_conditions", "check_conditions"]

PARTS = ("scale", "shift")


@dataclass(frozen=True, eq=False)  # tensors have no single truth value
class FeatureCondition:
    """``features * (1 + scale) + shift`` at one layer; ``scale`` / ``shift``: ``[N, C, R, R]`` or ``None``."""

    scale: torch.Tensor | None = None
    shift: torch.Tensor | None = None

    def __post_init__(self):
        for part in PARTS:
            value = getattr(self, part)
            if value is not None and not isinstance(value, torch.Tensor):
                raise ValueError(f"FeatureCondition.{part} must be a tensor or None, got {type(value).__name__}")
        if self.scale is None and self.shift is None:
            raise ValueError("a FeatureCondition needs a scale, a shift or both (both None changes nothing)")

    def __len__(self) -> int:
        return self.parts()[0][1].shape[0]

    def parts(self) -> list[tuple[str, torch.Tensor]]:
        """``[(name, tensor)]`` of the parts that are set, scale first."""
        return [(part, getattr(self, part)) for part in PARTS if getattr(self, part) is not None]

    def apply(self, features: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            features = features * (1 + self.scale.to(features.dtype))
        if self.shift is not None:
            features = features + self.shift.to(features.dtype)
        return features

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> FeatureCondition:
        """The same condition with ``fn`` applied to each part (``to``, ``detach``, slicing)."""
        return FeatureCondition(*(None if t is None else fn(t) for t in (self.scale, self.shift)))


def check_conditions(synthesis, conditions, n: int | None = None) -> dict[str, FeatureCondition]:
    """``conditions`` keyed by :func:`~sg2_core.nn.offsets.layer_key`, after checking every name, type and shape
    against ``synthesis``. ``n``: the batch size they must have (``None``: that of the first one).

    Raises ValueError naming the unknown layer, the wrong type or the wrong shape and the expected one.
    """
    if not isinstance(conditions, dict):
        raise ValueError(
            f"feature_conditions must be a dict {{layer name: FeatureCondition}}, got {type(conditions).__name__}"
        )
    checked = {}
    for raw_name, name, condition in layer_entries(
        conditions, synthesis.condition_layer_names, "feature_conditions", "layers with features"
    ):
        if not isinstance(condition, FeatureCondition):
            raise ValueError(
                f"feature_conditions[{raw_name!r}] must be a FeatureCondition(scale, shift), "
                f"got {type(condition).__name__}"
            )
        layer = synthesis.layer(name)
        output_shape = [layer.weight.shape[0], layer.resolution, layer.resolution]
        for part, t in condition.parts():
            what = f"feature_conditions[{raw_name!r}].{part}"
            n = check_batch_shape(t, n, output_shape, what, "[N, channels, res, res] of the layer's output")
            if not t.is_floating_point() or not _all_finite(t):
                raise ValueError(f"{what} must be finite floats")
        checked[name] = condition
    return checked


def _part_or_zeros(condition: FeatureCondition | None, part: str, like: torch.Tensor, n: int) -> torch.Tensor:
    value = None if condition is None else getattr(condition, part)
    return like.new_zeros(n, *like.shape[1:]) if value is None else value


def _reference(conditions: list[FeatureCondition | None], part: str) -> torch.Tensor | None:
    return next((getattr(c, part) for c in conditions if c is not None and getattr(c, part) is not None), None)


def _combine(per_layer: dict[str, list], build) -> dict[str, FeatureCondition] | None:
    """One FeatureCondition per layer from ``build(conditions, part, reference)`` of each part someone has."""
    result = {}
    for name, conditions in per_layer.items():
        parts = {}
        for part in PARTS:
            reference = _reference(conditions, part)
            parts[part] = None if reference is None else build(conditions, part, reference)
        result[name] = FeatureCondition(**parts)
    return result or None


def cat_conditions(groups: list[tuple[dict | None, int]]) -> dict[str, FeatureCondition] | None:
    """Concatenate the conditions of batches ``[(conditions or None, batch size)]`` along the batch; a batch without
    a layer (or a part) contributes zeros."""
    names = list(dict.fromkeys(name for conditions, _ in groups for name in conditions or {}))
    per_layer = {name: [(conditions or {}).get(name) for conditions, _ in groups] for name in names}
    sizes = [n for _, n in groups]
    return _combine(
        per_layer,
        lambda conds, part, ref: torch.cat([_part_or_zeros(c, part, ref, n) for c, n in zip(conds, sizes)]),
    )


def blend_conditions(mine: dict | None, theirs: dict | None, weight: torch.Tensor, n: int) -> dict | None:
    """``mine + weight * (theirs - mine)`` per layer and part (``weight``: a number or ``[N, 1, 1, 1]``); a layer or
    part only one side has counts as zero on the other."""
    mine, theirs = mine or {}, theirs or {}
    per_layer = {name: [mine.get(name), theirs.get(name)] for name in {**mine, **theirs}}

    def lerp(conds, part, ref):
        a, b = (_part_or_zeros(c, part, ref, n) for c in conds)
        return a + weight.to(a.dtype) * (b - a)

    return _combine(per_layer, lerp)
