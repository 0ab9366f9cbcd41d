"""The GPU check in one short go (``./dev gpu-check``): the CUDA-only tests, every compiled op against the
reference ops, and the speed-ups the GPU is for, written as one JSON and one Markdown table.

    python tools/gpu_check.py [--device cpu|cuda] [--out DIR] [--quick] [--threads N]

1. The tests that need a GPU (sg2-kernels' tests on its ``cuda`` parameters; every other test runs on the CPU
   in ``./dev test``), in a pytest subprocess where a missing CUDA build fails them (``SG2_KERNELS_REQUIRE``).
   ``--device cpu`` runs the same selection with no GPU visible: every one is reported skipped.
2. Every op that the device's compiled kernels implement (``cuda`` on a GPU, ``cpp`` on the CPU) against the
   pure-PyTorch reference on the same device and inputs: the forward, the first-order gradients and the
   second-order gradients (the gradients of a random combination of the first ones, with respect to the inputs
   and the output gradient), in float32 (TF32 off) and float64.
3. Timings, each a ratio of two ways measured one after the other in this run: config-F synthesis (random
   weights) with the compiled ops against the reference ops, batch 1 and 8; the pSp and e4e encoders' inference
   path against their exact path (``sg2_core.use_impl``), batch 8; HyperInverter's batched weight offsets
   against a generator copy per sample (``inv_hyper.bench``); batched PTI against a generator copy per image
   tuned one after the other (``inv_optim.bench``).
4. ``DIR/gpu_check.json`` and ``DIR/gpu_check.md`` (default DIR: ``gpu-check/``, ignored by git).

``--quick`` keeps the tests and the op comparisons and shrinks the timed work (a 64 px generator, batch 2, tiny
encoders, 2 PTI steps, one repeat): the CPU run that CI makes (``tests/test_gpu_check.py``). Exit status 0 when
no selected test failed and every op comparison passed; the timings are reported, never judged.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import sg2_core
import sg2_kernels
from inv_encoders.bench import OPTS, random_checkpoint
from inv_encoders.checkpoints import from_dict
from inv_encoders.networks import StyleEncoder, StyleEncoderConfig
from inv_hyper import bench as hyper_bench
from inv_optim import bench as optim_bench
from inv_optim._demo import demo_generator, demo_images, resolve_demo_distance
from inv_optim.projector import ProjectorW
from sg2_core import Generator, GeneratorConfig, threads
from sg2_core.bench import _workloads
from sg2_core.devices import resolve_device
from sg2_kernels import (
    ACTIVATIONS,
    bias_act,
    conv2d_resample,
    noise_bias_lrelu_,
    setup_filter,
    upfirdn2d,
    winograd,
)
from sg2_kernels._backend import _build_info, unavailable_reason
from sg2_kernels.bench import seconds_per_call
from sg2_kernels.testing import max_rel_error

ROOT = Path(__file__).resolve().parents[1]
# The tests that skip without a GPU: sg2-kernels' impl_device / compiled_impl_device parameters on cuda.
CUDA_TESTS = ("packages/sg2-kernels/tests", "-k", "ref-cuda or cuda-cuda")
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}  # max |ours - ref| / max |ref|, each order


@dataclass(frozen=True)
class Sizes:
    """What the timings run: the full sizes on a GPU, the tiny ones with ``--quick``."""

    g_resolution: int = 1024
    g_batches: tuple[int, ...] = (1, 8)
    batch: int = 8  # encoders, HyperInverter, PTI
    tiny_encoders: bool = False
    hyper_config: GeneratorConfig = hyper_bench.BENCH_CONFIG
    pti_steps: int = 50
    repeats: int = 3
    min_seconds: float = 1.0
    min_calls: int = 3


FULL = Sizes()
QUICK = Sizes(
    g_resolution=64,
    g_batches=(1, 2),
    batch=2,
    tiny_encoders=True,
    hyper_config=dataclasses.replace(hyper_bench.BENCH_CONFIG, resolution=64),
    pti_steps=2,
    repeats=1,
    min_seconds=0.0,
    min_calls=1,
)


# ------------------------------------------------------------------------------------- 1. the CUDA tests


def run_cuda_tests(device: torch.device, out: Path) -> dict:
    """The CUDA-only tests in a pytest subprocess; counts from its JUnit XML."""
    xml = out / "cuda_tests.xml"
    xml.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *CUDA_TESTS]
    if device.type == "cuda":
        env = {**os.environ, "SG2_KERNELS_REQUIRE": "cuda"}  # a missing CUDA build fails instead of skipping
    else:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the same selection, every test skipped: the plumbing runs
    start = time.perf_counter()
    rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    counts, reasons = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}, {}
    outcomes = {"failure": "failed", "error": "errors", "skipped": "skipped"}  # JUnit's tags
    for case in ET.parse(xml).iter("testcase") if xml.exists() else ():
        outcome = next((c for c in case if c.tag in outcomes), None)
        counts["passed" if outcome is None else outcomes[outcome.tag]] += 1
        if outcome is not None and outcome.tag == "skipped":
            reason = outcome.get("message", "").removeprefix("Skipped: ")
            reasons[reason] = reasons.get(reason, 0) + 1
    ok = rc == 0 and (device.type == "cpu" or counts["passed"] > 0)
    return dict(
        command=" ".join(["pytest", *CUDA_TESTS[:2], repr(CUDA_TESTS[2])]),
        exit_code=rc,
        **counts,
        skip_reasons=reasons,
        seconds=round(time.perf_counter() - start, 1),
        ok=ok,
    )


# ------------------------------------------------------------------------------ 2. ops against the reference


@dataclass(frozen=True)
class OpCase:
    """One op call: ``run(impl, *inputs)`` on N(0, 1) inputs of ``shapes`` (the first one times ``scale``)."""

    op: str
    case: str
    shapes: tuple[tuple[int, ...], ...]
    run: Callable
    grads: bool = True
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64)
    cpu_only: bool = False
    scale: float = 1.0


def _with_ops(impl: str, fn: Callable):
    with sg2_kernels.use_impl(impl):  # ops called inside without impl= (as inside conv2d_resample)
        return fn()


def op_cases() -> list[OpCase]:
    f = setup_filter([1, 3, 3, 1])
    gen = torch.Generator().manual_seed(3)
    f32, f1 = torch.randn(3, 2, generator=gen), torch.randn(6, generator=gen)

    def fir(shape, case, f, **kwargs):
        return OpCase("upfirdn2d", case, (shape,), lambda impl, x: upfirdn2d(x, f.to(x), impl=impl, **kwargs))

    def act(shapes, case, scale=3.0, **kwargs):
        return OpCase(
            "bias_act", case, shapes, lambda impl, x, b=None: bias_act(x, b, impl=impl, **kwargs), scale=scale
        )

    def conv(case, **kwargs):
        shapes = ((2, 8, 16, 16), (12, 8, 3, 3))
        return OpCase(
            "conv2d_resample",
            case,
            shapes,
            lambda impl, x, w: _with_ops(impl, lambda: conv2d_resample(x, w, f.to(x), padding=1, **kwargs)),
        )

    def wino(up):
        def run(impl, x, w, s, t):
            return winograd.conv3x3(x, winograd.transform_weight(w, up), up, s, t, impl=impl)

        shapes = ((2, 16, 20, 19), (24, 16, 3, 3), (2, 16), (2, 24))
        case = f"up {up}, styles and demodulation (forward only)"
        return OpCase("winograd.conv3x3", case, shapes, run, grads=False, dtypes=(torch.float32,), cpu_only=True)

    return [
        fir((3, 5, 17, 23), "up 2, 4x4 FIR, gain 4 (G toRGB skip)", f, up=2, padding=[2, 1, 2, 1], gain=4),
        fir((3, 5, 35, 35), "4x4 FIR, gain 4 (blur after the up-conv)", f, padding=1, gain=4),
        fir((3, 5, 34, 22), "down 2, 4x4 FIR (D skip)", f, down=2, padding=1),
        fir(
            (2, 3, 13, 11),
            "up [2, 1], down [1, 2], flipped 3x2 filter, crop",
            f32,
            up=[2, 1],
            down=[1, 2],
            padding=[0, 1, -1, 2],
            flip_filter=True,
            gain=2,
        ),
        fir((2, 3, 13, 11), "separable 6-tap filter, up 3, down 2", f1, up=3, down=2, padding=[2, 1, 1, 2], gain=9),
        fir((2, 32, 128, 128), "up 2 on a 2x32x128x128 map", f, up=2, padding=[2, 1, 2, 1], gain=4),
        *[act(((3, 16, 9, 11), (16,)), f"{name}, bias", act=name) for name in ACTIVATIONS],
        act(((3, 16, 9, 11),), "lrelu, clamp 1.5, no bias", act="lrelu", clamp=1.5),
        act(
            ((3, 4, 5), (4,)),
            "tanh, gain 1.3, clamp 0.9, dim 1 of a 3-D tensor",
            scale=1.0,
            act="tanh",
            gain=1.3,
            clamp=0.9,
        ),
        act(((8, 512), (512,)), "lrelu on [8, 512] (mapping network)", act="lrelu"),
        conv("3x3, up 2 (G conv0)", up=2),
        conv("3x3, down 2 (D conv)", down=2),
        OpCase(
            "noise_bias_lrelu_",
            "per-sample noise, clamp 1.0 (in place, no autograd)",
            ((2, 16, 12, 12), (16,), (2, 1, 12, 12)),
            lambda impl, x, b, noise: noise_bias_lrelu_(x.clone(), b, noise, clamp=1.0, impl=impl),
            grads=False,
            dtypes=(torch.float32,),
        ),
        wino(1),
        wino(2),
    ]


def _rel(actual: torch.Tensor | None, expected: torch.Tensor | None) -> float:
    """max_rel_error, with a missing gradient as zeros, and the absolute error where the reference is zero."""
    if actual is None and expected is None:
        return 0.0
    actual = torch.zeros_like(expected) if actual is None else actual
    expected = torch.zeros_like(actual) if expected is None else expected
    if not expected.abs().max() > 0:
        return actual.abs().max().item()
    return max_rel_error(actual, expected)


def _grads(output, inputs, grad_output=None, create_graph: bool = False):
    """``d output / d inputs`` (None for an input it does not depend on)."""
    if not (isinstance(output, torch.Tensor) and output.requires_grad):
        return [None] * len(inputs)
    return torch.autograd.grad(output, inputs, grad_output, create_graph=create_graph, allow_unused=True)


@contextlib.contextmanager
def exact_float32():
    """No TF32 in cuBLAS or cuDNN: the reference's convolutions are then float32 convolutions."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def compare(case: OpCase, impl: str, device: torch.device, dtype: torch.dtype) -> dict:
    """Errors of ``impl`` against ``ref`` for the forward and, with ``case.grads``, both orders of gradients."""
    gen = torch.Generator().manual_seed(0)

    def draw(shape, scale=1.0):
        return (scale * torch.randn(shape, generator=gen, dtype=torch.float64)).to(device, dtype)

    inputs = [draw(s, case.scale if i == 0 else 1.0).requires_grad_(case.grads) for i, s in enumerate(case.shapes)]
    with exact_float32():
        out = {way: case.run(way, *inputs) for way in ("ref", impl)}
        errors = {"forward": _rel(out[impl], out["ref"])}
        if case.grads:
            dy = draw(out["ref"].shape).requires_grad_(True)
            first = {way: _grads(y, inputs, dy, create_graph=True) for way, y in out.items()}
            errors["grad"] = max(_rel(a, b) for a, b in zip(first[impl], first["ref"]))
            weights = [draw(x.shape) for x in inputs]
            combined = {
                way: sum((g * v).sum() for g, v in zip(gs, weights) if g is not None) for way, gs in first.items()
            }
            second = {way: _grads(c, [*inputs, dy]) for way, c in combined.items()}
            errors["grad2"] = max(_rel(a, b) for a, b in zip(second[impl], second["ref"]))
    tolerance = TOLERANCE[dtype]
    return dict(
        op=case.op,
        case=case.case,
        dtype=str(dtype).removeprefix("torch."),
        impl=impl,
        **errors,
        tolerance=tolerance,
        status="pass" if all(e <= tolerance for e in errors.values()) else "FAIL",
    )


