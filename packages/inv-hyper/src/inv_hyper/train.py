"""Train HyperInverter or HyperStyle: ``python -m inv_hyper.train [--method hyperinverter] --phase 1|2 ...`` or
``python -m inv_hyper.train --method hyperstyle --phase1 METHOD ...`` (``--method NAME --help`` lists the options;
the trainers are :mod:`inv_hyper.training` and :mod:`inv_hyper.hyperstyle_training`)."""

from __future__ import annotations

import sys

from sg2_core.training.cli import main as _main


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not {"--method", "--list", "-h", "--help"} & {a.split("=")[0] for a in argv}:
        argv = ["--method", "hyperinverter", *argv]  # the family's first trainer, as before HyperStyle joined
    return _main("inv_hyper", argv)


if __name__ == "__main__":
    sys.exit(main())
