"""The encoders' inference path: the same networks with the eval-time algebra done once.

Taken by a module in eval mode when no gradient is recorded (``sg2_core.use_impl``'s ``"auto"``, the default,
or ``"fast"``; ``"ref"`` keeps the exact path), on any device and dtype. It changes the order of operations
only, so the results differ from the exact path by float rounding (see the tests for the measured bound):

- each BatchNorm that follows a convolution is folded into it (a scaled weight and a bias);
- the maps run channels-last (oneDNN's fast layout on the CPU: no reorder of every map at every conv);
- the identity shortcut is the map itself, the stride-2 one a strided view (the references copy through a
  1x1 max-pool), and the squeeze-excitation's 1x1 convs on a 1x1 map are matrix products;
- the style blocks' convolutions on maps of :data:`SMALL_MAPS` pixels or less are one matrix product
  (im2col): there the convolution's per-call weight reorder costs more than the arithmetic; the style
  blocks' EqualLinear keeps its scaled weight.

What was measured and not adopted (oneDNN's blocked layout, prepacked weights, Winograd, stacked style
convolutions) is in sg2-core's README, "Encoder parts".

What is derived from the weights is kept in an :class:`InferenceCache` on the module and recomputed when a
source tensor changes (a new tensor, an in-place update, another device or dtype). It is not part of the
state dict, so checkpoints and training are unchanged.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sg2_core.nn.layers import conv_path

CL = torch.channels_last
SMALL_MAPS = 4
"""Side (pixels) of the input maps at and below which a style block's 3x3 convolution runs as patches and one
matrix product: faster than the convolution there, slower on larger maps (figures: sg2-core's README, "Encoder
parts")."""


class InferenceCache:
    """Tensors derived from a module's weights, each recomputed when one of its sources changed."""

    def __init__(self):
        self._entries: dict[str, tuple] = {}

    def get(self, key: str, sources: Sequence[torch.Tensor], compute: Callable[[], object]):
        stamp = tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in sources)
        entry = self._entries.get(key)
        if entry is None or entry[1] != stamp or any(r() is not t for r, t in zip(entry[0], sources)):
            with torch.no_grad():
                entry = self._entries[key] = (tuple(weakref.ref(t) for t in sources), stamp, compute())
        return entry[2]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __deepcopy__(self, memo):
        return InferenceCache()  # a copy has new weights: nothing here would be reused

    def __reduce__(self):
        return InferenceCache, ()  # pickled empty


def cache_of(module: nn.Module) -> InferenceCache:
    cache = module.__dict__.get("_inference_cache")
    if cache is None:
        cache = module.__dict__["_inference_cache"] = InferenceCache()
    return cache


def takes_inference_path(module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Eval mode, and no gradient recorded for ``x`` or ``weight`` (nor ``"ref"`` chosen)."""
    return not module.training and conv_path(x, weight) == "inference"


def folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, bias)`` of ``bn(conv(x))`` in eval mode as one convolution (a channels-last copy of the
    conv's weight)."""

    def compute():
        scale = bn.running_var.add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        w = (conv.weight * scale.to(conv.weight.dtype).reshape(-1, 1, 1, 1)).contiguous(memory_format=CL)
        return w, shift if conv.bias is None else conv.bias * scale + shift

    sources = [conv.weight] + ([] if conv.bias is None else [conv.bias])
    sources += [t for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var) if t is not None]
    return cache_of(conv).get("folded", sources, compute)


def channels_last(conv: nn.Conv2d) -> torch.Tensor:
    """A channels-last copy of a trunk conv's weight: the convolution would otherwise make one at every call."""
    return cache_of(conv).get("channels_last", [conv.weight], lambda: conv.weight.contiguous(memory_format=CL))


def conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding):
    """``F.conv2d`` in ``x``'s dtype; a channels-last ``x`` gives a channels-last result."""
    return F.conv2d(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype), stride, padding)


def conv_im2col(x: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
    """``layer(x)`` as one matrix product of the input's patches with the flat weight; channels-last out.

    The patches are strided views of the padded input gathered by one copy, in the weight's (C, kh, kw) order
    (``F.unfold`` took 100x longer on channels-last maps at batch 8)."""
    n = x.shape[0]
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    patches = F.pad(x, (pw, pw, ph, ph)).unfold(2, kh, sh).unfold(3, kw, sw)  # [N, C, oh, ow, kh, kw]
    oh, ow = patches.shape[2:4]
    cols = patches.permute(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, -1)
    flat = layer.weight.reshape(layer.out_channels, -1).t().to(x.dtype)  # a view: no copy of the weight
    out = cols @ flat if layer.bias is None else torch.addmm(layer.bias.to(x.dtype), cols, flat)
    return out.reshape(n, oh, ow, -1).permute(0, 3, 1, 2)