def compare_ops(device: torch.device) -> list[dict]:
    """Every case on ``device``: its compiled implementation against the reference, one row per dtype."""
    impl = "cuda" if device.type == "cuda" else "cpp"
    missing = unavailable_reason(impl)
    rows = []
    for case in op_cases():
        for dtype in case.dtypes:
            row = dict(op=case.op, case=case.case, dtype=str(dtype).removeprefix("torch."), impl=impl)
            if case.cpu_only and device.type != "cpu":
                rows.append(row | dict(status="n/a", note="a CPU op: no CUDA kernel"))
            elif missing is not None:
                note = f"impl {impl!r} unavailable: {missing} (`./dev hatch env prune` rebuilds it)"
                rows.append(row | dict(status="FAIL", note=note))
            else:
                rows.append(compare(case, impl, device, dtype))
    return rows


# ---------------------------------------------------------------------------------------------- 3. timings


def timing_row(what: str, batch: int, fast: str, slow: str, seconds: dict, note: str = "") -> dict:
    """Two ways of the same work, timed in this run; ``speedup`` = slow way's seconds / fast way's."""
    return dict(
        what=what,
        batch=batch,
        ways=[fast, slow],
        seconds={fast: seconds[fast], slow: seconds[slow]},
        speedup=seconds[slow] / seconds[fast],
        note=note,
    )


