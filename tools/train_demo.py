"""Rebuild the embedded demo networks from Fashion-MNIST: train, export, draw the sample grid, measure FID.

    python tools/train_demo.py [--kimg 120] [--run runs/fmnist32] [--device cuda]

Needs the Debian package ``dataset-fashion-mnist``. The training is ``python -m sg2_core.train --preset
fmnist32`` (deterministic on a CPU for a given seed and thread count); an interrupted run continues with
the same command. The export keeps G_ema and D of the last snapshot in
``packages/sg2-core/src/sg2_core/assets/fmnist32.safetensors``, writes ``packages/sg2-core/scripts/fmnist32_samples.png``
(the README's picture), and, when inv-metrics is installed, prints FID/KID (fmnist-features) of 10,000 samples against the test split
(``python -m inv_metrics.fid``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from sg2_core import demo
from sg2_core.checkpoints import native
from sg2_core.images import save_grid
from sg2_core.training.gan import main as train_main
from sg2_core.training.run import latest_snapshot

CORE = Path(__file__).resolve().parents[1] / "packages" / "sg2-core"  # a root tool: it needs inv-metrics too
ASSET = CORE / "src" / "sg2_core" / "assets" / demo.CHECKPOINT


def export(snapshot: Path) -> None:
    ckpt = native.load(snapshot)
    state = ckpt.extra["training"]
    native.save(
        ASSET,
        G_ema=ckpt.G_ema,
        D=ckpt.D,
        extra={
            "recipe": "tools/train_demo.py",
            "images_seen": state["images_seen"],
            "options": state["options"],
            "data": "Fashion-MNIST train split (60,000 images), zero-padded to 32x32",
        },
    )
    print(f"wrote {ASSET} ({ASSET.stat().st_size / 1e6:.2f} MB) from {snapshot.name}")


@torch.no_grad()
def sample_grid(path: Path) -> None:
    G = demo.load_generator()
    z = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(2026))
    save_grid(G(z, noise_mode="const"), path, nrow=8)
    print(f"wrote {path}")


def fid_against_test_set() -> None:
    try:
        from inv_metrics.fid import main as fid_main
    except ImportError:
        print("inv-metrics is not installed: FID skipped")
        return
    fid_main([str(ASSET), "--reference", "fmnist-test", "--num-samples", "10000"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kimg", default="120", help="thousands of training images (the shipped file: see its metadata)")
    p.add_argument("--run", default="runs/fmnist32", help="training output directory")
    p.add_argument("--device", default=None)
    p.add_argument("--skip-training", action="store_true", help="export the newest snapshot of --run as it is")
    args = p.parse_args(argv)
    if not args.skip_training:
        run = Path(args.run)
        resume = ["--resume", str(run)] if list(run.glob("snapshot-*.safetensors")) else []
        code = train_main(
            [
                "--data",
                "fmnist-train",
                "--resolution",
                "32",
                "--pad",
                "--preset",
                "fmnist32",
                "--out",
                str(run),
                "--kimg",
                args.kimg,
                "--snap-kimg",
                "10",
                "--workers",
                "0",
                *(["--device", args.device] if args.device else []),
                *resume,
            ]
        )
        if code:
            return code
    export(latest_snapshot(args.run))
    sample_grid(CORE / "scripts" / "fmnist32_samples.png")
    fid_against_test_set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
