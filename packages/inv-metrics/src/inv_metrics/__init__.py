"""Metrics, metric-based losses and the benchmark report for StyleGAN2 inversion.

Images are float [N, C, H, W] in [-1, 1]. Pretrained weights are never downloaded: they load from a path you
give or from the torch hub cache, and a missing file raises :class:`MissingWeightsError` saying where to put it.
Heavy libraries (piq, lpips, torch-fidelity, insightface) are imported only when a metric needs them.
"""

from importlib.metadata import PackageNotFoundError, version

from . import losses, timing
from .distances import DISTANCES, load_distance
from .errors import MissingWeightsError
from .features import FEATURES, load_features
from .fid_kid import fid_from_features, kid_from_features
from .identity import id_similarity, load_id_network
from .images import evaluation_size
from .pixel import ms_ssim, mse, psnr, ssim
from .timing import Timer, time_per_image

try:
    __version__ = version("inv-metrics")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "DISTANCES",
    "FEATURES",
    "MissingWeightsError",
    "Timer",
    "evaluation_size",
    "fid_from_features",
    "id_similarity",
    "kid_from_features",
    "load_distance",
    "load_features",
    "load_id_network",
    "losses",
    "ms_ssim",
    "mse",
    "psnr",
    "ssim",
    "time_per_image",
    "timing",
]