def time_synthesis(device: torch.device, sizes: Sizes) -> list[dict]:
    """Config-F synthesis, forward and forward+backward, with the compiled ops against the reference ops
    (``sg2_core.bench``'s workloads, ``sg2_kernels.bench``'s timer)."""
    impl = "cuda" if device.type == "cuda" else "cpp"
    res = sizes.g_resolution
    G = Generator(GeneratorConfig(resolution=res)).eval().requires_grad_(True).to(device)
    rows = []
    for batch in sizes.g_batches:
        work = _workloads(G, None, batch, device)  # only the G workloads run: no discriminator is needed
        for what in ("G fwd", "G fwd+bwd"):
            seconds = {}
            for way in (impl, "ref"):
                with sg2_kernels.use_impl(way):
                    seconds[f"{way} ops"] = seconds_per_call(work[what], device, sizes.min_seconds, sizes.min_calls)
            label = f"G synthesis {res} px, config F, {'forward' if what == 'G fwd' else 'forward + backward'}"
            rows.append(timing_row(label, batch, f"{impl} ops", "ref ops", seconds))
    return rows


def _encoder(method: str, tiny: bool) -> StyleEncoder:
    if tiny:  # random initialisation, 32 px, narrow: the plumbing only
        return StyleEncoder(StyleEncoderConfig(kind=method, n_styles=8, style_dim=32, input_size=32, widths=(16,) * 4))
    return from_dict(random_checkpoint() | {"opts": OPTS[method]}, kind=method).encoder  # IR-SE50, 256 px


