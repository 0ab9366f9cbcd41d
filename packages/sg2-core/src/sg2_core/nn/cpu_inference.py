"""The CPU inference path of the modulated convolutions: no gradient, so the fastest order of operations.

:func:`sg2_core.nn.layers.modulated_conv2d` sends a convolution here when ``sg2_core.use_impl`` allows the fast
paths (the default ``"auto"`` does when no gradient is recorded, e.g. under ``torch.no_grad()``) and
:func:`applies` holds: float32 CPU tensors with a 3x3 weight shared by the batch. The results differ from the
exact path by float rounding only (tested to 1e-4 of the output's range). Per-sample weights (weight offsets)
do not come here: a Winograd transform per sample and per render cost more than it saves, measured against
the exact path's grouped convolution (``layers._per_sample_conv``).

- 3x3 convolutions (and the upsampling ones) on maps of :data:`WINOGRAD_SIZES` run through
  ``sg2_kernels.winograd`` with the styles and the demodulation applied by its tile transforms, so one
  transformed weight serves the batch.
- Everything else runs one image at a time: NNPACK's fast algorithm and oneDNN's transposed convolution
  were both faster per image than batched (``scripts/g256_vs_nvidia.py`` at batch 4). For each image, the
  weight is modulated in one pass, directly in the layout the convolution wants, and the result is written
  into the batch's output, so no layer holds its output twice.

Memory is bounded on purpose (``scripts/g256_memory_vs_nvidia.py``): the Winograd transform of a weight is
7x the weight (349 MB for the 256 px config F), more than a batch of 4 images' largest maps, so it is computed
at every call into a reused per-thread buffer (~70 ms of one core per 256 px render) instead of being kept
(:data:`KEEP_WINOGRAD_TRANSFORMS` keeps them).
The small things derived from a weight (``sum_k w^2`` for the demodulation, a transposed copy) are kept in
the :class:`WeightCache` of the layer that owns the weight, so they are freed with the generator. Large
intermediate maps go to per-thread scratch buffers of at most :data:`SCRATCH_BYTES` each.
This module imports only sg2-kernels.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref

import torch

from sg2_kernels import blur_transposed, conv2d_resample, conv_transpose_up, winograd
from sg2_kernels._backend import choose_impl

WINOGRAD_SIZES = {1: range(16, 257), 2: range(32, 129)}
"""Input map sizes at which 3x3 convolutions (``up=1``) and upsampling ones (``up=2``) use
``sg2_kernels.winograd``: where it measured faster per layer than NNPACK / oneDNN at batch 1
(``python -m sg2_kernels.bench --winograd``; the figures are in sg2-core's README, "Speed"). At 256 px it
measured 0.7-0.9x NNPACK's time and spares the ~120 MB workspace NNPACK keeps after a 256 px map."""

KEEP_WINOGRAD_TRANSFORMS = False
"""True keeps each layer's Winograd transform in its :class:`WeightCache` (7x the weight: 349 MB more at the peak
for the 256 px config F) instead of transforming it at every call: ~10 % faster at batch 1, the same at batch 4
(sg2-core's README, "Speed")."""

_live_caches: weakref.WeakSet = weakref.WeakSet()


class WeightCache:
    """What the inference path derives from one layer's weight, kept while that weight is unchanged.

    One entry per kind (``"square_sums"``, ``"transposed"``, and with :data:`KEEP_WINOGRAD_TRANSFORMS`
    ``"winograd1"`` or ``"winograd2"``), so it is bounded by construction: a layer holds at most its
    demodulation sums (1/9 of the weight) and one transposed copy (1x) or transform (7x). An entry is reused
    only for the very same tensor (a weak reference) with the same version counter and storage, so an in-place
    optimiser step or a new ``.data`` recomputes it. The cache is an
    ordinary attribute of the layer: it is not in the state dict, a ``copy.deepcopy`` of the generator starts
    with an empty one, and it is freed with the generator. :func:`clear_cache` empties it.
    """

    def __init__(self):
        self._entries: dict[str, tuple] = {}
        _live_caches.add(self)

    def get(self, weight: torch.Tensor, kind: str, compute):
        """``compute(weight.detach())``, computed once per version of ``weight``."""
        stamp = (weight._version, weight.data_ptr())
        entry = self._entries.get(kind)
        if entry is None or entry[0]() is not weight or entry[1] != stamp:
            entry = self._entries[kind] = (weakref.ref(weight), stamp, compute(weight.detach()))
        return entry[2]

    def clear(self) -> None:
        self._entries.clear()

    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        return sum(e[2].numel() * e[2].element_size() for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __deepcopy__(self, memo):
        return WeightCache()  # a copy's weights are new tensors: nothing cached here would be reused

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()


def _no_cache(weight, kind, compute):
    return compute(weight.detach())


_scratch = threading.local()
SCRATCH_BYTES = 64 << 20
"""The largest scratch buffer: a 512x512 layer's Winograd transform (64 MiB) fits."""


def _scratch_buffer(shape, use="full"):
    """A per-thread buffer, one per ``use``: ``"full"``, the upsampling convolution's full output, which its
    blur reads at once, and ``"transform"``, a Winograd-transformed weight. A fresh buffer of that size costs
    as much in page faults as the pass that fills it. None above SCRATCH_BYTES."""
    numel = math.prod(shape)
    if numel * 4 > SCRATCH_BYTES:
        return None
    buffer = getattr(_scratch, use, None)
    if buffer is None or buffer.numel() < numel:
        buffer = torch.empty(numel)
        setattr(_scratch, use, buffer)
    return buffer[:numel].view(shape)


def clear_cache(module: torch.nn.Module | None = None) -> None:
    """Empty the weight caches of ``module``'s layers (of every live generator when None) and this thread's
    scratch buffers. They are rebuilt when next needed."""
    caches = (
        _live_caches
        if module is None
        else [value for m in module.modules() for value in vars(m).values() if isinstance(value, WeightCache)]
    )
    for cache in list(caches):
        cache.clear()
    _scratch.full = _scratch.transform = None


def applies(x, weight) -> bool:
    """Float32 CPU tensors and a shared 3x3 weight (toRGB's 1x1 is a matrix product on either path). The
    caller has checked that no gradient is needed."""
    return (
        x.device.type == "cpu"
        and weight.ndim == 4
        and weight.shape[-1] == 3
        and x.dtype == weight.dtype == torch.float32
    )


@functools.cache
def _transform_matrix(up: int) -> torch.Tensor:
    """``[64, 9]``: row ``p`` maps a 3x3 kernel's taps to transform point ``p`` of ``winograd.transform_weight``
    (the Kronecker product of the per-axis weight transforms, the points ``conv3x3`` reads)."""
    g = winograd.matrices(up)[1]
    every_point = torch.einsum("pk,ql->pqkl", g, g).reshape(-1, 9)
    return every_point[winograd._first_points(up)].to(torch.float32).contiguous()


def transform_weight(w: torch.Tensor, up: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """``winograd.transform_weight(w, up)`` (``[O, I, 3, 3]`` to ``[64, I, O]``) as one ``[64, 9] x [9, I*O]``
    matrix product, equal to float rounding and several times faster (an einsum over all 169 points of ``up=2``
    is not computed). ``out``: a contiguous ``[64, I, O]`` tensor to write into."""
    o, i = w.shape[:2]
    taps = w.reshape(o, i, 9).permute(2, 1, 0).reshape(9, i * o)
    matrix = _transform_matrix(up).to(w.dtype)
    if out is None:
        return (matrix @ taps).reshape(winograd.WEIGHT_POINTS, i, o)
    torch.mm(matrix, taps, out=out.view(winograd.WEIGHT_POINTS, i * o))
    return out


def _use_winograd(x, weight, up) -> bool:
    return (
        x.shape[2] in WINOGRAD_SIZES.get(up, ())
        and x.shape[1] % winograd.LANES == 0
        and weight.shape[0] % winograd.LANES == 0
        and choose_impl(None, x.device, "winograd") == "cpp"
    )


def modulated_conv2d(x, weight, styles, up, padding, resample_filter, demodulate, cache: WeightCache | None = None):
    """``layers.modulated_conv2d`` without noise, for a shared 3x3 ``weight`` ``[O, I, 3, 3]``. ``cache``: the
    owning layer's :class:`WeightCache` (None: derive everything afresh)."""
    derived = _no_cache if cache is None else cache.get
    n = x.shape[0]
    dcoefs = None
    if demodulate:  # sum_(i,k) (w s_i)^2 = sum_i s_i^2 sum_k w^2
        square_sums = derived(weight, "square_sums", lambda w: w.square().sum(dim=[2, 3]))
        dcoefs = (styles.square() @ square_sums.t() + 1e-8).rsqrt()  # [N, O]
    out_channels = weight.shape[0]
    if _use_winograd(x, weight, up):
        if KEEP_WINOGRAD_TRANSFORMS:
            u = derived(weight, f"winograd{up}", lambda w: transform_weight(w, up))
        else:
            w = weight.detach()
            u = transform_weight(w, up, out=_scratch_buffer([winograd.WEIGHT_POINTS, *w.shape[1::-1]], "transform"))
        if up == 1:
            return winograd.conv3x3(x, u, in_scale=styles, out_scale=dcoefs)
        full_size = [n, out_channels, *(winograd.output_size(s, up) for s in x.shape[2:])]
        if _scratch_buffer(full_size) is not None:
            full = winograd.conv3x3(x, u, up, styles, dcoefs, out=_scratch_buffer(full_size))
            return blur_transposed(full, resample_filter, up, padding, 3)
        # the batch's full output would be a fresh buffer beside the result: one image's goes to the scratch
        y = None
        for i in range(n):
            scale_out = None if dcoefs is None else dcoefs[i : i + 1]
            full = winograd.conv3x3(
                x[i : i + 1], u, up, styles[i : i + 1], scale_out, out=_scratch_buffer([1, *full_size[1:]])
            )
            y = _put(y, i, n, blur_transposed(full, resample_filter, up, padding, 3)[0])
        return y
    y = None
    for i in range(n):
        scale = styles[i].unsqueeze(0) if dcoefs is None else styles[i].unsqueeze(0) * dcoefs[i].unsqueeze(1)
        if up == 1:
            image = conv2d_resample(x[i : i + 1], weight * scale[..., None, None], padding=padding, nnpack=True)[0]
        else:  # the transposed convolution wants [I, O, k, k]; a cached copy of the weight in that layout
            # makes the modulation one contiguous pass instead of writes through a transposed view
            weight_t = derived(weight, "transposed", lambda w: w.transpose(0, 1).contiguous())
            wt = weight_t * scale.t()[..., None, None]
            image = conv_transpose_up(x[i : i + 1], wt, resample_filter, up, padding)[0]
        y = _put(y, i, n, image)
    return y


def _put(y, i, n, image):
    """Image ``i`` of ``n`` into the batch ``y`` (made on the first image), so that only one image's result
    lives beside the batch's: stacking a list of them held the batch's output twice."""
    if y is None:
        if n == 1:
            return image.unsqueeze(0)
        y = image.new_empty([n, *image.shape])
    y[i] = image
    return y
