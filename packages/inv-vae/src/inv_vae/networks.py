"""AgileGAN's hierarchical VAE encoder: the pSp feature pyramid, then a Gaussian posterior per generator layer.

The shared ``sg2_core.encoders.PyramidStyleEncoder`` reads the image at three levels (coarse styles from the
stride-16 map, medium from the stride-8 pyramid level, fine from the stride-4 level) and gives one code per
W+ entry; two plain ``nn.Linear`` heads (not EqualLinear) turn each code into the mean ``mu`` and the log
variance ``logvar`` of a diagonal Gaussian in Z+: one z per generator layer, each mapped by the generator's
own mapping network. Training samples ``z = mu + eps * exp(logvar / 2)`` (the reparameterisation trick);
test time uses ``mu``, as the reference's inference script does.

State-dict keys are exactly those of the official checkpoint's ``encoder.*`` sub-dict with the prefix
removed: pSp's ``input_layer``, ``body``, ``styles``, ``latlayer1/2``, plus ``fc_mu`` and ``fc_var``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from sg2_core import register_network
from sg2_core.encoders import DEFAULT_WIDTHS, PyramidStyleEncoder
from sg2_core.nn.config import Serializable

__all__ = ["VAEConfig", "VAEOutput", "VAEStyleEncoder", "reparameterize"]


@dataclass(frozen=True)
class VAEConfig(Serializable):
    n_styles: int = 18  # one z per W+ entry (the reference hard-wires 18: a 1024 px generator)
    z_dim: int = 512  # the width of each z: the generator's z_dim
    in_channels: int = 3
    input_size: int = 256
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    num_layers: int = 50
    mode: str = "ir_se"

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(self.widths))
        for name in ("n_styles", "z_dim", "in_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


class VAEOutput(NamedTuple):
    """``z``, ``mu``, ``logvar``: each ``[N, n_styles, z_dim]``."""

    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """``mu + eps * exp(logvar / 2)``; ``eps`` defaults to standard normal noise of ``mu``'s shape."""
    if eps is None:
        eps = torch.randn_like(mu)
    elif eps.shape != mu.shape:
        raise ValueError(f"eps must have the shape of mu {list(mu.shape)}, got {list(eps.shape)}")
    return mu + eps.to(mu) * torch.exp(0.5 * logvar)


@register_network(config_class=VAEConfig)
class VAEStyleEncoder(PyramidStyleEncoder):
    """Images ``[N, in_channels, input_size, input_size]`` -> :class:`VAEOutput` in Z+.

    ``forward(x, eps=None)``: in training mode ``z`` is a sample (``eps`` given, or drawn); in eval mode ``z``
    is ``mu`` unless ``eps`` is given. :meth:`posterior` returns ``(mu, logvar)`` alone."""

    def __init__(self, config: VAEConfig | None = None, **kwargs):
        config = config if config is not None else VAEConfig(**kwargs)
        super().__init__(
            config.n_styles,
            config.in_channels,
            input_size=config.input_size,
            num_layers=config.num_layers,
            mode=config.mode,
            widths=config.widths,
            style_dim=config.z_dim,
        )
        self.config = config
        self.fc_mu = nn.Linear(config.z_dim, config.z_dim)
        self.fc_var = nn.Linear(config.z_dim, config.z_dim)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each ``[N, n_styles, z_dim]``."""
        codes = super().forward(x)
        return self.fc_mu(codes), self.fc_var(codes)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> VAEOutput:
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar, eps) if self.training or eps is not None else mu
        return VAEOutput(z, mu, logvar)
