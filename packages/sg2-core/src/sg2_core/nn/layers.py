"""Equalised-learning-rate layers and the (modulated) convolutions StyleGAN2 is built from.

The convolution path (exact, or the CPU fast paths) is decided in one place, :func:`conv_path`, from the
choice made with :class:`use_impl`. The resampling convolutions themselves are ``sg2_kernels.conv2d_resample``.

Parameters are stored as N(0, 1) draws and scaled at run time (``1/sqrt(fan_in)``, times an
optional learning-rate multiplier), as in the StyleGAN2 paper; parameter names and shapes equal
NVIDIA's StyleGAN2-ADA so its state dicts load unchanged.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from sg2_core.nn import cpu_inference
from sg2_kernels import ACTIVATIONS, bias_act, blur_transposed, conv2d_resample, noise_bias_lrelu_, setup_filter


class FullyConnectedLayer(nn.Module):
    """``act(x @ (W * lr / sqrt(in)).T + b * lr)`` with the activation's default gain."""

    def __init__(self, in_features, out_features, activation="linear", lr_multiplier=1.0, bias_init=0.0, bias=True):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


IMPLS = ("ref", "fast", "auto")


def _impl_from_environment() -> str:
    impl = os.environ.get("SG2_CORE_IMPL")
    if impl is None:  # the older switch: it turned the fast paths off
        return "ref" if os.environ.get("SG2_CORE_WINOGRAD") == "0" else "auto"
    if impl not in IMPLS:
        raise ValueError(f"SG2_CORE_IMPL must be one of {IMPLS}, got {impl!r}")
    return impl


_impl = _impl_from_environment()


class use_impl:
    """Choose the convolution path: ``"ref"``, ``"fast"`` or ``"auto"`` (the default).

    - ``"ref"``: the exact path everywhere. NVIDIA's order of operations, with no NNPACK (torch's own NNPACK
      choice disabled too), no Winograd and no per-image loop. The fixture tests check this path.
    - ``"fast"``: the CPU fast paths wherever they apply. Where no gradient is recorded, that is
      :mod:`sg2_core.nn.cpu_inference` (Winograd, and one image at a time elsewhere). Where one is recorded,
      3x3 convolutions on maps of 32 px and more go through NNPACK's Winograd algorithm, whose rounding
      (~1e-5 relative) depends on the CPU.
    - ``"auto"``: the fast paths only where no gradient is recorded; gradients always come from the exact
      path, so regularisers and inversions do not depend on the CPU's NNPACK rounding.

    It sets the choice for the whole process at once, and restores the previous one on leaving a ``with`` block::

        sg2_core.use_impl("ref")           # from now on
        with sg2_core.use_impl("fast"):    # only inside the block
            ...

    The environment variable ``SG2_CORE_IMPL`` sets the initial choice. ``SG2_CORE_WINOGRAD=0``, its older
    name, means ``SG2_CORE_IMPL=ref``. The ops' implementation (pure PyTorch or compiled) is a separate
    choice, ``sg2_kernels.use_impl``.
    """

    def __init__(self, impl: str):
        global _impl
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl, self.previous = impl, _impl
        _impl = impl

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        global _impl
        _impl = self.previous

    def __repr__(self):
        return f"use_impl({self.impl!r})"


def current_impl() -> str:
    """The convolution path chosen by :class:`use_impl` (or the environment)."""
    return _impl


def conv_path(*tensors) -> str:
    """The one place that decides how a convolution runs: ``"exact"``, ``"fast"`` (NNPACK allowed) or
    ``"inference"`` (:mod:`sg2_core.nn.cpu_inference` may take it; no gradient is recorded)."""
    recorded = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if _impl == "ref" or (_impl == "auto" and recorded):
        return "exact"
    return "fast" if recorded else "inference"


