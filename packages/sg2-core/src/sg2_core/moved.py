"""Old module paths kept for one minor version after a move, for sg2-core and the families alike.

``old_paths({"pkg.old": "pkg.new"}, removed_in="0.8")`` makes ``import pkg.old`` give the module that now lives
at ``pkg.new`` (the same object, private names included) with a DeprecationWarning naming the new path;
``renamed`` does the same for single names of a module that stays.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings


def _warn(old: str, new: str, removed_in: str) -> None:
    # stacklevel 3: past this function and its caller (importlib's own frames are skipped) to the import
    warnings.warn(f"{old} moved to {new}; the old path goes away in {removed_in}", DeprecationWarning, stacklevel=3)


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths; loading one puts the new module in its place in ``sys.modules``."""

    def __init__(self, moved: dict[str, str], removed_in: str):
        self.moved, self.removed_in = dict(moved), removed_in

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in self.moved else None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        old = module.__name__
        _warn(old, self.moved[old], self.removed_in)
        sys.modules[old] = importlib.import_module(self.moved[old])  # what the import statement then returns


def old_paths(moved: dict[str, str], removed_in: str) -> None:
    """Keep the module paths ``moved`` maps (old -> new) importable; call it from the package's ``__init__``."""
    if not any(isinstance(f, _OldPaths) and f.moved == moved for f in sys.meta_path):
        sys.meta_path.append(_OldPaths(moved, removed_in))


def current_module(name: str) -> str:
    """The path a module lives at now: ``name`` itself unless an ``old_paths`` call moved it (no import, no
    warning; files that record where a class lived, such as native checkpoints, read through this)."""
    for finder in sys.meta_path:
        if isinstance(finder, _OldPaths) and name in finder.moved:
            return finder.moved[name]
    return name


def forward(old: str, new: str, removed_in: str):
    """A module ``__getattr__`` that hands out ``new``'s names with the warning (for a module that stays)."""

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        target = importlib.import_module(new)
        if not hasattr(target, name):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        _warn(f"{old}.{name}", f"{new}.{name}", removed_in)
        return getattr(target, name)

    return __getattr__


def renamed(module: str, names: dict[str, str], removed_in: str):
    """A module ``__getattr__`` for names that now live elsewhere or under another name:
    ``{old name: "pkg.module.new_name"}``; each hands out the new object with a DeprecationWarning naming it.

    In ``module``: ``__getattr__ = renamed(__name__, {"old": "pkg.module.new"}, removed_in="pkg 0.8")``.
    """

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, _, attr = names[name].rpartition(".")
        _warn(f"{module}.{name}", names[name], removed_in)
        return getattr(importlib.import_module(where), attr)

    return __getattr__
