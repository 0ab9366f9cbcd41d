"""Invert the demo test images (or a safetensors file of images) with a registered method, with a progress bar.

    python -m inv_optim.invert --method sg2-w+ --n 8 --steps 200 --out inversions.safetensors

Writes the latents, any weight offsets (``offset.<layer>``) and the per-image tensors of the extras.
"""

from __future__ import annotations

import argparse

import torch

from sg2_core import create_method

from ._demo import demo_generator, demo_images, resolve_demo_distance
from .progress import ProgressBar


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="sg2-w", help="sg2-w, sg2-w+, pti or any registered method")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--images", default=None, help="safetensors file with 'images' [N, C, R, R] in [-1, 1]")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--stop-distance", type=float, default=None)
    parser.add_argument("--distance", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    generator, g_note = demo_generator(device)
    if args.images:
        from safetensors.torch import load_file

        images = load_file(args.images)["images"][: args.n].to(device)
    else:
        images = demo_images(args.n, device)[0]
    distance, d_note = resolve_demo_distance(args.distance, device)
    print(f"generator: {g_note}; distance: {d_note}")
    bar = ProgressBar()
    options = {"distance": distance, "callback": bar}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.stop_distance is not None:
        options["stop_distance"] = args.stop_distance
    inversion = create_method(args.method, generator=generator, **options)(images)
    bar.close()
    print(inversion)
    print("final distance per image:", [round(v, 4) for v in inversion.extras["distance"].tolist()])
    if args.out:
        from safetensors.torch import save_file

        tensors = {"latents": inversion.latents, **{f"offset.{k}": v for k, v in (inversion.weight_offsets or {}).items()},
                   **{k: v for k, v in inversion.extras.items() if isinstance(v, torch.Tensor)}}
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
