"""The embedding network of collaborative learning (Guan et al. 2020): images -> W+ codes in one pass.

The paper fuses a pretrained identity encoder (ArcFace) with a trainable attribute encoder (ResBlocks) by
SPADE-like modulation and predicts W+ with a TreeConnect head. Here:

- ``identity``: a frozen, pretrained feature network whose multi-scale feature maps condition the attribute
  encoder. For the 1-channel 32 px demo domain it is inv-metrics' Fashion-MNIST classifier (``"fmnist"``), the
  domain's counterpart of ArcFace for faces; ``None`` drops the branch (``backbone="attribute"``).
- attribute encoder: a conv stem and one residual block per halving of the resolution down to 4x4.
- fusion (SPADE-like): after each attribute stage, the features are instance-normalised and modulated,
  ``x * (1 + gamma) + beta``, with ``gamma, beta`` predicted per position by a small conv from the identity
  features of the same resolution. Zero-initialised, so training starts from the plain attribute encoder.
- head: a shared linear layer on the 4x4 features, then one linear head per W+ entry (a block-diagonal
  layer, the simplest stand-in for TreeConnect's sparse structure) predicting the offset from the generator's
  mean ``w_avg``; the last layer starts at zero, so an untrained network proposes ``w_avg`` everywhere, the
  projector's own starting point.

A network stores its config (and the config and the weights' hash, ``sg2_core.methods.weights.generator_hash``,
of the generator it was trained for) as JSON beside the tensors, in sg2-core's native file format for any
network (``sg2_core.save_networks``, one network named ``network``): ``save_embedding`` / ``load_embedding``,
never a pickle. Files of the earlier format of its own (``inv_optim.collab.embedding/1``, the demo network shipped
with 0.2) still load.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as F

from sg2_core import load_networks, register_network, save_networks
from sg2_core.checkpoints.native import FORMAT_TAG as NATIVE_FORMAT
from sg2_core.methods.weights import generator_hash

LEGACY_FORMAT = "inv_optim.collab.embedding/1"  # inv-optim 0.2's own format, still read
NETWORK_NAME = "network"
BACKBONES = ("fused", "attribute")
IDENTITIES = ("fmnist",)


@dataclass(frozen=True)
class EmbeddingConfig:
    """Everything needed to rebuild an ``EmbeddingNetwork`` (the generator's shape comes from ``generator``)."""

    generator: dict  # the generator's GeneratorConfig.to_dict(): shape of the codes, and the match check
    backbone: str = "fused"  # 'fused' (identity + attribute, SPADE-like) or 'attribute' (no identity branch)
    identity: str | None = "fmnist"
    channels: tuple[int, ...] = (16, 32, 64)  # attribute stages, one per halving (the last one reaches 4x4)
    hidden: int = 256
    generator_fingerprint: float | None = None  # inv-optim 0.3's record of the generator: read, no longer checked
    generator_hash: str | None = None  # sg2_core.methods.weights.generator_hash of the generator it was trained for

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.backbone == "fused" and self.identity not in IDENTITIES:
            raise ValueError(f"backbone 'fused' needs identity in {IDENTITIES}, got {self.identity!r}")
        resolution = self.generator["resolution"]
        if len(self.channels) != int(math.log2(resolution)) - 2 or any(c < 1 for c in self.channels):
            raise ValueError(
                f"channels must hold one positive width per halving from {resolution} px to 4 px "
                f"({int(math.log2(resolution)) - 2}), got {list(self.channels)}"
            )

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.generator["resolution"])) - 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EmbeddingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown EmbeddingConfig fields {unknown}; known: {sorted(known)}")
        return cls(**{**data, "channels": tuple(data.get("channels", cls.channels))})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EmbeddingConfig:
        return cls.from_dict(json.loads(text))


def generator_fingerprint(generator) -> float:
    """Deprecated: sum of squares of every generator parameter and buffer (float64), inv-optim 0.3's record of a
    generator; ``sg2_core.methods.weights.generator_hash`` is the one identity of generators now."""
    warnings.warn(
        "inv_optim.embedding.generator_fingerprint is deprecated and goes away in inv-optim's next minor version: "
        "use sg2_core.methods.weights.generator_hash",
        DeprecationWarning,
        stacklevel=2,
    )
    return float(sum(t.detach().double().square().sum().item() for t in generator.state_dict().values()))


