"""Convolutions fused with StyleGAN2's 2x up- and downsampling (the ``conv2d_resample`` of NVIDIA's ops layer).

The paddings are StyleGAN2's, so the results equal upsample-then-convolve and filter-then-downsample-convolve
without the large intermediate. ``nnpack=False`` (the default) is the exact path: NVIDIA's order of operations,
with torch's NNPACK backend switched off for these convolutions. ``nnpack=True`` lets 3x3 stride-1 float32 CPU
convolutions on maps of :data:`NNPACK_MIN_SIZE` px and more run through NNPACK's Winograd algorithm: faster,
but its rounding (~1e-5 relative) depends on the CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .upfirdn2d import upfirdn2d

NNPACK_MIN_SIZE = 32
"""Smallest map side at which ``nnpack=True`` uses NNPACK: smaller maps measured faster with oneDNN's direct
convolution (the figures are in the README)."""

_nnpack_ready = None


def nnpack_suits(x: torch.Tensor, w: torch.Tensor, groups: int = 1) -> bool:
    """Whether NNPACK can and should run this 3x3 stride-1 convolution (see :data:`NNPACK_MIN_SIZE`)."""
    global _nnpack_ready
    if not (
        groups == 1
        and x.device.type == "cpu"
        and x.dtype == torch.float32 == w.dtype
        and w.shape[2] == w.shape[3] == 3
        and min(x.shape[2], x.shape[3]) >= NNPACK_MIN_SIZE
    ):
        return False
    if _nnpack_ready is None:  # torch._nnpack_available() also initialises NNPACK, which its convolution needs
        _nnpack_ready = hasattr(torch, "_nnpack_spatial_convolution") and torch._nnpack_available()
    return _nnpack_ready


def _exact(conv, *args, **kwargs):
    """``conv(*args, **kwargs)`` with torch's own NNPACK choice off, so the rounding does not depend on it."""
    with torch.backends.nnpack.flags(enabled=False):
        return conv(*args, **kwargs)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, nnpack=False):
    """A 2-D convolution fused with 2x up- or downsampling.

    ``up=1``: a cross-correlation, like ``F.conv2d``. ``up=2``: a transposed convolution with stride 2, then the
    FIR filter ``f`` (gain 4); the result has twice the size of ``x`` for ``padding = k // 2``. The transposed
    convolution does not flip ``w``, so this is a true convolution of the upsampled map (NVIDIA's
    ``conv2d_resample`` with ``flip_weight=False``, what its upsampling synthesis layers use). ``down=2``: ``f`` first, then a stride-2 convolution (1x1 kernels:
    downsample first, so the convolution runs on 4x fewer pixels). ``nnpack``: see the module docstring.
    """
    kh, kw = w.shape[2], w.shape[3]
    if up == 1 and down == 1:
        if nnpack and nnpack_suits(x, w, groups):
            return torch._nnpack_spatial_convolution(x, w, None, [padding, padding], [1, 1])
        return _exact(F.conv2d, x, w, padding=padding, groups=groups)
    if up > 1 and down > 1:
        raise ValueError(f"conv2d_resample: up and down cannot both be > 1, got up={up}, down={down}")
    if f is None:
        raise ValueError("conv2d_resample: up or down > 1 needs the resampling filter f")
    fw = f.shape[-1]
    if down > 1:
        p0, p1 = padding + (fw - down + 1) // 2, padding + (fw - down) // 2
        if kw == 1 and kh == 1:
            return _exact(F.conv2d, upfirdn2d(x, f, down=down, padding=[p0, p1, p0, p1]), w, groups=groups)
        return _exact(F.conv2d, upfirdn2d(x, f, padding=[p0, p1, p0, p1]), w, stride=down, groups=groups)
    # a transposed convolution wants [in, out/groups, k, k]
    n_out, n_in = w.shape[0], w.shape[1]
    wt = (
        w.reshape(groups, n_out // groups, n_in, kh, kw).transpose(1, 2).reshape(groups * n_in, n_out // groups, kh, kw)
    )
    return conv_transpose_up(x, wt, f, up, padding, groups)


def conv_transpose_up(x, wt, f, up, padding, groups=1):
    """The ``up > 1`` case of :func:`conv2d_resample` for a weight already in the transposed convolution's
    ``[in, out/groups, k, k]`` layout."""
    full = _exact(F.conv_transpose2d, x, wt, stride=up, groups=groups)
    return blur_transposed(full, f, up, padding, wt.shape[-1])


def blur_transposed(x, f, up, padding, kernel_size):
    """The FIR filter that follows a stride-``up`` transposed convolution (its full output, ``x``), cropped so
    that the result is ``up`` times the input size for ``padding = kernel_size // 2``."""
    fw = f.shape[-1]
    p0 = padding + (fw + up - 1) // 2 - (kernel_size - 1)
    p1 = padding + (fw - up) // 2 - (kernel_size - up)
    return upfirdn2d(x, f, padding=[p0, p1, p0, p1], gain=up * up)
