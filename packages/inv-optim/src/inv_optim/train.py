"""Train a trainable inv-optim method: ``python -m inv_optim.train --method collab --out FILE ...``
(``--list`` lists them; ``--method collab --help`` shows its options). ``python -m inv_optim.train_collab``
still works as an alias of ``--method collab`` for this version."""

from __future__ import annotations

import sys

from sg2_core.train_method import main as _main


def main(argv=None) -> int:
    return _main("inv_optim", argv)


if __name__ == "__main__":
    sys.exit(main())