class ResBlock(nn.Module):
    """Two 3x3 convs with a residual connection, then 2x average-pool down (pre-activation, leaky ReLU)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.leaky_relu(x, 0.2))
        h = self.conv2(F.leaky_relu(h, 0.2))
        return F.avg_pool2d(self.skip(x) + h, 2)


class SpadeModulation(nn.Module):
    """``instance_norm(x) * (1 + gamma(c)) + beta(c)``, gamma and beta per position from condition maps ``c``."""

    def __init__(self, channels: int, cond_channels: int, hidden: int = 32):
        super().__init__()
        self.shared = nn.Conv2d(cond_channels, hidden, 3, padding=1)
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)
        for conv in (self.gamma, self.beta):  # start as an identity modulation (plain attribute features)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x, cond):
        if cond.shape[-1] != x.shape[-1]:
            cond = F.interpolate(cond, size=x.shape[-2:], mode="area")
        h = F.relu(self.shared(cond))
        return F.instance_norm(x) * (1 + self.gamma(h)) + self.beta(h)


class PerEntryHead(nn.Module):
    """One linear map per W+ entry (a block-diagonal layer): ``[N, hidden] -> [N, num_ws, w_dim]``."""

    def __init__(self, hidden: int, num_ws: int, w_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_ws, hidden, w_dim))  # zero: start at w_avg
        self.bias = nn.Parameter(torch.zeros(num_ws, w_dim))

    def forward(self, h):
        return torch.einsum("nh,khw->nkw", h, self.weight) + self.bias


def _identity_network(name: str):
    from inv_metrics.fmnist import FMNISTNet

    if name == "fmnist":
        return FMNISTNet()
    raise ValueError(f"unknown identity encoder {name!r}; known: {IDENTITIES}")


def _identity_taps(name: str) -> list[int]:
    """Channels of the identity network's feature maps (fmnist: at 32, 16, 8 and 4 px)."""
    if name == "fmnist":
        from inv_metrics.fmnist import WIDTHS

        return list(WIDTHS)
    raise ValueError(f"unknown identity encoder {name!r}; known: {IDENTITIES}")


