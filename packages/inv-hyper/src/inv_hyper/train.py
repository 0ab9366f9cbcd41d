"""Train HyperInverter: ``python -m inv_hyper.train --phase 1|2 ...`` (``--help`` lists the options;
the trainer is :mod:`inv_hyper.training`)."""

from __future__ import annotations

import sys

from sg2_core.training.cli import main as _main


def main(argv=None) -> int:
    return _main("inv_hyper", argv)


if __name__ == "__main__":
    sys.exit(main())
