"""Interpolate between two real images, codes and predicted weights together:

    python -m inv_hyper.interpolate [A.png B.png] [--steps 8] [--out interpolation.png]
        [--generator CHECKPOINT --weights FILE] [--device cpu]

Both images are inverted with HyperInverter; each row of the grid is ``A, G(w_t; theta + delta_t) for t in
[0, 1], B``, where ``w_t`` and ``delta_t`` are the lerps of the two codes and of the two weight offsets
(``Inversion.interpolate``). With no images it interpolates between pairs of the demo's held-out test
images on the demo generator and its shipped weights; a ``--generator`` of your own needs ``--weights``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .methods import HyperInverter


def interpolate(method: HyperInverter, a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``[N, steps + 2, C, R, R]``: each pair's inputs around ``steps`` renders from ``a`` (t=0) to ``b`` (t=1)."""
    first, second = method(a), method(b)
    frames = []
    with torch.no_grad():
        for t in torch.linspace(0, 1, steps).tolist():
            frames.append(first.interpolate(second, t).render())
    size = frames[0].shape[-2:]
    resize = (
        (lambda x: torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False))
        if a.shape[-2:] != size
        else (lambda x: x)
    )
    return torch.stack([resize(a), *frames, resize(b)], dim=1)


def _pairs(args, generator) -> tuple[torch.Tensor, torch.Tensor, str]:
    from sg2_core.images import load_images

    if args.images:
        if len(args.images) != 2:
            raise ValueError(f"give two images (A and B), got {len(args.images)}")
        images = load_images(args.images, generator.img_channels, generator.img_resolution)
        return images[:1], images[1:2], f"{args.images[0]} -> {args.images[1]}"
    if args.generator is not None:
        raise ValueError("with --generator, give the two images A.png B.png (the demo images are for the demo)")
    from sg2_core import demo

    test = demo.load_test_images()[0]
    return test[0:8:2], test[1:8:2], "4 pairs of demo test images"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m inv_hyper.interpolate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="*", help="A and B (default: demo test images)")
    p.add_argument("--steps", type=int, default=8, help="renders between A and B, both ends included")
    p.add_argument("--out", default="interpolation.png", help="the grid's PNG file (refused if it exists)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--generator", help="a generator checkpoint (default: the demo generator)")
    p.add_argument("--weights", help="HyperInverter weights for --generator (an official checkpoint or ours)")
    p.add_argument("--phase1", help="a registered W-space method as phase I (e.g. e4e-w; default: the weights' own)")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    try:
        from sg2_core import demo, load_checkpoint
        from sg2_core.devices import resolve_device
        from sg2_core.images import save_grid

        if args.steps < 2:
            raise ValueError(f"--steps must be >= 2, got {args.steps}")
        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise ValueError(f"--out {out} exists; pass --overwrite or choose another file")
        if args.generator is not None and args.weights is None:
            raise ValueError("--generator needs --weights (the shipped weights are for the demo generator)")
        device = resolve_device(args.device)
        G = (
            demo.load_generator(device)
            if args.generator is None
            else load_checkpoint(args.generator).G_ema.to(device).eval().requires_grad_(False)
        )
        method = HyperInverter(G, weights=args.weights, phase1=args.phase1, device=device)
        a, b, what = _pairs(args, G)
        rows = interpolate(method, a.to(device), b.to(device), args.steps)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    save_grid(rows.flatten(0, 1).clamp(-1, 1).cpu(), out, nrow=rows.shape[1])
    print(f"wrote {out}: {what}, {args.steps} steps each (codes and weight offsets interpolated)")
    return 0


__all__ = ["interpolate", "main"]

if __name__ == "__main__":
    sys.exit(main())
