"""Errors and warnings raised by the checkpoint readers and writers."""

from __future__ import annotations

from pathlib import Path


def _fmt_shape(shape) -> str:
    return "?" if shape is None else str(list(shape))


class CheckpointError(ValueError):
    """A checkpoint could not be read or written; the message names the file and the cause."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.cause = message
        super().__init__(message if path is None else f"{path}: {message}")


class CheckpointKeyError(CheckpointError):
    """The tensors of a network do not match its architecture.

    ``missing``: ``[(key, expected shape)]``; ``unexpected``: ``[(key, shape)]``;
    ``mismatched``: ``[(key, expected shape, got shape)]``. The one-line message names the first few of
    each; the attributes hold them all.
    """

    SHOWN = 4  # keys named per kind in the message

    def __init__(self, what: str, missing, unexpected, mismatched, path=None, hint: str = ""):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)

        def got_text(got):
            return got if isinstance(got, str) else _fmt_shape(got)

        kinds = [
            ("missing", [f"{k} {_fmt_shape(e)}" for k, e in self.missing]),
            ("unexpected", [f"{k} {got_text(g)}" for k, g in self.unexpected]),
            ("mis-shaped", [f"{k} expected {_fmt_shape(e)}, got {got_text(g)}" for k, e, g in self.mismatched]),
        ]
        parts = []
        for kind, items in kinds:
            if items:
                more = f", ... {len(items) - self.SHOWN} more" if len(items) > self.SHOWN else ""
                parts.append(f"{len(items)} {kind} ({'; '.join(items[: self.SHOWN])}{more})")
        message = f"{what} does not match its architecture: {', '.join(parts)}"
        super().__init__(f"{message} {hint}" if hint else message, path)


class UnsafePickleError(CheckpointError):
    """A pickle references a global outside the reader's allow-list; nothing it names was called."""

    def __init__(self, module: str, name: str, path=None):
        self.module, self.name, self.global_name = module, name, f"{module}.{name}"
        message = (
            f"refusing to load: the pickle references the global '{self.global_name}', which is not on the "
            "allow-list of the safe NVIDIA-pickle reader (loading it could run code); nothing was executed"
        )
        if (module, name) == ("dnnlib.tflib.network", "Network"):
            message = (
                "TensorFlow StyleGAN2 pickles are not supported; convert the file to a PyTorch snapshot "
                "with NVIDIA's stylegan2-ada-pytorch legacy.py first"
            )
        super().__init__(message, path)


class CheckpointWarning(UserWarning):
    """Something was filled in or left out while reading or writing a checkpoint."""
