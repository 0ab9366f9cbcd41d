"""Metrics, metric-based losses and the benchmark report for StyleGAN2 inversion.

Placeholder in 0.1.0: this package holds no functionality yet.
"""

from importlib.metadata import version as _version

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("inv-metrics")
