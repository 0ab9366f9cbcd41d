"""Rebuild ``src/sg2_core/assets/fmnist32_test256.safetensors``: 256 held-out Fashion-MNIST images for the demo.

The images come from the TEST split (never used to train the demo networks), a seeded class-balanced
choice (26 images of classes 0-5, 25 of classes 6-9), kept in the test split's order, padded 28 -> 32.
Needs the Debian package ``dataset-fashion-mnist``.

    python scripts/make_demo_testset.py [--seed 0] [--out src/sg2_core/assets/fmnist32_test256.safetensors]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from sg2_core.datasets import open_dataset

COUNT, CLASSES = 256, 10
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "sg2_core" / "assets" / "fmnist32_test256.safetensors"


def choose(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Indices of ``count`` images, as equal a share of each class as possible, sorted."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for cls in range(CLASSES):
        per_class = count // CLASSES + (cls < count % CLASSES)
        members = (labels == cls).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    dataset = open_dataset("fmnist-test", pad_to=32)
    indices = choose(dataset.labels, COUNT, args.seed)
    images = torch.stack([dataset[int(i)][0] for i in indices])
    labels = dataset.labels[indices].to(torch.int64)
    # one metadata entry: safetensors writes several in a random order, and the file should be byte-reproducible
    info = {
        "source": "Fashion-MNIST test split (t10k-images-idx3-ubyte), zero-padded 28x28 -> 32x32",
        "seed": args.seed,
        "indices": indices.tolist(),
    }
    metadata = {"info": json.dumps(info, sort_keys=True)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"images": images.contiguous(), "labels": labels.contiguous()}, str(args.out), metadata=metadata)
    print(
        f"wrote {args.out}: images {tuple(images.shape)} {images.dtype}, labels per class "
        f"{labels.bincount(minlength=CLASSES).tolist()}"
    )
    return args.out


if __name__ == "__main__":
    main()
