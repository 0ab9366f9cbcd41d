"""What the command line and the benchmark run on: the shipped demo generator and test images when
present, else a random generator of the demo's architecture and images it renders."""

from __future__ import annotations

import torch

from sg2_core import Generator, demo


def demo_generator(device=None) -> tuple[Generator, str]:
    try:
        return demo.load_generator(device), "demo Fashion-MNIST generator (shipped weights)"
    except FileNotFoundError:
        torch.manual_seed(0)
        g = Generator(demo.GENERATOR_CONFIG).to(device).eval().requires_grad_(False)
        return g, "random generator of the demo architecture (demo weights not shipped yet)"


@torch.no_grad()
def demo_images(generator, n: int, device=None) -> tuple[torch.Tensor, str]:
    try:
        return demo.load_test_images(device)[0][:n], "demo test images"
    except FileNotFoundError:
        gen = torch.Generator().manual_seed(1)
        z = torch.randn(n, generator.z_dim, generator=gen).to(device)
        ws = generator.mapping(z, truncation_psi=0.7)
        return generator.synthesis(ws, noise_mode="random").clamp(-1, 1), "images rendered from random z"


def resolve_demo_distance(name: str | None, device=None):
    """The named distance through inv-metrics, or a per-image MSE stand-in when it cannot load."""
    try:
        from inv_metrics import load_distance

        return load_distance(name or "fmnist", device=device), name or "fmnist"
    except Exception as error:  # not written yet, or weights missing: still measure speed
        def mse(x, y):
            return (x - y).square().flatten(1).mean(dim=1)

        return mse, f"per-image MSE (stand-in: {type(error).__name__}: {str(error)[:80]})"
