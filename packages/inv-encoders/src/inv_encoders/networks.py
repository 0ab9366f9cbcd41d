"""The pSp-family networks: pSp, e4e and ReStyle encoders with their latent average, and e4e's latent
discriminator, built from the shared parts in ``sg2_core.encoders`` (official key layouts).

One class, :class:`StyleEncoder`, covers the four encoders, because they differ only in how the
``PyramidStyleEncoder``'s styles are combined and what they are added to:

- ``psp``: ``codes = encoder(x) + latent_avg`` (with ``start_from_latent_avg``);
- ``e4e``: ``styles[0]`` gives one base w repeated over all entries, style ``i`` adds a delta to entry ``i``
  for ``i <= stage`` (the progressive stage: 0 = W only, ``n_styles`` or more = all deltas);
- ``restyle-psp`` / ``restyle-e4e``: the same two rules on a 6-channel input (target, current
  reconstruction), added to the previous estimate (``latent_avg`` at the first iteration), usually without
  the pyramid (ReStyle's ``BackboneEncoder``: every style reads the last 16x16 map);
- ``psp-w`` / ``e4e-w``: pSp's W-only ``BackboneEncoderUsingLastLayerIntoW`` (trunk, global pool, EqualLinear):
  one w ``[N, style_dim]`` plus ``latent_avg[0]`` (HyperInverter's phase I). The two share the network and
  differ in training: ``e4e-w`` is trained with e4e's latent discriminator (HyperInverter's "e4e W-encoder").

The trunk is IR / IR-SE 50/100/152 (``mode='ir'`` / ``'ir_se'``) or the ResNet34 of ReStyle's and HyperInverter's
``ResNet*`` encoders (``mode='resnet'``, ``num_layers=34``; :mod:`inv_encoders.variants`); ``head='linear'`` is
pSp's ``BackboneEncoderUsingLastLayerIntoWPlus`` (kind ``psp``: all codes from the last map through one linear).

State-dict keys: ``encoder.*`` are exactly the official checkpoint's ``encoder.*`` keys, ``latent_avg`` is a
buffer ``[n_styles, style_dim]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sg2_core import register_network
from sg2_core.encoders import DEFAULT_WIDTHS, PyramidStyleEncoder, WEncoder
from sg2_core.nn.config import Serializable

from .variants import ResNetStyleEncoder, ResNetWEncoder, WPlusEncoder

KINDS = ("psp", "e4e", "restyle-psp", "restyle-e4e", "psp-w", "e4e-w")
PROGRESSIVE = ("e4e", "restyle-e4e")
W_ONLY = ("psp-w", "e4e-w")  # one w per image, the W-only network
DISC_SLOPE = 0.2  # e4e's latent discriminator (the style blocks use 0.01)
MODES = ("ir", "ir_se", "resnet")  # the trunk: IR / IR-SE units, or ResNet34's BasicBlocks
HEADS = ("styles", "linear")  # map2style blocks (pSp, e4e, ReStyle), or pSp's W+ linear head


@dataclass(frozen=True)
class StyleEncoderConfig(Serializable):
    kind: str = "psp"
    n_styles: int = 18
    in_channels: int = 3
    input_size: int = 256
    style_dim: int = 512
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    num_layers: int = 50
    mode: str = "ir_se"
    pyramid: bool = True
    start_from_latent_avg: bool = True
    n_iters: int = 5  # ReStyle's refinement steps at inference
    head: str = "styles"  # "linear": pSp's BackboneEncoderUsingLastLayerIntoWPlus (kind psp, IR / IR-SE trunk)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.head == "linear" and (self.kind != "psp" or self.mode == "resnet"):
            raise ValueError(
                f"head='linear' is pSp's BackboneEncoderUsingLastLayerIntoWPlus: kind 'psp' on an IR / IR-SE "
                f"trunk, got kind {self.kind!r}, mode {self.mode!r}"
            )
        if isinstance(self.n_iters, bool) or not isinstance(self.n_iters, int) or self.n_iters < 1:
            raise ValueError(f"n_iters must be a positive int, got {self.n_iters!r}")
        object.__setattr__(self, "widths", tuple(self.widths))

    @property
    def restyle(self) -> bool:
        return self.kind.startswith("restyle")


def progressive_codes(encoder: PyramidStyleEncoder, x: torch.Tensor, stage: int | None = None) -> torch.Tensor:
    """e4e's combination: ``styles[0]`` repeated, plus the deltas of styles ``1..stage`` (None: all)."""
    maps = encoder.forward_pyramid(x)
    w0 = encoder.styles[0](maps[encoder.style_sources[0]])
    codes = [w0] * encoder.n_styles
    last = encoder.n_styles - 1 if stage is None else min(int(stage), encoder.n_styles - 1)
    for i in range(1, last + 1):
        codes[i] = w0 + encoder.styles[i](maps[encoder.style_sources[i]])
    return torch.stack(codes, dim=1)


