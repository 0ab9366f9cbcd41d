"""The error raised when a pretrained weight file is not where we looked (nothing is ever downloaded)."""

from __future__ import annotations

import os
from pathlib import Path


class MissingWeightsError(FileNotFoundError):
    """A weight file is missing: names the file, the folders searched and where to put it."""

    def __init__(self, filename: str, searched, hint: str | None = None):
        self.weights_file = filename  # not `filename`: OSError would then format itself as "[Errno None]"
        self.searched = [str(s) for s in searched]
        where = ", ".join(self.searched) or "(nowhere)"
        message = (
            f"weight file {filename!r} not found; searched: {where}. Pass its path explicitly or put it "
            f"in {self.searched[0] if self.searched else 'one of those folders'}"
        )
        if hint:
            message += f" ({hint})"
        super().__init__(message)


def hub_checkpoint_dirs() -> list[Path]:
    """Where torch hub keeps downloaded checkpoints: $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/...)."""
    import torch.hub

    return [Path(torch.hub.get_dir()) / "checkpoints"]


def find_weights(filename: str, explicit=None, hint: str | None = None) -> Path:
    """``explicit`` if given (must exist), else ``filename`` in the torch hub checkpoint folder."""
    if explicit is not None:
        path = Path(os.fspath(explicit)).expanduser()
        if path.is_file():
            return path
        raise MissingWeightsError(path.name, [path.parent], hint=hint)
    dirs = hub_checkpoint_dirs()
    for d in dirs:
        if (d / filename).is_file():
            return d / filename
    raise MissingWeightsError(filename, dirs, hint=hint)
