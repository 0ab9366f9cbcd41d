"""bias_act: ``clamp(act(x + b) * gain, -clamp, clamp)`` with ``b`` broadcast along one dimension.

The compiled kernels fuse the whole expression into one pass. Their backward is a second fused
kernel (the first derivative), whose own backward uses the second derivative, so R1 and
path-length regularisation can differentiate through the op twice.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from . import _backend


@dataclass(frozen=True)
class Activation:
    code: int  # the kernels' numbering
    fn: Callable[[torch.Tensor, float], torch.Tensor]
    default_alpha: float = 0.0
    default_gain: float = 1.0
    has_second_derivative: bool = True


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(0, lambda v, a: v, has_second_derivative=False),
    "relu": Activation(1, lambda v, a: F.relu(v), default_gain=math.sqrt(2), has_second_derivative=False),
    "lrelu": Activation(
        2, lambda v, a: F.leaky_relu(v, a), default_alpha=0.2, default_gain=math.sqrt(2), has_second_derivative=False
    ),
    "tanh": Activation(3, lambda v, a: torch.tanh(v)),
    "sigmoid": Activation(4, lambda v, a: torch.sigmoid(v)),
    "elu": Activation(5, lambda v, a: F.elu(v, a), default_alpha=1.0),
    "selu": Activation(6, lambda v, a: F.selu(v)),
    "softplus": Activation(7, lambda v, a: F.softplus(v)),
    "swish": Activation(8, lambda v, a: F.silu(v), default_gain=math.sqrt(2)),
}
"""Every activation with its default ``alpha`` and ``gain`` (those of StyleGAN2-ADA)."""


@dataclass(frozen=True)
class _Spec:
    """Everything but the tensors, as the compiled kernels take it."""

    impl: str
    dim: int
    act: Activation
    alpha: float
    gain: float
    clamp: float  # < 0: no clamp

    def grad(self, g, x, b, order):
        """``g * gain * act^(order)(x + b)``, zero where the clamp cut."""
        b = _no_bias(x) if b is None else b
        return _backend.module(self.impl).bias_act_grad(
            g, x, b, self.dim, self.act.code, self.alpha, self.gain, self.clamp, order
        )

    def reduce_to_bias(self, t):
        return t.sum(dim=[d for d in range(t.ndim) if d != self.dim])


def _no_bias(x):
    return x.new_empty(0)


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, spec):
        ctx.save_for_backward(x, b)
        ctx.spec = spec
        bias = _no_bias(x) if b is None else b
        return _backend.module(spec.impl).bias_act(x, bias, spec.dim, spec.act.code, spec.alpha, spec.gain, spec.clamp)

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        spec = ctx.spec
        dx = _BiasActGrad.apply(dy, x, b, spec)
        db = spec.reduce_to_bias(dx) if b is not None and ctx.needs_input_grad[1] else None
        return dx, db, None


class _BiasActGrad(torch.autograd.Function):
    """``dx = dy * gain * act'(x + b)``, differentiable once more (w.r.t. dy, x and b)."""

    @staticmethod
    def forward(ctx, dy, x, b, spec):
        ctx.save_for_backward(dy, x, b)
        ctx.spec = spec
        return spec.grad(dy, x, b, order=1)

    @staticmethod
    @once_differentiable
    def backward(ctx, ddx):
        dy, x, b = ctx.saved_tensors
        spec = ctx.spec
        d_dy = spec.grad(ddx, x, b, order=1) if ctx.needs_input_grad[0] else None
        d_x = d_b = None
        if spec.act.has_second_derivative and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = spec.grad(ddx * dy, x, b, order=2)
            d_b = spec.reduce_to_bias(d_x) if b is not None else None
        return d_dy, d_x, d_b, None


def _bias_act_ref(x, b, dim, act, alpha, gain, clamp):
    if b is not None:
        x = x + b.reshape([-1 if d == dim else 1 for d in range(x.ndim)])
    y = act.fn(x, alpha)
    if gain != 1:
        y = y * gain
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return y


