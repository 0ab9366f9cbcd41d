"""The result every inversion method returns: latent codes, their space, optional weight offsets and feature
conditions.

An ``Inversion`` is a batch: it renders itself, is edited along a W direction, interpolated with
another inversion of the same generator, sliced and concatenated. A method that tunes the
generator per image (PTI, HyperInverter) reports per-sample weight offsets instead of a copy of the
generator; an inversion without offsets behaves like one whose offsets are all zero. A method that changes the
generator's features (HFGI) reports per-sample feature conditions; a missing one equals zero scale and shift.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sg2_core.checkpoints._io import one_line
from sg2_core.checkpoints.errors import CheckpointError
from sg2_core.methods import inversion_file
from sg2_core.methods.directions import apply_direction
from sg2_core.methods.inversion_file import FILE_FORMAT, FILE_VERSION  # noqa: F401 - their home before 0.7
from sg2_core.methods.latents import _per_sample, broadcast_w, lerp
from sg2_core.nn.feature_conditions import FeatureCondition, blend_conditions, cat_conditions, check_conditions
from sg2_core.nn.generator import Generator
from sg2_core.nn.offsets import check_offsets

SPACES = ("w", "w+", "z+")


@dataclass(eq=False)  # tensors have no single truth value; compare fields explicitly
class Inversion:
    """Latent codes of ``N`` images for ``generator``.

    Attributes:
        latents: ``[N, w_dim]`` (space ``'w'``), ``[N, num_ws, w_dim]`` (``'w+'``) or
            ``[N, num_ws, z_dim]`` (``'z+'``: one z per W+ entry, each mapped on its own).
        space: ``'w'``, ``'w+'`` or ``'z+'``.
        generator: the Generator the codes belong to (shared, never copied or moved).
        weight_offsets: ``{layer name: [N, *weight shape]}`` added to the generator's stored weights, or
            ``None`` (units: see ``sg2_core.nn.offsets``).
        extras: anything else the method reports (losses, timings, ...). Tensors whose first
            dimension is ``N`` follow the batch when slicing and concatenating; the rest is carried as is.
        feature_conditions: ``{layer name: FeatureCondition(scale, shift)}`` applied to those layers' outputs
            (``[N, C, R, R]`` each; see ``sg2_core.nn.feature_conditions``), or ``None``. Edits keep them.
    """

    latents: torch.Tensor
    space: str
    generator: Generator
    weight_offsets: dict[str, torch.Tensor] | None = None
    extras: dict = field(default_factory=dict)
    feature_conditions: dict[str, FeatureCondition] | None = None

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
        g = self.generator
        expected = {"w": [g.w_dim], "w+": [g.num_ws, g.w_dim], "z+": [g.num_ws, g.z_dim]}[self.space]
        if (
            not isinstance(self.latents, torch.Tensor)
            or list(self.latents.shape[1:]) != expected
            or self.latents.ndim != len(expected) + 1
        ):
            got = list(self.latents.shape) if isinstance(self.latents, torch.Tensor) else type(self.latents).__name__
            raise ValueError(f"latents for space {self.space!r} must have shape {['N', *expected]}, got {got}")
        if self.latents.is_floating_point() and not torch.isfinite(self.latents).all():
            raise ValueError("latents contain NaN or inf")
        if self.weight_offsets:
            self.weight_offsets = check_offsets(self.generator.synthesis, self.weight_offsets, len(self))
        else:
            self.weight_offsets = None
        if self.feature_conditions:
            self.feature_conditions = check_conditions(self.generator.synthesis, self.feature_conditions, len(self))
        else:
            self.feature_conditions = None

    def __len__(self) -> int:
        return self.latents.shape[0]

    def __repr__(self) -> str:  # the default would print every tensor and the whole generator
        offsets = list(self.weight_offsets or {})
        return (
            f"Inversion(n={len(self)}, space={self.space!r}, latents={list(self.latents.shape)}, "
            f"weight_offsets={offsets}, feature_conditions={list(self.feature_conditions or {})}, "
            f"extras={list(self.extras)})"
        )

    @property
    def ws(self) -> torch.Tensor:
        """W+ codes ``[N, num_ws, w_dim]``, whatever the space (differentiable)."""
        g = self.generator
        if self.space == "w":
            return broadcast_w(self.latents, g.num_ws)
        if self.space == "w+":
            return self.latents
        n = len(self)
        mapped = g.mapping(self.latents.reshape(n * g.num_ws, g.z_dim))[:, 0]  # each z+ entry on its own
        return mapped.reshape(n, g.num_ws, g.w_dim)

    def render(
        self, generator: Generator | None = None, noise_mode: str = "const", **synthesis_kwargs: Any
    ) -> torch.Tensor:
        """Images ``[N, C, R, R]`` in about [-1, 1], with the weight offsets and feature conditions applied.

        ``generator``: render with another generator of the same architecture (a fine-tuned or stylised
        copy, as AgileGAN does); the W+ codes are this inversion's (z+ mapped by its own generator), only
        the synthesis network changes. The offsets are added to that generator's weights.
        """
        synthesis = self.generator.synthesis if generator is None else self._same_architecture(generator).synthesis
        return synthesis(
            self.ws,
            noise_mode=noise_mode,
            weight_offsets=self.weight_offsets,
            feature_conditions=self.feature_conditions,
            **synthesis_kwargs,
        )

    def _same_architecture(self, generator: Generator) -> Generator:
        if not hasattr(generator, "synthesis") or not hasattr(generator, "config"):
            raise ValueError(f"generator must be an sg2_core Generator, got {type(generator).__name__}")
        ours, theirs = self.generator.synthesis.state_dict(), generator.synthesis.state_dict()
        differ = [k for k in ours if k not in theirs or theirs[k].shape != ours[k].shape]
        if differ or len(ours) != len(theirs):
            raise ValueError(
                f"generator has another synthesis architecture than the inversion's (first "
                f"differences: {(differ or sorted(set(theirs) - set(ours)))[:3]})"
            )
        return generator

    def _derive(self, latents, space, weight_offsets, extras, feature_conditions) -> Inversion:
        return Inversion(latents, space, self.generator, weight_offsets, extras, feature_conditions)

    def edit(
        self, direction: torch.Tensor, strength: float | torch.Tensor, layers: int | slice | Sequence[int] | None = None
    ) -> Inversion:
        """A W+ inversion moved by ``strength * direction`` (on W+ entries ``layers``; offsets and feature
        conditions kept)."""
        ws = apply_direction(self.ws, direction, strength, layers)
        return self._derive(ws, "w+", self.weight_offsets, dict(self.extras), self.feature_conditions)

    def interpolate(self, other: Inversion, t: float | torch.Tensor) -> Inversion:
        """W+ lerp towards ``other`` (``self`` at ``t=0``); offsets and feature conditions blend too, a missing one
        counting as zero."""
        if not isinstance(other, Inversion):
            raise ValueError(f"other must be an Inversion, got {type(other).__name__}")
        if other.generator is not self.generator:
            raise ValueError("other belongs to a different generator; interpolation needs the same one")
        if len(other) != len(self):
            raise ValueError(f"other must hold {len(self)} samples like self, got {len(other)}")
        offsets = _blend_offsets(self.weight_offsets or {}, other.weight_offsets or {}, t, len(self))
        weight = _per_sample("t", t, len(self), 4, self.latents)
        conditions = blend_conditions(self.feature_conditions, other.feature_conditions, weight, len(self))
        return self._derive(lerp(self.ws, other.ws, t), "w+", offsets, {}, conditions)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the latents, space, weight offsets, feature conditions and extras to one safetensors file, atomically, with the
        generator's config and a hash of its weights (so :meth:`load` refuses a mismatched generator).

        Tensor extras are stored as tensors, other JSON-like extras as JSON; an extra that is neither is
        left out with a warning. ``overwrite=False`` refuses an existing file.
        """
        return inversion_file.write(
            path,
            self.latents,
            self.space,
            self.generator,
            self.weight_offsets,
            self.extras,
            overwrite=overwrite,
            conditions=self.feature_conditions,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, generator: Generator, *, check_weights: bool = True) -> Inversion:
        """Read a file written by :meth:`save`, for ``generator`` (which must have the recorded config and,
        with ``check_weights``, the recorded weights); tensors land on the generator's device."""
        path, latents, space, offsets, extras, conditions = inversion_file.read(
            path, generator, check_weights=check_weights
        )
        try:
            return cls(latents, space, generator, offsets, extras, conditions)
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"the inversion file does not fit the generator: {one_line(exc)}", path) from exc

    def _map(self, fn) -> Inversion:
        offsets = None if self.weight_offsets is None else {k: fn(v) for k, v in self.weight_offsets.items()}
        extras = {k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in self.extras.items()}
        return self._derive(fn(self.latents), self.space, offsets, extras, self._map_conditions(fn))

    def _map_conditions(self, fn) -> dict[str, FeatureCondition] | None:
        return None if self.feature_conditions is None else {k: c.map(fn) for k, c in self.feature_conditions.items()}

    def to(self, device) -> Inversion:
        """Moves the latents, offsets, feature conditions and tensor extras (not the shared generator)."""
        return self._map(lambda t: t.to(device))

    def detach(self) -> Inversion:
        return self._map(lambda t: t.detach())

    def __getitem__(self, index) -> Inversion:
        """A sub-batch; an int keeps the batch dimension (``inv[2]`` has length 1)."""
        n = len(self)
        if isinstance(index, int):
            if not -n <= index < n:
                raise IndexError(f"index {index} is out of range for an Inversion of {n} samples")
            index = slice(index % n, index % n + 1)
        offsets = None if self.weight_offsets is None else {k: v[index] for k, v in self.weight_offsets.items()}
        extras = {k: v[index] if _is_per_sample(v, n) else v for k, v in self.extras.items()}
        return self._derive(self.latents[index], self.space, offsets, extras, self._map_conditions(lambda t: t[index]))

    @staticmethod
    def cat(inversions) -> Inversion:
        """Concatenate along the batch. Mixed spaces become W+; offsets and feature conditions of layers some lack
        count as zero."""
        inversions = list(inversions)
        if not inversions:
            raise ValueError("inversions must hold at least one Inversion")
        first = inversions[0]
        if any(inv.generator is not first.generator for inv in inversions):
            raise ValueError("all inversions must belong to the same generator")
        same_space = all(inv.space == first.space for inv in inversions)
        space = first.space if same_space else "w+"
        latents = torch.cat([inv.latents if same_space else inv.ws for inv in inversions])
        extras = {}
        for key, value in first.extras.items():
            parts = [inv.extras.get(key) for inv in inversions]
            if all(_is_per_sample(p, len(inv)) for p, inv in zip(parts, inversions)):
                extras[key] = torch.cat(parts)
            else:
                extras[key] = value
        conditions = cat_conditions([(inv.feature_conditions, len(inv)) for inv in inversions])
        return Inversion(latents, space, first.generator, _cat_offsets(inversions), extras, conditions)


def _blend_offsets(mine: dict, theirs: dict, t, n: int) -> dict | None:
    """Per-layer lerp of two offset dicts; a layer only one side has counts as zero on the other."""
    blended = {}
    for name in {**mine, **theirs}:
        a, b = mine.get(name), theirs.get(name)
        a = torch.zeros_like(b) if a is None else a
        b = torch.zeros_like(a) if b is None else b
        blended[name] = a + _per_sample("t", t, n, a.ndim, a) * (b - a)
    return blended or None


def _cat_offsets(inversions) -> dict | None:
    """Per-layer concatenation; an inversion without a layer's offset contributes zeros."""
    references = {name: off for inv in inversions for name, off in (inv.weight_offsets or {}).items()}
    result = {}
    for name, reference in references.items():
        parts = [(inv.weight_offsets or {}).get(name) for inv in inversions]
        result[name] = torch.cat(
            [
                reference.new_zeros(len(inv), *reference.shape[1:]) if part is None else part
                for part, inv in zip(parts, inversions)
            ]
        )
    return result or None


def _is_per_sample(value, n: int) -> bool:
    return isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == n
