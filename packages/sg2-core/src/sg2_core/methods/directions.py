"""Editing directions in W, moving latents along them, and the one file format that holds them.

Found from the generator alone:

- SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021): the
  directions that change the styles of the chosen layers the most are the top eigenvectors of
  ``A^T A``, where ``A`` stacks the layers' affine (w -> style) weights, one row per style channel,
  each row scaled to unit norm as in the official code.
- GANSpace (Härkönen et al., NeurIPS 2020): principal components of sampled w.

Both give unit vectors in W, strongest first, with a deterministic sign (the largest entry of each
vector is positive). Supervised InterFaceGAN boundaries (``sg2_core.methods.interfacegan``) are
``Directions`` too, and every kind is saved and read back by :func:`save_directions` /
:func:`load_directions` (what ``python -m sg2_core.invert --edit FILE:INDEX:STRENGTH`` reads).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from sg2_core.methods.latents import _per_sample


@dataclass(frozen=True)
class Directions:
    """Unit directions in W, strongest first.

    Attributes:
        vectors: ``[k, w_dim]`` unit rows (orthonormal for SeFa and GANSpace).
        values: ``[k]`` eigenvalues of ``A^T A`` (SeFa), variances of w along each vector (GANSpace), or
            the linear SVM's accuracy on held-out samples (InterFaceGAN; NaN when none were held out).
        total: the sum of ``values`` over all ``w_dim`` components, so ``ratio`` is a share of the whole
            (1.0 for InterFaceGAN, NaN for a file that only holds vectors).
        method: ``'sefa'``, ``'ganspace'``, ``'interfacegan'``, or ``''`` for a file that only holds vectors.
        layers: the layers SeFa factorised (empty for the others).
        mean: the mean sampled w (GANSpace), else ``None``.
        names: one label per direction where they have one (InterFaceGAN: the attribute), else empty.
    """

    vectors: torch.Tensor
    values: torch.Tensor
    total: float
    method: str
    layers: tuple[str, ...] = ()
    mean: torch.Tensor | None = None
    names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        return self.vectors[index]

    @property
    def ratio(self) -> torch.Tensor:
        """Share of ``total`` per direction (explained-variance ratio for GANSpace)."""
        return self.values / self.total

    def to(self, device) -> Directions:
        mean = None if self.mean is None else self.mean.to(device)
        return replace(self, vectors=self.vectors.to(device), values=self.values.to(device), mean=mean)


def modulated_layer_names(generator, include_torgb: bool = False) -> list[str]:
    """Layers with an affine style input, in generator order: the convolutions, optionally the toRGBs."""
    names = generator.synthesis.weight_layer_names
    return names if include_torgb else [n for n in names if not n.endswith(".torgb")]


def layer_w_indices(generator, layers) -> list[int]:
    """The W+ entry each named layer reads (``b4.conv1`` -> 0, ``b4.torgb`` -> 1, ``b8.conv0`` -> 1, ...)."""
    index, w_index = {}, 0
    for block in generator.synthesis.blocks():
        for i, name in enumerate(block.conv_names):
            index[f"b{block.resolution}.{name}"] = w_index + i
        index[f"b{block.resolution}.torgb"] = w_index + len(block.conv_names)
        w_index += len(block.conv_names)
    _check_layer_names(layers, list(index))
    return sorted({index[name] for name in layers})


def _check_layer_names(layers, known) -> None:
    unknown = [name for name in layers if name not in known]
    if unknown or not layers:
        raise ValueError(f"layers must be a non-empty list of layer names from {known}; unknown: {unknown}")


def _fix_signs(vectors: torch.Tensor) -> torch.Tensor:
    """Eigenvectors are defined up to sign; make each row's largest-magnitude entry positive."""
    largest = vectors.gather(1, vectors.abs().argmax(dim=1, keepdim=True))
    return vectors * largest.sign()


def style_weights(generator, layers) -> torch.Tensor:
    """``[sum of style channels, w_dim]``: the effective affine weights (with their run-time gains)."""
    rows = []
    for name in layers:
        layer = generator.synthesis.layer(name)
        weight = layer.affine.weight * layer.affine.weight_gain
        rows.append(weight * getattr(layer, "weight_gain", 1.0))  # toRGB scales its styles once more
    return torch.cat(rows, dim=0)


