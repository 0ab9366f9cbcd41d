"""``python -m sg2_kernels.bench``: every available implementation on the op shapes of StyleGAN2.

The shapes are those of a config-F generator and residual discriminator (channels 512 up to 64 px,
then halving) at the given resolution and batch. Each op group is timed forward and
forward+backward for every implementation, in this process, and printed as a speed-up over the
pure-PyTorch reference measured in the same run. ``--winograd`` (CPU) also times
:func:`sg2_kernels.winograd.conv3x3` on the generator's 3x3 convolutions against what torch runs for
them (NNPACK where it has it, else oneDNN; a transposed convolution for ``up=2``), interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import available_impls, bias_act, setup_filter, upfirdn2d, winograd
from ._backend import impls_for_device, unavailable_reason


def channels(res: int) -> int:
    """Config F: ``min(32768 / res, 512)``."""
    return min(32768 // res, 512)


@dataclass
class OpCall:
    """One op invocation of the networks: input shape and a function of ``(x, b, impl)``."""

    shape: tuple[int, ...]
    run: Callable
    with_bias: bool = False


def stylegan2_op_groups(resolution: int, batch: int) -> dict[str, list[OpCall]]:
    f = setup_filter([1, 3, 3, 1])
    resolutions = [2**k for k in range(3, resolution.bit_length())]  # 8 .. resolution

    def blur(pad, gain=1):
        return lambda x, b, impl: upfirdn2d(x, f, padding=pad, gain=gain, impl=impl)

    def lrelu(x, b, impl):
        return bias_act(x, b, act="lrelu", impl=impl)

    groups: dict[str, list[OpCall]] = {
        "G upsample x2 (toRGB skip)": [],
        "G blur after up-conv": [],
        "D blur before down-conv": [],
        "D downsample x2 (skip)": [],
        "G+D bias_act lrelu": [OpCall((batch, 512), lrelu, True) for _ in range(8)],  # mapping network
    }
    up2 = lambda x, b, impl: upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl=impl)  # noqa: E731
    down2 = lambda x, b, impl: upfirdn2d(x, f, down=2, padding=[1, 1, 1, 1], impl=impl)  # noqa: E731
    for r in resolutions:
        c_prev, c = channels(r // 2), channels(r)
        groups["G upsample x2 (toRGB skip)"].append(OpCall((batch, 3, r // 2, r // 2), up2))
        # a 3x3 transposed conv with stride 2 gives (2*(r/2) + 1) pixels; the blur trims it to r
        groups["G blur after up-conv"].append(OpCall((batch, c, r + 1, r + 1), blur([1, 1, 1, 1], gain=4)))
        groups["G+D bias_act lrelu"] += [OpCall((batch, c, r, r), lrelu, True)] * 2  # G conv0, conv1
        groups["D blur before down-conv"].append(OpCall((batch, c, r, r), blur([2, 2, 2, 2])))
        groups["D downsample x2 (skip)"].append(OpCall((batch, c, r, r), down2))
        groups["G+D bias_act lrelu"] += [
            OpCall((batch, c, r, r), lrelu, True),
            OpCall((batch, c_prev, r // 2, r // 2), lrelu, True),
        ]
    return groups


def seconds_per_call(fn: Callable[[], None], device: torch.device, min_seconds: float, min_calls: int = 3) -> float:
    """Median seconds per call, after a warm-up call, with device synchronisation."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    samples, start = [], time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def time_group(calls: list[OpCall], impl: str, device: torch.device, backward: bool, min_seconds: float) -> float:
    gen = torch.Generator().manual_seed(0)
    tensors = []
    for call in calls:
        x = torch.randn(call.shape, generator=gen).to(device).requires_grad_(backward)
        b = torch.randn(call.shape[1], generator=gen).to(device).requires_grad_(backward) if call.with_bias else None
        tensors.append((x, b))
    grads = [torch.randn_like(call.run(x, b, "ref")) for call, (x, b) in zip(calls, tensors)] if backward else None

    def run():
        for i, (call, (x, b)) in enumerate(zip(calls, tensors)):
            y = call.run(x, b, impl)
            if backward:
                y.backward(grads[i])

    with torch.set_grad_enabled(backward):
        return seconds_per_call(run, device, min_seconds)