def _real(value, name, allow_none=True):
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl=None):
    """Add bias ``b`` along ``dim``, apply ``act``, multiply by ``gain``, clamp to ``[-clamp, clamp]``.

    Args:
        x: input tensor of any shape, floating point.
        b: bias with ``x.shape[dim]`` elements, or ``None``.
        dim: the dimension of ``x`` that ``b`` runs along.
        act: one of ``ACTIVATIONS`` (linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish).
        alpha: slope of lrelu / scale of elu; ``None`` = the activation's default.
        gain: output gain; ``None`` = the activation's default (sqrt(2) for relu, lrelu, swish; else 1).
        clamp: clamp the output to ``[-clamp, clamp]``; ``None`` = no clamp.
        impl: ``'ref'``, ``'cpp'``, ``'cuda'`` or ``None`` (the fastest available for the device).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    if not isinstance(dim, numbers.Integral) or not -x.ndim <= dim < max(x.ndim, 1):
        raise ValueError(f"dim must be an int in [{-x.ndim}, {x.ndim}) for x of shape {list(x.shape)}, got {dim!r}")
    dim = int(dim) % x.ndim
    if b is not None:
        if not isinstance(b, torch.Tensor) or b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(
                f"b must be a 1-D tensor of length x.shape[{dim}] = {x.shape[dim]}, got {getattr(b, 'shape', b)!r}"
            )
        if b.device != x.device:
            raise ValueError(f"b is on {b.device} but x is on {x.device}")
        b = b.to(x.dtype)
    spec_act = ACTIVATIONS[act]
    alpha = spec_act.default_alpha if alpha is None else _real(alpha, "alpha")
    gain = spec_act.default_gain if gain is None else _real(gain, "gain")
    clamp = _real(clamp, "clamp")
    if clamp is not None and clamp < 0:
        raise ValueError(f"clamp must be >= 0 or None, got {clamp}")

    impl = _backend.choose_impl(impl, x.device, "bias_act")
    if impl == "ref":
        return _bias_act_ref(x, b, dim, spec_act, alpha, gain, clamp)
    spec = _Spec(impl, dim, spec_act, alpha, gain, -1.0 if clamp is None else clamp)
    return _BiasAct.apply(x, b, spec)


def noise_bias_lrelu_(x, b, noise=None, clamp=None, impl=None):
    """In place and outside autograd: ``x = clamp(sqrt(2) * lrelu(x + noise + b, 0.2))``, StyleGAN2's synthesis
    layer tail at inference. One pass over ``x`` with the ``cpp`` kernel (float32, contiguous); plain in-place
    PyTorch ops otherwise.

    Args:
        x: ``[N, C, H, W]``, overwritten and returned.
        b: ``[C]``.
        noise: None, ``[H, W]`` (every sample) or ``[N or 1, 1, H, W]``.
        clamp: None or a positive bound.
    """
    lrelu = ACTIVATIONS["lrelu"]
    clamp = _real(clamp, "clamp")
    if x.ndim != 4 or b.shape != (x.shape[1],):
        raise ValueError(f"x must be [N, C, H, W] and b [C], got {list(x.shape)} and {list(b.shape)}")
    impl = _backend.choose_impl(impl, x.device, "noise_bias_lrelu_")
    fused = impl == "cpp" and x.dtype == b.dtype == torch.float32 and x.is_contiguous()
    if noise is not None:
        fused = fused and noise.dtype == torch.float32 and noise.numel() in (x[0, 0].numel(), x[:, 0].numel())
    if fused:
        _backend.module("cpp").noise_bias_lrelu_(
            x,
            x.new_empty(0) if noise is None else noise.contiguous(),
            b.contiguous(),
            lrelu.default_alpha,
            lrelu.default_gain,
            -1.0 if clamp is None else clamp,
        )
        return x
    if noise is not None:
        x.add_(noise)
    F.leaky_relu_(x.add_(b.reshape(1, -1, 1, 1)), lrelu.default_alpha).mul_(lrelu.default_gain)
    return x if clamp is None else x.clamp_(-clamp, clamp)
