"""The projector's schedules (StyleGAN2 paper, Appendix D): learning rate and the noise added to w.

Both are functions of ``t = step / steps`` in [0, 1), so a run of any length has the same shape.
"""

from __future__ import annotations

import math


def learning_rate(step: int, steps: int, peak: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """``peak`` times a linear ramp-up over the first ``rampup`` of the run and a cosine ramp-down over the last
    ``rampdown``: ``peak * min(1, t / rampup) * (1 - cos(pi * min(1, (1 - t) / rampdown))) / 2``.

    Like the official projector, step 0 has a learning rate of 0 (``t = 0``).
    """
    t = step / steps
    down = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    up = min(1.0, t / rampup) if rampup > 0 else 1.0
    return peak * up * (0.5 - 0.5 * math.cos(math.pi * down))


def w_noise_std(step: int, steps: int, w_std: float, factor: float = 0.05, ramp: float = 0.75) -> float:
    """Std of the Gaussian noise added to w at ``step``: ``w_std * factor * max(0, 1 - t / ramp)^2``,
    zero from ``t = ramp`` on (it explores early and lets the code settle late)."""
    t = step / steps
    return w_std * factor * max(0.0, 1.0 - t / ramp) ** 2
