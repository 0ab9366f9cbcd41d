"""HyperStyle's networks (Alaluf et al., CVPR 2022) in the official checkpoint's key layout.

The hypernetwork (official ``SharedWeightsHyperNetResNet``) reads the target and the current reconstruction stacked
on the channels, through a ResNet34 trunk (sg2-core's :class:`~sg2_core.encoders.ResNetTrunk`, keys ``conv1``,
``bn1``, ``relu``, ``body``) to a stride-16 map, and one refinement block per tuned generator layer turns that map
into a change of the layer's weight (``refinement_blocks.{i}``, ``i`` the official layer index, which is the position
in ``synthesis.weight_layer_names``):

- *shared* blocks (:class:`SharedRefinementBlock`, official ``HyperRefinementBlock``) squeeze the map to a code and
  hand it to one kernel hypernetwork shared by all of them (:class:`SharedKernelHypernet`, ``shared_weight_hypernet``);
  officially the 512x512 convs up to 64 px;
- the other tuned layers get their own block (:class:`RefinementBlock`): a 1x1 conv to ``in * out`` values, one per
  kernel for toRGB layers, else repeated over the kernel taps.

The changes are *relative*: the reference generator uses ``weight * (1 + delta)``; sg2-core adds offsets to the
stored weight, so the method renders ``weight_offsets = from_relative_units(synthesis, deltas)``.

The W start is the W encoder of e4e's W-only training (sg2-core's :class:`~sg2_core.encoders.WEncoder`, official
``faces_w_encoder.pt``; ``w_encoder``), or the codes of another W-space method (``HyperStyleConfig.phase1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from sg2_core import register_network
from sg2_core.encoders import EqualLinear, ResNetTrunk, WEncoder
from sg2_core.nn.config import Serializable
from sg2_core.nn.offsets import layer_key

from .hypernetwork import target_shapes

__all__ = [
    "SHARED_INDICES",
    "HyperStyleConfig",
    "HyperStyleHypernet",
    "HyperStyleNetworks",
    "RefinementBlock",
    "SharedKernelHypernet",
    "SharedRefinementBlock",
]

SHARED_INDICES = (0, 2, 3, 5, 6, 8, 9, 11, 12)  # the official shared layers: the convs up to 64 px
SLOPE = 0.01  # the refinement blocks' nn.LeakyReLU() default


@dataclass(frozen=True)
class HyperStyleConfig(Serializable):
    """Network sizes and what they are for. The defaults are the official ones (ResNet34 at 64..512, codes of 512,
    inner widths 128 shared / 256 not shared, encoding at 256 px); :meth:`for_generator` fills the generator's part:
    ``layers`` (every weight layer's ``(name, shape)``, generator order), ``tuned`` (the layers that get deltas) and
    ``shared`` (the tuned layers served by the shared kernel hypernetwork)."""

    widths: tuple[int, ...] = (64, 128, 256, 512)  # ResNet34 stages of the hypernetwork
    code_dim: int = 512  # the refinement blocks' code, the shared hypernetwork's z
    shared_inner: int = 128
    inner: int = 256
    encoder_size: int = 256  # the hypernetwork (and the W encoder) read images resized to this size
    w_encoder_widths: tuple[int, ...] = (64, 128, 256, 512)  # IR-SE50 of the W encoder
    img_channels: int = 3
    w_dim: int = 512
    layers: tuple = ()
    tuned: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    phase1: str = ""  # "": the W start is the W encoder here; else this registered W-space method

    def __post_init__(self):  # JSON brings the nested tuples back as lists
        object.__setattr__(self, "layers", tuple((str(n), tuple(int(s) for s in shape)) for n, shape in self.layers))
        for name in ("widths", "w_encoder_widths", "tuned", "shared"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def for_generator(self, generator, tuned=None) -> HyperStyleConfig:
        """These sizes for ``generator``; ``tuned``: layer names or official indices (default: every conv, not the
        toRGBs, as the official ``--layers_to_tune``)."""
        shapes = target_shapes(generator)
        names = list(shapes)
        if tuned is None:
            tuned = [n for n in names if not n.endswith("torgb")]
        picked = []
        for t in tuned:
            name = names[t] if isinstance(t, int) and 0 <= t < len(names) else layer_key(t) if isinstance(t, str) else t
            if name not in shapes:
                raise ValueError(
                    f"tuned layer {t!r} is not in the generator; it has {names} (indices 0..{len(names) - 1})"
                )
            picked.append(name)
        tuned = [n for n in names if n in picked]  # generator order
        first = shapes[names[0]]
        # the shared hypernetwork predicts one shape: the official shared layers that have the first conv's shape
        shared = [n for n in tuned if names.index(n) in SHARED_INDICES and shapes[n] == first]
        return replace(
            self,
            img_channels=generator.img_channels,
            w_dim=generator.w_dim,
            layers=tuple(shapes.items()),
            tuned=tuple(tuned),
            shared=tuple(shared),
        )


def _conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(SLOPE)]


def _spatial_steps(spatial: int) -> int:
    return int(math.log2(spatial))


class SharedKernelHypernet(nn.Module):
    """Official ``SharedWeightsHypernet``: code ``z [N, Z]`` -> kernel ``[N, out, in, k, k]`` through two matrices,
    ``(z @ w2 + b2)`` viewed as ``[N, in, Z]``, then ``@ w1 + b1`` reinterpreted (a view, not a transpose, as the
    reference) as the kernel."""

    def __init__(self, shape, code_dim: int = 512):
        super().__init__()
        out_ch, in_ch, k, _ = (int(s) for s in shape)
        self.shape, self.code_dim = (out_ch, in_ch, k, k), code_dim
        # the reference's init: N(0, 1) / 40, folded into (-2, 2)
        self.w1 = nn.Parameter(torch.fmod(torch.randn(code_dim, out_ch * k * k) / 40, 2))
        self.b1 = nn.Parameter(torch.fmod(torch.randn(out_ch * k * k) / 40, 2))
        self.w2 = nn.Parameter(torch.fmod(torch.randn(code_dim, in_ch * code_dim) / 40, 2))
        self.b2 = nn.Parameter(torch.fmod(torch.randn(in_ch * code_dim) / 40, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = z.shape[0]
        out_ch, in_ch, k, _ = self.shape
        h = (z @ self.w2 + self.b2).view(n, in_ch, self.code_dim)
        return (h @ self.w1 + self.b1).view(n, out_ch, in_ch, k, k)


class SharedRefinementBlock(nn.Module):
    """Official ``HyperRefinementBlock``: conv (stride 1), then stride-2 convs down to 1x1 (LeakyReLU 0.01 after
    each), EqualLinear, and the shared kernel hypernetwork. The hypernetwork is held outside the module tree (the
    network owns it once as ``shared_weight_hypernet``); the official files repeat its tensors under every block's
    ``hypernet.``, which the loader checks equal to the shared ones."""

    def __init__(self, hypernet: SharedKernelHypernet, channels: int, inner: int, code_dim: int, spatial: int):
        super().__init__()
        layers = _conv(channels, inner, 1)
        for _ in range(_spatial_steps(spatial) - 1):
            layers += _conv(inner, inner, 2)
        layers += _conv(inner, code_dim, 2)
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(code_dim, code_dim)
        self.code_dim = code_dim
        object.__setattr__(self, "hypernet", hypernet)  # not a submodule: one copy of its weights

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.hypernet(self.linear(self.convs(features).view(-1, self.code_dim)))


class RefinementBlock(nn.Module):
    """Official ``RefinementBlock`` for one layer of weight ``shape``: stride-2 convs (LeakyReLU 0.01), then a 1x1
    conv to ``in * out`` values: per position for a toRGB (down to 1x1 first), else average-pooled and repeated over
    the ``k x k`` taps. Keys ``convs.*``, ``output.0`` (toRGB) or ``output.1``."""

    def __init__(self, shape, channels: int, inner: int, code_dim: int, spatial: int, torgb: bool):
        super().__init__()
        self.shape, self.torgb = tuple(int(s) for s in shape), torgb
        out_ch, in_ch, k, _ = self.shape
        pools = _spatial_steps(spatial) - 1 - (1 if k == 3 else 0)  # as the reference counts them
        layers = _conv(channels, inner, 2)
        for _ in range(pools - 1):
            layers += _conv(inner, inner, 2)
        layers += _conv(inner, code_dim, 2)
        self.convs = nn.Sequential(*layers)
        project = nn.Conv2d(code_dim, in_ch * out_ch, 1)
        self.output = nn.Sequential(project) if torgb else nn.Sequential(nn.AdaptiveAvgPool2d(1), project)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out_ch, in_ch, k, _ = self.shape
        x = self.output(self.convs(features))
        if self.torgb:
            return x.view(-1, out_ch, in_ch, k, k)
        return x.view(-1, out_ch, in_ch, 1, 1).expand(-1, -1, -1, k, k)


class HyperStyleHypernet(ResNetTrunk):
    """Official ``SharedWeightsHyperNetResNet``: the ResNet34 trunk over ``[target, reconstruction]`` and one
    refinement block per tuned layer (``refinement_blocks``: one slot per generator weight layer, empty where
    untuned). ``forward`` returns ``{layer: relative delta [N, *weight shape]}``."""

    def __init__(self, config: HyperStyleConfig):
        super().__init__(34, "resnet", in_channels=2 * config.img_channels, widths=config.widths)
        size = config.encoder_size
        if not isinstance(size, int) or size < 32 or size & (size - 1):
            raise ValueError(f"encoder_size must be a power of two >= 32 (the trunk's map is size/16), got {size!r}")
        self.encoder_size = size
        spatial, channels = size // 16, config.widths[-1]
        shapes = dict(config.layers)
        self.layer_names = list(shapes)
        self.tuned = list(config.tuned)
        self.shared_weight_hypernet = None
        if config.shared:
            self.shared_weight_hypernet = SharedKernelHypernet(shapes[config.shared[0]], config.code_dim)
        blocks = []
        for name, shape in shapes.items():
            if name not in config.tuned:
                block = None
            elif name in config.shared:
                block = SharedRefinementBlock(
                    self.shared_weight_hypernet, channels, config.shared_inner, config.code_dim, spatial
                )
            else:
                block = RefinementBlock(shape, channels, config.inner, config.code_dim, spatial, name.endswith("torgb"))
            blocks.append(block)
        self.refinement_blocks = nn.ModuleList(blocks)

    def shared_aliases(self) -> dict[str, str]:
        """``{official key: own key}`` for the per-block copies of the shared hypernetwork in official files
        (``refinement_blocks.{i}.hypernet.w1`` -> ``shared_weight_hypernet.w1``)."""
        if self.shared_weight_hypernet is None:
            return {}
        leaves = [k for k, _ in self.shared_weight_hypernet.named_parameters()]
        return {
            f"refinement_blocks.{i}.hypernet.{leaf}": f"shared_weight_hypernet.{leaf}"
            for i, block in enumerate(self.refinement_blocks)
            if isinstance(block, SharedRefinementBlock)
            for leaf in leaves
        }

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.forward_features(x)
        return {
            name: block(features) for name, block in zip(self.layer_names, self.refinement_blocks) if block is not None
        }


@register_network(config_class=HyperStyleConfig)
class HyperStyleNetworks(nn.Module):
    """The W encoder (absent when the W start is another method, ``config.phase1``) and the hypernetwork."""

    def __init__(self, config: HyperStyleConfig):
        super().__init__()
        if not config.layers or not config.tuned:
            raise ValueError("HyperStyleConfig has no layers to tune: build with HyperStyleNetworks.for_generator(G)")
        self.config = config
        self.w_encoder = (
            None
            if config.phase1
            else WEncoder(config.img_channels, w_dim=config.w_dim, num_layers=50, widths=config.w_encoder_widths)
        )
        self.hypernet = HyperStyleHypernet(config)

    @classmethod
    def for_generator(cls, generator, config: HyperStyleConfig = HyperStyleConfig(), tuned=None) -> HyperStyleNetworks:
        return cls(config.for_generator(generator, tuned))

    def matches(self, generator) -> bool:
        """Whether these networks were built for ``generator``'s layers, channels and w_dim."""
        c = self.config
        return (c.img_channels, c.w_dim, dict(c.layers)) == (
            generator.img_channels,
            generator.w_dim,
            target_shapes(generator),
        )
