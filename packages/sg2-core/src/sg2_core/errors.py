"""The error every command of the toolkit raises for what its user gave (arguments, files, devices).

A command prints a ``UsageError`` as one ``error: ...`` line and exits with status 2. It is a ``ValueError``,
so code that calls the helpers behind the commands (``sg2_core.devices.resolve_device``, ...) can catch it
as one.
"""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """A problem with what the user gave: printed as one ``error: ...`` line, exit status 2."""
