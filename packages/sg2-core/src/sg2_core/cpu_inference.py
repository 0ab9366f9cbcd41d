"""The CPU inference path of the modulated convolutions: no gradient, so the fastest order of operations.

Used by :func:`sg2_core.layers.modulated_conv2d` for float32 CPU tensors with a 3x3 weight shared by the batch
when no gradient is needed (e.g. under ``torch.no_grad()``). The gradient path keeps NVIDIA's order of
operations, whose path-length gradients the fixtures check to 1e-5; this one differs from it by float
rounding only (tested to 1e-4 of the output's range).

- 3x3 convolutions (and the upsampling ones) on maps of :data:`WINOGRAD_SIZES` run through
  ``sg2_kernels.winograd`` with the styles and the demodulation applied by its tile transforms, so one
  cached weight transform serves the batch. The cache holds 7x the weights of those layers, ~330 MB for
  the 256 px config F (plus a transposed copy of the other upsampling weights); :func:`clear_cache`
  empties it.
- Everything else runs one image at a time: NNPACK's fast algorithm and oneDNN's transposed convolution
  were both faster per image than batched (``scripts/g256_vs_nvidia.py`` at batch 4). For each image, the
  weight is modulated in one pass, directly in the layout the convolution wants.
- ``sum_k w^2`` (for the demodulation) is cached with the weight.
"""

from __future__ import annotations

import math
import threading
import weakref

import torch

from sg2_kernels import winograd
from sg2_kernels._backend import choose_impl

from . import layers  # imports this module first; its functions are only looked up at call time

WINOGRAD_SIZES = {1: range(16, 129), 2: range(32, 129)}
"""Input map sizes at which 3x3 convolutions (``up=1``) and upsampling ones (``up=2``) use
``sg2_kernels.winograd``. Measured per layer at batch 1 on the project's 2-core AVX2 CPU against NNPACK /
oneDNN (``python -m sg2_kernels.bench --winograd``, 2 threads): ``up=1`` 2.4x at 16 px, 2.0x at 32 px,
1.2x at 64 px, 0.94x at 128 px (0.92-1.07x over runs), 0.71x at 256 px; ``up=2`` 0.58x from 8 px inputs,
0.89x from 16 px, 1.35x from 32 px, 1.39x from 64 px, 1.15x from 128 px. At 8 px the model's oneDNN
convolution is as fast as Winograd."""

_cache: dict[tuple[int, str], tuple] = {}  # (id(weight), what) -> (version, data pointer, value)


def _derived(weight: torch.Tensor, what: str, compute):
    """``compute(weight)``, kept while the weight is unchanged (its version counter and storage) and freed
    with it."""
    key, stamp = (id(weight), what), (weight._version, weight.data_ptr())
    cached = _cache.get(key)
    if cached is None or cached[:2] != stamp:
        if cached is None:
            weakref.finalize(weight, _cache.pop, key, None)
        cached = _cache[key] = (*stamp, compute(weight.detach()))
    return cached[2]


_scratch = threading.local()
SCRATCH_BYTES = 64 << 20


def _scratch_buffer(shape):
    """A per-thread buffer for the upsampling convolution's full output, which its blur reads at once: a
    fresh 32 MB buffer (256 px, 128 channels) costs as much in page faults as the pass that fills it. None
    above SCRATCH_BYTES."""
    numel = math.prod(shape)
    if numel * 4 > SCRATCH_BYTES:
        return None
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.numel() < numel:
        buffer = _scratch.buffer = torch.empty(numel)
    return buffer[:numel].view(shape)


def clear_cache() -> None:
    """Forget every cached weight transform (they are rebuilt when next needed) and this thread's scratch
    buffer."""
    _cache.clear()
    _scratch.buffer = None


def applies(x, weight, styles) -> bool:
    """Float32 CPU tensors, a shared 3x3 weight (toRGB's 1x1 is a matrix product on either path), and no
    gradient needed."""
    if not (x.device.type == "cpu" and weight.ndim == 4 and weight.shape[-1] == 3
            and x.dtype == weight.dtype == torch.float32):
        return False
    return not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or styles.requires_grad))


def _use_winograd(x, weight, up, enabled) -> bool:
    return (enabled and x.shape[2] in WINOGRAD_SIZES.get(up, ())
            and x.shape[1] % winograd.LANES == 0 and weight.shape[0] % winograd.LANES == 0
            and choose_impl(None, x.device, "winograd") == "cpp")


def modulated_conv2d(x, weight, styles, up, padding, resample_filter, demodulate, winograd_enabled):
    """``layers.modulated_conv2d`` without noise, for a shared 3x3 ``weight`` ``[O, I, 3, 3]``."""
    n = x.shape[0]
    dcoefs = None
    if demodulate:  # sum_(i,k) (w s_i)^2 = sum_i s_i^2 sum_k w^2
        square_sums = _derived(weight, "square_sums", lambda w: w.square().sum(dim=[2, 3]))
        dcoefs = (styles.square() @ square_sums.t() + 1e-8).rsqrt()  # [N, O]
    if _use_winograd(x, weight, up, winograd_enabled):
        u = _derived(weight, f"winograd{up}", lambda w: winograd.transform_weight(w, up=up))
        if up == 1:
            return winograd.conv3x3(x, u, in_scale=styles, out_scale=dcoefs)
        size = [winograd.output_size(s, up) for s in x.shape[2:]]
        full = winograd.conv3x3(x, u, up, styles, dcoefs, out=_scratch_buffer([n, weight.shape[0], *size]))
        return layers.blur_transposed(full, resample_filter, up, padding, 3)
    images = []
    for i in range(n):
        scale = styles[i].unsqueeze(0) if dcoefs is None else styles[i].unsqueeze(0) * dcoefs[i].unsqueeze(1)
        if up == 1:
            images.append(layers.conv2d_resample(x[i : i + 1], weight * scale[..., None, None], padding=padding)[0])
        else:  # the transposed convolution wants [I, O, k, k]; a cached copy of the weight in that layout
            # makes the modulation one contiguous pass instead of writes through a transposed view
            weight_t = _derived(weight, "transposed", lambda w: w.transpose(0, 1).contiguous())
            wt = weight_t * scale.t()[..., None, None]
            images.append(layers.conv_transpose_up(x[i : i + 1], wt, resample_filter, up, padding)[0])
    return images[0].unsqueeze(0) if n == 1 else torch.stack(images)
