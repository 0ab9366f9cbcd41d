"""Architecture configs of the generator and discriminator, with the official presets.

A config is everything needed to rebuild a network, so it is stored beside the tensors in our
checkpoints. Channels follow ``min(channel_base // res, channel_max)`` at every resolution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or resolution < 4 or resolution > 1024 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two in [4, 1024], got {resolution!r}")


class Serializable:
    """A frozen dataclass that round-trips through JSON-like dicts (JSON turns tuples into lists)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def replace(self, **changes):
        return replace(self, **changes)


class _Config(Serializable):
    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)


@dataclass(frozen=True)
class GeneratorConfig(_Config):
    z_dim: int = 512
    w_dim: int = 512
    resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)
    use_noise: bool = True

    def __post_init__(self):
        _check_resolution(self.resolution)
        for name in ("z_dim", "w_dim", "img_channels", "mapping_layers", "channel_base", "channel_max"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")

    @property
    def num_ws(self) -> int:
        """W+ entries: one per convolution, plus one for the last toRGB (8 at 32 px, 18 at 1024 px)."""
        return 2 * int(math.log2(self.resolution)) - 2

    @property
    def block_resolutions(self) -> list[int]:
        return [2**k for k in range(2, int(math.log2(self.resolution)) + 1)]


@dataclass(frozen=True)
class DiscriminatorConfig(_Config):
    resolution: int = 1024
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    conv_clamp: float | None = None
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)

    def __post_init__(self):
        _check_resolution(self.resolution)
        if self.resolution < 8:
            raise ValueError(f"the residual discriminator needs resolution >= 8, got {self.resolution}")


# The official configurations (NVIDIA's train.py and rosinality's defaults).
GENERATOR_PRESETS = {
    "ffhq1024-f": GeneratorConfig(),  # StyleGAN2 config F
    "config-f-256": GeneratorConfig(resolution=256),  # rosinality 256 px checkpoints (channel_multiplier=2)
    "paper256": GeneratorConfig(resolution=256, channel_base=16384),  # stylegan2-ada --cfg=paper256
    "auto256": GeneratorConfig(resolution=256, channel_base=16384, mapping_layers=2),  # --cfg=auto at 256
}
DISCRIMINATOR_PRESETS = {
    "ffhq1024-f": DiscriminatorConfig(),
    "config-f-256": DiscriminatorConfig(resolution=256),
    "paper256": DiscriminatorConfig(resolution=256, channel_base=16384, mbstd_group_size=8),
    "auto256": DiscriminatorConfig(resolution=256, channel_base=16384),
}
