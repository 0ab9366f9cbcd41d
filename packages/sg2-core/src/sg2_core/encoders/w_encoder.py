"""pSp's ``BackboneEncoderUsingLastLayerIntoW`` (HyperInverter's phase-I W encoder): the trunk's last map,
global average pooling, EqualLinear to one w. Keys: ``input_layer``, ``body``, ``linear``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sg2_core.encoders.blocks import EqualLinear
from sg2_core.encoders.trunk import DEFAULT_WIDTHS, IRTrunk


class WEncoder(IRTrunk):
    """[N, in_channels, H, W] images -> [N, w_dim] (one code; the caller adds w_avg and broadcasts it)."""

    def __init__(
        self,
        in_channels: int = 3,
        *,
        w_dim: int = 512,
        num_layers: int = 50,
        mode: str = "ir_se",
        widths: Sequence[int] = DEFAULT_WIDTHS,
    ):
        super().__init__(num_layers, mode, in_channels=in_channels, widths=widths)
        self.w_dim = w_dim
        self.output_pool = nn.AdaptiveAvgPool2d(1)
        self.linear = EqualLinear(self.widths[-1], w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.output_pool(self.forward_features(x)).flatten(1))
