"""Train a trainable inv-optim method: ``python -m inv_optim.train --method collab --out FILE ...``
(``--list`` lists them; ``--method collab --help`` shows its options)."""

from __future__ import annotations

import sys

from sg2_core.training.cli import main as _main


def main(argv=None) -> int:
    return _main("inv_optim", argv)


if __name__ == "__main__":
    sys.exit(main())