class Conv2dLayer(nn.Module):
    """Equalised-LR convolution with optional 2x down/upsampling, fused bias + activation and clamp."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        bias=True,
        activation="linear",
        up=1,
        down=1,
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
    ):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x, gain=1.0):
        w = self.weight.to(x.dtype) * self.weight_gain
        x = conv2d_resample(
            x,
            w,
            self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            nnpack=conv_path(x, w) != "exact",
        )
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        b = None if self.bias is None else self.bias.to(x.dtype)
        return bias_act(x, b, act=self.activation, gain=ACTIVATIONS[self.activation].default_gain * gain, clamp=clamp)


def bias_lrelu(x, b, noise=None, clamp=None):
    """``bias_act(x + noise, b, act="lrelu", clamp=clamp)``; in place and in one pass
    (``sg2_kernels.noise_bias_lrelu_``) when no gradient will flow through ``x``: the maps of the last
    blocks are ~32 MB, and a fresh buffer of that size costs as much in page faults as the pass itself."""
    if torch.is_grad_enabled() and (x.requires_grad or (noise is not None and noise.requires_grad)):
        return bias_act(x if noise is None else x + noise.to(x.dtype), b, act="lrelu", clamp=clamp)
    return noise_bias_lrelu_(x, b, None if noise is None else noise.to(x.dtype), clamp=clamp)


def modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, resample_filter=None, demodulate=True, cache=None):
    """Convolve each sample with its own modulated (and demodulated) weights.

    ``weight`` is ``[O, I, k, k]`` shared by the batch, or ``[N, O, I, k, k]`` per sample (how per-sample
    weight offsets enter); ``styles`` is ``[N, I]``. ``noise`` is added after the convolution. The path is
    :func:`conv_path`'s. On the exact path this is NVIDIA's order of operations: per-sample weights (and a
    batch of one) as one grouped convolution with modulated and demodulated weights (per-sample weights
    with the demodulation as ``sum_i s_i^2 sum_k w^2``, see :func:`_per_sample_conv`), a shared weight as one
    batched convolution with the styles and demodulation applied to the activations (their training path),
    and 1x1 kernels (toRGB) as a batched matrix product. On the inference path a shared 3x3 weight goes to
    :mod:`sg2_core.nn.cpu_inference`; ``cache`` is the owning layer's ``cpu_inference.WeightCache``.
    """
    n, in_channels, h, w_ = x.shape
    per_sample = weight.ndim == 5
    out_channels, k = weight.shape[-4], weight.shape[-1]
    if styles.shape != (n, in_channels):
        raise ValueError(f"styles must have shape {[n, in_channels]}, got {list(styles.shape)}")
    styles = styles.to(weight.dtype)
    path = conv_path(x, weight, styles)
    if path == "inference" and cpu_inference.applies(x, weight):
        y = cpu_inference.modulated_conv2d(x, weight, styles, up, padding, resample_filter, demodulate, cache)
        return y if noise is None else y.add_(noise.to(y.dtype))
    nnpack = path != "exact"
    if per_sample and k > 1:
        return _per_sample_conv(x, weight, styles, noise, up, padding, resample_filter, demodulate, nnpack)
    w = (weight if per_sample else weight.unsqueeze(0)) * styles.reshape(n, 1, -1, 1, 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None  # [N, O]
    if k == 1 and up == 1:
        if dcoefs is not None:
            w = w * dcoefs.reshape(n, -1, 1, 1, 1)
        y = torch.matmul(w[..., 0, 0].to(x.dtype), x.reshape(n, in_channels, h * w_)).reshape(n, out_channels, h, w_)
    elif n == 1:
        if dcoefs is not None:
            w = w * dcoefs.reshape(n, -1, 1, 1, 1)
        y = conv2d_resample(
            x.reshape(1, n * in_channels, h, w_),
            w.reshape(n * out_channels, in_channels, k, k).to(x.dtype),
            resample_filter,
            up=up,
            padding=padding,
            groups=n,
            nnpack=nnpack,
        )
        y = y.reshape(n, out_channels, y.shape[2], y.shape[3])
    else:
        y = conv2d_resample(
            x * styles.to(x.dtype).reshape(n, -1, 1, 1),
            weight.to(x.dtype),
            resample_filter,
            up=up,
            padding=padding,
            nnpack=nnpack,
        )
        if dcoefs is not None:
            y = y * dcoefs.to(y.dtype).reshape(n, -1, 1, 1)
    return y if noise is None else y.add_(noise.to(y.dtype))


def _per_sample_conv(x, weights, styles, noise, up, padding, resample_filter, demodulate, nnpack):
    """Per-sample weights ``[N, O, I, k, k]`` as one grouped convolution. The styles and the demodulation
    become one ``[N, O, I]`` scale and one multiply of the weights, with the demodulation from
    ``sum_i s_i^2 sum_k w^2`` (a pass over the weights, not over a modulated copy); forward and backward then
    touch the ``[N, O, I, k, k]`` weights twice instead of four times. Upsampling ones: :func:`_per_sample_conv_up`."""
    n, in_channels, h, w_ = x.shape
    out_channels, k = weights.shape[1], weights.shape[-1]
    scale = styles.unsqueeze(1)  # [N, 1, I]
    if demodulate:
        square_sums = weights.square().sum(dim=[3, 4])  # [N, O, I]
        dcoefs = (torch.bmm(square_sums, styles.square().unsqueeze(2)) + 1e-8).rsqrt()  # [N, O, 1]
        scale = scale * dcoefs
    w = (weights * scale.unsqueeze(-1).unsqueeze(-1)).to(x.dtype)
    # torch's grouped transposed convolution is its slow generic one (measured many times slower, backward included)
    if up > 1:
        return _per_sample_conv_up(x, w, noise, up, padding, resample_filter)
    y = conv2d_resample(
        x.reshape(1, n * in_channels, h, w_),
        w.reshape(n * out_channels, in_channels, k, k),
        resample_filter,
        up=up,
        padding=padding,
        groups=n,
        nnpack=nnpack,
    )
    y = y.reshape(n, out_channels, y.shape[2], y.shape[3])
    return y if noise is None else y.add_(noise.to(y.dtype))


def _per_sample_conv_up(x, w, noise, up, padding, resample_filter):
    """``conv2d_resample(..., up=up, groups=N)`` for modulated per-sample weights ``w [N, O, I, k, k]``: the
    stride-``up`` transposed convolution as one batched matrix product (every input pixel times every tap,
    ``[N, O*k*k, H*W]``) whose columns ``F.fold`` adds into the full output, then the same blur."""
    n, in_channels, h, w_ = x.shape
    out_channels, k = w.shape[1], w.shape[-1]
    taps = w.permute(0, 1, 3, 4, 2).reshape(n, out_channels * k * k, in_channels)
    columns = torch.bmm(taps, x.reshape(n, in_channels, h * w_))
    full = F.fold(columns, ((h - 1) * up + k, (w_ - 1) * up + k), k, stride=up)
    y = blur_transposed(full, resample_filter, up, padding, k)
    return y if noise is None else y.add_(noise.to(y.dtype))
