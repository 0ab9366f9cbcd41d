"""Latent-space helpers: the mean latent, truncation, interpolation and broadcasting W to W+.

Shapes: z is ``[N, z_dim]`` (z+ is ``[N, num_ws, z_dim]``), w is ``[N, w_dim]`` and W+ is
``[N, num_ws, w_dim]``. Every helper works on the device and dtype of the tensors it is given.
"""

from __future__ import annotations

import torch

from sg2_core.nn.generator import truncate


def _check_latent(name: str, t) -> None:
    if not isinstance(t, torch.Tensor) or t.ndim not in (2, 3):
        shape = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a tensor [N, dim] or [N, num_ws, dim], got {shape}")


def _check_pair(a, b) -> None:
    _check_latent("a", a)
    _check_latent("b", b)
    if a.shape != b.shape:
        raise ValueError(f"b must have the shape of a {list(a.shape)}, got {list(b.shape)}")


def _per_sample(name: str, t, n: int, ndim: int, like: torch.Tensor) -> torch.Tensor:
    """A float or a ``[N]`` tensor, shaped to broadcast against a latent of ``ndim`` dimensions."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t
    if t.shape != (n,):
        raise ValueError(f"{name} must be a number or a tensor [{n}] (one per sample), got {list(t.shape)}")
    return t.reshape(n, *[1] * (ndim - 1))


def mean_latent(generator, n: int = 10000, seed: int = 0) -> torch.Tensor:
    """The mean of ``n`` mapped z draws, ``[w_dim]`` (the usual start point of projection)."""
    return generator.mean_w(n, seed=seed)


def broadcast_w(w: torch.Tensor, num_ws: int) -> torch.Tensor:
    """``[N, w_dim]`` -> ``[N, num_ws, w_dim]`` (a copy, safe to edit); W+ input of that size passes through."""
    _check_latent("w", w)
    if w.ndim == 3:
        if w.shape[1] != num_ws:
            raise ValueError(f"w must be [N, w_dim] or [N, {num_ws}, w_dim], got {list(w.shape)}")
        return w
    return w.unsqueeze(1).repeat(1, num_ws, 1)


def apply_truncation(ws: torch.Tensor, w_avg, psi: float = 0.7, cutoff: int | None = None) -> torch.Tensor:
    """``w_avg + psi * (ws - w_avg)``, on the first ``cutoff`` W+ entries (all when ``None``).

    ``w_avg`` is a ``[w_dim]`` tensor or a Generator (its tracked ``mapping.w_avg``). ``ws`` may be
    W ``[N, w_dim]`` (``cutoff`` must then be ``None``) or W+ ``[N, num_ws, w_dim]``.
    """
    _check_latent("ws", ws)
    if not isinstance(w_avg, torch.Tensor):
        w_avg = w_avg.mapping.w_avg
    if w_avg.shape != (ws.shape[-1],):
        raise ValueError(f"w_avg must have shape [{ws.shape[-1]}] (the w_dim of ws), got {list(w_avg.shape)}")
    if ws.ndim == 2:
        if cutoff is not None:
            raise ValueError("cutoff needs W+ ws [N, num_ws, w_dim]; a single w has no layers to cut")
        return w_avg.lerp(ws, psi) if psi != 1 else ws
    if cutoff is not None and not 0 <= cutoff <= ws.shape[1]:
        raise ValueError(f"cutoff must be in [0, {ws.shape[1]}] or None, got {cutoff}")
    return truncate(ws, w_avg.to(ws.dtype), psi, cutoff)


def lerp(a: torch.Tensor, b: torch.Tensor, t) -> torch.Tensor:
    """Linear interpolation in W or W+ (``a`` at ``t=0``, ``b`` at ``t=1``); ``t`` a number or ``[N]``."""
    _check_pair(a, b)
    t = _per_sample("t", t, a.shape[0], a.ndim, a)
    return a + t * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation in Z (along the last dimension, so z+ works too).

    Follows the great circle between the directions of ``a`` and ``b`` (Shoemake's formula, applied to
    the unnormalised vectors, so norms blend smoothly); exact at ``t = 0`` and ``t = 1``. Nearly
    parallel pairs (angle below ``eps``) fall back to ``lerp``, where the two agree. Opposite vectors
    have no unique great circle; their result is whatever the formula gives.
    """
    _check_pair(a, b)
    t = _per_sample("t", t, a.shape[0], a.ndim, a).to(torch.float64)
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    ua = a64 / a64.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    ub = b64 / b64.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    # The half-chord form of the angle stays accurate for nearly parallel vectors, unlike acos.
    omega = 2 * torch.atan2((ua - ub).norm(dim=-1, keepdim=True), (ua + ub).norm(dim=-1, keepdim=True))
    small = omega < eps
    sin_omega = torch.where(small, torch.ones_like(omega), omega.sin())
    coef_a = torch.where(small, 1 - t, ((1 - t) * omega).sin() / sin_omega)
    coef_b = torch.where(small, t, (t * omega).sin() / sin_omega)
    return (coef_a * a64 + coef_b * b64).to(a.dtype)
