"""The per-image seed rule of every method that draws random numbers, written once.

``seed`` is an int (image ``i`` of the call uses ``seed + i``) or one seed per image, so an image's random
draws depend on its own seed only and a batch reproduces its images inverted one at a time.
"""

from __future__ import annotations

import operator

__all__ = ["per_image_seeds"]


def _integer(value) -> int:
    """``value`` as an int: ints and integer scalars (numpy, 0-d tensors), never a bool or a float."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a seed")
    return operator.index(value)


def per_image_seeds(seed, n: int, option: str = "seed") -> list[int]:
    """The ``n`` seeds of a call: ``[seed, seed + 1, ..., seed + n - 1]`` for an int, else ``seed`` itself,
    which must hold ``n`` ints. Anything else is a ``ValueError`` naming ``option``."""
    try:
        start = _integer(seed)
    except TypeError:
        pass
    else:
        return [start + i for i in range(n)]
    try:
        seeds = [_integer(s) for s in seed]
    except TypeError:
        raise ValueError(f"{option} must be an int or one seed per image ({n} ints), got {seed!r}") from None
    if len(seeds) != n:
        raise ValueError(f"{option} must be an int or hold one seed per image ({n}), got {len(seeds)}")
    return seeds