def time_encoders(device: torch.device, sizes: Sizes) -> list[dict]:
    """pSp and e4e (random weights): the inference path (``use_impl("auto")``, no gradient) against the exact
    path (``use_impl("ref")``), and the largest relative difference of their codes."""
    rows = []
    for method in ("psp", "e4e"):
        encoder = _encoder(method, sizes.tiny_encoders).eval().to(device)
        size = encoder.config.input_size
        x = torch.rand(sizes.batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device) * 2 - 1
        seconds, codes = {}, {}
        with torch.inference_mode():
            for way, impl in (("inference path", "auto"), ("exact path", "ref")):
                with sg2_core.use_impl(impl):
                    codes[way] = encoder(x).float()
                    seconds[way] = seconds_per_call(lambda: encoder(x), device, sizes.min_seconds, sizes.min_calls)
        diff = max_rel_error(codes["inference path"], codes["exact path"])
        label = f"{method} encoder ({'tiny' if sizes.tiny_encoders else 'IR-SE50'}, {size} px)"
        note = f"codes differ by {diff:.1e} of their range"
        rows.append(timing_row(label, sizes.batch, "inference path", "exact path", seconds, note))
    return rows


def time_hyper(device: torch.device, sizes: Sizes) -> list[dict]:
    """``inv_hyper.bench.run``: batched per-sample weight offsets against a generator copy per sample."""
    (row,) = hyper_bench.run([sizes.batch], sizes.repeats, device=device, config=sizes.hyper_config)
    seconds = {way: sizes.batch / speed for way, speed in row["speed"].items()}
    ceiling = seconds["copy per sample"] / seconds["no offsets"]
    c = sizes.hyper_config
    return [
        timing_row(
            f"HyperInverter render ({c.resolution} px, channel_max {c.channel_max})",
            sizes.batch,
            "batched offsets",
            "copy per sample",
            seconds,
            f"no offsets at all: {ceiling:.2f}x; max abs diff {row['diff']:.1e}",
        )
    ]