@torch.no_grad()
def sefa(
    generator, layers=None, include_torgb: bool = False, num_directions: int | None = None, normalize: bool = True
) -> Directions:
    """SeFa directions of ``layers`` (names like ``'b8.conv0'``; default: every modulated convolution).

    ``normalize=True`` scales every style channel's weight row to unit norm (the paper's official
    code), so each channel counts equally; ``False`` keeps the raw weights (rosinality's script).
    """
    known = modulated_layer_names(generator, include_torgb=True)
    layers = list(layers) if layers is not None else modulated_layer_names(generator, include_torgb)
    _check_layer_names(layers, known)
    a = style_weights(generator, layers).to(torch.float64)
    if normalize:
        a = a / a.norm(dim=1, keepdim=True)
    values, vectors = torch.linalg.eigh(a.T @ a)  # ascending
    values, vectors = values.flip(0), vectors.flip(1).T
    k = num_directions or len(values)
    return Directions(
        vectors=_fix_signs(vectors[:k]).to(torch.float32),
        values=values[:k].to(torch.float32),
        total=float(values.sum()),
        method="sefa",
        layers=tuple(layers),
    )


@torch.no_grad()
def sample_w(generator, n: int, seed: int = 0, batch_size: int = 4096) -> torch.Tensor:
    """``[n, w_dim]`` mapped from seeded z (CPU draws, so the same seed gives the same w on any device)."""
    gen = torch.Generator().manual_seed(seed)
    device = generator.mapping.w_avg.device
    chunks = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), generator.z_dim, generator=gen).to(device)
        chunks.append(generator.mapping(z)[:, 0])
    return torch.cat(chunks)


@torch.no_grad()
def ganspace(generator, n: int = 10000, seed: int = 0, num_components: int | None = None) -> Directions:
    """GANSpace: principal components of ``n`` sampled w, with the variance along each."""
    if n < 2:
        raise ValueError(f"n must be at least 2 samples, got {n}")
    w = sample_w(generator, n, seed).to(torch.float64)
    mean = w.mean(dim=0)
    centred = w - mean
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    variances = singular.square() / (n - 1)
    k = num_components or len(variances)
    return Directions(
        vectors=_fix_signs(vh[:k]).to(torch.float32),
        values=variances[:k].to(torch.float32),
        total=float(centred.square().sum() / (n - 1)),
        method="ganspace",
        mean=mean.to(torch.float32),
    )


def _w_mask(layers, num_ws: int) -> torch.Tensor:
    positions = list(range(num_ws))
    if layers is None:
        chosen = positions
    elif isinstance(layers, slice):
        chosen = positions[layers]
    else:
        chosen = [layers] if isinstance(layers, int) else list(layers)
    bad = [i for i in chosen if not isinstance(i, int) or not -num_ws <= i < num_ws]
    if bad:
        raise ValueError(f"layers must be W+ indices in [0, {num_ws}) (an int, slice, range or list), got {bad}")
    mask = torch.zeros(num_ws)
    mask[chosen] = 1
    return mask


