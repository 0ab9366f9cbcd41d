"""Images/s of batched projection and batched PTI against one image at a time, measured in one process.

    python -m inv_optim.bench [--n 8] [--project-steps 50] [--pti-steps 50] [--device cpu] [--threads 1]

Both sides run the same images, seeds, steps and distance (no early stop, so equal work), and the
mean final distance and MSE are printed beside the speed, so the quality is seen to be equal.
"""

from __future__ import annotations

import argparse
import time

import torch

from sg2_core import Inversion

from ._demo import demo_generator, demo_images, resolve_demo_distance
from .projector import Projector, w_statistics
from .pti import PTI


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _row(label, n, seconds, inv):
    print(f"  {label:<22} {n / seconds:8.2f} img/s  distance {inv.extras['distance'].mean().item():.4f}  "
          f"mse {(inv.render() - inv.extras['_target']).square().mean().item():.5f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8, help="images (default 8)")
    parser.add_argument("--project-steps", type=int, default=50)
    parser.add_argument("--pti-steps", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--distance", default=None, help="inv-metrics distance name (default fmnist)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator, g_note = demo_generator(device)
    images, i_note = demo_images(args.n, device)
    distance, d_note = resolve_demo_distance(args.distance, device)
    print(f"generator: {g_note}\nimages: {args.n} {i_note}\ndistance: {d_note}\ndevice: {device}, "
          f"threads {torch.get_num_threads()}")
    n = images.shape[0]
    stats = w_statistics(generator)

    print(f"projection (W, {args.project_steps} steps):")
    projector = Projector(generator, steps=args.project_steps, distance=distance, seed=0, w_stats=stats)
    projector(images[:1], steps=2)  # warm-up
    batched, t_batch = _timed(lambda: projector(images))
    singles, t_single = _timed(lambda: Inversion.cat([projector(images[i:i + 1], seed=i) for i in range(n)]))
    for inv in (batched, singles):
        inv.extras["_target"] = images
    _row("batched", n, t_batch, batched)
    _row("one by one", n, t_single, singles)
    print(f"  speed-up batched / one by one: {t_single / t_batch:.2f}x")

    print(f"PTI ({args.pti_steps} tuning steps, no early stop, same W pivot):")
    pivot = batched
    offsets = PTI(generator, steps=args.pti_steps, distance=distance, stop_distance=None, mode="offsets")
    copies = PTI(generator, steps=args.pti_steps, distance=distance, stop_distance=None, mode="copy")
    offsets(images[:1], pivot=pivot[0])  # warm-up
    tuned_b, t_b = _timed(lambda: offsets(images, pivot=pivot))
    tuned_s, t_s = _timed(lambda: copies(images, pivot=pivot))
    for inv in (tuned_b, tuned_s):
        inv.extras["_target"] = images
    _row("batched offsets", n, t_b, tuned_b)
    _row("sequential copies", n, t_s, tuned_s)
    print(f"  speed-up batched / sequential: {t_s / t_b:.2f}x")


if __name__ == "__main__":
    main()
