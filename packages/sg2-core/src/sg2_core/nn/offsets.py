"""Per-sample weight offsets of the synthesis network: one naming rule, one check, one unit.

A method that tunes the generator per image (PTI, HyperInverter) reports ``{layer: [N, *weight shape]}``
instead of a generator copy per image; ``SynthesisNetwork(ws, weight_offsets=...)`` renders the whole
batch in one pass.

Units: an offset is **added to the stored weight parameter** (``synthesis.b8.conv0.weight``, NVIDIA's
layout ``[out, in, k, k]``) before anything the layer does at run time: before modulation, demodulation
and ToRGB's weight gain ``1 / sqrt(in)``. That is where NVIDIA's and HyperInverter's code add their
deltas. Code that adds deltas to rosinality's *scaled* weight (``scale * weight`` with
``scale = 1 / sqrt(in * k * k)``) converts them once with :func:`from_scaled_units`; code whose changes
multiply the weight (HyperStyle's ``weight * (1 + delta)``) with :func:`from_relative_units`.
"""

from __future__ import annotations

import math

import torch

__all__ = ["check_offsets", "from_relative_units", "from_scaled_units", "layer_key", "to_scaled_units"]


def layer_key(name: str) -> str:
    """The layer a weight name refers to: ``synthesis.b8.conv0.weight``, ``b8.conv0.weight`` and
    ``b8.conv0`` all name ``b8.conv0``."""
    if not isinstance(name, str):
        raise TypeError(f"a layer name must be a string, got {type(name).__name__}")
    return name.removeprefix("synthesis.").removesuffix(".weight")


def check_offsets(synthesis, offsets, n: int | None = None) -> dict[str, torch.Tensor]:
    """``offsets`` keyed by :func:`layer_key`, after checking every name and shape against ``synthesis``.

    ``n`` is the batch size the offsets must have (``None``: whatever the first one has, the same for all).
    Raises ValueError naming the unknown layer or the wrong shape and the expected one.
    """
    checked = {}
    for raw_name, name, offset in layer_entries(
        offsets, synthesis.weight_layer_names, "weight_offsets", "layers with weights"
    ):
        if not isinstance(offset, torch.Tensor):
            raise ValueError(f"weight_offsets[{raw_name!r}] must be a tensor, got {type(offset).__name__}")
        n = check_batch_shape(
            offset, n, synthesis.layer(name).weight.shape, f"weight_offsets[{raw_name!r}]", "[N, *weight shape]"
        )
        if offset.is_floating_point() and not _all_finite(offset):
            raise ValueError(f"weight_offsets[{raw_name!r}] contains NaN or inf")
        checked[name] = offset
    return checked


def layer_entries(values: dict, known: list[str], what: str, known_as: str):
    """``(raw name, layer key, value)`` for each entry of a ``{layer name: value}`` dict such as ``what``, refusing a
    name not in ``known`` (the error lists them as ``known_as``) and a layer given twice under two spellings."""
    seen = set()
    for raw_name, value in values.items():
        name = layer_key(raw_name)
        if name not in known:
            raise ValueError(f"{what}: unknown layer {raw_name!r}; {known_as}: {known}")
        if name in seen:
            raise ValueError(f"{what}: layer {name!r} is given twice (as {raw_name!r} too)")
        seen.add(name)
        yield raw_name, name, value


def check_batch_shape(t: torch.Tensor, n: int | None, sample_shape, what: str, layout: str) -> int:
    """The batch size ``n`` (``None``: ``t``'s first dimension) after checking that ``t`` is ``[n, *sample_shape]``;
    the error names ``what`` and describes the expected ``layout``."""
    if n is None:
        n = t.shape[0] if t.ndim else 0
    expected = [n, *sample_shape]
    if list(t.shape) != expected:
        raise ValueError(f"{what} must have shape {expected} ({layout}), got {list(t.shape)}")
    return n


def _all_finite(t: torch.Tensor) -> bool:
    """``torch.isfinite(t).all()`` at the cost of one sum (a NaN or inf makes the sum NaN or inf), which matters
    since every render with offsets checks them; the full test only when the sum is not finite (NaN or inf
    inside, or finite values summing past float's range)."""
    t = t.detach()
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def _scale(synthesis, name: str) -> float:
    """rosinality's run-time weight scale of a layer, ``1 / sqrt(fan_in)``."""
    weight = synthesis.layer(name).weight
    return 1 / math.sqrt(weight[0].numel())


def from_scaled_units(synthesis, offsets) -> dict[str, torch.Tensor]:
    """Offsets that code in rosinality's layout adds to its scaled weight (``scale * weight + delta``),
    converted to ours (added to the stored weight): ``delta / scale``. rosinality's extra leading weight
    dimension (``[N, 1, out, in, k, k]``) is accepted and dropped."""
    converted = {}
    for _, name, offset in layer_entries(
        offsets, synthesis.weight_layer_names, "weight_offsets", "layers with weights"
    ):
        if offset.ndim == 6 and offset.shape[1] == 1:
            offset = offset[:, 0]
        converted[name] = offset / _scale(synthesis, name)
    return check_offsets(synthesis, converted)


def to_scaled_units(synthesis, offsets) -> dict[str, torch.Tensor]:
    """The inverse of :func:`from_scaled_units` (our ``[N, out, in, k, k]`` layout kept)."""
    return {name: offset * _scale(synthesis, name) for name, offset in check_offsets(synthesis, offsets).items()}


def from_relative_units(synthesis, deltas) -> dict[str, torch.Tensor]:
    """Relative weight changes (HyperStyle's generator uses ``scale * (weight * (1 + delta) * style)``) as offsets in
    our units: ``weight * delta``. Exact for every layer: the run-time scale and the style multiply the offset as
    they multiply the weight. ``deltas``: ``{layer: [N, *weight shape]}``, checked as offsets are (rosinality's
    extra leading weight dimension ``[N, 1, out, in, k, k]`` is accepted and dropped)."""
    squeezed = {k: d[:, 0] if d.ndim == 6 and d.shape[1] == 1 else d for k, d in deltas.items()}
    return {
        name: delta * synthesis.layer(name).weight.to(delta.dtype)
        for name, delta in check_offsets(synthesis, squeezed).items()
    }
