"""HyperInverter's learned networks in one module whose state-dict prefixes are the official checkpoint's.

``w_encoder.`` (phase I, pSp's BackboneEncoderUsingLastLayerIntoW; absent when phase II was trained on another
registered W-space method, ``HyperConfig.phase1``), ``w_bar_encoder.`` (the LayerWiseEncoder:
pSp's pyramid with style blocks stopping at 8x8 maps), ``hypernet.`` (one weight regressor per synthesis conv
and toRGB) and, when given, ``discriminator.`` (the generator's SG2-ADA discriminator, used only in training).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from sg2_core import Discriminator, DiscriminatorConfig, register_network
from sg2_core.encoders import PyramidStyleEncoder, WEncoder
from sg2_core.nn.config import Serializable

from .hypernetwork import Hypernetwork, target_shapes

__all__ = ["HyperConfig", "HyperNetworks", "discriminator_config"]


@dataclass(frozen=True)
class HyperConfig(Serializable):
    """Network sizes, and what they are for (``targets``: the generator's ``(layer, weight shape)`` pairs).
    The size defaults are the official ones (IR-SE50 at widths 64..512, C=512, D=128, extractor 64, encoders
    at 256 px); tests and small domains shrink them. :meth:`for_generator` fills the generator's part."""

    widths: tuple[int, ...] = (64, 128, 256, 512)  # IR-SE trunk of both encoders
    w_encoder_widths: tuple[int, ...] | None = None  # None: the same as ``widths``
    num_layers: int = 50
    feature_dim: int = 512  # C: width of the W-bar encoder's 8x8 maps (the hypernetwork's input_dim)
    hidden_dim: int = 128  # D
    extractor_dim: int = 64
    encoder_size: int = 256  # both encoders read images resized to this size
    img_channels: int = 3
    w_dim: int = 512
    targets: tuple = ()  # ((layer, weight shape), ...) of every synthesis conv and toRGB, generator order
    discriminator: tuple = ()  # (resolution, img_channels, channel_base, channel_max) of a stored SG2-ADA D
    phase1: str = ""  # "": phase II was trained on the W encoder here; else on this registered W-space method

    def __post_init__(self):  # JSON brings the nested tuples back as lists
        object.__setattr__(self, "targets", tuple((str(n), tuple(int(s) for s in shape)) for n, shape in self.targets))
        object.__setattr__(self, "discriminator", tuple(int(v) for v in self.discriminator))

    def for_generator(self, generator, *, with_discriminator: bool = False) -> HyperConfig:
        """These sizes for ``generator``: its channels, w_dim, target layers (and its discriminator's config)."""
        d = discriminator_config(generator)
        return replace(
            self,
            img_channels=generator.img_channels,
            w_dim=generator.w_dim,
            targets=tuple(target_shapes(generator).items()),
            discriminator=(d.resolution, d.img_channels, d.channel_base, d.channel_max) if with_discriminator else (),
        )

    def sizes(self) -> HyperConfig:
        """The sizes alone (the generator's part cleared): compare two configs' network sizes."""
        return replace(self, img_channels=3, w_dim=512, targets=(), discriminator=(), phase1="")


def discriminator_config(generator) -> DiscriminatorConfig:
    """The SG2-ADA discriminator matching ``generator`` (its resolution, channels and channel widths)."""
    g = generator.config
    return DiscriminatorConfig(
        resolution=g.resolution, img_channels=g.img_channels, channel_base=g.channel_base, channel_max=g.channel_max
    )


@register_network(config_class=HyperConfig)
class HyperNetworks(nn.Module):
    """The W encoder, the W-bar encoder and the hypernetwork for ``config.targets`` (built on the current
    device); :meth:`for_generator` sizes them for a generator."""

    def __init__(self, config: HyperConfig):
        super().__init__()
        if not config.targets:
            raise ValueError("HyperConfig.targets is empty: build with HyperNetworks.for_generator(G, config)")
        self.config = config
        channels = config.img_channels
        # trained on another method's codes, the networks have no W encoder of their own
        self.w_encoder = (
            None
            if config.phase1
            else WEncoder(
                channels,
                w_dim=config.w_dim,
                num_layers=config.num_layers,
                widths=config.w_encoder_widths or config.widths,
            )
        )
        self.hypernet = Hypernetwork(
            dict(config.targets),
            input_dim=config.feature_dim,
            hidden_dim=config.hidden_dim,
            extractor_dim=config.extractor_dim,
        )
        size = config.encoder_size
        if not isinstance(size, int) or size < 64 or size & (size - 1):
            raise ValueError(
                f"encoder_size must be a power of two >= 64 (the style blocks need 16x16 maps to reach "
                f"8x8), got {size!r}"
            )
        # One 8x8 map per style index the regressors read: 2*log2(R)-2, the generator's num_ws. Below 256 px the
        # stride-16 (and at 64 px the stride-8) maps are under 16x16, so those styles read the next finer map.
        self.w_bar_encoder = PyramidStyleEncoder(
            self.hypernet.num_maps,
            channels,
            input_size=size,
            num_layers=config.num_layers,
            widths=config.widths,
            style_dim=config.feature_dim,
            style_spatial=8,
            coarse=3 if size >= 256 else 0,
            middle=7 if size >= 128 else 0,
        )
        if config.discriminator:
            resolution, img_channels, channel_base, channel_max = config.discriminator
            self.discriminator = Discriminator(
                DiscriminatorConfig(
                    resolution=resolution, img_channels=img_channels, channel_base=channel_base, channel_max=channel_max
                )
            )

    @classmethod
    def for_generator(
        cls, generator, config: HyperConfig = HyperConfig(), *, with_discriminator: bool = False
    ) -> HyperNetworks:
        return cls(config.for_generator(generator, with_discriminator=with_discriminator))

    def matches(self, generator) -> bool:
        """Whether these networks were built for ``generator``'s layers, channels and w_dim."""
        c = self.config
        return (c.img_channels, c.w_dim, dict(c.targets)) == (
            generator.img_channels,
            generator.w_dim,
            target_shapes(generator),
        )
