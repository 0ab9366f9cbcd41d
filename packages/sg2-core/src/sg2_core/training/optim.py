"""Ranger, the encoder papers' optimiser (pSp, e4e, ReStyle): RAdam with Lookahead.

torch ships RAdam; Lookahead (Zhang et al. 2019) is the few lines below: every ``k`` steps the slow weights
move ``alpha`` of the way to the fast ones and the fast ones restart from there. The slow weights live in the
optimiser's per-parameter state and the counter in its param groups, so ``state_dict()`` holds everything an
exact resume needs. (The papers' copy also centralises gradients; that option is left out.)
"""

from __future__ import annotations

import torch


class Ranger(torch.optim.RAdam):
    """``torch.optim.RAdam`` plus Lookahead; the defaults are pSp's (lr 1e-4, betas (0.95, 0.999), eps 1e-5,
    alpha 0.5, k 6)."""

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas=(0.95, 0.999),
        eps: float = 1e-5,
        weight_decay: float = 0.0,
        alpha: float = 0.5,
        k: int = 6,
    ):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k}")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        for group in self.param_groups:
            group.setdefault("alpha", alpha)
            group.setdefault("k", k)
            group.setdefault("lookahead_step", 0)

    @torch.no_grad()
    def step(self, closure=None):
        # The slow weights start where training starts; they join each parameter's state after RAdam's
        # first step (RAdam initialises a state only while it is empty).
        start = {
            p: p.detach().clone()
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None and "slow" not in self.state[p]
        }
        loss = super().step(closure)
        for p, value in start.items():
            self.state[p]["slow"] = value
        for group in self.param_groups:
            group["lookahead_step"] += 1
            if group["lookahead_step"] % group["k"]:
                continue
            for p in group["params"]:
                slow = self.state[p].get("slow")
                if slow is not None:
                    slow.add_(p - slow, alpha=group["alpha"])
                    p.copy_(slow)
        return loss