def time_pti(device: torch.device, sizes: Sizes) -> list[dict]:
    """``inv_optim.bench.time_pti`` on the demo generator and images, the pivot W's average."""
    generator, _ = demo_generator(device)
    images, _ = demo_images(sizes.batch, device)
    distance, _ = resolve_demo_distance(None, device)
    pivot = ProjectorW(generator, steps=0, distance=distance)(images)
    ways = optim_bench.time_pti(generator, images, pivot, distance, sizes.pti_steps, sizes.repeats, device)
    seconds = {way: result["seconds"] for way, result in ways.items()}
    quality = ", ".join(f"{w}: distance {r['inversion'].extras['distance'].mean().item():.4f}" for w, r in ways.items())
    res = generator.img_resolution
    label = f"PTI ({sizes.pti_steps} steps, demo generator {res} px)"
    return [timing_row(label, sizes.batch, "batched offsets", "sequential copies", seconds, quality)]


# ----------------------------------------------------------------------------------------------- 4. output


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "CPU"


def environment(device: torch.device, quick: bool) -> dict:
    return dict(
        device=device.type,
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        quick=quick,
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        python=platform.python_version(),
        threads=torch.get_num_threads(),
        cpus=os.cpu_count(),
        sg2_kernels=sg2_kernels.__version__,
        impls={impl: reason or "available" for impl, reason in sg2_kernels.available_impls().items()},
        build_info=_build_info(),
        date=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    )


def _error(value) -> str:
    return "—" if value is None else f"{value:.1e}"


def _tests_line(tests: dict | None) -> str:
    if tests is None:
        return "not run"
    skips = "".join(f"; skipped {n}: {reason}" for reason, n in tests["skip_reasons"].items())
    return (
        f"`{tests['command']}`: {tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
        f"{tests['skipped']} skipped (exit code {tests['exit_code']}, {tests['seconds']:.0f} s){skips}"
    )


