"""upfirdn2d: upsample by zero insertion, pad (negative = crop), FIR-filter, downsample.

The semantics are those of NVIDIA's StyleGAN2-ADA op (``padding`` = ``[x0, x1, y0, y1]``, a
2-element padding means ``[px, px, py, py]``, a 2-D filter is applied as a true convolution
unless ``flip_filter``, a 1-D filter is applied separably with ``sqrt(gain)`` per pass).

The compiled kernels do plain cross-correlation with a 2-D filter that this module has already
flipped and scaled. Their gradient is the adjoint upfirdn2d (up and down swapped, filter flipped,
padding adjusted), computed by the same autograd Function, so every order of gradient works.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from . import _backend

# ----------------------------------------------------------------------------- argument parsing


def _int_pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints, as ``(x, y)``; factors must be positive integers."""
    values = list(value) if isinstance(value, (list, tuple)) else [value, value]
    if len(values) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints [x, y], got {value!r}")
    if min(values) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(values[0]), int(values[1])


def _padding(padding) -> tuple[int, int, int, int]:
    """``int`` | ``[px, py]`` | ``[x0, x1, y0, y1]`` -> ``(x0, x1, y0, y1)``."""
    values = list(padding) if isinstance(padding, (list, tuple)) else [padding]
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values) or len(values) not in (
        1,
        2,
        4,
    ):
        raise ValueError(f"padding must be an int, [px, py] or [x0, x1, y0, y1] of ints, got {padding!r}")
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = [values[0], values[0], values[1], values[1]]
    return tuple(int(v) for v in values)


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """``(fw, fh)`` of a filter as :func:`upfirdn2d` applies it (a 1-D filter covers both axes)."""
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError(f"f must be a 1-D or 2-D filter tensor, got {getattr(f, 'shape', type(f).__name__)}")
    return int(f.shape[-1]), int(f.shape[0])


