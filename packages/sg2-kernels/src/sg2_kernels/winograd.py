"""3x3 convolutions by Winograd's minimal filtering, for CPU inference.

Two cases, both on 6 x 6 blocks of input pixels:

- ``up=1``: ``F.conv2d(x, w, padding=1)`` by F(6x6, 3x3): 8 x 8 input tiles, 64 products per 36 outputs
  instead of 324 multiplies.
- ``up=2``: the stride-2 transposed convolution ``F.conv_transpose2d(x, w.transpose(0, 1), stride=2)``
  (full output, ``2H + 1`` pixels a side). Its even outputs are a 2-tap and its odd outputs a 1-tap
  correlation of the input, so per axis F(6, 2) plus 6 plain products give 12 outputs from 7 inputs:
  169 products per 144 outputs instead of 324 multiplies.

The work is three steps: tile transforms of the input, one batched matrix product per transform point
(``torch.bmm``), and tile transforms back. Weights are transformed once by :func:`transform_weight`
(callers may keep the result while the weight is unchanged). Per-sample scales of the input and output
channels (StyleGAN2's styles and demodulation) ride along with the transforms, so one transformed weight
serves a whole batch of modulated convolutions.

The ``cpp`` transforms need float32 CPU tensors with channel counts that are multiples of 8; ``ref``
runs anywhere. Results equal the direct convolution to ~1e-5 relative (float32). There is no autograd
formula: this is a forward-only fast path, and callers fall back to the usual ops when gradients are needed.
"""

from __future__ import annotations

import functools
import math

import torch

from . import _backend

LANES = 8
"""The compiled transforms handle channels in groups of this many."""


def _toom_cook(points: list[float], m: int, r: int):
    """``(At, G, Bt)`` of F(m, r) for correlation, ``y = At [(G g) * (Bt d)]``, from ``m + r - 2`` finite
    points and the point at infinity, in float64."""
    finite = torch.tensor(points, dtype=torch.float64)
    alpha = m + r - 1
    assert len(points) == alpha - 1
    at = torch.zeros(m, alpha, dtype=torch.float64)
    at[:, :-1] = finite.unsqueeze(0) ** torch.arange(m, dtype=torch.float64).unsqueeze(1)
    at[m - 1, -1] = 1
    f = torch.stack([torch.prod(torch.cat([p - finite[:j], p - finite[j + 1 :]])) for j, p in enumerate(finite)])
    g = torch.zeros(alpha, r, dtype=torch.float64)
    g[:-1] = finite.unsqueeze(1) ** torch.arange(r, dtype=torch.float64).unsqueeze(0) / f.unsqueeze(1)
    g[-1, r - 1] = 1
    # Bt from sum_j At[i, j] G[j, k] Bt[j, l] = [l == i + k] for all i, k, l: one small linear system per l.
    e = (at.unsqueeze(1) * g.t().unsqueeze(0)).reshape(m * r, alpha)  # [(i, k), j]
    i, k = torch.meshgrid(torch.arange(m), torch.arange(r), indexing="ij")
    rhs = ((i + k).reshape(-1, 1) == torch.arange(alpha).unsqueeze(0)).to(torch.float64)  # [(i, k), l]
    bt = torch.linalg.lstsq(e, rhs).solution
    assert torch.allclose(e @ bt, rhs, atol=1e-9), "not a valid set of Toom-Cook points"
    return at, g, bt.contiguous()


