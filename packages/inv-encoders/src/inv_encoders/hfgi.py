"""HFGI's distortion consultation branch (Wang et al. 2022, "High-Fidelity GAN Inversion for Image Attribute
Editing"): the adaptive distortion alignment module (ADA) and the consultation encoder, in the official key layout.

e4e gives W+ codes; what the generator cannot reproduce is the distortion map ``x - G(w)``. HFGI aligns that map to
the image it will be fused with (ADA: an IR-unit U-Net reading the map and the low-resolution render) and encodes
the aligned map into a scale and a shift for one generator layer's features (official: the output of the 64x64
block's upsampling conv, ``b64.conv0``, on a 1024 px generator): ``F * (1 + scale) + shift``
(``sg2_core.nn.feature_conditions``)::

    rendered  = G(w)                                         (constant noise)
    low       = bilinear(clamp(rendered, -1, 1), input size)
    aligned   = grid_align(cat(x - low, low))                 ADA, [N, C, s, s]
    scale, shift = residue(aligned)                           the consultation encoder, at the layer's size

Networks (official attribute names, so the checkpoint's ``grid_align.*`` and ``residue.*`` keys are ours):

- ``grid_align`` (:class:`DistortionAligner`): a stem conv (2C -> w0, BN, PReLU) at full size, three stages of three
  IR units halving the size (w1, w2, w3), then three decoder stages of three IR units, each reading the stage below
  upsampled bilinearly to the skip's size and concatenated with the skip; the last ends at C channels. Official
  widths 16/32/48/64 on 256 px (the official code interpolates to the literal sizes 64/128/256: the skips' sizes).
- ``residue`` (:class:`ConsultationEncoder`): a stem conv (C -> 32, BN, PReLU), two stages of three IR units
  (48, 64) halving the size, and two heads (EqualConv2d 64 -> K, ScaledLeakyReLU 0.2, EqualConv2d K -> K) for the
  scale and the shift, resized bilinearly to the conditioned layer's size (official: 64 from 64, a no-op).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sg2_core import FeatureCondition, register_network
from sg2_core.encoders import BottleneckIR, EqualConv2d, ScaledLeakyReLU
from sg2_core.nn.config import Serializable
from sg2_core.nn.offsets import layer_key

ALIGNER_WIDTHS = (16, 32, 48, 64)
CONSULTATION_WIDTHS = (32, 48, 64)
HEAD_SLOPE = 0.2


def _positive_ints(name: str, values, count: int) -> tuple[int, ...]:
    values = tuple(values)
    if len(values) != count or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be {count} positive ints, got {values!r}")
    return values


@dataclass(frozen=True)
class HFGIConfig(Serializable):
    """``img_channels`` C; ``input_size`` of the images and of ADA (divisible by 8); the conditioned layer
    (``condition_layer``, with ``condition_channels`` output channels at ``condition_size``); the widths."""

    img_channels: int = 3
    input_size: int = 256
    condition_layer: str = "b64.conv0"
    condition_channels: int = 512
    condition_size: int = 64
    aligner_widths: tuple[int, ...] = ALIGNER_WIDTHS
    consultation_widths: tuple[int, ...] = CONSULTATION_WIDTHS

    def __post_init__(self):
        for name in ("img_channels", "input_size", "condition_channels", "condition_size"):
            _positive_ints(name, [getattr(self, name)], 1)
        if self.input_size % 8:
            raise ValueError(f"input_size must be divisible by 8 (ADA halves it three times), got {self.input_size}")
        object.__setattr__(self, "condition_layer", layer_key(self.condition_layer))
        object.__setattr__(self, "aligner_widths", _positive_ints("aligner_widths", self.aligner_widths, 4))
        object.__setattr__(
            self, "consultation_widths", _positive_ints("consultation_widths", self.consultation_widths, 3)
        )


def _units(channels: list[int], first_stride: int) -> nn.Sequential:
    """IR units (no SE) from ``channels[0]`` through each next width; the first unit has ``first_stride``."""
    return nn.Sequential(
        *[
            BottleneckIR(c_in, c_out, first_stride if i == 0 else 1, se=False)
            for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:]))
        ]
    )


def _stem(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels), nn.PReLU(out_channels)
    )


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class DistortionAligner(nn.Module):
    """ADA: ``[N, 2C, s, s]`` (distortion map, low-resolution render) -> the aligned map ``[N, C, s, s]``."""

    def __init__(self, img_channels: int = 3, widths=ALIGNER_WIDTHS):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.conv_layer1 = _stem(2 * img_channels, w0)
        self.conv_layer2 = _units([w0, w1, w1, w1], 2)
        self.conv_layer3 = _units([w1, w2, w2, w2], 2)
        self.conv_layer4 = _units([w2, w3, w3, w3], 2)
        self.dconv_layer1 = _units([w3 + w2, w3, w1, w1], 1)
        self.dconv_layer2 = _units([2 * w1, w1, w0, w0], 1)
        self.dconv_layer3 = _units([2 * w0, w0, img_channels, img_channels], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat1 = self.conv_layer1(x)
        feat2 = self.conv_layer2(feat1)
        feat3 = self.conv_layer3(feat2)
        feat4 = self.conv_layer4(feat3)
        up = self.dconv_layer1(torch.cat([_resize(feat4, feat3.shape[-2:]), feat3], 1))
        up = self.dconv_layer2(torch.cat([_resize(up, feat2.shape[-2:]), feat2], 1))
        return self.dconv_layer3(torch.cat([_resize(up, feat1.shape[-2:]), feat1], 1))


class ConsultationEncoder(nn.Module):
    """The aligned map ``[N, C, s, s]`` -> ``(scale, shift)``, each ``[N, condition_channels, size, size]``."""

    def __init__(self, img_channels=3, condition_channels=512, condition_size=64, widths=CONSULTATION_WIDTHS):
        super().__init__()
        w0, w1, w2 = widths
        self.condition_size = condition_size
        self.conv_layer1 = _stem(img_channels, w0)
        self.conv_layer2 = _units([w0, w1, w1, w1], 2)
        self.conv_layer3 = _units([w1, w2, w2, w2], 2)
        self.condition_scale3 = self._head(w2, condition_channels)
        self.condition_shift3 = self._head(w2, condition_channels)

    @staticmethod
    def _head(in_channels: int, channels: int) -> nn.Sequential:
        return nn.Sequential(
            EqualConv2d(in_channels, channels, 3, padding=1),
            ScaledLeakyReLU(HEAD_SLOPE),
            EqualConv2d(channels, channels, 3, padding=1),
        )

    def forward(self, aligned: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.conv_layer3(self.conv_layer2(self.conv_layer1(aligned)))
        size = (self.condition_size, self.condition_size)
        return _resize(self.condition_scale3(features), size), _resize(self.condition_shift3(features), size)


@register_network(config_class=HFGIConfig)
class HFGINetwork(nn.Module):
    """ADA (``grid_align``) and the consultation encoder (``residue``): images and the generator's render of their
    codes -> ``{condition_layer: FeatureCondition(scale, shift)}``."""

    def __init__(self, config: HFGIConfig | None = None, **kwargs):
        super().__init__()
        config = config if config is not None else HFGIConfig(**kwargs)
        self.config = config
        self.grid_align = DistortionAligner(config.img_channels, config.aligner_widths)
        self.residue = ConsultationEncoder(
            config.img_channels, config.condition_channels, config.condition_size, config.consultation_widths
        )

    def check_generator(self, synthesis) -> None:
        """Refuse a generator whose conditioned layer has another output shape (named in the error)."""
        cfg = self.config
        if cfg.condition_layer not in synthesis.condition_layer_names:
            raise ValueError(
                f"HFGI conditions layer {cfg.condition_layer!r}, which the generator lacks "
                f"(its layers: {synthesis.condition_layer_names})"
            )
        layer = synthesis.layer(cfg.condition_layer)
        theirs = (layer.weight.shape[0], layer.resolution)
        if theirs != (cfg.condition_channels, cfg.condition_size):
            raise ValueError(
                f"HFGI makes conditions of {cfg.condition_channels} channels at {cfg.condition_size} px for "
                f"{cfg.condition_layer!r}, but the generator's layer has {theirs[0]} channels at {theirs[1]} px"
            )

    def low_resolution(self, rendered: torch.Tensor) -> torch.Tensor:
        """The render as ADA sees it: clamped to [-1, 1], resized bilinearly to the input size."""
        size = self.config.input_size
        return _resize(rendered.clamp(-1.0, 1.0), (size, size))

    def align(self, images: torch.Tensor, rendered: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """ADA's aligned distortion map: ``images`` (at ``input_size``) minus ``rendered`` (any size), aligned to the
        render ``target`` (default ``rendered``; the official edits pass the edited render)."""
        cfg = self.config
        expected = (cfg.img_channels, cfg.input_size, cfg.input_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"HFGI takes images [N, {', '.join(map(str, expected))}], got {list(images.shape)}")
        low = self.low_resolution(rendered).to(images.dtype)
        low_target = low if target is None else self.low_resolution(target).to(images.dtype)
        return self.grid_align(torch.cat([images - low, low_target], 1))

    def conditions_of(self, aligned: torch.Tensor) -> dict[str, FeatureCondition]:
        """The consultation encoder's scale and shift for an aligned map, keyed by the conditioned layer."""
        scale, shift = self.residue(aligned)
        return {self.config.condition_layer: FeatureCondition(scale, shift)}

    def forward(self, images: torch.Tensor, rendered: torch.Tensor) -> dict[str, FeatureCondition]:
        return self.conditions_of(self.align(images, rendered))


def default_condition_layer(synthesis) -> str:
    """The official layer (``b64.conv0``) when the generator is large enough that it is not one of the last two
    blocks; else the upsampling conv at half the output size (``b16.conv0`` on a 32 px generator)."""
    resolution = synthesis.img_resolution
    return "b64.conv0" if resolution >= 256 else f"b{max(8, resolution // 2)}.conv0"


def config_for(synthesis, input_size: int, **overrides) -> HFGIConfig:
    """The config whose conditions fit ``synthesis`` (its layer's channels and size) for images of ``input_size``."""
    layer = overrides.pop("condition_layer", None) or default_condition_layer(synthesis)
    conv = synthesis.layer(layer_key(layer))
    return HFGIConfig(
        img_channels=synthesis.img_channels,
        input_size=input_size,
        condition_layer=layer,
        condition_channels=int(conv.weight.shape[0]),
        condition_size=int(conv.resolution),
        **overrides,
    )
