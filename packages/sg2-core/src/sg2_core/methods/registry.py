"""Inversion methods by name: installed families through entry points, user code through a decorator.

A family declares its methods in its ``pyproject.toml``::

    [project.entry-points."sg2_toolkit.methods"]
    hyperinverter = "inv_hyper.methods:HyperInverter"

and ``create_method("hyperinverter", generator=G, **options)`` imports that module only then. In-process
code registers with ``@register_method("name")``; such a name shadows an installed one, which makes
trying a local variant easy. A method builds from keyword options and answers one call, images in and
an ``Inversion`` out (``InversionMethod``); a method may build another by name to compose with it.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from sg2_core.methods.inversion import SPACES, Inversion
from sg2_core.methods.method import WEIGHTS, check_declaration, check_images  # noqa: F401 - check_images: re-exported

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

    Calling it with images ``[N, C, H, W]`` in [-1, 1] (see ``check_images``), and optionally
    ``init=`` an ``Inversion`` of them to start from, returns an ``Inversion`` of those ``N`` images for
    the method's generator. ``sg2_core.Method`` is the base class that keeps this contract.
    """

    name: str
    space: str

    def __call__(self, images: torch.Tensor, init: Inversion | None = None) -> Inversion: ...


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


@dataclass(frozen=True)
class MethodSpec:
    """What a method declares at class level (``sg2_core.Method``), read without building it.

    ``space`` is the class's (an instance may refine it, e.g. PTI takes its pivot's); ``summary`` is the
    first line of its docstring; ``source``/``target`` say where it comes from (see :class:`MethodInfo`).
    """

    name: str
    space: str | None
    trainable: bool
    trainer: str | None
    demo_options: dict
    input_resolution: int | None
    input_channels: int | None
    input_condition: str | None
    needs: tuple[str, ...]
    summary: str
    source: str
    target: str


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
            raise ValueError(
                f"method {name!r} is already registered ({_target(_registered[name])}); "
                "pass replace=True to override it"
            )
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


def list_methods(*, space: str | None = None, trainable: bool | None = None, needs=None) -> list[str]:
    """Method names (installed entry points and in-process registrations), sorted.

    Without filters nothing is imported. ``space`` (``'w'``, ``'w+'``, ``'z+'``), ``trainable`` and
    ``needs`` (a weight name or several from ``sg2_core.WEIGHTS``: methods that need all of them) filter on
    the declared class attributes, importing only the entry points they must read. A method whose entry
    point fails to import is left out with a warning.
    """
    names = sorted({*_entry_points(), *_registered})
    if space is None and trainable is None and needs is None:
        return names
    if space is not None and space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    wanted = _needs_tuple(needs) if needs is not None else ()
    kept = []
    for name in names:
        try:
            spec = method_spec(name)
        except MethodLoadError as error:
            warnings.warn(str(error), stacklevel=2)
            continue
        if space is not None and spec.space != space:
            continue
        if trainable is not None and spec.trainable != trainable:
            continue
        if not set(wanted) <= set(spec.needs):
            continue
        kept.append(name)
    return kept


def _needs_tuple(needs) -> tuple[str, ...]:
    needs = (needs,) if isinstance(needs, str) else tuple(needs)
    unknown = [n for n in needs if n not in WEIGHTS]
    if unknown:
        raise ValueError(f"needs: unknown weights {unknown}; known: {WEIGHTS}")
    return needs


def _unknown(name: str) -> ValueError:
    known = list_methods()
    if not known:
        return ValueError(
            f"unknown method {name!r}: no methods are available; install a family "
            f"(e.g. inv-optim) or register one with @register_method"
        )
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


def method_spec(name: str) -> MethodSpec:
    """The declared attributes of method ``name`` (imports its entry point, builds nothing).

    Raises ValueError for an unknown name, MethodLoadError when the entry point fails to import, and
    TypeError when the class declares invalid attributes (e.g. a space outside ``SPACES``).
    """
    factory = method_factory(name)
    problems = [p for p in check_declaration(factory) if not (p.startswith("space") and not isinstance(factory, type))]
    if problems:
        raise TypeError(
            f"method {name!r} ({method_info(name).target}) declares invalid attributes: " + "; ".join(problems)
        )
    info = method_info(name)
    doc = inspect.getdoc(factory) or ""
    return MethodSpec(
        name=name,
        space=getattr(factory, "space", None),
        trainable=bool(getattr(factory, "trainable", False)),
        trainer=getattr(factory, "trainer", None),
        demo_options=dict(getattr(factory, "demo_options", {}) or {}),
        input_resolution=getattr(factory, "input_resolution", None),
        input_channels=getattr(factory, "input_channels", None),
        input_condition=getattr(factory, "input_condition", None),
        needs=tuple(getattr(factory, "needs", ("generator",))),
        summary=doc.splitlines()[0] if doc else "",
        source=info.source,
        target=info.target,
    )


def accepts_option(name: str, option: str) -> bool:
    """Whether method ``name``'s factory takes ``option`` (following ``**options`` to its base classes)."""
    factory = method_factory(name)
    callables = [c.__init__ for c in factory.__mro__] if isinstance(factory, type) else [factory]
    for fn in callables:
        try:
            parameters = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        if option in parameters:
            return True
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return False
    return False


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
        raise TypeError(
            f"method {name!r} ({method_info(name).target}) built a {type(method).__name__} that is not "
            f"an InversionMethod: it needs a 'name', a 'space' in {SPACES} and __call__(images)"
        )
    return method
