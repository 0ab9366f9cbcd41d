"""Equalised-learning-rate layers and the (modulated) convolutions StyleGAN2 is built from.

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

from sg2_kernels import ACTIVATIONS, bias_act, noise_bias_lrelu_, setup_filter, upfirdn2d

from . import cpu_inference


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


WINOGRAD = os.environ.get("SG2_CORE_WINOGRAD", "1") != "0"
_nnpack_ready = None


def _winograd_suits(x, w, groups) -> bool:
    """Whether NNPACK's Winograd convolution should run this 3x3 convolution on the CPU.

    Measured per layer against oneDNN's direct convolution on a 2-core AVX2 CPU: 1.0-1.5x at 32 px and 1.3-3x
    at 64 px and more (most at batch 1); smaller maps are faster without it. Its results differ from the direct convolution
    by ~1e-5 relative. ``SG2_CORE_WINOGRAD=0`` (or ``sg2_core.layers.WINOGRAD = False``) turns it off.
    """
    global _nnpack_ready
    if not (WINOGRAD and groups == 1 and x.device.type == "cpu" and x.dtype == torch.float32 == w.dtype
            and w.shape[2] == w.shape[3] == 3 and x.shape[2] >= 32 and x.shape[3] >= 32):
        return False
    if _nnpack_ready is None:  # torch._nnpack_available() also initialises NNPACK, which its convolution needs
        _nnpack_ready = hasattr(torch, "_nnpack_spatial_convolution") and torch._nnpack_available()
    return _nnpack_ready


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1):
    """A 2-D convolution (cross-correlation, like ``F.conv2d``) fused with 2x up- or downsampling.

    ``up=2``: transposed convolution with stride 2, then the FIR filter ``f`` (gain 4); the result
    has twice the size of ``x`` for ``padding = k // 2``. ``down=2``: ``f`` first, then a stride-2
    convolution. The paddings are StyleGAN2's, so the output equals upsample-then-conv and
    filter-then-downsample-conv without materialising the large intermediate.
    """
    kh, kw = w.shape[2], w.shape[3]
    if up == 1 and down == 1:
        if _winograd_suits(x, w, groups):
            return torch._nnpack_spatial_convolution(x, w, None, [padding, padding], [1, 1])
        return F.conv2d(x, w, padding=padding, groups=groups)
    fw = f.shape[-1]
    if down > 1:
        p0, p1 = padding + (fw - down + 1) // 2, padding + (fw - down) // 2
        if kw == 1 and kh == 1:  # 1x1: downsample first, the convolution then runs on 4x fewer pixels
            return F.conv2d(upfirdn2d(x, f, down=down, padding=[p0, p1, p0, p1]), w, groups=groups)
        return F.conv2d(upfirdn2d(x, f, padding=[p0, p1, p0, p1]), w, stride=down, groups=groups)
    # up > 1: a transposed convolution wants [in, out/groups, k, k]
    n_out, n_in = w.shape[0], w.shape[1]
    wt = w.reshape(groups, n_out // groups, n_in, kh, kw).transpose(1, 2).reshape(groups * n_in, n_out // groups, kh, kw)
    return conv_transpose_up(x, wt, f, up, padding, groups)


def conv_transpose_up(x, wt, f, up, padding, groups=1):
    """The ``up > 1`` case of :func:`conv2d_resample` for a weight already in the transposed convolution's
    ``[in, out/groups, k, k]`` layout."""
    return blur_transposed(F.conv_transpose2d(x, wt, stride=up, groups=groups), f, up, padding, wt.shape[-1])


def blur_transposed(x, f, up, padding, kernel_size):
    """The FIR filter that follows a stride-``up`` transposed convolution (its full output, ``x``), cropped so
    that the result is ``up`` times the input size for ``padding = kernel_size // 2``."""
    fw = f.shape[-1]
    p0 = padding + (fw + up - 1) // 2 - (kernel_size - 1)
    p1 = padding + (fw - up) // 2 - (kernel_size - up)
    return upfirdn2d(x, f, padding=[p0, p1, p0, p1], gain=up * up)


class Conv2dLayer(nn.Module):
    """Equalised-LR convolution with optional 2x down/upsampling, fused bias + activation and clamp."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear", up=1, down=1,
                 resample_filter=(1, 3, 3, 1), conv_clamp=None):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x, gain=1.0):
        w = self.weight.to(x.dtype) * self.weight_gain
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
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


def modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, resample_filter=None, demodulate=True):
    """Convolve each sample with its own modulated (and demodulated) weights.

    ``weight`` is ``[O, I, k, k]`` shared by the batch, or ``[N, O, I, k, k]`` per sample (how per-sample
    weight offsets enter); ``styles`` is ``[N, I]``. ``noise`` is added after the convolution.
    Per-sample weights need one grouped convolution. A shared weight runs as one batched convolution
    with the styles and demodulation applied to the activations instead (equal up to float rounding,
    as in NVIDIA's training path). 1x1 kernels (toRGB) are a batched matrix product. CPU inference
    takes :mod:`sg2_core.cpu_inference` instead.
    """
    n, in_channels, h, w_ = x.shape
    per_sample = weight.ndim == 5
    out_channels, k = weight.shape[-4], weight.shape[-1]
    if styles.shape != (n, in_channels):
        raise ValueError(f"styles must have shape {[n, in_channels]}, got {list(styles.shape)}")
    styles = styles.to(weight.dtype)
    if cpu_inference.applies(x, weight, styles):
        y = cpu_inference.modulated_conv2d(x, weight, styles, up, padding, resample_filter, demodulate, WINOGRAD)
        return y if noise is None else y.add_(noise.to(y.dtype))
    w = (weight if per_sample else weight.unsqueeze(0)) * styles.reshape(n, 1, -1, 1, 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None  # [N, O]
    if k == 1 and up == 1:
        if dcoefs is not None:
            w = w * dcoefs.reshape(n, -1, 1, 1, 1)
        y = torch.matmul(w[..., 0, 0].to(x.dtype), x.reshape(n, in_channels, h * w_)).reshape(n, out_channels, h, w_)
    elif per_sample or n == 1:
        if dcoefs is not None:
            w = w * dcoefs.reshape(n, -1, 1, 1, 1)
        y = conv2d_resample(x.reshape(1, n * in_channels, h, w_), w.reshape(n * out_channels, in_channels, k, k).to(x.dtype),
                            resample_filter, up=up, padding=padding, groups=n)
        y = y.reshape(n, out_channels, y.shape[2], y.shape[3])
    else:
        y = conv2d_resample(x * styles.to(x.dtype).reshape(n, -1, 1, 1), weight.to(x.dtype), resample_filter,
                            up=up, padding=padding)
        if dcoefs is not None:
            y = y * dcoefs.to(y.dtype).reshape(n, -1, 1, 1)
    return y if noise is None else y.add_(noise.to(y.dtype))
