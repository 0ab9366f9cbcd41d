"""Train AgileGAN: ``python -m inv_vae.train encoder|style [options]`` (``... encoder --help`` shows the
options; ``--method agilegan`` through sg2-core's dispatcher works too). The trainers are in
:mod:`inv_vae.training`."""

from __future__ import annotations

import sys

from sg2_core.training.cli import main as _main


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("encoder", "style"):  # the shape: the first word names what is trained
        from .training import main as train

        return train(argv)
    return _main("inv_vae", argv)


if __name__ == "__main__":
    sys.exit(main())
