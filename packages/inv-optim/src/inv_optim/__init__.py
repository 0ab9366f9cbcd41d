"""Optimisation-based StyleGAN2 inversion: latent projection (W, W+) and Pivotal Tuning (PTI).

Methods register with ``sg2_core.methods.registry`` as ``sg2-w``, ``sg2-w+`` and ``pti``; nothing heavy happens
at import time.
"""

from importlib.metadata import version as _version

from sg2_core.moved import old_paths

from ._common import StepInfo
from .noise_maps import noise_regularization, normalize_maps_
from .projector import PRESETS, Projector, ProjectorW, ProjectorWPlus, noise_maps, project, w_statistics
from .pti import PTI
from .schedule import learning_rate, w_noise_std

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("inv-optim")

# Module names shared by every family since sg2-core 0.7; the old ones go away in inv-optim's next minor.
old_paths(
    {
        "inv_optim.train_collab": "inv_optim.training",
    },
    removed_in="the next minor version of inv-optim",
)

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
