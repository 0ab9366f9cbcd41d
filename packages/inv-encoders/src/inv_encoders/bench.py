"""Our pSp and e4e encoders against the official code, full size, same weights, one process.

    python -m inv_encoders.bench --psp-repo /tmp/psp [--e4e-repo /tmp/e4e] [--batches 1 8] [--repeats 3]
        [--threads 2] [--device cpu] [--amp none|bf16|fp16] [--with-exact]

``--psp-repo`` / ``--e4e-repo`` are checkouts of eladrich/pixel2style2pixel and omertov/encoder4editing (e.g.
``git archive HEAD models | tar -x -C /tmp/psp``); their encoder modules are imported from there at run time,
with ``models.stylegan2.op`` (CUDA extensions the encoders never call) replaced by a stub. Nothing of theirs
is copied here.

Both sides get the same random IR-SE50 weights, 256 px inputs, 3 channels and 18 styles: a checkpoint dict
in the official layout (``encoder.*``, ``latent_avg``, ``opts``) read by :func:`inv_encoders.checkpoints.from_dict`,
and its ``encoder.*`` loaded strictly into the official class. The reference forward is the official
encoder plus ``latent_avg`` (what their ``pSp.forward`` does with ``start_from_latent_avg``). They run
interleaved under ``torch.inference_mode``; prints images/s of each (median of the repeats), the ratio, the
peak memory growth during one call (resident set on the CPU, allocator peak on CUDA) and the max |difference|
of the codes. ``--with-exact`` adds our exact path (``sg2_core.use_impl("ref")``) as a third column.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import statistics
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

from inv_metrics.memory import peak_growth
from sg2_core import threads, use_impl

from .checkpoints import from_dict
from .networks import StyleEncoder, StyleEncoderConfig

OPTS = {
    "psp": {"encoder_type": "GradualStyleEncoder", "output_size": 1024, "input_nc": 3, "start_from_latent_avg": True},
    "e4e": {"encoder_type": "Encoder4Editing", "stylegan_size": 1024, "start_from_latent_avg": True},
}
REPOS = {"psp": ("pixel2style2pixel", "GradualStyleEncoder"), "e4e": ("encoder4editing", "Encoder4Editing")}


# ------------------------------------------------------------------------------------------------ weights


def random_checkpoint(seed: int = 0, calibration: int = 2) -> dict:
    """A pSp-layout checkpoint dict (full size) with random weights whose activations keep a sane range:
    convs N(0, 2/fan_in), EqualLinear N(0, 1), BN affine near 1 and running statistics from one pass over
    random images (as the fixtures were made), PReLU slopes in [0.05, 0.4], a random ``latent_avg``."""
    gen = torch.Generator().manual_seed(seed)
    net = StyleEncoder(StyleEncoderConfig(kind="psp"))
    with torch.no_grad():
        for name, p in net.encoder.named_parameters():
            if name.endswith("linear.weight"):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif p.ndim == 4:
                p.copy_(torch.randn(p.shape, generator=gen) * (2 / p[0].numel()) ** 0.5)
            elif ".res_layer.2." in name or name.startswith("input_layer.2."):  # PReLU
                p.copy_(torch.rand(p.shape, generator=gen) * 0.35 + 0.05)
            elif name.endswith("weight"):  # BN scale
                p.copy_(torch.rand(p.shape, generator=gen) * 0.6 + 0.5)
            else:  # BN shift and conv / linear biases
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        bns = [m for m in net.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
        for bn in bns:
            bn.momentum = 1.0  # one pass: the running statistics become that pass's batch statistics
        net.encoder.train()
        net.encoder.forward_features(torch.rand(calibration, 3, 256, 256, generator=gen) * 2 - 1)
        for bn in bns:
            bn.momentum = 0.1
            bn.running_var.mul_(torch.rand(bn.running_var.shape, generator=gen) * 0.45 + 0.8)
    state = {f"encoder.{k}": v for k, v in net.encoder.state_dict().items()}
    return {"state_dict": state, "latent_avg": torch.randn(18, 512, generator=gen) * 0.5, "opts": {}}


# ------------------------------------------------------------------------------------------- the reference


def _stub_cuda_ops() -> types.ModuleType:
    """``models.stylegan2.op`` compiles CUDA kernels at import; the encoders only import names from it."""
    op = types.ModuleType("models.stylegan2.op")

    def refused(*args, **kwargs):
        raise NotImplementedError("models.stylegan2.op is stubbed by inv_encoders.bench (the encoders never call it)")

    op.fused_leaky_relu = op.upfirdn2d = refused
    op.FusedLeakyReLU = type("FusedLeakyReLU", (nn.Module,), {"forward": refused})
    return op


def check_repo(repo: str | os.PathLike, method: str) -> Path:
    """The checkout's root, or ValueError naming what is missing."""
    root = Path(repo)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder (a checkout of {REPOS[method][0]})")
    if not (root / "models" / "encoders" / "psp_encoders.py").is_file():
        raise ValueError(f"{root}: no models/encoders/psp_encoders.py there (not a checkout of {REPOS[method][0]})")
    return root


