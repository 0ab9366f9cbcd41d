"""pSp's GradualStyleEncoder: the IR-SE trunk, a feature pyramid and one map2style block per style.

The trunk's taps 2, 3, 4 (pSp's c1, c2, c3: strides 4, 8, 16) feed a two-level pyramid:
``p2 = up(c3) + latlayer1(c2)``, ``p1 = up(p2) + latlayer2(c1)`` (1x1 laterals to the last stage's width,
bilinear with align_corners=True). Style j reads c3 (j < coarse), p2 (j < middle) or p1, so at 18 styles the
coarse ones 0-2 come from the 16x16 map, the medium 3-6 from 32x32 and the fine 7-17 from 64x64 at 256 px.
Keys are pSp's: ``input_layer``, ``body``, ``styles.{j}.convs/linear``, ``latlayer1/2``.

The same class builds the layouts that differ from it only in a parameter: ``pyramid=False`` (ReStyle's
``BackboneEncoder``: every style reads the last 16x16 map, no latlayers) and ``style_spatial=8``
(HyperInverter's ``LayerWiseEncoder``: the style blocks stop at 8x8 maps and have no linear).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sg2_core.encoders.blocks import GradualStyleBlock, upsample_add
from sg2_core.encoders.trunk import DEFAULT_WIDTHS, IRTrunk

PYRAMID_TAPS = (2, 3, 4)  # feature_info positions of c1, c2, c3
REDUCTION = {"c1": 4, "c2": 8, "c3": 16, "p2": 8, "p1": 4}


class PyramidStyleEncoder(IRTrunk):
    """[N, in_channels, input_size, input_size] images -> [N, n_styles, style_dim] codes
    ([N, n_styles, style_dim, s, s] with ``style_spatial=s > 1``).

    ``style_sources[j]`` names the map style j reads; ``forward_pyramid`` returns all maps, so a family with
    its own way of combining the styles (e4e's base code plus deltas) calls ``styles[j](maps[style_sources[j]])``.
    """

    def __init__(
        self,
        n_styles: int = 18,
        in_channels: int = 3,
        *,
        input_size: int = 256,
        num_layers: int = 50,
        mode: str = "ir_se",
        widths: Sequence[int] = DEFAULT_WIDTHS,
        style_dim: int = 512,
        pyramid: bool = True,
        style_spatial: int = 1,
        coarse: int = 3,
        middle: int = 7,
    ):
        super().__init__(num_layers, mode, in_channels=in_channels, widths=widths)
        if isinstance(n_styles, bool) or not isinstance(n_styles, int) or n_styles < 1:
            raise ValueError(f"n_styles must be a positive integer, got {n_styles!r}")
        if not isinstance(input_size, int) or input_size < 32 or input_size & (input_size - 1):
            raise ValueError(
                f"input_size must be a power of two >= 32 (the stride-16 map must be at least 2x2), got {input_size!r}"
            )
        if not 0 <= coarse <= middle:
            raise ValueError(f"need 0 <= coarse <= middle, got coarse={coarse}, middle={middle}")
        self.n_styles, self.input_size, self.style_dim, self.pyramid = n_styles, input_size, style_dim, pyramid
        c1, c2, c3 = (self.feature_info[i]["num_chs"] for i in PYRAMID_TAPS)
        if pyramid:
            self.latlayer1 = nn.Conv2d(c2, c3, 1)
            self.latlayer2 = nn.Conv2d(c1, c3, 1)
        self.style_sources = tuple(
            "c3" if j < coarse or not pyramid else "p2" if j < middle else "p1" for j in range(n_styles)
        )
        self.styles = nn.ModuleList(
            GradualStyleBlock(c3, style_dim, input_size // REDUCTION[src], out_spatial=style_spatial)
            for src in self.style_sources
        )

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"{type(self).__name__} was built for {self.input_size}x{self.input_size} inputs, "
                f"got {x.shape[-2]}x{x.shape[-1]}"
            )

    def forward_pyramid(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The maps ``c1``, ``c2``, ``c3`` and, with the pyramid, ``p2`` and ``p1``."""
        c1, c2, c3 = self.forward_intermediates(x, PYRAMID_TAPS)
        maps = dict(c1=c1, c2=c2, c3=c3)
        if self.pyramid:
            maps["p2"] = upsample_add(c3, self.latlayer1(c2))
            maps["p1"] = upsample_add(maps["p2"], self.latlayer2(c1))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.forward_pyramid(x)
        return torch.stack([style(maps[src]) for style, src in zip(self.styles, self.style_sources)], dim=1)
