"""StyleGAN2 networks, losses, training, checkpoint I/O and the method registry.

Placeholder in 0.1.0: this package holds no functionality yet.
"""

from importlib.metadata import version as _version

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("sg2-core")
