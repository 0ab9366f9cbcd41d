"""Images/s of batched projection and batched PTI against one image at a time, measured in one process.

    python -m inv_optim.bench [--n 8] [--project-steps 50] [--pti-steps 50] [--repeats 3] [--device cpu]
                              [--threads 1]

Both sides run the same images, seeds, steps and distance (no early stop, so equal work), and the
mean final distance and MSE are printed beside the speed, so the quality is seen to be equal. PTI's two
ways (batched per-sample weight offsets, and a generator copy per image tuned one after the other) run
interleaved ``--repeats`` times: the median speed of each and the peak memory growth of one run of each
(resident memory on the CPU, allocated memory on CUDA). ``--project-steps 0`` skips the projection timing
(the pivot is then ``w_avg``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from inv_metrics.memory import peak_growth
from sg2_core import Inversion, threads

from ._demo import demo_generator, demo_images, resolve_demo_distance
from .projector import ProjectorW, w_statistics
from .pti import PTI


def _timed(fn, device=None):
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def time_pti(generator, images, pivot, distance, steps: int, repeats: int, device=None) -> dict[str, dict]:
    """PTI's two ways on the same images and pivot, no early stop: batched per-sample weight offsets, and a
    generator copy per image tuned one after the other. Per way: the ``inversion``, the median ``seconds`` of
    ``repeats`` interleaved runs and the peak ``memory`` growth of one run."""
    ways = {
        "batched offsets": PTI(generator, steps=steps, distance=distance, stop_distance=None, mode="offsets"),
        "sequential copies": PTI(generator, steps=steps, distance=distance, stop_distance=None, mode="copy"),
    }
    ways["batched offsets"](images[:1], init=pivot[0])  # warm-up
    results, memory, times = {}, {}, {k: [] for k in ways}
    for name, method in ways.items():  # output and memory
        results[name], memory[name] = peak_growth(lambda: method(images, init=pivot), device)
    for _ in range(repeats):
        for name, method in ways.items():
            times[name].append(_timed(lambda: method(images, init=pivot), device)[1])
    return {k: dict(inversion=results[k], seconds=statistics.median(times[k]), memory=memory[k]) for k in ways}


def _row(label, n, seconds, inv, extra=""):
    print(
        f"  {label:<22} {n / seconds:8.2f} img/s  distance {inv.extras['distance'].mean().item():.4f}  "
        f"mse {(inv.render() - inv.extras['_target']).square().mean().item():.5f}{extra}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8, help="images (default 8)")
    parser.add_argument("--project-steps", type=int, default=50)
    parser.add_argument("--pti-steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved PTI runs of each way (default 3)")
    parser.add_argument("--device", default="cpu")
    threads.add_option(parser)
    parser.add_argument("--distance", default=None, help="inv-metrics distance name (default fmnist)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.n < 1:
        parser.error("--n and --repeats must be positive")
    try:
        threads.configure(args.threads)
    except ValueError as exc:
        parser.error(str(exc))
    device = torch.device(args.device)
    generator, g_note = demo_generator(device)
    images, i_note = demo_images(args.n, device)
    distance, d_note = resolve_demo_distance(args.distance, device)
    print(
        f"generator: {g_note}\nimages: {args.n} {i_note}\ndistance: {d_note}\ndevice: {device}, "
        f"threads {torch.get_num_threads()}"
    )
    n = images.shape[0]
    stats = w_statistics(generator)

    def projector(steps=args.project_steps, seed=0):  # seed: image i of a batch uses seed + i
        return ProjectorW(generator, steps=steps, distance=distance, seed=seed, w_stats=stats)

    pivot = projector()(images)
    if args.project_steps > 0:
        print(f"projection (W, {args.project_steps} steps):")
        projector(steps=2)(images[:1])  # warm-up
        batched, t_batch = _timed(lambda: projector()(images), device)
        singles, t_single = _timed(
            lambda: Inversion.cat([projector(seed=i)(images[i : i + 1]) for i in range(n)]), device
        )
        for inv in (batched, singles):
            inv.extras["_target"] = images
        _row("batched", n, t_batch, batched)
        _row("one by one", n, t_single, singles)
        print(f"  speed-up batched / one by one: {t_single / t_batch:.2f}x")
        pivot = batched

    print(
        f"PTI ({args.pti_steps} tuning steps, no early stop, same W pivot; median of {args.repeats} interleaved runs):"
    )
    ways = time_pti(generator, images, pivot, distance, args.pti_steps, args.repeats, device)
    for name, way in ways.items():
        inv = way["inversion"]
        inv.extras["_target"] = images
        _row(name, n, way["seconds"], inv, f"  peak memory growth {way['memory'] / 2**20:.1f} MB")
    ratio = ways["sequential copies"]["seconds"] / ways["batched offsets"]["seconds"]
    print(f"  speed-up batched / sequential: {ratio:.2f}x")


if __name__ == "__main__":
    main()
