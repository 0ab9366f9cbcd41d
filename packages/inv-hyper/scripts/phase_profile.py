"""Where HyperInverter's time goes on the demo: phase I and phase II as the report times them, and phase II's parts.

    THREADS=1 CPU=1 python scripts/phase_profile.py      # one thread, CPU time (steady on a loaded machine)
    THREADS=2 python scripts/phase_profile.py            # two threads, wall time

The shipped demo generator and networks, the first 32 demo test images in one batch (the report's). Phase I is
``hyperinverter-w`` called and its result rendered; phase II is ``hyperinverter`` called and rendered (its
per-sample weight offsets). The parts of phase II are timed alone on the same tensors: the W encoder, the
phase-I render ``G(w)``, the W-bar encoder on the phase-I images and the inputs (one stack of 64), the
hypernetwork's regressors, the render with offsets. Everything runs interleaved, best of REPEATS (default 9).
The numbers in the README ("Phase II's time") come from this script.
"""

import os
import time

import torch

from inv_hyper.methods import HyperInverter, HyperInverterW, resize
from sg2_core import demo


def main() -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    clock = time.process_time if os.environ.get("CPU") else time.perf_counter
    repeats = int(os.environ.get("REPEATS", "9"))
    G = demo.load_generator().eval().requires_grad_(False)
    images = demo.load_test_images()[0][:32]
    phase2, phase1 = HyperInverter(G), HyperInverterW(G)
    networks, size = phase2.networks, phase2.encoder_size
    with torch.no_grad():
        ws, _ = phase2.phase1_ws(images)
        w_images = G.synthesis(ws, noise_mode="const")
        deltas = phase2(images).weight_offsets
        both = torch.cat([resize(w_images, size), resize(images, size)])
        w_image_codes, w_bar_codes = networks.w_bar_encoder(both).split(len(images))
        runs = {
            "phase I": lambda: phase1(images).render(),
            "phase II": lambda: phase2(images).render(),
            "W encoder (in phase I)": lambda: networks.w_encoder(resize(images, size)),
            "render G(w) (in phase I)": lambda: G.synthesis(ws, noise_mode="const"),
            "W-bar encoder, 2 x 32 images": lambda: networks.w_bar_encoder(
                torch.cat([resize(w_images, size), resize(images, size)])
            ),
            "hypernetwork regressors": lambda: networks.hypernet(w_image_codes, w_bar_codes),
            "render with the offsets": lambda: G.synthesis(ws, weight_offsets=deltas, noise_mode="const"),
        }
        best = dict.fromkeys(runs, float("inf"))
        for run in runs.values():
            run()
        for _ in range(repeats):
            for name, run in runs.items():
                start = clock()
                run()
                best[name] = min(best[name], clock() - start)
    first, second = best.pop("phase I"), best.pop("phase II")
    print(
        f"{torch.get_num_threads()} thread(s), {clock.__name__}, 32 images, best of {repeats}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"phase I {first * 1e3:.1f} ms, phase II {second * 1e3:.1f} ms: {second / first:.2f}x")
    for name, seconds in best.items():
        print(f"  {name:30s} {seconds * 1e3:7.1f} ms  {seconds / second:6.1%} of phase II")
    floor = first + best["W-bar encoder, 2 x 32 images"] + best["render G(w) (in phase I)"]
    print(f"floor (phase I + W-bar encoder + a render no dearer than G(w), free regressors): {floor / first:.2f}x")


if __name__ == "__main__":
    main()