def apply_direction(
    ws: torch.Tensor,
    direction: torch.Tensor,
    strength: float | torch.Tensor,
    layers: int | slice | Sequence[int] | None = None,
) -> torch.Tensor:
    """``ws + strength * direction`` on all W+ entries, or on ``layers`` (an index, slice, range or list).

    ``ws`` is W+ ``[N, num_ws, w_dim]`` or W ``[N, w_dim]`` (then ``layers`` must be ``None``);
    ``direction`` is ``[w_dim]``; ``strength`` a number or ``[N]``, one per sample (both must be finite). Returns a new tensor.
    """
    if not isinstance(ws, torch.Tensor) or ws.ndim not in (2, 3):
        raise ValueError(f"ws must be a tensor [N, w_dim] or [N, num_ws, w_dim], got {getattr(ws, 'shape', ws)}")
    if not isinstance(direction, torch.Tensor) or direction.shape != (ws.shape[-1],):
        raise ValueError(
            f"direction must be a tensor [{ws.shape[-1]}] (the w_dim of ws), "
            f"got {list(getattr(direction, 'shape', [])) or type(direction).__name__}"
        )
    if not torch.isfinite(direction).all():
        raise ValueError("direction contains NaN or inf; an edit along it would render NaN images")
    strength = _per_sample("strength", strength, ws.shape[0], ws.ndim, ws)
    if not torch.isfinite(strength).all():
        raise ValueError(f"strength must be finite, got {strength.flatten().tolist()}")
    step = strength * direction.to(ws)
    if ws.ndim == 2:
        if layers is not None:
            raise ValueError("layers needs W+ ws [N, num_ws, w_dim]; a single w has no layers to select")
        return ws + step
    mask = _w_mask(layers, ws.shape[1]).to(ws).reshape(1, -1, 1)
    return ws + mask * step


# --- the directions file ----------------------------------------------------------------------------------------


def save_directions(directions: Directions, path) -> Path:
    """Write ``directions`` to a ``.safetensors`` file: tensors ``directions`` ``[k, w_dim]``, ``values``
    ``[k]`` (and ``mean``), and the method, total, layers and names as metadata. Returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"directions are saved as .safetensors, got {path}")
    from safetensors.torch import save_file

    tensors = {
        "directions": directions.vectors.detach().to("cpu", torch.float32).contiguous(),
        "values": directions.values.detach().to("cpu", torch.float32).contiguous(),
    }
    if directions.mean is not None:
        tensors["mean"] = directions.mean.detach().to("cpu", torch.float32).contiguous()
    metadata = {
        "method": directions.method,
        "total": repr(float(directions.total)),
        "layers": json.dumps(list(directions.layers)),
        "names": json.dumps(list(directions.names)),
    }
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_directions(path) -> Directions:
    """Directions from a file :func:`save_directions` wrote, or from any ``.npy`` / ``.safetensors`` holding
    only vectors ``[k, w_dim]`` or one ``[w_dim]`` (InterFaceGAN's own boundaries are ``.npy`` ``[1, 512]``;
    a safetensors file's tensor is ``directions``, ``vectors``, ``direction`` or its only one).
    Raises ValueError naming what is wrong with the file."""
    import numpy as np

    path = str(path)
    metadata = {}
    extra = {}
    if path.lower().endswith(".safetensors"):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt") as f:
                metadata = f.metadata() or {}
                tensors = {key: f.get_tensor(key) for key in f.keys()}
        except SafetensorError as error:
            raise ValueError(f"not a readable safetensors file ({error})") from None
        key = next((k for k in ("directions", "vectors", "direction") if k in tensors), None)
        if key is None and len(tensors) != 1:
            raise ValueError(f"it holds {sorted(tensors)}, none named 'directions' or 'vectors'")
        vectors = tensors[key] if key else next(iter(tensors.values()))
        extra = {k: tensors[k] for k in ("values", "mean") if k in tensors}
    elif path.lower().endswith(".npy"):
        vectors = torch.from_numpy(np.load(path, allow_pickle=False))
    else:
        raise ValueError("direction files are .npy or .safetensors")
    if not vectors.is_floating_point():
        raise ValueError(f"it holds {vectors.dtype} values, expected float directions")
    vectors = vectors[None] if vectors.ndim == 1 else vectors
    if vectors.ndim != 2:
        raise ValueError(f"it holds directions of shape {list(vectors.shape)}, expected [k, w_dim] or [w_dim]")
    k = len(vectors)
    values = extra.get("values", torch.full((k,), math.nan))
    if values.shape != (k,):
        raise ValueError(f"its values have shape {list(values.shape)}, expected [{k}] (one per direction)")
    return Directions(
        vectors=vectors,
        values=values,
        total=float(metadata.get("total", "nan")),
        method=metadata.get("method", ""),
        layers=tuple(json.loads(metadata.get("layers", "[]"))),
        mean=extra.get("mean"),
        names=tuple(json.loads(metadata.get("names", "[]"))),
    )
