"""``python -m sg2_core.train``: train a StyleGAN2 (the loop and its options: :mod:`sg2_core.training.gan`)."""

import sys

from sg2_core.moved import forward
from sg2_core.training.gan import main

__getattr__ = forward(__name__, "sg2_core.training.gan", "sg2-core 0.8")  # names imported from here before 0.7

if __name__ == "__main__":
    sys.exit(main())
