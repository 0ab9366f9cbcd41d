"""G256 (config F) synthesis forward on the CPU against stylegan2-ada-pytorch, same weights, one process.

    THREADS=2 python scripts/g256_vs_nvidia.py /path/to/stylegan2-ada-pytorch [BATCH ...]

Runs ours on the default path (``sg2_core.use_impl("auto")``: the CPU inference path, since nothing records a
gradient) and on the exact path (``use_impl("ref")``), and NVIDIA's, interleaved, best of REPEATS (default 8)
after a warm-up, under torch.no_grad() with constant noise. The numbers in the README come from this script.
"""

import os
import sys
import time

import torch

from sg2_core import Generator, GeneratorConfig, use_impl
from sg2_core.bench import _load_nvidia


def main(repo: str, batches: list[int]) -> None:
    nvidia_generator, _ = _load_nvidia(repo)
    G = Generator(GeneratorConfig(resolution=256)).eval()
    nv = nvidia_generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3).eval()
    nv.load_state_dict(G.state_dict())

    def ours(ws, impl):
        with use_impl(impl):
            return G.synthesis(ws, noise_mode="const")

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    print(f"threads: {torch.get_num_threads()}")
    for batch in batches:
        ws = G.mapping(torch.randn(batch, 512)).detach()
        runs = {
            "ours": lambda: ours(ws, "auto"),
            "ours, exact path": lambda: ours(ws, "ref"),
            "stylegan2-ada-pytorch": lambda: nv.synthesis(ws, noise_mode="const"),
        }
        best = dict.fromkeys(runs, float("inf"))
        with torch.no_grad():
            for run in runs.values():
                run()
            for _ in range(int(os.environ.get("REPEATS", "8"))):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run()
                    best[name] = min(best[name], time.perf_counter() - start)
        for name, seconds in best.items():
            ratio = seconds / best["stylegan2-ada-pytorch"]
            print(f"batch {batch}  {name:26s} {seconds * 1e3:7.0f} ms  {ratio:.2f}x", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(b) for b in sys.argv[2:]] or [1, 4])
