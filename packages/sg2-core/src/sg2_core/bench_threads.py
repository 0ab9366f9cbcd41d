"""``python -m sg2_core.bench_threads``: the thread policy (:mod:`sg2_core.threads`) against torch's default,
on a quiet machine and beside busy processes, in one go.

The work is a W+ projection of the demo generator: ``--steps`` Adam steps on the W+ codes of ``--images``
targets (synthesis forward and backward, the inner loop of every optimising method). Each case runs in a fresh
process (OpenMP reads its settings when torch loads): one untimed call, then the best of ``--repeats``. The
loaded cases start ``--busy`` processes that spin on the CPU, as other jobs on a shared machine do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BUSY_LOOP = "while True: pass"


def _work(steps: int, images: int) -> float:
    """Seconds of one projection of ``images`` targets, ``steps`` steps."""
    import torch

    from sg2_core import demo

    G = demo.load_generator()
    for p in G.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        targets = G(torch.randn(images, G.z_dim, generator=g), noise_mode="const")
        start = G.mapping.w_avg.expand(images, G.num_ws, -1).clone()
    ws = start.requires_grad_(True)
    optimizer = torch.optim.Adam([ws], lr=0.05)
    began = time.perf_counter()
    for _ in range(steps):
        loss = (G.synthesis(ws, noise_mode="const") - targets).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - began


def _worker(args) -> int:
    import torch

    from sg2_core import threads

    if args.policy == "default":
        line = f"threads: {torch.get_num_threads()} (torch's default); idle OpenMP threads spin"
    else:
        line = threads.configure(args.threads, quiet=True).line()
    _work(args.steps, args.images)  # warm-up: caches, oneDNN primitives
    best = min(_work(args.steps, args.images) for _ in range(args.repeats))
    wait_policy = os.environ.get("OMP_WAIT_POLICY", "")
    print(json.dumps({"seconds": best, "threads": torch.get_num_threads(), "wait_policy": wait_policy, "line": line}))
    return 0


def _case(args, policy: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    command = [sys.executable, "-m", "sg2_core.bench_threads", "--worker", "--policy", policy]
    command += ["--steps", str(args.steps), "--images", str(args.images), "--repeats", str(args.repeats)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _measure(args, busy: int) -> dict[str, dict]:
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        time.sleep(1.0 if busy else 0)  # let the spinners reach the run queue before the policy looks
        return {policy: _case(args, policy) for policy in ("default", "policy")}
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sg2_core.bench_threads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the loaded cases")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--policy", choices=["default", "policy"], default="policy", help=argparse.SUPPRESS)
    parser.add_argument("--threads", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("steps", "images", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.busy < 0:
        parser.error(f"--busy must be >= 0, got {args.busy}")
    if args.worker:
        return _worker(args)
    quiet, loaded = _measure(args, 0), _measure(args, args.busy)
    base = quiet["default"]["seconds"]
    print(
        f"W+ projection, {args.steps} steps of {args.images} demo images, best of {args.repeats}, {os.cpu_count()} cores"
    )
    print("| machine | threads | seconds | vs. quiet, torch's default |")
    print("|---|---|---|---|")
    for name, cases in (("quiet", quiet), (f"{args.busy} busy processes", loaded)):
        for policy, label in (("default", "torch's default"), ("policy", "sg2_core.threads")):
            case = cases[policy]
            print(f"| {name} | {label}: {case['threads']} | {case['seconds']:.3f} | {case['seconds'] / base:.2f}x |")
    for cases in (quiet, loaded):
        print(cases["policy"]["line"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