def _check_x(x) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape [N, C, H, W], got a tensor of rank {x.ndim} with shape {list(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")


# ----------------------------------------------------------------------------- reference


def _upfirdn2d_ref(x, f, up, down, pad, flip_filter, gain):
    """Pure PyTorch: zero insertion, F.pad, depthwise conv2d, strided slicing. Autograd does the rest."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
    n, c, h, w = x.shape
    if upx > 1 or upy > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, upx - 1, 0, 0, 0, upy - 1]).reshape(n, c, h * upy, w * upx)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]

    f = f.to(device=x.device, dtype=x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:  # conv2d cross-correlates; a true convolution needs the flipped filter
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::downy, ::downx]


# ----------------------------------------------------------------------------- compiled


class _UpFirDnPass(torch.autograd.Function):
    """One call of a compiled kernel: cross-correlation with an already flipped and scaled 2-D filter."""

    @staticmethod
    def forward(ctx, x, f, impl, up, down, pad):
        (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
        ctx.save_for_backward(f)
        ctx.args = (impl, up, down, pad, x.shape)
        return _backend.module(impl).upfirdn2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1)

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        impl, up, down, pad, in_shape = ctx.args
        fh, fw = f.shape
        adjoint_pad = _adjoint_padding(pad, up, down, (fw, fh), (in_shape[3], in_shape[2]), (dy.shape[3], dy.shape[2]))
        dx = _UpFirDnPass.apply(dy, f.flip([0, 1]), impl, down, up, adjoint_pad)
        return dx, None, None, None, None, None


def _adjoint_padding(pad, up, down, fsize, in_size, out_size):
    """Padding of the adjoint pass (up and down swapped, filter flipped) that yields exactly the input size."""
    result = []
    for axis in range(2):  # x, then y
        p0 = pad[2 * axis]
        u, d, k, n, m = up[axis], down[axis], fsize[axis], in_size[axis], out_size[axis]
        result += [k - p0 - 1, n * u - m * d + p0 - u + 1]
    return tuple(result)


def _upfirdn2d_compiled(x, f, impl, up, down, pad, flip_filter, gain):
    opmath = torch.float64 if x.dtype == torch.float64 else torch.float32
    f = f.to(device=x.device, dtype=opmath)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        return _UpFirDnPass.apply(x, (f * gain).contiguous(), impl, up, down, pad)
    f = f * (gain**0.5)
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
    x = _UpFirDnPass.apply(x, f[None, :].contiguous(), impl, (upx, 1), (downx, 1), (px0, px1, 0, 0))
    return _UpFirDnPass.apply(x, f[:, None].contiguous(), impl, (1, upy), (1, downy), (0, 0, py0, py1))


# ----------------------------------------------------------------------------- public API


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl=None):
    """Upsample, pad, FIR-filter and downsample a batch of images ``[N, C, H, W]``.

    Args:
        x: input ``[N, C, H, W]``, floating point.
        f: filter ``[fh, fw]`` (true convolution), ``[k]`` (applied separably along W then H),
            or ``None`` (identity).
        up, down: integer factors, an int or ``[x, y]``.
        padding: ``int``, ``[px, py]`` or ``[x0, x1, y0, y1]``; negative values crop.
        flip_filter: cross-correlate with ``f`` as given instead of convolving.
        gain: overall gain (a 1-D filter gets ``sqrt(gain)`` per pass).
        impl: ``'ref'``, ``'cpp'``, ``'cuda'`` or ``None`` (the fastest available for the device).

    Gradients flow to ``x`` to any order. With a compiled ``impl`` the filter is a constant.
    """
    _check_x(x)
    fw, fh = _filter_size(f)
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    if not f.is_floating_point():
        raise ValueError(f"f must be a floating-point tensor, got {f.dtype}")
    if not isinstance(gain, numbers.Real) or isinstance(gain, bool):
        raise ValueError(f"gain must be a real number, got {gain!r}")
    up, down, pad = _int_pair(up, "up"), _int_pair(down, "down"), _padding(padding)
    in_w, in_h = x.shape[3], x.shape[2]
    padded_w, padded_h = in_w * up[0] + pad[0] + pad[1], in_h * up[1] + pad[2] + pad[3]
    if padded_w < fw or padded_h < fh:
        raise ValueError(
            f"f of size {fh}x{fw} is larger than the upsampled and padded input ({padded_h}x{padded_w}) "
            f"for x of spatial size {in_h}x{in_w}, up={list(up)}, padding={list(pad)}: no output pixel remains"
        )
    impl = _backend.choose_impl(impl, x.device, "upfirdn2d")
    if impl == "ref":
        return _upfirdn2d_ref(x, f, up, down, pad, flip_filter, gain)
    if f.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"f requires grad, but impl={impl!r} treats the filter as a constant: use impl='ref'")
    return _upfirdn2d_compiled(x, f.detach(), impl, up, down, pad, flip_filter, gain)


def setup_filter(f, device=None, normalize=True, flip_filter=False, gain=1, separable=None):
    """Turn a list of taps into a filter tensor for :func:`upfirdn2d`.

    A 1-D list becomes its 2-D outer product unless it is long (``>= 8`` taps, or ``separable=True``),
    where separable filtering is cheaper. ``normalize`` makes the taps sum to 1. ``device=None``
    follows torch's default device, so networks build on the meta device too.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"f must be a non-empty 1-D or 2-D list of taps, got shape {list(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if separable and f.ndim != 1:
        raise ValueError("separable=True needs a 1-D filter")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f if device is None else f.to(device=device)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl=None):
    """Upsample by ``up`` with filter ``f``; output size ``in * up`` (plus ``padding``). Keeps the mean (gain up²)."""
    upx, upy = _int_pair(up, "up")
    px0, px1, py0, py1 = _padding(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=pad, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl=None):
    """Filter with ``f`` and downsample by ``down``; output size ``in / down`` (plus ``padding``)."""
    downx, downy = _int_pair(down, "down")
    px0, px1, py0, py1 = _padding(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl=None):
    """Filter with ``f``, keeping the spatial size (plus ``padding``)."""
    px0, px1, py0, py1 = _padding(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)
