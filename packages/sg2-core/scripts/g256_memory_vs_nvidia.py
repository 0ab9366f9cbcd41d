"""Peak memory of G256 (config F) synthesis on the CPU against stylegan2-ada-pytorch, same weights.

    THREADS=2 python scripts/g256_memory_vs_nvidia.py /path/to/stylegan2-ada-pytorch [BATCH ...] [--layers]

Each side runs in its own fresh Python process (so neither sees the other's allocations): it builds its
generator, loads the same weights (a state dict this script writes to a temporary folder), then renders
REPEATS (default 3) times under torch.no_grad() with constant noise, on our default path
(``use_impl("auto")``) or NVIDIA's code. Printed per side: the process's resident memory once the weights are
loaded, its peak (the kernel's high-water mark, ``ru_maxrss``) and the peak's growth over the loaded state;
then the ratio of the peaks and the largest difference between the two images. ``--layers`` also prints, per
layer of the last render, the resident memory before it and the peak during it (the high-water mark is reset
through ``/proc/self/clear_refs``, Linux only). The numbers in the README come from this script; time is
``scripts/g256_vs_nvidia.py``'s.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def _memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, in MB."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields[field].split()[0]) / 1024


_peaks_before_reset = [0.0]


def _layer_peaks(synthesis, layer_types) -> dict:
    """Hooks that record each layer's resident memory before it runs and the high-water mark while it runs.
    Resetting the mark also resets ``ru_maxrss``, so the mark is kept before each reset."""
    rows = {}

    def before(name):
        def hook(module, args):
            _peaks_before_reset.append(_memory_mb("VmHWM"))
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # 5: reset the peak resident size to the current one
            rows[name] = _memory_mb("VmRSS")

        return hook

    def after(name):
        def hook(module, args, output):
            rows[name] = (rows[name], _memory_mb("VmHWM"))

        return hook

    for name, module in synthesis.named_modules():
        if isinstance(module, layer_types):
            module.register_forward_pre_hook(before(name))
            module.register_forward_hook(after(name))
    return rows


def child(side: str, repo: str, folder: str, batch: int, layers: bool) -> None:
    """One side's measurement, in a fresh process; writes its numbers and image into ``folder``."""
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    state = torch.load(Path(folder) / "weights.pt")
    if side == "ours":
        from sg2_core import Generator, GeneratorConfig  # noqa: PLC0415 (each side imports only its own code)
        from sg2_core.nn.generator import SynthesisLayer, ToRGBLayer  # noqa: PLC0415

        G = Generator(GeneratorConfig(resolution=256)).eval()
    else:
        sys.path.insert(0, repo)
        from training.networks import Generator, SynthesisLayer, ToRGBLayer  # noqa: PLC0415 (user-provided code)

        G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3).eval()
    G.load_state_dict(state)
    del state
    ws = torch.load(Path(folder) / "ws.pt")[:batch]
    rows = _layer_peaks(G.synthesis, (SynthesisLayer, ToRGBLayer)) if layers else {}
    loaded = _memory_mb("VmRSS")
    with torch.no_grad():
        for _ in range(int(os.environ.get("REPEATS", "3"))):
            image = G.synthesis(ws, noise_mode="const")
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, *_peaks_before_reset)
    torch.save(image, Path(folder) / f"{side}.pt")
    (Path(folder) / f"{side}.json").write_text(json.dumps({"loaded": loaded, "peak": peak, "layers": rows}))


def main(repo: str, batches: list[int], layers: bool) -> None:
    from sg2_core import Generator, GeneratorConfig  # noqa: PLC0415

    G = Generator(GeneratorConfig(resolution=256)).eval()
    print(f"threads: {os.environ.get('THREADS', '2')}, repeats: {os.environ.get('REPEATS', '3')}")
    with tempfile.TemporaryDirectory() as folder:
        torch.save(G.state_dict(), Path(folder) / "weights.pt")
        torch.save(
            G.mapping(torch.randn(max(batches), 512, generator=torch.Generator().manual_seed(0))).detach(),
            Path(folder) / "ws.pt",
        )
        del G
        for batch in batches:
            numbers = {}
            for side in ("ours", "nvidia"):
                command = [sys.executable, __file__, "--child", side, repo, folder, str(batch), str(int(layers))]
                subprocess.run(command, check=True)
                numbers[side] = json.loads((Path(folder) / f"{side}.json").read_text())
            for side, label in (("ours", "ours"), ("nvidia", "stylegan2-ada-pytorch")):
                n = numbers[side]
                print(
                    f"batch {batch}  {label:22s} loaded {n['loaded']:6.0f} MB  peak {n['peak']:6.0f} MB  "
                    f"(+{n['peak'] - n['loaded']:4.0f} MB over loaded)",
                    flush=True,
                )
            ours, theirs = (torch.load(Path(folder) / f"{side}.pt") for side in ("ours", "nvidia"))
            gap = float((ours - theirs).abs().max() / theirs.abs().max())
            ratio = numbers["ours"]["peak"] / numbers["nvidia"]["peak"]
            print(
                f"batch {batch}  peak ours / stylegan2-ada-pytorch: {ratio:.2f}x  (images differ by {gap:.1e} of the range)"
            )
            if layers:
                print(f"batch {batch}  per layer, last render: resident before -> peak during (MB), ours | theirs")
                for name, (before, peak) in numbers["ours"]["layers"].items():
                    their_before, their_peak = numbers["nvidia"]["layers"].get(name, (float("nan"),) * 2)
                    print(f"  {name:12s} {before:6.0f} -> {peak:6.0f} | {their_before:6.0f} -> {their_peak:6.0f}")


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6] == "1")
    else:
        arguments = [a for a in sys.argv[2:] if a != "--layers"]
        main(sys.argv[1], [int(b) for b in arguments] or [1, 4], "--layers" in sys.argv[2:])
