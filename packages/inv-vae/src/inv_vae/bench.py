"""``python -m inv_vae.bench``: the shipped demo encoder and style, measured on the demo's 256 test images.

Prints (1) per W+ layer the mean and std of the encoder's ``mu`` over images and dimensions, the mean posterior
variance ``exp(logvar)`` and the KL of the posterior to N(0, I) (codes close to the prior: mean near 0, and
``std(mu)^2 + mean(exp(logvar))`` near 1); (2) the Fashion-MNIST perceptual distance (the demo's domain
distance) between the input and its source rendering (identity kept by the inversion), between the source
rendering and the stylised one (what the style changed), and between the stylised image and the input's own
edge drawing (``sg2_core.methods.conditions.edges``, the style's ground truth on the demo) next to the same
distance for the unstylised source rendering; (3) the time to stylise one image (encoder + mapping + styled
synthesis; median of ``--repeats`` after a warm-up) and a batch of 32.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sg2_core import create_method, demo, threads
from sg2_core.methods import conditions

from .stylize import load_style, stylize


def main(argv=None) -> int:
    from inv_metrics.distances import load_distance

    p = argparse.ArgumentParser(
        prog="python -m inv_vae.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--style", default="edges")
    p.add_argument("--repeats", type=int, default=20)
    threads.add_option(p)
    args = p.parse_args(argv)
    try:
        threads.configure(args.threads)
    except ValueError as exc:
        p.error(str(exc))
    G = demo.load_generator()
    agile, style = create_method("agilegan", generator=G), load_style(args.style, G)
    images = demo.load_test_images()[0]
    with torch.no_grad():
        mu, logvar = agile.net.posterior(images)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)  # [N, num_ws]
    print(f"encoder codes on {len(images)} demo test images (per W+ layer):")
    print("layer  mean(mu)  std(mu)  mean(var)  KL")
    for i in range(mu.shape[1]):
        print(
            f"{i:5d}  {mu[:, i].mean():8.4f}  {mu[:, i].std():7.4f}  {logvar[:, i].exp().mean():9.4f}  "
            f"{kl[:, i].mean():7.2f}"
        )
    print(f"all    {mu.mean():8.4f}  {mu.std():7.4f}  {logvar.exp().mean():9.4f}  {kl.mean():7.2f}")
    distance = load_distance("fmnist")
    source, stylised = stylize(agile, style, images)
    edges = conditions.edges(images)
    with torch.no_grad():
        rows = {
            "input vs source rendering": distance(images, source),
            "source rendering vs stylised": distance(source, stylised),
            "input's edge drawing vs stylised": distance(edges, stylised),
            "input's edge drawing vs source rendering": distance(edges, source),
        }
    print("fmnist perceptual distance (mean over the images):")
    for name, d in rows.items():
        print(f"  {name}: {d.mean():.4f}")
    stylize(agile, style, images[:1])
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        stylize(agile, style, images[:1])
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    stylize(agile, style, images[:32])
    batch = time.perf_counter() - start
    print(
        f"stylise one image: {statistics.median(times) * 1000:.1f} ms (median of {args.repeats}); "
        f"32 images: {batch * 1000:.0f} ms; {torch.get_num_threads()} thread(s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
