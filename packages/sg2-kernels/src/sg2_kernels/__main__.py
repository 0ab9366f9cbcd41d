"""``python -m sg2_kernels``: which implementations are available here, and why the others are not."""

import sys

import torch

from . import __version__, available_impls


def main() -> int:
    print(f"sg2-kernels {__version__}, torch {torch.__version__} (CUDA build: {torch.version.cuda or 'no'})")
    for impl, reason in available_impls().items():
        print(f"  {impl:5s} {'available' if reason is None else 'unavailable: ' + reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
