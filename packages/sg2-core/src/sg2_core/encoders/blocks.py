"""The pieces the pSp-family encoders put on top of the trunk: EqualLinear, EqualConv2d, the map2style block and the
pyramid's upsample-and-add.

``GradualStyleBlock`` is pSp's map2style (also e4e's, ReStyle's and AgileGAN's ``SubBlock``): log2(spatial)
stride-2 3x3 convs, each followed by LeakyReLU with slope 0.01 (PyTorch's default, not StyleGAN's 0.2),
down to 1x1, then EqualLinear. With ``out_spatial > 1`` it stops at that map size and has no linear: that is
HyperInverter's ``StyleBlock`` (1, 2, 3 convs to 8x8 from 16, 32, 64).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sg2_core.encoders.inference import SMALL_MAPS, cache_of, conv, conv_im2col, takes_inference_path
from sg2_core.nn.layers import FullyConnectedLayer

STYLE_BLOCK_SLOPE = 0.01


class EqualLinear(FullyConnectedLayer):
    """rosinality / pSp ``EqualLinear``: ``x @ (W * lr_mul / sqrt(in)).T + b * lr_mul``, weights stored unscaled
    (keys ``weight``, ``bias``); ``activation='fused_lrelu'`` adds the bias then LeakyReLU(0.2) * sqrt(2).
    Works on any leading dimensions."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str | None = None,
    ):
        if activation not in (None, "fused_lrelu"):
            raise ValueError(f"activation must be None or 'fused_lrelu', got {activation!r}")
        super().__init__(
            in_dim,
            out_dim,
            activation="linear" if activation is None else "lrelu",
            lr_multiplier=lr_mul,
            bias_init=bias_init,
            bias=bias,
        )

    def forward(self, x):
        if x.ndim == 2:
            return super().forward(x)
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.out_features)


class EqualConv2d(nn.Module):
    """rosinality's ``EqualConv2d``: a convolution whose weight is stored unscaled (N(0, 1) at init) and multiplied
    by ``1 / sqrt(in * k * k)`` at run time (keys ``weight``, ``bias``), as HFGI's consultation heads use."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, self.weight.to(x.dtype) * self.scale, bias, self.stride, self.padding)


class ScaledLeakyReLU(nn.Module):
    """rosinality's ``ScaledLeakyReLU``: LeakyReLU times sqrt(2) (no parameters)."""

    def __init__(self, negative_slope: float = 0.2):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope) * math.sqrt(2)


class GradualStyleBlock(nn.Module):
    """map2style: a [N, in, spatial, spatial] map -> [N, out] (``out_spatial=1``), or -> [N, out, s, s] without
    the linear (``out_spatial=s``). Keys: ``convs.{0,2,4,...}`` (activations at the odd indices), ``linear``."""

    def __init__(self, in_channels: int, out_channels: int, spatial: int, out_spatial: int = 1):
        super().__init__()
        steps = math.log2(spatial / out_spatial) if spatial > 0 and out_spatial > 0 else 0
        if steps < 1 or steps != int(steps):
            raise ValueError(
                f"a style block needs spatial / out_spatial = 2, 4, 8, ... (one stride-2 conv each), "
                f"got spatial {spatial} and out_spatial {out_spatial}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.spatial, self.out_spatial = spatial, out_spatial
        layers = []
        for i in range(int(steps)):
            layers += [
                nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, 2, 1),
                nn.LeakyReLU(STYLE_BLOCK_SLOPE),
            ]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_channels, out_channels) if out_spatial == 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (self.in_channels, self.spatial, self.spatial):
            raise ValueError(
                f"this style block takes [N, {self.in_channels}, {self.spatial}, {self.spatial}] "
                f"maps, got {tuple(x.shape)}"
            )
        if not takes_inference_path(self, x, self.convs[0].weight):
            x = self.convs(x)
            return x if self.linear is None else self.linear(x.flatten(1))
        x = self.convs_inference(x)
        if self.linear is None:
            return x
        lin = self.linear  # its scaled weight once, not at every call
        w, b = cache_of(self).get(
            "linear", [lin.weight, lin.bias], lambda: ((lin.weight * lin.weight_gain).t(), lin.bias * lin.bias_gain)
        )
        return torch.addmm(b.to(x.dtype), x.flatten(1), w.to(x.dtype))

    def convs_inference(self, x: torch.Tensor) -> torch.Tensor:
        """The convs with in-place activations, the ones on small maps as im2col matrix products."""
        for layer in self.convs[::2]:
            if x.shape[-1] <= SMALL_MAPS:
                x = conv_im2col(x, layer)
            else:
                x = conv(x, layer.weight, layer.bias, layer.stride, layer.padding)
            x = F.leaky_relu_(x, STYLE_BLOCK_SLOPE)
        return x


def upsample_add(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """One feature-pyramid merge: ``top`` upsampled bilinearly (align_corners=True, as pSp) to ``lateral``'s size,
    plus ``lateral`` (already through its 1x1 latlayer)."""
    return F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=True).add_(lateral)
