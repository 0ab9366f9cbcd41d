"""Which implementations of the ops exist on this installation, and why the others do not.

The compiled extensions are built at install time by setup.py; nothing is compiled here.
They are imported lazily, on the first call that needs them, so ``import sg2_kernels``
never fails or waits for a build.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import warnings
from importlib import resources

import torch

IMPLS = ("ref", "cpp", "cuda")
"""``ref``: pure PyTorch, always works. ``cpp``: compiled CPU kernels. ``cuda``: compiled CUDA kernels."""

_MODULES = {"cpp": "sg2_kernels._cpp", "cuda": "sg2_kernels._cuda"}

REBUILD_HINT = (
    "reinstall sg2-kernels with a C++ compiler (and, for CUDA, nvcc with CUDA_HOME set and a CUDA "
    "build of torch), e.g. `pip install --no-build-isolation --force-reinstall sg2-kernels`; "
    "`python -m sg2_kernels` says what is missing"
)


def _build_info() -> dict:
    """What setup.py recorded about each extension (written next to this file at build time)."""
    try:
        text = resources.files("sg2_kernels").joinpath("_build_info.json").read_text()
    except (FileNotFoundError, OSError):
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {}


@functools.cache
def _load(impl: str):
    """Import a compiled extension; return ``(module, None)`` or ``(None, reason)``."""
    try:
        return importlib.import_module(_MODULES[impl]), None
    except ImportError as err:
        recorded = _build_info().get(impl, {})
        if recorded and not recorded.get("built", False):
            return None, f"not built at install time: {recorded.get('reason', 'no reason recorded')}"
        return None, f"the compiled module failed to import: {err}"


def unavailable_reason(impl: str) -> str | None:
    """``None`` when ``impl`` can run on this machine, else a sentence saying why not."""
    if impl == "ref":
        return None
    if impl not in _MODULES:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    _, reason = _load(impl)
    if reason is None and impl == "cuda" and not torch.cuda.is_available():
        return "built, but no CUDA device is available"
    return reason


def module(impl: str):
    """The compiled module for ``impl``; raises ``RuntimeError`` saying why it is missing."""
    mod, reason = _load(impl)
    if mod is None:
        raise RuntimeError(f"sg2_kernels impl={impl!r} is unavailable: {reason}. To get it, {REBUILD_HINT}.")
    return mod


def available_impls() -> dict[str, str | None]:
    """``{impl: None if usable else reason}`` for every implementation."""
    return {impl: unavailable_reason(impl) for impl in IMPLS}


def impls_for_device(device: torch.device) -> list[str]:
    """The implementations that can run on tensors of ``device`` here, reference first."""
    runs_on = {"ref": device.type, "cpp": "cpu", "cuda": "cuda"}
    return [impl for impl, reason in available_impls().items() if reason is None and runs_on[impl] == device.type]


_warned_cuda_fallback = False
_default_impl: str | None = None


@contextlib.contextmanager
def use_impl(impl: str | None):
    """Within the block, op calls with ``impl=None`` (as inside networks) use ``impl``.

    >>> with use_impl("ref"):
    ...     image = G(z)   # every upfirdn2d / bias_act call runs the pure-PyTorch reference
    """
    global _default_impl
    if impl is not None and impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS} or None, got {impl!r}")
    previous, _default_impl = _default_impl, impl
    try:
        yield
    finally:
        _default_impl = previous


def choose_impl(impl: str | None, device: torch.device, op: str) -> str:
    """Resolve ``impl=None`` by device, and check an explicit choice against the tensor's device."""
    global _warned_cuda_fallback
    impl = _default_impl if impl is None else impl
    if impl is None:
        if device.type == "cuda":
            if _load("cuda")[0] is not None:
                return "cuda"
            if not _warned_cuda_fallback:
                _warned_cuda_fallback = True
                warnings.warn(
                    f"sg2_kernels.{op}: the CUDA kernels are unavailable ({_load('cuda')[1]}), so CUDA tensors "
                    f"use the slow pure-PyTorch reference. To get the fast path, {REBUILD_HINT}.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return "ref"
        if device.type == "cpu" and _load("cpp")[0] is not None:
            return "cpp"
        return "ref"
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS} or None, got {impl!r}")
    wanted_device = {"cpp": "cpu", "cuda": "cuda"}.get(impl)
    if wanted_device is not None and device.type != wanted_device:
        raise ValueError(f"impl={impl!r} runs on {wanted_device} tensors, but x is on {device}")
    if impl != "ref":
        module(impl)  # raises with the reason when missing
    return impl
