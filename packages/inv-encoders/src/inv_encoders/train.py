"""Train an encoder: ``python -m inv_encoders.train --method psp|psp-w|psp-edges|e4e|e4e-w|restyle-psp|
restyle-e4e|hfgi ...``
(``--list`` lists them, ``--method NAME --help`` shows the options; the trainers are
:mod:`inv_encoders.training` and, for HFGI's consultation branch, :mod:`inv_encoders.hfgi_training`)."""

from __future__ import annotations

import sys

from sg2_core.training.cli import main as _main


def main(argv=None) -> int:
    return _main("inv_encoders", argv)


if __name__ == "__main__":
    sys.exit(main())
