"""Optimisation-based StyleGAN2 inversion: latent projection (W, W+) and Pivotal Tuning (PTI).

Methods register with ``sg2_core.methods.registry`` as ``sg2-w``, ``sg2-w+`` and ``pti``; nothing heavy happens
at import time. The projector is used through the registry: ``sg2_core.create_method("sg2-w", generator=G)``.
"""

import warnings
from importlib.metadata import version as _version

from sg2_core.moved import old_paths

from ._common import StepInfo
from .noise_maps import noise_regularization, normalize_maps_
from .projector import PRESETS, noise_maps, w_statistics
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


def __getattr__(name: str):
    # The projector's other public ways, deprecated in 0.4 and gone in 0.5: the registered methods are the one way.
    if name not in ("project", "Projector", "ProjectorW", "ProjectorWPlus"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import projector

    space = '"sg2-w+"' if name == "ProjectorWPlus" else '"sg2-w"' if name == "ProjectorW" else '"sg2-w" or "sg2-w+"'
    warnings.warn(
        f"inv_optim.{name} is deprecated and goes away in inv-optim 0.5: use "
        f"sg2_core.create_method({space}, generator=G, **options)"
        + ("(images, init=None)" if name == "project" else ""),
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(projector, {"project": "_project", "Projector": "_Projector"}.get(name, name))


__all__ = [
    "PRESETS",
    "PTI",
    "StepInfo",
    "learning_rate",
    "noise_maps",
    "noise_regularization",
    "normalize_maps_",
    "w_noise_std",
    "w_statistics",
]