@register_network(config_class=StyleEncoderConfig)
class StyleEncoder(nn.Module):
    """Images ``[N, in_channels, input_size, input_size]`` -> W+ codes ``[N, n_styles, style_dim]``.

    ``forward(x, base=None, stage=None)``: ``base`` is what the encoder's output is added to (default
    ``latent_avg`` when ``start_from_latent_avg``, else nothing; ReStyle passes its previous estimate);
    ``stage`` limits e4e's deltas (ignored by the non-progressive kinds). ``psp-w`` and ``e4e-w`` give
    ``[N, style_dim]``."""

    def __init__(self, config: StyleEncoderConfig | None = None, **kwargs):
        super().__init__()
        config = config if config is not None else StyleEncoderConfig(**kwargs)
        self.config = config
        resnet = config.mode == "resnet"
        if config.kind in W_ONLY:
            self.encoder = (ResNetWEncoder if resnet else WEncoder)(
                config.in_channels,
                w_dim=config.style_dim,
                num_layers=config.num_layers,
                mode=config.mode,
                widths=config.widths,
            )
        elif config.head == "linear":
            self.encoder = WPlusEncoder(
                config.n_styles,
                config.in_channels,
                num_layers=config.num_layers,
                mode=config.mode,
                widths=config.widths,
                style_dim=config.style_dim,
            )
        else:
            self.encoder = (ResNetStyleEncoder if resnet else PyramidStyleEncoder)(
                config.n_styles,
                config.in_channels,
                input_size=config.input_size,
                num_layers=config.num_layers,
                mode=config.mode,
                widths=config.widths,
                style_dim=config.style_dim,
                pyramid=config.pyramid,
            )
        self.register_buffer("latent_avg", torch.zeros(config.n_styles, config.style_dim))

    @property
    def progressive(self) -> bool:
        return self.config.kind in PROGRESSIVE

    def set_latent_avg(self, latent_avg: torch.Tensor) -> None:
        """Accepts pSp's three shapes: ``[n_styles, dim]``, ``[1, dim]`` and ``[dim]``."""
        value = torch.as_tensor(latent_avg).detach()
        dim = self.config.style_dim
        if value.shape not in ((self.config.n_styles, dim), (1, dim), (dim,)):
            raise ValueError(
                f"latent_avg must have shape [{self.config.n_styles}, {dim}], [1, {dim}] or [{dim}], "
                f"got {list(value.shape)}"
            )
        with torch.no_grad():
            if self.latent_avg.is_meta or value.is_meta:
                self.latent_avg = value.to(self.latent_avg.dtype).reshape(-1, dim).expand(self.config.n_styles, dim)
            else:
                self.latent_avg.copy_(value.reshape(-1, dim).expand(self.config.n_styles, dim))

    def offsets(self, x: torch.Tensor, stage: int | None = None) -> torch.Tensor:
        """The encoder's output alone (what is added to the base)."""
        if self.progressive:
            return progressive_codes(self.encoder, x, stage)
        return self.encoder(x)

    def forward(self, x: torch.Tensor, base: torch.Tensor | None = None, stage: int | None = None) -> torch.Tensor:
        self.encoder.check_input(x)  # channels (and, for the pyramid encoders, the size) named in the error
        if not x.is_meta and not torch.isfinite(x).all():
            raise ValueError(f"the {self.config.kind} encoder's input contains NaN or inf")
        codes = self.offsets(x, stage)
        if base is None:
            avg = self.latent_avg[0] if self.config.kind in W_ONLY else self.latent_avg
            return codes + avg if self.config.start_from_latent_avg else codes
        return codes + base


class LatentCodesDiscriminator(nn.Module):
    """e4e's discriminator on single W codes: (n_mlp - 1) x [Linear + LeakyReLU(0.2)], then Linear to one logit.
    Keys ``mlp.{0,2,4,6}`` for ``n_mlp=4``."""

    def __init__(self, style_dim: int = 512, n_mlp: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_mlp - 1):
            layers += [nn.Linear(style_dim, style_dim), nn.LeakyReLU(DISC_SLOPE)]
        layers.append(nn.Linear(style_dim, 1))
        self.style_dim, self.n_mlp = style_dim, n_mlp
        self.mlp = nn.Sequential(*layers)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.mlp(w)


def widths_of(state: dict, num_layers_units: Sequence[int]) -> tuple[int, ...]:
    """Stage depths from a trunk state dict: the first 3x3 conv of each stage's first unit (IR / IR-SE units'
    ``res_layer.1``, ResNet BasicBlocks' ``conv1``)."""
    firsts, start = [], 0
    for count in num_layers_units:
        firsts.append(start)
        start += count
    conv = "res_layer.1.weight" if "body.0.res_layer.1.weight" in state else "conv1.weight"
    return tuple(int(state[f"body.{i}.{conv}"].shape[0]) for i in firsts)
