"""Inversion methods by name: installed families through entry points, user code through a decorator.

A family declares its methods in its ``pyproject.toml``::

    [project.entry-points."sg2_toolkit.methods"]
    hyperinverter = "inv_hyper.method:HyperInverter"

and ``create_method("hyperinverter", generator=G, **options)`` imports that module only then. In-process
code registers with ``@register_method("name")``; such a name shadows an installed one, which makes
trying a local variant easy. A method builds from keyword options and answers one call, images in and
an ``Inversion`` out (``InversionMethod``); a method may build another by name to compose with it.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import torch

from .inversion import SPACES, Inversion

ENTRY_POINT_GROUP = "sg2_toolkit.methods"

_registered: dict[str, Callable] = {}


@runtime_checkable
class InversionMethod(Protocol):
    """What ``create_method`` returns.

    Attributes:
        name: the method's name (usually its registry name).
        space: the space of the latents it returns: ``'w'``, ``'w+'`` or ``'z+'``.
        trainable: optional, ``True`` when the method has learned parts that its family can train
            (``python -m <family>.train --method <name>``); absent means ``False``.

    Calling it with images ``[N, C, H, W]`` in [-1, 1] (see ``check_images``) returns an
    ``Inversion`` of those ``N`` images for the method's generator.
    """

    name: str
    space: str

    def __call__(self, images: torch.Tensor) -> Inversion: ...


class MethodLoadError(ImportError):
    """An installed entry point could not be imported."""


@dataclass(frozen=True)
class MethodInfo:
    """Where a method comes from, found without importing it.

    ``source`` is ``'entry point'`` or ``'registered'`` (in-process); ``target`` is ``module:attribute``;
    ``distribution`` and ``version`` name the installed package for entry points.
    """

    name: str
    source: str
    target: str
    distribution: str | None = None
    version: str | None = None


def register_method(name: str, *, replace: bool = False):
    """Decorator registering a method class or factory under ``name`` in this process.

    The decorated object is called as ``obj(generator=G, **options)`` by ``create_method``.
    Registering a name twice is an error unless ``replace=True``.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"name must be a non-empty string without surrounding spaces, got {name!r}")

    def decorate(factory: Callable) -> Callable:
        if not callable(factory):
            raise TypeError(f"register_method({name!r}) needs a class or function, got {type(factory).__name__}")
        if name in _registered and not replace:
            raise ValueError(f"method {name!r} is already registered ({_target(_registered[name])}); "
                             "pass replace=True to override it")
        _registered[name] = factory
        return factory

    return decorate


def unregister_method(name: str) -> None:
    """Removes an in-process registration (entry points stay; uninstall their package instead)."""
    if name not in _registered:
        raise ValueError(f"method {name!r} is not registered in this process; registered: {sorted(_registered)}")
    del _registered[name]


def _entry_points() -> dict:
    # Read on every call, so packages installed or removed at run time are seen; nothing is imported.
    found = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, like imports
    return found


def _target(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def list_methods() -> list[str]:
    """Every method name: installed entry points and in-process registrations, sorted."""
    return sorted({*_entry_points(), *_registered})


def _unknown(name: str) -> ValueError:
    known = list_methods()
    if not known:
        return ValueError(f"unknown method {name!r}: no methods are available; install a family "
                          f"(e.g. inv-optim) or register one with @register_method")
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return ValueError(f"unknown method {name!r}{hint or '.'} Known methods: {', '.join(known)}")


def method_info(name: str) -> MethodInfo:
    """Where ``name`` comes from, without importing an entry point."""
    if name in _registered:
        return MethodInfo(name, "registered", _target(_registered[name]))
    ep = _entry_points().get(name)
    if ep is None:
        raise _unknown(name)
    dist = getattr(ep, "dist", None)
    return MethodInfo(name, "entry point", ep.value, dist.name if dist else None, dist.version if dist else None)


def method_factory(name: str) -> Callable:
    """The class or function behind ``name`` (imports its entry point), e.g. to read attributes such as
    ``demo_options`` without building the method; raises like ``create_method`` does."""
    if name in _registered:
        return _registered[name]
    ep = _entry_points().get(name)
    if ep is None:
        raise _unknown(name)
    try:
        return ep.load()
    except Exception as error:
        dist = getattr(ep, "dist", None)
        where = f"distribution {dist.name} {dist.version}" if dist else "an unknown distribution"
        raise MethodLoadError(
            f"method {name!r}: entry point {ep.name} = {ep.value!r} (group {ENTRY_POINT_GROUP!r}) of {where} "
            f"failed to load: {type(error).__name__}: {error}"
        ) from error


def _check_options(name: str, factory: Callable, options: dict) -> None:
    """Names unknown options up front, instead of a TypeError from deep inside the constructor."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # some builtins and C extensions have no signature
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"method {name!r} got unknown options {unknown}; it accepts {accepted}")


def create_method(name: str, generator=None, **options) -> InversionMethod:
    """Builds method ``name`` as ``factory(generator=generator, **options)`` and checks the result."""
    factory = method_factory(name)
    options = {"generator": generator, **options}
    _check_options(name, factory, options)
    method = factory(**options)
    if not isinstance(method, InversionMethod) or getattr(method, "space", None) not in SPACES:
        raise TypeError(f"method {name!r} ({method_info(name).target}) built a {type(method).__name__} that is not "
                        f"an InversionMethod: it needs a 'name', a 'space' in {SPACES} and __call__(images)")
    return method


def check_images(images, generator, resolution: int | None = None) -> None:
    """Raises a ValueError unless ``images`` is a finite float batch ``[N, C, R, R]`` in [-1, 1].

    ``C`` and ``R`` are the generator's, unless ``resolution`` names the input size a method expects
    (an encoder that works at 256 px on a 1024 px generator). Small overshoot (up to 0.5) is allowed,
    as resampling and generated images go slightly past [-1, 1].
    """
    c, r = generator.img_channels, resolution or generator.img_resolution
    expected = f"[N, {c}, {r}, {r}]"
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a tensor {expected}, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[0] < 1 or tuple(images.shape[1:]) != (c, r, r):
        raise ValueError(f"images must have shape {expected} with N >= 1, got {list(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor in [-1, 1], got {images.dtype} "
                         "(convert uint8 with x / 127.5 - 1)")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf")
    low, high = images.aminmax()
    if low < -1.5 or high > 1.5:
        raise ValueError(f"images must lie in [-1, 1], got values in [{low.item():.3g}, {high.item():.3g}] "
                         "(images in [0, 255] convert with x / 127.5 - 1)")
