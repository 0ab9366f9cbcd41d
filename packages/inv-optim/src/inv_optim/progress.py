"""A tqdm progress bar as a step callback (what the command line uses)."""

from __future__ import annotations


class ProgressBar:
    """Callback showing steps, the mean distance and how many images are still optimising, one bar per stage."""

    def __init__(self, **tqdm_options):
        self.options, self.bar, self.stage = tqdm_options, None, None

    def __call__(self, info) -> None:
        from tqdm.auto import tqdm

        if self.bar is None or info.stage != self.stage:
            self.close()
            self.stage = info.stage
            self.bar = tqdm(total=info.steps, desc=info.stage or "steps", **self.options)
        self.bar.update(1)
        self.bar.set_postfix(
            distance=f"{info.distance.mean().item():.4f}", active=f"{int(info.active.sum())}/{info.active.numel()}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