def markdown(report: dict) -> str:
    env, tests = report["environment"], report["cuda_tests"]
    mode = "quick sizes" if env["quick"] else "full sizes"
    lines = [
        f"# GPU check: {env['device']} ({env['device_name']}), {mode}",
        "",
        f"torch {env['torch']} (CUDA build: {env['torch_cuda'] or 'no'}), sg2-kernels {env['sg2_kernels']} "
        f"({', '.join(f'{k}: {v}' for k, v in env['impls'].items())}), {env['threads']} threads, {env['date']}; "
        f"{report['seconds']:.0f} s in all. **{'PASS' if report['passed'] else 'FAIL'}**",
        "",
        "Seconds per section: " + ", ".join(f"{k} {v:.0f}" for k, v in report["section_seconds"].items()) + ".",
        "",
        *[f"**Error** in {name}: `{error}`\n" for name, error in report["errors"].items()],
        "## 1. CUDA-only tests",
        "",
        _tests_line(tests),
        "",
        "## 2. Ops against the reference",
        "",
        "max |compiled - ref| / max |ref| on the same device and inputs (absolute where ref is zero); grad: the "
        "first-order gradients, grad²: the second-order ones. Tolerance "
        + ", ".join(f"{str(k).removeprefix('torch.')} {v:g}" for k, v in TOLERANCE.items())
        + " (TF32 off).",
        "",
        "| op | case | dtype | impl | forward | grad | grad² | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["ops"]:
        result = r["status"] + (f": {r['note']}" if r.get("note") else "")
        lines.append(
            f"| {r['op']} | {r['case']} | {r['dtype']} | {r['impl']} | {_error(r.get('forward'))} | "
            f"{_error(r.get('grad'))} | {_error(r.get('grad2'))} | {result} |"
        )
    lines += [
        "",
        "## 3. Timings",
        "",
        "Each row: two ways of the same work, one after the other in this run; speed-up = the second way's time / "
        "the first way's.",
        "",
        "| work | batch | first way | s | second way | s | speed-up | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["timings"]:
        (a, b), s = r["ways"], r["seconds"]
        lines.append(
            f"| {r['what']} | {r['batch']} | {a} | {s[a]:.3g} | {b} | {s[b]:.3g} | {r['speedup']:.2f}x | {r['note']} |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- command


def run(device: torch.device, out: Path, quick: bool, log=print) -> dict:
    """Every section in turn; writes ``out/gpu_check.json`` and ``out/gpu_check.md`` and returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = QUICK if quick else FULL
    report = {"environment": environment(device, quick), "cuda_tests": None, "ops": [], "timings": [], "errors": {}}
    timers = {"synthesis": time_synthesis, "encoders": time_encoders, "HyperInverter": time_hyper, "PTI": time_pti}
    sections = {
        "CUDA-only tests": lambda: report.update(cuda_tests=run_cuda_tests(device, out)),
        "ops against the reference": lambda: report["ops"].extend(compare_ops(device)),
        **{
            f"timing {name}": lambda t=timer: report["timings"].extend(t(device, sizes))
            for name, timer in timers.items()
        },
    }
    report["section_seconds"] = {}
    for i, (name, section) in enumerate(sections.items(), 1):
        log(f"gpu-check {i}/{len(sections)}: {name}", flush=True)
        start = time.perf_counter()
        try:
            section()
        except Exception as exc:  # the report is written whatever broke; the exit status says it broke
            traceback.print_exc()
            report["errors"][name] = f"{type(exc).__name__}: {exc}"
        report["section_seconds"][name] = round(time.perf_counter() - start, 1)
    report["seconds"] = round(sum(report["section_seconds"].values()), 1)
    tests_ok = report["cuda_tests"] is not None and report["cuda_tests"]["ok"]
    report["passed"] = tests_ok and not report["errors"] and all(r["status"] != "FAIL" for r in report["ops"])
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "gpu_check.md").write_text(markdown(report), encoding="utf-8")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="./dev gpu-check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda", help="default: cuda")
    parser.add_argument("--out", type=Path, default=ROOT / "gpu-check", help="output folder (default gpu-check/)")
    parser.add_argument("--quick", action="store_true", help="tiny timed work (CI's CPU run)")
    threads.add_option(parser)
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
        threads.configure(args.threads)
    except ValueError as exc:
        parser.error(str(exc))
    report = run(device, args.out, args.quick)
    print(markdown(report), end="")
    print(f"gpu-check: wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
