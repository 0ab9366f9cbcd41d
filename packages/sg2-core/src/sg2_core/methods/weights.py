"""Where a method's learned weights come from, decided in one place for every family.

:func:`resolve_weights` gives the network a method runs with, from the first of:

1. ``weights=``: a file, read by the family's reader, or a network the caller already built;
2. ``allow_untrained=True``: a random network, built under ``torch.manual_seed(weights_seed)`` without
   touching the caller's random state (tests, and untrained baselines on the demo generator too);
3. the file the method class ships for the demo generator (``Method.demo_weights``, ``(package, file)`` in
   the package's ``assets/`` folder; ``Method.demo_weights_for(**options)`` when an option picks the file),
   used only when the generator *is* ``sg2_core.demo``'s generator;
4. otherwise a :class:`MissingWeightsError`: one line naming ``weights=``, the shipped file and the command
   that trains one.

"Is the demo generator" means the same weights, not only the same config: :func:`generator_hash` (a hash
of every tensor of the state dict) must equal the demo generator's. A generator retrained with the demo's
preset, or fine-tuned from it, gets the error instead of weights trained for another generator. The same
hash records the generator in inversion files (``Inversion.save``) and in networks trained for one
generator (inv-optim's embedding network), so "made for this generator" is one test everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch

if TYPE_CHECKING:
    from sg2_core.methods.method import Method

__all__ = ["MissingWeightsError", "generator_hash", "is_demo_generator", "resolve_weights"]

Network = TypeVar("Network", bound=torch.nn.Module)


class MissingWeightsError(FileNotFoundError, ValueError):
    """A method has no weights to run with: none given, none shipped for this generator, or the file named by
    ``weights=`` does not exist. Both a ``FileNotFoundError`` and a ``ValueError``, so the ``except`` clauses
    written for either of the families' earlier errors still catch it."""


def generator_hash(generator: torch.nn.Module) -> str:
    """The identity of a generator's weights: a BLAKE2 hash of every tensor of its state dict (names, dtypes,
    shapes and values), hex. Equal for copies on any device; another dtype is other weights."""
    digest = hashlib.blake2b(digest_size=16)
    for key, t in sorted(generator.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@functools.cache
def _demo_hash() -> str:
    from sg2_core import demo

    return generator_hash(demo.load_generator())


def is_demo_generator(generator: torch.nn.Module) -> bool:
    """Whether ``generator`` is ``sg2_core.demo``'s generator: its config and its weights (the config is
    compared first, so other generators are never hashed)."""
    from sg2_core import demo

    return getattr(generator, "config", None) == demo.GENERATOR_CONFIG and generator_hash(generator) == _demo_hash()


def _what_to_pass(method: Method, accepts: str) -> str:
    trainer = type(method).trainer
    train = (
        f", or the file that python -m {trainer.split('.')[0]}.train --method {method.name} writes" if trainer else ""
    )
    return f"weights= ({accepts}{train}) or allow_untrained=True for random weights (tests only)"


def resolve_weights(
    method: Method,
    weights,
    *,
    network_type: type[Network] | tuple[type, ...],
    read: Callable[[Path], Network],
    untrained: Callable[[], Network],
    accepts: str,
    allow_untrained: bool = False,
    weights_seed: int = 0,
    options: Mapping | None = None,
) -> Network:
    """The network ``method`` runs with (the order is in the module docstring).

    ``weights``: the method's ``weights=`` option, a path or a ``network_type``; ``read(path)`` reads a file
    (also the shipped one); ``untrained()`` builds a random network; ``accepts`` says what ``weights=`` takes,
    for the messages (e.g. ``"an official pSp checkpoint or a StyleEncoder"``; the messages add the method's
    training command); ``options``: the build options that pick the shipped file (``Method.demo_weights_for``).
    Raises :class:`MissingWeightsError`, or a ``ValueError`` for a ``weights`` of another type.
    """
    name = method.name or type(method).__name__
    if isinstance(weights, network_type):
        return weights
    if isinstance(weights, (str, os.PathLike)):
        if not Path(weights).is_file():
            raise MissingWeightsError(
                f"{name}: weights={str(weights)!r}: no such file; pass {_what_to_pass(method, accepts)}"
            )
        return read(Path(weights))
    if weights is not None:
        types = network_type if isinstance(network_type, tuple) else (network_type,)
        expected = " or a ".join(t.__name__ for t in types)
        raise ValueError(f"{name}: weights must be a checkpoint path or a {expected}, got {type(weights).__name__}")
    if not isinstance(allow_untrained, bool):
        raise ValueError(f"{name}: allow_untrained must be True or False, got {allow_untrained!r}")
    if isinstance(weights_seed, bool) or not isinstance(weights_seed, int):
        raise ValueError(f"{name}: weights_seed must be an int, got {weights_seed!r}")
    if allow_untrained:
        with torch.random.fork_rng(devices=[]):  # the same options give the same network; the caller's RNG stays
            torch.manual_seed(weights_seed)
            return untrained()
    declared = type(method).demo_weights_for(**dict(options or {}))  # (package, file in its assets/) or None
    where = None if declared is None else f"{declared[0]}/assets/{declared[1]}"
    if declared is not None and is_demo_generator(method.generator):
        resource = files(declared[0]).joinpath("assets", declared[1])
        if not resource.is_file():
            raise MissingWeightsError(
                f"{name}: the weights shipped for the demo generator, {where}, are missing from this installation "
                f"(expected at {resource}); reinstall {declared[0].replace('_', '-')}, or pass "
                + _what_to_pass(method, accepts)
            )
        with as_file(resource) as path:  # a real path, also from a zipped install
            return read(Path(path))
    only = f"; the shipped {where} is for sg2_core.demo's generator only" if where else ""
    raise MissingWeightsError(f"{name}: no weights for this generator: pass {_what_to_pass(method, accepts)}{only}")