@functools.cache
def matrices(up: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(At [S, P], G [P, 3], Bt [P, L])`` in float64: the per-axis transforms of output, weight and input."""
    if up == 1:
        return _toom_cook([0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5], m=6, r=3)
    if up != 2:
        raise ValueError(f"up must be 1 or 2, got {up}")
    # Output 2i (i < 6) = w2 d[i] + w0 d[i + 1]: F(6, 2) on g = (w2, w0); output 2i + 1 = w1 d[i + 1].
    at2, g2, bt2 = _toom_cook([0.0, 1.0, -1.0, 2.0, -2.0, 0.5], m=6, r=2)
    at = torch.zeros(12, 13, dtype=torch.float64)
    at[0::2, :7] = at2
    at[1::2, 7:] = torch.eye(6, dtype=torch.float64)
    g = torch.zeros(13, 3, dtype=torch.float64)
    g[:7, 0], g[:7, 2] = g2[:, 1], g2[:, 0]
    g[7:, 1] = 1
    bt = torch.zeros(13, 7, dtype=torch.float64)
    bt[:7] = bt2
    bt[7:, 1:] = torch.eye(6, dtype=torch.float64)
    return at, g, bt


WEIGHT_POINTS = 64
"""Rows of a transformed weight. ``up=1`` has 64 points. ``up=2`` has 169, but its odd axis points all carry
the middle tap (``G`` rows 7-12 are equal), so only 64 distinct matrices: 49 even-even, 7 even-odd (one
per even row), 7 odd-even (one per even column) and 1 odd-odd."""


@functools.cache
def weight_index(up: int) -> torch.Tensor:
    """For each of the ``P * P`` transform points, its row of the transformed weight."""
    if up == 1:
        return torch.arange(64)
    p, q = torch.meshgrid(torch.arange(13), torch.arange(13), indexing="ij")
    even_p, even_q = p < 7, q < 7
    index = torch.where(even_p & even_q, p * 7 + q, 63)
    index = torch.where(even_p & ~even_q, 49 + p, index)
    index = torch.where(~even_p & even_q, 56 + q, index)
    return index.flatten()


def transform_weight(w: torch.Tensor, up: int = 1) -> torch.Tensor:
    """``[O, I, 3, 3]`` (``F.conv2d`` layout for both cases) to ``[64, I, O]`` for :func:`conv3x3`."""
    if w.ndim != 4 or w.shape[2:] != (3, 3):
        raise ValueError(f"w must be [O, I, 3, 3], got {list(w.shape)}")
    g = matrices(up)[1].to(w.dtype)
    every_point = torch.einsum("pk,oikl,ql->pqio", g, w, g).flatten(0, 1)
    return every_point[_first_points(up)].contiguous()


@functools.cache
def _first_points(up: int) -> torch.Tensor:
    index = weight_index(up)
    return torch.tensor([int((index == k).nonzero()[0]) for k in range(WEIGHT_POINTS)])


def output_size(size: int, up: int) -> int:
    return size if up == 1 else 2 * size + 1


def conv3x3(x, u, up=1, in_scale=None, out_scale=None, out=None, impl=None):
    """``[N, I, H, W]`` convolved with the weight ``u`` from :func:`transform_weight`.

    Equals ``F.conv2d(x * in_scale, w, padding=1) * out_scale`` for ``up=1`` and
    ``F.conv_transpose2d(x * in_scale, w.transpose(0, 1), stride=2) * out_scale`` for ``up=2``, with
    ``in_scale`` ``[N, I]`` and ``out_scale`` ``[N, O]`` (either may be None). ``out``: a contiguous tensor of
    the result's shape to write into (reusing a large buffer saves its page faults).
    """
    at, _, bt = matrices(up)
    s, p = at.shape
    c, h, w = x.shape[1:]
    if u.ndim != 3 or u.shape[:2] != (WEIGHT_POINTS, c):
        raise ValueError(f"u must be [{WEIGHT_POINTS}, {c}, O] (transform_weight(w, up={up})), got {list(u.shape)}")
    o = u.shape[2]
    oh, ow = output_size(h, up), output_size(w, up)
    tiles_h, tiles_w = math.ceil(oh / s), math.ceil(ow / s)
    impl = _backend.choose_impl(impl, x.device, "winograd.conv3x3")
    if impl == "cuda":
        raise ValueError("winograd.conv3x3 is a CPU op; use F.conv2d on CUDA")
    if impl == "cpp" and not (x.dtype == u.dtype == torch.float32 and c % LANES == 0 and o % LANES == 0):
        impl = "ref"
    if impl == "ref":
        y = _conv3x3_ref(x, u[weight_index(up)], at, bt, tiles_h, tiles_w, oh, ow, in_scale, out_scale)
        return y if out is None else out.copy_(y)
    empty = x.new_empty(0)
    return _backend.module("cpp").winograd_conv3x3(
        x.contiguous(),
        u.contiguous(),
        empty if in_scale is None else in_scale.float().contiguous(),
        empty if out_scale is None else out_scale.float().contiguous(),
        up,
        oh,
        ow,
        empty if out is None else out,
    )


def _conv3x3_ref(x, u, at, bt, tiles_h, tiles_w, oh, ow, in_scale, out_scale):
    """The same three steps in plain PyTorch; ``u`` has a row per point."""
    n, c = x.shape[:2]
    s, p = at.shape
    at, bt = at.to(x.dtype), bt.to(x.dtype)
    if in_scale is not None:
        x = x * in_scale.to(x.dtype).reshape(n, c, 1, 1)
    size_l = bt.shape[1]
    pad_b, pad_r = (tiles_h - 1) * 6 + size_l - 1 - x.shape[2], (tiles_w - 1) * 6 + size_l - 1 - x.shape[3]
    d = torch.nn.functional.pad(x, [1, pad_r, 1, pad_b]).unfold(2, size_l, 6).unfold(3, size_l, 6)
    v = torch.einsum("pi,nctuij,qj->pqntuc", bt, d, bt).reshape(p * p, -1, c)
    m = torch.bmm(v, u).reshape(p, p, n, tiles_h, tiles_w, -1)
    y = torch.einsum("ip,pqntuo,jq->notiuj", at, m, at).reshape(n, -1, tiles_h * s, tiles_w * s)[:, :, :oh, :ow]
    return y if out_scale is None else y * out_scale.to(y.dtype).reshape(n, -1, 1, 1)
