"""The ResNet34 trunk of the ReStyle, HyperInverter (non-face) and HyperStyle encoders: a 7x7 stride-2 conv
(``conv1``), BN (``bn1``), PReLU (``relu``), then torchvision's 16 ``BasicBlock`` units of resnet34's ``layer1..4``
(3/4/6/3, no max-pool) as ``body.{0..15}``, at any stage widths. Its taps are those of the IR trunk (strides 4, 8, 16
at units 6, 12, 15), so sg2-core's pyramid and W heads sit on it unchanged."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sg2_core.encoders.trunk import DEFAULT_WIDTHS, IRTrunk

__all__ = ["RESNET34_UNITS", "BasicBlock", "ResNetTrunk"]

RESNET34_UNITS = (3, 4, 6, 3)  # torchvision's resnet34 layer1..4


class BasicBlock(nn.Module):
    """torchvision's ResNet ``BasicBlock``: conv3x3 (stride) -> BN -> ReLU -> conv3x3 -> BN, plus the input or its
    1x1-conv + BN projection (``downsample``), then ReLU. Keys ``conv1``, ``bn1``, ``conv2``, ``bn2``,
    ``downsample.{0,1}``."""

    def __init__(self, in_channels: int, depth: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, depth, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(depth)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(depth, depth, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(depth)
        self.downsample = None
        if stride != 1 or in_channels != depth:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetTrunk(IRTrunk):
    """The ResNet34 trunk of ReStyle's and HyperInverter's ``ResNet*`` encoders, at any stage widths.

    Taps as ``IRTrunk``'s ``feature_info``: 0 the stem (stride 2), 1-4 the ends of the four stages (units 2, 6,
    12, 15; strides 2, 4, 8, 16), so taps 2, 3, 4 are the c1, c2, c3 of ReStyle's ``ResNetGradualStyleEncoder``.
    ``num_layers`` must be 34 and ``mode`` ``'resnet'`` (the arguments the heads pass on)."""

    def __init__(
        self,
        num_layers: int = 34,
        mode: str = "resnet",
        *,
        in_channels: int = 3,
        widths: Sequence[int] = DEFAULT_WIDTHS,
    ):
        nn.Module.__init__(self)  # not IRTrunk.__init__: its layers are the IR units
        widths = tuple(widths)
        if num_layers != 34 or mode != "resnet":
            raise ValueError(f"the ResNet trunk is ResNet34 (num_layers=34, mode='resnet'), got {num_layers}, {mode!r}")
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        if len(widths) != 4 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be 4 positive integers (one per stage), got {widths}")
        self.num_layers, self.mode, self.in_channels, self.widths = num_layers, mode, in_channels, widths
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.PReLU(widths[0])
        units, in_ch = [], widths[0]
        self.feature_info = [dict(module="relu", num_chs=widths[0], reduction=2, unit=-1)]
        for stage, (depth, count) in enumerate(zip(widths, RESNET34_UNITS)):
            for i in range(count):
                units.append(BasicBlock(in_ch, depth, 2 if i == 0 and stage > 0 else 1))
                in_ch = depth
            last = len(units) - 1
            self.feature_info.append(dict(module=f"body.{last}", num_chs=depth, reduction=2 ** (stage + 1), unit=last))
        self.body = nn.Sequential(*units)

    def forward_input_layer(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))
