"""Phase II's rendering: batched per-sample weight offsets against the reference's generator copy per image.

    python -m inv_hyper.bench [--repeats 3] [--batches 1 8] [--threads 1]

Both ways get the same generator (a random 256 px config-F-like network with reduced channels), the same
hypernetwork deltas for every conv and toRGB, and the same codes; they run interleaved in one process. The
reference (VinAIResearch/HyperInverter) deep-copies G for each sample, adds the deltas to the copy's weights
and renders that image alone; ours is one ``G.synthesis(ws, weight_offsets=deltas)`` pass. Prints images/s
of each (the median over the repeats), their ratio, the peak resident-memory growth during one run of each,
and the max |difference| of the images. A third way, the same batched render without any offsets (the
generator's shared weights), is timed beside them: what no way of applying offsets can beat, so its ratio to
the copies is the ceiling of ours on this machine.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from inv_metrics.memory import peak_growth
from sg2_core import Generator, GeneratorConfig, threads

from .hypernetwork import Hypernetwork

BENCH_CONFIG = GeneratorConfig(
    resolution=256, z_dim=256, w_dim=256, channel_base=8192, channel_max=256, mapping_layers=2
)


def batched(G, ws, deltas):
    with torch.no_grad():
        return G.synthesis(ws, weight_offsets=deltas, noise_mode="const")


def batched_without_offsets(G, ws, deltas):
    with torch.no_grad():
        return G.synthesis(ws, noise_mode="const")


def per_sample_copies(G, ws, deltas):
    outs = []
    with torch.no_grad():
        for i in range(ws.shape[0]):
            Gi = copy.deepcopy(G)
            for name, delta in deltas.items():
                Gi.synthesis.layer(name).weight.add_(delta[i])
            outs.append(Gi.synthesis(ws[i : i + 1], noise_mode="const"))
    return torch.cat(outs)


def _seconds(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def run(
    batches=(1, 8), repeats: int = 3, seed: int = 0, device="cpu", config: GeneratorConfig = BENCH_CONFIG
) -> list[dict]:
    """One row per batch: ``speed`` (images/s) and ``memory`` (peak growth) of each way, and ``diff``."""
    device = torch.device(device)
    torch.manual_seed(seed)
    G = Generator(config).eval().requires_grad_(False)
    hyper = Hypernetwork.for_generator(G, input_dim=32, hidden_dim=16, extractor_dim=16).eval().to(device)
    G.to(device)
    rows = []
    for n in batches:
        codes = torch.randn(n, hyper.num_maps, 32, 8, 8).to(device)
        with torch.no_grad():
            deltas = {k: 0.1 * v for k, v in hyper(codes, codes.roll(1, 0)).items()}  # ~0.03 std, as trained
            ws = G.mapping(torch.randn(n, G.z_dim).to(device))
        ways = {"batched offsets": batched, "copy per sample": per_sample_copies, "no offsets": batched_without_offsets}
        outs, memory, times = {}, {}, {k: [] for k in ways}
        for name, fn in ways.items():  # warm-up, output and memory
            outs[name], memory[name] = peak_growth(lambda: fn(G, ws, deltas), device)
        for _ in range(repeats):  # interleaved
            for name, fn in ways.items():
                times[name].append(_seconds(lambda: fn(G, ws, deltas), device))
        diff = (outs["batched offsets"] - outs["copy per sample"]).abs().max().item()
        speed = {k: n / statistics.median(v) for k, v in times.items()}
        rows.append(dict(batch=n, speed=speed, memory=memory, diff=diff))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inv_hyper.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    threads.add_option(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.batches) < 1:
        parser.error("--batches and --repeats must be positive")
    try:
        chosen = threads.configure(args.threads).threads
    except ValueError as exc:
        parser.error(str(exc))
    c = BENCH_CONFIG
    params = sum(p.numel() for p in Generator(c).parameters())
    print(
        f"generator {c.resolution} px, channel_base {c.channel_base}, channel_max {c.channel_max}, w_dim {c.w_dim} "
        f"({params / 1e6:.2f} M parameters); CPU, {chosen} thread(s), median of {args.repeats}"
    )
    print(
        "| batch | batched offsets img/s | copy per sample img/s | ratio | ceiling (no offsets) | "
        "peak RSS growth batched / copies (MB) | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in run(args.batches, args.repeats):
        s, m = row["speed"], row["memory"]
        print(
            f"| {row['batch']} | {s['batched offsets']:.2f} | {s['copy per sample']:.2f} | "
            f"{s['batched offsets'] / s['copy per sample']:.2f}x | {s['no offsets'] / s['copy per sample']:.2f}x | "
            f"{m['batched offsets'] / 2**20:.1f} / {m['copy per sample'] / 2**20:.1f} | {row['diff']:.2g} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
