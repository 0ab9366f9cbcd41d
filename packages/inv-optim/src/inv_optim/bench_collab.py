"""Collaborative learning against W+ projection on the demo: seconds per image, MSE, PSNR and distance.

    python -m inv_optim.bench_collab [--n 32] [--refine-steps 10,20,30,50] [--project-steps 300] [--threads 1]
        [--weights FILE] [--generator CHECKPOINT]

All methods run on the same images as one batch (after an untimed warm-up on one image), timed from the call
to the rendered reconstruction (the generator's constant noise), with the same distance. "gap closed": the
share of the MSE gap between the one-pass network and W+ projection that the refinement removes.
"""

from __future__ import annotations

import argparse
import time

import torch

from sg2_core import threads

from .collab import Collab
from .projector import ProjectorWPlus


def _measure(method, images):
    method(images[:1])  # untimed: lazy distance networks, w statistics
    start = time.perf_counter()
    inv = method(images)
    with torch.no_grad():
        recon = inv.render()
    seconds = time.perf_counter() - start
    return recon, seconds / images.shape[0]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=32, help="the first N demo test images (default 32)")
    p.add_argument("--refine-steps", default="10,20,30,50", help="comma-separated iterator steps after the network")
    p.add_argument("--project-steps", type=int, default=300)
    p.add_argument("--weights", default=None, help="embedding network file (default: the shipped demo network)")
    p.add_argument("--generator", default=None, help="generator checkpoint (default: the demo generator)")
    p.add_argument("--distance", default="fmnist")
    threads.add_option(p)
    args = p.parse_args(argv)
    try:
        threads.configure(args.threads)
    except ValueError as exc:
        p.error(str(exc))
    from inv_metrics import load_distance, mse, psnr
    from sg2_core import demo
    from sg2_core.training.fit import load_generator

    generator, g_source = load_generator(args.generator, "cpu")
    images = demo.load_test_images()[0][: args.n]
    distance = load_distance(args.distance)
    rows = []
    methods = [("collab (network only)", Collab(generator, weights=args.weights, distance=distance))]
    for k in (int(s) for s in args.refine_steps.split(",") if s.strip()):
        methods.append(
            (f"collab + {k} iterator steps", Collab(generator, weights=args.weights, distance=distance, refine_steps=k))
        )
    methods.append(
        (f"sg2-w+ ({args.project_steps} steps)", ProjectorWPlus(generator, steps=args.project_steps, distance=distance))
    )
    print(
        f"generator: {g_source}\nimages: first {args.n} demo test images, one batch\ndistance: {args.distance}\n"
        f"threads: {torch.get_num_threads()}",
        flush=True,
    )
    for label, method in methods:
        recon, seconds = _measure(method, images)
        with torch.no_grad():
            rows.append(
                (
                    label,
                    seconds,
                    mse(recon, images).mean().item(),
                    psnr(recon, images).mean().item(),
                    distance(recon, images).mean().item(),
                )
            )
        print(f"  {label}: {seconds:.4f} s/img", flush=True)
    base, proj = rows[0], rows[-1]
    print("\n| method | s/img | speed-up vs W+ | MSE | PSNR (dB) | distance | gap closed |")
    print("|---|---|---|---|---|---|---|")
    for label, seconds, m, ps, d in rows:
        gap = (base[2] - m) / (base[2] - proj[2]) if base[2] != proj[2] else float("nan")
        print(f"| {label} | {seconds:.4f} | {proj[1] / seconds:.0f}x | {m:.4f} | {ps:.2f} | {d:.4f} | {gap:.0%} |")


if __name__ == "__main__":
    main()