def winograd_rows(resolution: int, batch: int, min_seconds: float):
    """``(up, in channels, out channels, input size, torch's seconds, Winograd's seconds)`` for every 3x3
    convolution of a config-F generator (forward, batch ``batch``, inputs of 8 px and more)."""
    torch_nnpack = hasattr(torch, "_nnpack_spatial_convolution") and torch._nnpack_available()
    gen = torch.Generator().manual_seed(0)
    for r in [2**k for k in range(3, resolution.bit_length())]:
        for up, size, c_in in ((2, r // 2, channels(r // 2)), (1, r, channels(r))):
            if size < 8:
                continue
            c_out = channels(r)
            x = torch.randn(batch, c_in, size, size, generator=gen)
            w = torch.randn(c_out, c_in, 3, 3, generator=gen)
            u, wt = winograd.transform_weight(w, up), w.transpose(0, 1).contiguous()
            if up == 2:
                baseline = lambda: torch.nn.functional.conv_transpose2d(x, wt, stride=2)  # noqa: E731
            elif torch_nnpack:
                baseline = lambda: torch._nnpack_spatial_convolution(x, w, None, [1, 1], [1, 1])  # noqa: E731
            else:
                baseline = lambda: torch.nn.functional.conv2d(x, w, padding=1)  # noqa: E731
            with torch.no_grad():
                times = [
                    seconds_per_call(f, torch.device("cpu"), min_seconds)
                    for f in (baseline, lambda: winograd.conv3x3(x, u, up))
                ]
            yield up, c_in, c_out, size, *times


def print_winograd_table(resolution: int, batch: int, min_seconds: float) -> None:
    reason = unavailable_reason("cpp")
    if reason is not None:
        print(f"winograd: the cpp implementation is unavailable ({reason})")
        return
    header = f"{'winograd conv':18s} {'in->out':>9s} {'px':>4s} {'torch ms':>9s} {'winograd ms':>12s} {'speed-up':>8s}"
    print(header)
    print("-" * len(header))
    for up, c_in, c_out, size, base, wino in winograd_rows(resolution, batch, min_seconds):
        kind = "3x3" if up == 1 else "3x3 transposed x2"
        print(
            f"{kind:18s} {f'{c_in}->{c_out}':>9s} {size:4d} {base * 1e3:9.2f} {wino * 1e3:12.2f} {base / wino:7.2f}x",
            flush=True,
        )
    print(
        "speed-up = torch's time / Winograd's time, per layer, one after the other in this run (weights transformed once)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--min-seconds", type=float, default=0.5, help="time each measurement for at least this long")
    parser.add_argument("--winograd", action="store_true", help="also time the Winograd convolutions (CPU)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    impls = impls_for_device(device)
    print(
        f"sg2_kernels.bench: StyleGAN2 {args.resolution} px op shapes, batch {args.batch}, device {device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for impl, reason in available_impls().items():
        if reason is not None:
            print(f"  (impl {impl} unavailable: {reason})")
    header = f"{'op group':30s} {'impl':5s} {'fwd ms':>9s} {'speed-up':>8s} {'fwd+bwd ms':>11s} {'speed-up':>8s}"
    print(header)
    print("-" * len(header))
    for name, calls in stylegan2_op_groups(args.resolution, args.batch).items():
        baseline = None
        for impl in impls:
            fwd = time_group(calls, impl, device, backward=False, min_seconds=args.min_seconds)
            both = time_group(calls, impl, device, backward=True, min_seconds=args.min_seconds)
            baseline = baseline or (fwd, both)
            print(
                f"{name:30s} {impl:5s} {fwd * 1e3:9.2f} {baseline[0] / fwd:7.2f}x {both * 1e3:11.2f} "
                f"{baseline[1] / both:7.2f}x",
                flush=True,
            )
    print("speed-up = reference time / this implementation's time, both measured in this run")
    if args.winograd and device.type == "cpu":
        print_winograd_table(args.resolution, args.batch, args.min_seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
