"""``python -m sg2_core.bench``: generator and discriminator throughput for each op implementation.

For each resolution (config F channels) and batch size it times G forward, G forward+backward
(w.r.t. ws and the weights), D forward and D forward+backward, once per available sg2-kernels
implementation, and prints images/s with the speed-up over the pure-PyTorch ops measured in the
same run. ``--nvidia-repo PATH`` adds NVIDIA's stylegan2-ada-pytorch generator and discriminator
from a checkout the user provides (never shipped here), loaded with the same weights, so the
comparison is side by side in one process; the outputs are checked to agree first.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import torch

from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.generator import Generator
from sg2_kernels import use_impl
from sg2_kernels._backend import impls_for_device
from sg2_kernels.bench import seconds_per_call


def _load_nvidia(repo: str):
    sys.path.insert(0, repo)
    from training.networks import Discriminator as NvDiscriminator  # noqa: PLC0415 (user-provided code)
    from training.networks import Generator as NvGenerator  # noqa: PLC0415

    return NvGenerator, NvDiscriminator


def _workloads(G, D, batch, device):
    gen = torch.Generator().manual_seed(0)
    ws = G.mapping(torch.randn(batch, G.z_dim, generator=gen).to(device))
    real = torch.rand(batch, G.img_channels, G.img_resolution, G.img_resolution, generator=gen).to(device) * 2 - 1

    def g_forward():
        with torch.no_grad():
            G.synthesis(ws, noise_mode="const")

    def g_backward():
        w = ws.detach().requires_grad_(True)
        G.synthesis(w, noise_mode="const").square().mean().backward()

    def d_forward():
        with torch.no_grad():
            D(real)

    def d_backward():
        D(real.requires_grad_(False)).sum().backward()

    return {"G fwd": g_forward, "G fwd+bwd": g_backward, "D fwd": d_forward, "D fwd+bwd": d_backward}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA): autocast to float16")
    parser.add_argument("--nvidia-repo", help="a stylegan2-ada-pytorch checkout to compare against")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    impls = impls_for_device(device)
    nvidia = _load_nvidia(args.nvidia_repo) if args.nvidia_repo else None
    print(
        f"sg2_core.bench: device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"ops {impls}{', NVIDIA ' + args.nvidia_repo if nvidia else ''}"
    )
    print(f"{'res':>5s} {'batch':>5s} {'what':10s} {'impl':7s} {'img/s':>9s} {'ms/batch':>10s} {'vs ref':>7s}")

    def amp():
        return torch.autocast("cuda", dtype=torch.float16) if args.amp else contextlib.nullcontext()

    for res in args.resolutions:
        G = Generator(GeneratorConfig(resolution=res)).eval().requires_grad_(True).to(device)
        D = Discriminator(DiscriminatorConfig(resolution=res)).eval().to(device)
        contenders = {impl: (G, D, lambda impl=impl: use_impl(impl)) for impl in impls}
        if nvidia:
            nv_G = nvidia[0](z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3).eval().to(device)
            nv_D = nvidia[1](c_dim=0, img_resolution=res, img_channels=3).eval().to(device)
            nv_G.load_state_dict(G.state_dict())
            nv_D.load_state_dict(D.state_dict())
            with torch.no_grad():
                ws = G.mapping(torch.randn(2, 512, device=device))
                ours, theirs = G.synthesis(ws, noise_mode="const"), nv_G.synthesis(ws, noise_mode="const")
                gap = ((ours - theirs).abs().max() / theirs.abs().max()).item()
            print(f"      (NVIDIA G {res}: same weights, max relative difference {gap:.2e})")
            contenders["nvidia"] = (
                _NvidiaAdapter(nv_G),
                _NvidiaAdapter(nv_D, discriminator=True),
                contextlib.nullcontext,
            )
        for batch in args.batches:
            baseline = {}
            for name, (g, d, ctx) in contenders.items():
                with ctx(), amp():
                    for what, fn in _workloads(g, d, batch, device).items():
                        seconds = seconds_per_call(fn, device, args.min_seconds, min_calls=2)
                        baseline.setdefault(what, seconds)
                        print(
                            f"{res:5d} {batch:5d} {what:10s} {name:7s} {batch / seconds:9.2f} {seconds * 1e3:10.1f} "
                            f"{baseline[what] / seconds:6.2f}x",
                            flush=True,
                        )
    print("vs ref = time with the pure-PyTorch ops / this time, both measured in this run")
    return 0


class _NvidiaAdapter(torch.nn.Module):
    """Give NVIDIA's networks our call signature (no class labels)."""

    def __init__(self, net, discriminator=False):
        super().__init__()
        self.net, self.discriminator = net, discriminator
        if not discriminator:
            self.z_dim, self.img_channels, self.img_resolution = net.z_dim, net.img_channels, net.img_resolution
            self.mapping = lambda z: net.mapping(z, None)
            self.synthesis = lambda ws, noise_mode: net.synthesis(ws, noise_mode=noise_mode)

    def forward(self, x):
        return self.net(x, None)


if __name__ == "__main__":
    raise SystemExit(main())
