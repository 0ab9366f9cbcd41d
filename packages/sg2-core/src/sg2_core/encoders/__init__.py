"""Encoder parts shared by the inversion families and the ID metric: the IR / IR-SE trunk with feature taps,
the ResNet34 trunk of the ReStyle / HyperStyle encoders, the pSp pyramid and map2style block, EqualLinear,
EqualConv2d and ScaledLeakyReLU, and the composite encoders in the official key layouts."""

from sg2_core.encoders.blocks import (
    STYLE_BLOCK_SLOPE,
    EqualConv2d,
    EqualLinear,
    GradualStyleBlock,
    ScaledLeakyReLU,
    upsample_add,
)
from sg2_core.encoders.pyramid import PYRAMID_TAPS, PyramidStyleEncoder
from sg2_core.encoders.resnet import RESNET34_UNITS, BasicBlock, ResNetTrunk
from sg2_core.encoders.trunk import (
    DEFAULT_WIDTHS,
    SE_REDUCTION,
    UNITS_PER_STAGE,
    BottleneckIR,
    IRBackbone,
    IRTrunk,
    SEModule,
    ir_se,
)
from sg2_core.encoders.w_encoder import WEncoder

__all__ = [
    "DEFAULT_WIDTHS",
    "PYRAMID_TAPS",
    "RESNET34_UNITS",
    "SE_REDUCTION",
    "STYLE_BLOCK_SLOPE",
    "UNITS_PER_STAGE",
    "BasicBlock",
    "BottleneckIR",
    "EqualConv2d",
    "EqualLinear",
    "GradualStyleBlock",
    "IRBackbone",
    "IRTrunk",
    "PyramidStyleEncoder",
    "ResNetTrunk",
    "SEModule",
    "ScaledLeakyReLU",
    "WEncoder",
    "ir_se",
    "upsample_add",
]
