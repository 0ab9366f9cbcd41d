"""e4e's history pools of latent codes for its latent discriminator (``--w-pool-size``; e4e's ``--use_w_pool``).

The discriminator then sees, per sample, either the newest code or (once the pool is full, with probability
one half) a code stored earlier, which takes the newest one's place: it is trained against a history of the
encoder's codes rather than only the latest encoder's. A batch of several active codes per sample
``[B, k, D]`` contributes one of them per sample, picked at random (as e4e does). The pool draws from its own
seeded ``torch.Generator`` and its :meth:`state` holds the stored codes and that generator, so a resumed run
continues exactly.
"""

from __future__ import annotations

import torch


class LatentPool:
    """Up to ``size`` stored codes of width ``dim``; ``size=0`` is no pool (:meth:`query` returns its input)."""

    def __init__(self, size: int, dim: int, seed: int = 0):
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"the pool size must be an int >= 0, got {size!r}")
        self.size = size
        self.codes = torch.zeros(0, dim)
        self.rng = torch.Generator().manual_seed(seed)

    def query(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, D]`` codes for the discriminator from ``codes`` ``[B, D]`` or ``[B, k, D]`` (detached)."""
        if self.size == 0:
            return codes
        codes = codes.detach()
        if codes.ndim == 3:
            pick = torch.randint(codes.shape[1], (codes.shape[0],), generator=self.rng).to(codes.device)
            codes = codes[torch.arange(codes.shape[0], device=codes.device), pick]
        if self.codes.device != codes.device or self.codes.dtype != codes.dtype:
            self.codes = self.codes.to(codes)
        out = []
        for w in codes:
            if len(self.codes) < self.size:  # filling up: store it and hand it on
                self.codes = torch.cat([self.codes, w[None]])
                out.append(w)
            elif torch.rand((), generator=self.rng).item() > 0.5:  # hand on an old code, keep the new one instead
                i = int(torch.randint(self.size, (), generator=self.rng))
                out.append(self.codes[i].clone())
                self.codes[i] = w
            else:
                out.append(w)
        return torch.stack(out)

    def state(self) -> dict:
        return {"codes": self.codes.cpu().clone(), "rng": self.rng.get_state()}

    def load_state(self, state: dict) -> None:
        self.codes = state["codes"].clone()
        self.rng.set_state(state["rng"])
