"""HyperInverter: StyleGAN2 inversion with hypernetwork weight offsets.

``HyperInverter`` (registered name ``hyperinverter`` once trained weights ship) and ``load`` (an official
checkpoint for a generator given separately). ``inv_hyper.hypernetwork`` holds the weight regressors.
"""

from importlib.metadata import version as _version

from .checkpoint import load
from .method import HyperInverter

__all__ = ["HyperInverter", "load"]

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("inv-hyper")
