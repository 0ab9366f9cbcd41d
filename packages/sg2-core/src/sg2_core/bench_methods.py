"""``python -m sg2_core.bench_methods``: every registered method on a full-size generator on the CPU, seconds per
image and the process's peak memory at batch 1 and 4.

    python -m sg2_core.bench_methods --out bench/                     # config F at 1024 px, random weights
    python -m sg2_core.bench_methods --generator ffhq.pkl --methods e4e pti --batch 1 --out bench/
    python -m sg2_core.bench_methods --quick --out bench/             # the demo generator, two methods (CI)
    python -m sg2_core.bench_methods --jobs 2 --out bench/            # two at once: peaks hold, times do not compare

The methods come from the registry (``list_methods()``) and run with the options their class declares for a
full-size generator (``full_size_options``: random networks at their official sizes through
``allow_untrained``, optimisers with a small fixed step count); ``--quick`` uses ``test_options`` on the demo
generator instead. The inputs are random images at the method's input size (the time of every method but an
early-stopping optimiser does not depend on what the images show).

Each measurement runs in a fresh process: build the generator and the method, then one timed call. The
peak is that process's peak resident memory (``ru_maxrss``: the generator, the method's networks, Python and
torch included). An optimiser's row also gives seconds per step of each stage (the stage's time over its steps,
its setup included), so its default step counts can be extrapolated. DIR receives ``bench_methods.md`` (the
table, as printed) and ``bench_methods.json`` (every number, the options and the machine).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PRESET = "ffhq1024-f"
BATCHES = (1, 4)
QUICK_METHODS = ("psp", "sg2-w")  # when installed; else the first two registered
MEMORY_GOAL_GB = 8.0  # the goal at batch 1 on the CPU (issue 27); rows above it are marked
_GB = 1e9


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _generator(source: str):
    """``source``: 'demo', a preset name (random weights, seed 0) or a checkpoint file."""
    import torch

    from sg2_core import Generator, demo
    from sg2_core.nn.config import GENERATOR_PRESETS

    if source == "demo":
        return demo.load_generator()
    if source in GENERATOR_PRESETS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return Generator(GENERATOR_PRESETS[source]).eval().requires_grad_(False)
    from sg2_core.invert import load_generator

    return load_generator(source, "cpu")[0]


def _worker(name: str, batch: int, source: str, options: dict, threads: str) -> dict:
    """One measurement, in this (fresh) process."""
    import torch

    from sg2_core import threads as thread_policy
    from sg2_core.methods.registry import create_method

    line = thread_policy.configure(threads, quiet=True).line()
    G = _generator(source)
    events = []  # (seconds since the call began, stage, step, steps)
    began = [0.0]

    def callback(info):
        events.append((time.perf_counter() - began[0], info.stage, info.step, info.steps))

    t = time.perf_counter()
    method = create_method(name, generator=G, callback=callback, **options)
    build = time.perf_counter() - t
    size = getattr(method, "input_resolution", None) or G.img_resolution
    channels = getattr(method, "input_channels", None) or G.img_channels
    images = torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    before = _peak_bytes()
    began[0] = time.perf_counter()
    method(images)
    seconds = time.perf_counter() - began[0]
    return {
        "method": name,
        "batch": batch,
        "build_s": build,
        "invert_s": seconds,
        "s_per_image": seconds / batch,
        "stages": _stages(events),
        "peak_before_call_gb": before / _GB,
        "peak_gb": _peak_bytes() / _GB,
        "input_size": size,
        "threads": line,
    }


def _stages(events) -> list[dict]:
    """Per stage in the order run: the steps it reported (callback calls), its seconds (from the previous
    stage's last report, or the call's start) and seconds per step."""
    stages, start, count = [], 0.0, 0
    for i, (at, stage, _step, _steps) in enumerate(events):
        count += 1
        if i + 1 == len(events) or events[i + 1][1] != stage:
            name = stage or "steps"
            stages.append({"stage": name, "steps": count, "seconds": at - start, "s_per_step": (at - start) / count})
            start, count = at, 0
    return stages


def _measure(name: str, batch: int, source: str, options: dict, threads: str, timeout: float) -> dict:
    command = [sys.executable, "-m", "sg2_core.bench_methods", "--worker", name, "--batch", str(batch)]
    command += ["--source", source, "--worker-options", json.dumps(options), "--threads", threads]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"method": name, "batch": batch, "error": f"over {timeout:g} s"}
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"method": name, "batch": batch, "error": lines[-1] if lines else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _options_text(options: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in options.items()) or "defaults"


def _steps_text(row: dict) -> str:
    stages = [s for s in row.get("stages", []) if s["steps"] > 1 or s["stage"] != "encode"]
    return "; ".join(f"{s['stage']} {s['s_per_step']:.2f}" for s in stages) or "-"


def table(results: list[dict], batches) -> str:
    """The Markdown table of ``results`` (one row per method, the batch sizes side by side)."""
    head = ["method", "options"]
    for b in batches:
        head += [f"s/image (batch {b})", f"peak GB (batch {b})"]
    head += ["s/step by stage (batch 1)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in dict.fromkeys(r["method"] for r in results):
        rows = {r["batch"]: r for r in results if r["method"] == name}
        cells = [name, _options_text(next(iter(rows.values())).get("options", {}))]
        for b in batches:
            r = rows.get(b, {"error": "not run"})
            if "error" in r:
                cells += [f"failed: {r['error']}", "-"]
                continue
            peak = f"{r['peak_gb']:.2f}"
            if b == 1 and r["peak_gb"] > MEMORY_GOAL_GB:
                peak = f"**{peak}** (> {MEMORY_GOAL_GB:g})"
            cells += [f"{r['s_per_image']:.2f}", peak]
        cells.append(_steps_text(rows.get(batches[0], {})))
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def write_report(out: Path, generator: str, batches, results: list[dict]) -> str:
    """Writes ``bench_methods.md`` and ``bench_methods.json`` to ``out``; returns the Markdown."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"{generator} on the CPU: {machine()}, {when}\n\n{table(results, batches)}\n"
    (out / "bench_methods.md").write_text(text, encoding="utf-8")
    report = {"generator": generator, "machine": machine(), "date": when, "batches": batches, "results": results}
    (out / "bench_methods.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sg2_core.bench_methods",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="where the table and the JSON go")
    p.add_argument("--methods", nargs="+", default=None, metavar="NAME", help="default: every registered method")
    p.add_argument("--batch", type=int, nargs="+", default=list(BATCHES), metavar="N", help="batch sizes (1 4)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--generator", default=None, metavar="CKPT", help=f"default: {PRESET} with random weights")
    src.add_argument("--quick", action="store_true", help="the demo generator, test_options, two methods (CI)")
    p.add_argument("--timeout", type=float, default=1800, metavar="S", help="per measurement (default 1800)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="measurements at once (default 1; more share the CPU: peaks hold, times do not compare)",
    )
    p.add_argument("--threads", default="auto", help="each measurement's --threads (sg2_core.threads)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--source", default=PRESET, help=argparse.SUPPRESS)
    p.add_argument("--worker-options", default="{}", help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.worker:  # one measurement, in the fresh process the parent started
        result = _worker(args.worker, args.batch[0], args.source, json.loads(args.worker_options), args.threads)
        print(json.dumps(result))
        return 0
    if args.out is None:
        p.error("--out DIR is required")
    from sg2_core.methods.registry import list_methods, method_spec

    if args.jobs < 1:
        p.error(f"--jobs must be >= 1, got {args.jobs}")
    if any(b < 1 for b in args.batch):
        p.error(f"--batch sizes must be >= 1, got {args.batch}")
    known = list_methods()
    names = args.methods or ([n for n in QUICK_METHODS if n in known] or known[:2] if args.quick else known)
    unknown = [n for n in names if n not in known]
    if unknown:
        p.error(f"unknown methods {unknown}; registered: {', '.join(known)}")
    source = "demo" if args.quick else str(Path(args.generator).resolve()) if args.generator else PRESET
    if args.generator and not Path(args.generator).is_file():
        p.error(f"--generator {args.generator}: no such file")
    args.out.mkdir(parents=True, exist_ok=True)
    generator = "the demo generator" if args.quick else args.generator or f"{PRESET} (random weights)"
    cases = []
    for name in names:
        spec = method_spec(name)
        cases += [(name, b, (spec.test_options if args.quick else spec.full_size_options) or {}) for b in args.batch]
    results: list[dict | None] = [None] * len(cases)

    def run(k: int) -> None:
        name, batch, options = cases[k]
        started = time.perf_counter()
        row = {**_measure(name, batch, source, options, args.threads, args.timeout), "options": options}
        results[k] = row
        took = f"{time.perf_counter() - started:.0f} s"
        done = row.get("error") or f"{row['s_per_image']:.2f} s/image, peak {row['peak_gb']:.2f} GB"
        print(f"{name} batch {batch}: {done} ({took})", file=sys.stderr, flush=True)
        # written after every measurement, so a stopped run keeps what it measured
        write_report(args.out, generator, args.batch, [r for r in results if r is not None])

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(run, range(len(cases))))
    text = write_report(args.out, generator, args.batch, results)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
