"""HyperInverter and HyperStyle: StyleGAN2 inversion with hypernetwork weight offsets.

``HyperInverter`` (registered names ``hyperinverter`` and ``hyperinverter-w``) and ``load`` (an official
checkpoint, or a file of ``python -m inv_hyper.train``, for a generator given separately: a
:class:`HyperCheckpoint`). ``inv_hyper.hypernetwork`` holds the weight regressors. ``HyperStyle`` (``hyperstyle``):
iterative relative weight changes on a W start (``inv_hyper.hyperstyle`` its networks).
"""

from importlib.metadata import version as _version

from sg2_core.moved import old_paths

from .checkpoints import HyperCheckpoint, load
from .hyperstyle_method import HyperStyle
from .methods import HyperInverter

__all__ = ["HyperCheckpoint", "HyperInverter", "HyperStyle", "load"]

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("inv-hyper")

# Module names shared by every family since sg2-core 0.7; the old ones go away in inv-hyper's next minor.
old_paths(
    {
        "inv_hyper.method": "inv_hyper.methods",
        "inv_hyper.checkpoint": "inv_hyper.checkpoints",
        "inv_hyper.train_hyper": "inv_hyper.training",
    },
    removed_in="the next minor version of inv-hyper",
)