@register_network(config_class=EmbeddingConfig)
class EmbeddingNetwork(nn.Module):
    """Images ``[N, C, R, R]`` in [-1, 1] -> W+ codes ``[N, num_ws, w_dim]`` (``w_avg`` + predicted offsets)."""

    def __init__(self, config: EmbeddingConfig, w_avg: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        g = config.generator
        self.img_channels, self.resolution, self.w_dim, self.num_ws = (
            g["img_channels"],
            g["resolution"],
            g["w_dim"],
            config.num_ws,
        )
        self.register_buffer("w_avg", torch.zeros(self.w_dim) if w_avg is None else w_avg.detach().float().clone())
        self.identity = None
        if config.backbone == "fused":
            if (self.img_channels, self.resolution) != (1, 32):
                raise ValueError(
                    f"identity encoder {config.identity!r} takes 1-channel 32 px images; this generator "
                    f"makes {self.img_channels}-channel {self.resolution} px ones (use backbone='attribute')"
                )
            self.identity = _identity_network(config.identity).eval().requires_grad_(False)
        widths = list(config.channels)
        self.stem = nn.Conv2d(self.img_channels, widths[0], 3, padding=1)
        blocks, mods, in_ch = [], [], widths[0]
        taps = _identity_taps(config.identity) if self.identity is not None else []
        for i, width in enumerate(widths):
            blocks.append(ResBlock(in_ch, width))
            if taps:  # stage i ends at resolution / 2^(i+1): the identity tap of that size is i + 1
                mods.append(SpadeModulation(width, taps[min(i + 1, len(taps) - 1)]))
            in_ch = width
        self.blocks = nn.ModuleList(blocks)
        self.modulations = nn.ModuleList(mods)
        self.trunk = nn.Linear(in_ch * 16, config.hidden)
        self.head = PerEntryHead(config.hidden, self.num_ws, self.w_dim)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.identity is not None:
            self.identity.eval()  # frozen: its batch norms keep their statistics
        return self

    def check_images(self, images) -> None:
        """sg2_core's image checks against this network's input shape (a clear ValueError)."""
        from sg2_core import check_images

        check_images(images, SimpleNamespace(img_channels=self.img_channels, img_resolution=self.resolution))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        taps = []
        if self.identity is not None:
            with torch.no_grad():
                taps = self.identity.taps(images)
        x = self.stem(images)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if taps:
                x = self.modulations[i](x, taps[min(i + 1, len(taps) - 1)])
        h = F.leaky_relu(self.trunk(F.leaky_relu(x, 0.2).flatten(1)), 0.2)
        return self.w_avg + self.head(h)

    def trainable_parameters(self):
        return [p for p in self.parameters() if p.requires_grad]


def build_embedding(
    generator,
    *,
    backbone: str | None = None,
    channels=(16, 32, 64),
    hidden: int = 256,
    w_avg: torch.Tensor | None = None,
    identity_weights=None,
) -> EmbeddingNetwork:
    """A fresh network for ``generator``: ``backbone`` defaults to ``'fused'`` (fmnist identity) for the
    1-channel 32 px demo domain and ``'attribute'`` elsewhere; ``w_avg`` defaults to the mean of 10,000
    mapped z (the projector's start); the identity encoder loads inv-metrics' shipped weights."""
    from .projector import w_statistics

    demo_domain = (generator.img_channels, generator.img_resolution) == (1, 32)
    backbone = backbone or ("fused" if demo_domain else "attribute")
    resolution = generator.img_resolution
    depth = int(math.log2(resolution)) - 2
    channels = tuple(channels)
    if len(channels) != depth:  # keep the widths' progression for other resolutions
        channels = tuple(min(channels[-1], channels[0] * 2**i) for i in range(depth))
    generator_config = json.loads(json.dumps(generator.config.to_dict()))  # as it reads back from the file
    config = EmbeddingConfig(
        generator=generator_config,
        backbone=backbone,
        identity="fmnist" if backbone == "fused" else None,
        channels=channels,
        hidden=hidden,
        generator_hash=generator_hash(generator),
    )
    if w_avg is None:
        w_avg = w_statistics(generator, 10000)[0]
    net = EmbeddingNetwork(config, w_avg)
    if net.identity is not None:
        from inv_metrics.fmnist import load_fmnist_net

        net.identity.load_state_dict(load_fmnist_net(identity_weights).state_dict())
    device = next(generator.parameters()).device
    return net.to(device)


def save_embedding(network: EmbeddingNetwork, path, extra_metadata: dict | None = None) -> Path:
    """Writes the network (frozen identity encoder included, so the file alone rebuilds it) with its config,
    and ``extra_metadata``, in sg2-core's native network format; atomic."""
    return save_networks(path, {NETWORK_NAME: network}, extra=extra_metadata)


def _header(path) -> dict:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"embedding network file {path} not found; train one with "
            "python -m inv_optim.train --method collab --out FILE"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - safetensors' errors, with the file name
        raise ValueError(f"{path} is not a safetensors file (corrupt or truncated?): {exc}") from exc


def read_metadata(path) -> dict:
    """The file's metadata: ``config`` as an ``EmbeddingConfig``, and the extra entries it was saved with."""
    metadata = _header(path)
    if metadata.get("format") == NATIVE_FORMAT and f"{NETWORK_NAME}_config" in metadata:
        out = json.loads(metadata.get("extra", "{}"))
        out["config"] = EmbeddingConfig.from_json(metadata[f"{NETWORK_NAME}_config"])
        return out
    if metadata.get("format") == LEGACY_FORMAT and "config" in metadata:
        out = {k: json.loads(v) for k, v in metadata.items() if k not in ("format", "config")}
        out["config"] = EmbeddingConfig.from_json(metadata["config"])
        return out
    raise ValueError(
        f"{path} is not a collaborative embedding network file (metadata format "
        f"{metadata.get('format')!r}, expected {NATIVE_FORMAT!r} with a {NETWORK_NAME!r} network)"
    )


def load_embedding(path, device=None) -> EmbeddingNetwork:
    """Rebuilds a network from a ``save_embedding`` file (safetensors: no pickle is ever read)."""
    metadata = _header(path)
    if metadata.get("format") == NATIVE_FORMAT:
        networks = load_networks(path)
        if set(networks) != {NETWORK_NAME} or not isinstance(networks[NETWORK_NAME], EmbeddingNetwork):
            raise ValueError(f"{path} holds the networks {sorted(networks)}, not one embedding network")
        net = networks[NETWORK_NAME]
    else:
        from safetensors.torch import load_file

        config = read_metadata(path)["config"]
        net = EmbeddingNetwork(config)
        state = load_file(str(path))
        missing, unexpected = set(net.state_dict()) - set(state), set(state) - set(net.state_dict())
        if missing or unexpected:
            raise ValueError(
                f"{path}: tensors do not match the recorded config: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        net.load_state_dict(state)
    return net.to(device).eval().requires_grad_(False)


def check_generator(config: EmbeddingConfig, generator, where: str = "the network") -> None:
    """Raises a ValueError naming the differing fields when ``generator``'s config is not the recorded one."""
    own = generator.config.to_dict()
    recorded = dict(config.generator)
    if "resample_filter" in recorded:
        recorded["resample_filter"] = tuple(recorded["resample_filter"])
    if "resample_filter" in own:
        own["resample_filter"] = tuple(own["resample_filter"])
    diff = {k: (recorded.get(k), own.get(k)) for k in sorted({*own, *recorded}) if own.get(k) != recorded.get(k)}
    if diff:
        detail = ", ".join(f"{k}: trained for {a!r}, got {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"{where} was trained for another generator ({detail}); train one for this generator with "
            "python -m inv_optim.train --generator CHECKPOINT --out FILE and pass weights=FILE"
        )


__all__ = [
    "BACKBONES",
    "EmbeddingConfig",
    "EmbeddingNetwork",
    "build_embedding",
    "check_generator",
    "generator_fingerprint",
    "load_embedding",
    "read_metadata",
    "save_embedding",
]
