"""The official encoders that ``sg2_core.encoders``' IR-SE networks do not cover, in their key layouts.

- :class:`ResNetStyleEncoder` and :class:`ResNetWEncoder`: sg2-core's pyramid and W heads on the ResNet34 trunk
  (``sg2_core.encoders.ResNetTrunk``) of ReStyle's ``ResNetGradualStyleEncoder`` / ``ResNetBackboneEncoder`` /
  ``ResNetProgressiveBackboneEncoder`` and HyperInverter's ``ResNetEncoderUsingLastLayerIntoW`` (the non-face
  domains).
- :class:`WPlusEncoder`: pSp's ``BackboneEncoderUsingLastLayerIntoWPlus``: the IR-SE trunk, BN, a 7x7 adaptive
  average pool, Linear to one ``style_dim`` vector, EqualLinear to all ``n_styles`` codes (keys
  ``output_layer_2.{0,3}``, ``linear``).

The ResNet classes reuse sg2-core's heads through the trunk: ``ResNetTrunk`` builds the layers and the taps
that ``IRTrunk.forward_features`` / ``forward_intermediates`` read (``feature_info``, ``body``, the stem in
``ResNetTrunk.forward_input_layer``), and ``PyramidStyleEncoder`` / ``WEncoder`` build their heads from
``feature_info`` and ``widths`` after their ``super().__init__`` call, which here reaches ``ResNetTrunk``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sg2_core.encoders import DEFAULT_WIDTHS, EqualLinear, IRTrunk, PyramidStyleEncoder, WEncoder
from sg2_core.encoders.resnet import ResNetTrunk

POOL = 7  # pSp's W+ head pools the last map to 7x7


class ResNetStyleEncoder(PyramidStyleEncoder, ResNetTrunk):
    """ReStyle's ``ResNetGradualStyleEncoder`` (``pyramid=True``) and ``ResNetBackboneEncoder`` /
    ``ResNetProgressiveBackboneEncoder`` (``pyramid=False``): sg2-core's map2style heads on the ResNet34 trunk."""

    def __init__(self, n_styles: int = 18, in_channels: int = 3, *, num_layers: int = 34, mode: str = "resnet", **kw):
        super().__init__(n_styles, in_channels, num_layers=num_layers, mode=mode, **kw)


class ResNetWEncoder(WEncoder, ResNetTrunk):
    """HyperInverter's ``ResNetEncoderUsingLastLayerIntoW``: the ResNet34 trunk, global average pool, EqualLinear
    to one w (keys ``conv1``, ``bn1``, ``relu``, ``body``, ``linear``)."""

    def __init__(self, in_channels: int = 3, *, num_layers: int = 34, mode: str = "resnet", **kw):
        super().__init__(in_channels, num_layers=num_layers, mode=mode, **kw)


class WPlusEncoder(IRTrunk):
    """pSp's ``BackboneEncoderUsingLastLayerIntoWPlus``: [N, in_channels, H, W] -> [N, n_styles, style_dim] from the
    trunk's last map (BN, 7x7 average pool, Linear to ``style_dim``, EqualLinear to ``n_styles * style_dim``)."""

    def __init__(
        self,
        n_styles: int = 18,
        in_channels: int = 3,
        *,
        num_layers: int = 50,
        mode: str = "ir_se",
        widths: Sequence[int] = DEFAULT_WIDTHS,
        style_dim: int = 512,
    ):
        super().__init__(num_layers, mode, in_channels=in_channels, widths=widths)
        if isinstance(n_styles, bool) or not isinstance(n_styles, int) or n_styles < 1:
            raise ValueError(f"n_styles must be a positive integer, got {n_styles!r}")
        self.n_styles, self.style_dim = n_styles, style_dim
        last = self.widths[-1]
        self.output_layer_2 = nn.Sequential(
            nn.BatchNorm2d(last),
            nn.AdaptiveAvgPool2d((POOL, POOL)),
            nn.Flatten(),
            nn.Linear(last * POOL * POOL, style_dim),
        )
        self.linear = EqualLinear(style_dim, style_dim * n_styles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.output_layer_2(self.forward_features(x))).view(-1, self.n_styles, self.style_dim)
