"""What the command line and the benchmarks run on: the shipped demo generator, its test images and the
domain's perceptual distance (each returned with a line saying what it is)."""

from __future__ import annotations

from sg2_core import Generator, demo


def demo_generator(device=None) -> tuple[Generator, str]:
    return demo.load_generator(device), "demo Fashion-MNIST generator (shipped weights)"


def demo_images(n: int, device=None):
    return demo.load_test_images(device)[0][:n], "demo test images"


def resolve_demo_distance(name: str | None, device=None):
    from inv_metrics import load_distance

    name = name or "fmnist"
    return load_distance(name, device=device), name
