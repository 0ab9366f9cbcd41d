"""Fast StyleGAN2 ops: upfirdn2d, fused bias + activation, and convolutions fused with resampling.

Each op has three implementations behind one call: a pure-PyTorch reference that always works
(``impl='ref'``), compiled C++ CPU kernels (``'cpp'``) and CUDA kernels (``'cuda'``). The compiled
ones are built when the package is installed and are optional; ``impl=None`` picks the fastest one
available for the tensor's device. ``python -m sg2_kernels`` says which are available and why not.
"""

from importlib.metadata import PackageNotFoundError, version

from ._backend import IMPLS, available_impls, use_impl
from .bias_act import ACTIVATIONS, bias_act, noise_bias_lrelu_
from .resample import blur_transposed, conv2d_resample, conv_transpose_up
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

try:
    __version__ = version("sg2-kernels")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ACTIVATIONS",
    "IMPLS",
    "available_impls",
    "bias_act",
    "blur_transposed",
    "conv2d_resample",
    "conv_transpose_up",
    "downsample2d",
    "filter2d",
    "noise_bias_lrelu_",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
    "use_impl",
]
