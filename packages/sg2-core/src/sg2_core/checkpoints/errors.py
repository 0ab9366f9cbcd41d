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
    ``mismatched``: ``[(key, expected shape, got shape)]``. All of them are listed in the message.
    """

    def __init__(self, what: str, missing, unexpected, mismatched, path=None, hint: str = ""):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)
        counts = []
        if self.missing:
            counts.append(f"{len(self.missing)} missing")
        if self.unexpected:
            counts.append(f"{len(self.unexpected)} unexpected")
        if self.mismatched:
            counts.append(f"{len(self.mismatched)} mis-shaped")
        lines = [f"{what} does not match its architecture: {', '.join(counts)} key(s)"]
        width = max(len(k) for k, *_ in [*self.missing, *self.unexpected, *self.mismatched])
        for key, expected in self.missing:
            lines.append(f"  missing     {key:<{width}}  expected {_fmt_shape(expected)}")
        for key, got in self.unexpected:
            lines.append(f"  unexpected  {key:<{width}}  got {got if isinstance(got, str) else _fmt_shape(got)}")
        for key, expected, got in self.mismatched:
            got_text = got if isinstance(got, str) else _fmt_shape(got)
            lines.append(f"  mis-shaped  {key:<{width}}  expected {_fmt_shape(expected)}, got {got_text}")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines), path)


class UnsafePickleError(CheckpointError):
    """A pickle references a global outside the reader's allow-list; nothing it names was called."""

    def __init__(self, module: str, name: str, path=None):
        self.module, self.name, self.global_name = module, name, f"{module}.{name}"
        message = (f"refusing to load: the pickle references the global '{self.global_name}', which is not on the "
                   "allow-list of the safe NVIDIA-pickle reader (loading it could run code); nothing was executed")
        if (module, name) == ("dnnlib.tflib.network", "Network"):
            message = ("TensorFlow StyleGAN2 pickles are not supported; convert the file to a PyTorch snapshot "
                       "with NVIDIA's stylegan2-ada-pytorch legacy.py first")
        super().__init__(message, path)


class CheckpointWarning(UserWarning):
    """Something was filled in or left out while reading or writing a checkpoint."""
