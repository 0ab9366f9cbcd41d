"""Optimisation-based StyleGAN2 inversion: latent projection (W, W+) and Pivotal Tuning (PTI).

Methods register with ``sg2_core.registry`` as ``sg2-w``, ``sg2-w+`` and ``pti``; nothing heavy happens
at import time.
"""

from importlib.metadata import version as _version

from ._common import StepInfo
from .noise_maps import noise_regularization, normalize_maps_
from .projector import PRESETS, Projector, ProjectorW, ProjectorWPlus, noise_maps, project, w_statistics
from .pti import PTI
from .schedule import learning_rate, w_noise_std

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("inv-optim")

__all__ = [
    "PRESETS",
    "PTI",
    "Projector",
    "ProjectorW",
    "ProjectorWPlus",
    "StepInfo",
    "learning_rate",
    "noise_maps",
    "noise_regularization",
    "normalize_maps_",
    "project",
    "w_noise_std",
    "w_statistics",
]
