"""Inversion methods by name: installed families through entry points, user code through a decorator.

A family declares its methods in its ``pyproject.toml``::

    [project.entry-points."sg2_toolkit.methods"]
    hyperinverter = "inv_hyper.methods:HyperInverter"

and ``create_method("hyperinverter", generator=G, **options)`` imports that module only then. In-process
code registers with ``@register_method("name")``; such a name shadows an installed one, which makes
trying a local variant easy. A method is a subclass of ``sg2_core.Method`` (nothing else registers): it
builds from keyword options and answers one call, images in and an ``Inversion`` out; a method may build
another by name to compose with it.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import warnings
from dataclasses import dataclass

from sg2_core.methods.inversion import SPACES
from sg2_core.methods.method import (  # noqa: F401 - check_images: re-exported
    WEIGHTS,
    Method,
    check_declaration,
    check_images,
)

ENTRY_POINT_GROUP = "sg2_toolkit.methods"

_registered: dict[str, type[Method]] = {}


def __getattr__(name: str):
    return _deprecated(name, __name__)


def _deprecated(name: str, module: str):
    """The names kept for one minor version (a module ``__getattr__`` here and in ``sg2_core``)."""
    if name == "InversionMethod":  # the protocol that any callable could keep before 0.7
        warnings.warn(
            "InversionMethod is deprecated and goes away in sg2-core 0.8: only subclasses of sg2_core.Method "
            "are methods; use sg2_core.Method",
            DeprecationWarning,
            stacklevel=3,
        )
        return Method
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def _not_a_method(name: str, obj) -> TypeError:
    what = f"class {_target(obj)}" if isinstance(obj, type) else f"{type(obj).__name__} {_target(obj)}"
    return TypeError(
        f"method {name!r}: the {what} is not a subclass of sg2_core.Method; only Method subclasses are "
        "methods: subclass sg2_core.Method (declare name, space, ... at class level and implement "
        "invert(images, init))"
    )


def _is_method_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, Method)


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
    test_options: dict | None = None
    test_batch_tolerance: float = 1e-4
    full_size_options: dict | None = None


def register_method(name: str, *, replace: bool = False):
    """Decorator registering a subclass of ``sg2_core.Method`` under ``name`` in this process.

    ``create_method`` builds it as ``cls(generator=G, **options)``. Anything but a Method subclass is a
    TypeError; registering a name twice is an error unless ``replace=True``.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"name must be a non-empty string without surrounding spaces, got {name!r}")

    def decorate(cls: type[Method]) -> type[Method]:
        if not _is_method_class(cls):
            raise _not_a_method(name, cls)
        if name in _registered and not replace:
            raise ValueError(
                f"method {name!r} is already registered ({_target(_registered[name])}); "
                "pass replace=True to override it"
            )
        _registered[name] = cls
        return cls

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
    point fails to import, or is not a valid Method subclass, is left out with a warning.
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
        except (MethodLoadError, TypeError) as error:
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


def method_factory(name: str) -> type[Method]:
    """The ``Method`` subclass behind ``name`` (imports its entry point), e.g. to read attributes such as
    ``demo_options`` without building the method; raises like ``create_method`` does (a TypeError when an
    entry point names something that is not a Method subclass)."""
    if name in _registered:
        return _registered[name]
    ep = _entry_points().get(name)
    if ep is None:
        raise _unknown(name)
    try:
        cls = ep.load()
    except Exception as error:
        dist = getattr(ep, "dist", None)
        where = f"distribution {dist.name} {dist.version}" if dist else "an unknown distribution"
        raise MethodLoadError(
            f"method {name!r}: entry point {ep.name} = {ep.value!r} (group {ENTRY_POINT_GROUP!r}) of {where} "
            f"failed to load: {type(error).__name__}: {error}"
        ) from error
    if not _is_method_class(cls):
        raise _not_a_method(name, cls)
    return cls


def method_spec(name: str) -> MethodSpec:
    """The declared attributes of method ``name`` (imports its entry point, builds nothing).

    Raises ValueError for an unknown name, MethodLoadError when the entry point fails to import, and
    TypeError when the class declares invalid attributes (e.g. a space outside ``SPACES``).
    """
    cls = method_factory(name)
    problems = check_declaration(cls)
    if problems:
        raise TypeError(
            f"method {name!r} ({method_info(name).target}) declares invalid attributes: " + "; ".join(problems)
        )
    info = method_info(name)
    doc = inspect.getdoc(cls) or ""
    return MethodSpec(
        name=name,
        space=cls.space,
        trainable=cls.trainable,
        trainer=cls.trainer,
        demo_options=dict(cls.demo_options),
        input_resolution=cls.input_resolution,
        input_channels=cls.input_channels,
        input_condition=cls.input_condition,
        needs=tuple(cls.needs),
        summary=doc.splitlines()[0] if doc else "",
        source=info.source,
        target=info.target,
        test_options=None if cls.test_options is None else dict(cls.test_options),
        test_batch_tolerance=cls.test_batch_tolerance,
        full_size_options=None if cls.full_size_options is None else dict(cls.full_size_options),
    )


def accepts_option(name: str, option: str) -> bool:
    """Whether method ``name``'s class takes ``option`` (following ``**options`` to its base classes)."""
    for fn in [c.__init__ for c in method_factory(name).__mro__]:
        try:
            parameters = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        if option in parameters:
            return True
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return False
    return False


def _check_options(name: str, cls: type[Method], options: dict) -> None:
    """Names unknown options up front, instead of a TypeError from deep inside the constructor."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # some builtins and C extensions have no signature
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"method {name!r} got unknown options {unknown}; it accepts {accepted}")


def create_method(name: str, generator=None, **options) -> Method:
    """Builds method ``name`` as ``cls(generator=generator, **options)`` and checks the result."""
    cls = method_factory(name)
    options = {"generator": generator, **options}
    _check_options(name, cls, options)
    method = cls(**options)
    if not isinstance(method, Method):
        raise _not_a_method(name, method)
    if method.space not in SPACES:
        raise TypeError(
            f"method {name!r} ({method_info(name).target}) built a method with space {method.space!r}, "
            f"not one of {SPACES}"
        )
    return method