def reference_class(repo: str | os.PathLike, method: str) -> type:
    """The official encoder class, imported from the checkout (its top-level package is ``models``, so the two
    repositories are imported one after the other, each with a fresh ``models``)."""
    root = str(check_repo(repo, method))
    for name in [m for m in sys.modules if m == "models" or m.startswith("models.")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    try:
        sys.modules["models.stylegan2.op"] = _stub_cuda_ops()
        module = importlib.import_module("models.encoders.psp_encoders")
    finally:
        sys.path.remove(root)
    return getattr(module, REPOS[method][1])


def reference_encoder(cls: type, method: str, state: dict) -> nn.Module:
    opts = types.SimpleNamespace(input_nc=3, n_styles=18, stylegan_size=1024)
    with contextlib.redirect_stdout(None):  # some constructors print
        enc = cls(50, "ir_se", opts)
    enc.load_state_dict({k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}, strict=True)
    return enc.eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------- measuring


def _timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def run(
    psp_repo,
    e4e_repo=None,
    batches=(1, 8),
    repeats: int = 3,
    device="cpu",
    amp: str = "none",
    with_exact: bool = False,
    seed: int = 0,
    log=print,
) -> list[dict]:
    """One row per (method, batch): ``speed`` and ``memory`` per way, ``diff`` (ours vs the reference)."""
    device = torch.device(device)
    ckpt = random_checkpoint(seed)
    repos = {"psp": psp_repo, "e4e": e4e_repo}
    autocast = {
        "none": contextlib.nullcontext,
        "bf16": lambda: torch.autocast(device.type, torch.bfloat16),
        "fp16": lambda: torch.autocast(device.type, torch.float16),
    }[amp]
    rows = []
    for method in [m for m in ("psp", "e4e") if repos[m] is not None]:
        ours = from_dict(ckpt | {"opts": OPTS[method]}, kind=method).encoder.to(device)
        ref = reference_encoder(reference_class(repos[method], method), method, ckpt["state_dict"]).to(device)
        latent_avg = ckpt["latent_avg"].to(device)

        def reference(x, ref=ref, latent_avg=latent_avg):
            return ref(x) + latent_avg

        ways = {"ours": ours, "reference": reference}
        if with_exact:

            def exact(x, ours=ours):
                with use_impl("ref"):
                    return ours(x)

            ways["ours exact"] = exact
        for n in batches:
            x = (torch.rand(n, 3, 256, 256, generator=torch.Generator().manual_seed(seed + n)) * 2 - 1).to(device)
            outs, memory, times = {}, {}, {k: [] for k in ways}
            with torch.inference_mode(), autocast():
                for name, fn in ways.items():  # warm-up (and the caches of the inference path), then memory
                    outs[name] = fn(x).float()
                    memory[name] = peak_growth(lambda fn=fn: fn(x), device)[1]
                for _ in range(repeats):  # interleaved
                    for name, fn in ways.items():
                        times[name].append(_timed(lambda fn=fn: fn(x), device))
            diff = (outs["ours"] - outs["reference"]).abs().max().item()
            scale = outs["reference"].abs().max().item()
            speed = {k: n / statistics.median(v) for k, v in times.items()}
            rows.append(dict(method=method, batch=n, speed=speed, memory=memory, diff=diff, scale=scale))
            log(format_row(rows[-1], with_exact))
        del ours, ref, ways
    return rows


def format_row(row: dict, with_exact: bool = False) -> str:
    s, m = row["speed"], row["memory"]
    exact = f" {s['ours exact']:.3f} | {m['ours exact'] / 2**20:.0f} |" if with_exact else ""
    return (
        f"| {row['method']} | {row['batch']} | {s['ours']:.3f} | {s['reference']:.3f} | "
        f"{s['ours'] / s['reference']:.2f}x | {m['ours'] / 2**20:.0f} / {m['reference'] / 2**20:.0f} |"
        f"{exact} {row['diff']:.2g} (of {row['scale']:.2g}) |"
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as every command of the toolkit
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def main(argv=None) -> int:
    parser = _Parser(prog="python -m inv_encoders.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--psp-repo", required=True, help="a checkout of eladrich/pixel2style2pixel")
    parser.add_argument("--e4e-repo", help="a checkout of omertov/encoder4editing (e4e rows; none without it)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    threads.add_option(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none", help="autocast dtype")
    parser.add_argument("--with-exact", action="store_true", help="also time our exact path (use_impl('ref'))")
    args = parser.parse_args(argv)
    for name in ("batches", "repeats"):
        value = getattr(args, name)
        if min(value if isinstance(value, list) else [value]) < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    for flag, repo, method in (("--psp-repo", args.psp_repo, "psp"), ("--e4e-repo", args.e4e_repo, "e4e")):
        try:
            if repo is not None:
                check_repo(repo, method)
        except ValueError as exc:
            parser.error(f"{flag} {exc}")
    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        parser.error(f"--device {args.device}: {exc}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available")
    try:
        chosen = threads.configure(args.threads).threads
    except ValueError as exc:
        parser.error(str(exc))
    where = f"CPU, {chosen} thread(s)" if device.type == "cpu" else str(device)
    print(
        f"IR-SE50, 256 px, 3 channels, 18 styles, random weights in the official layout; {where}, amp "
        f"{args.amp}; median of {args.repeats}; load average {os.getloadavg()[0]:.2f} at the start"
    )
    exact = " ours exact img/s | peak exact (MB) |" if args.with_exact else ""
    print(
        f"| method | batch | ours img/s | reference img/s | ratio | peak memory ours / reference (MB) |{exact} "
        "max abs diff |"
    )
    print("|---|---|---|---|---|---|" + ("---|---|" if args.with_exact else "") + "---|")
    run(args.psp_repo, args.e4e_repo, args.batches, args.repeats, device, args.amp, args.with_exact)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
