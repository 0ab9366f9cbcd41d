"""Choose a demo training run's snapshot by held-out reconstruction MSE and write it as a shipped file:
``python ship_snapshot.py METHOD NETWORK RUN_DIR OUT.safetensors [--first STEP]``.

fit validates on the demo test images, which the report also measures; choosing a snapshot by them would tune the
report. Here every snapshot of ``RUN_DIR`` from ``--first`` on is scored on 512 Fashion-MNIST test images that are
not among the demo's, and the best one's ``NETWORK`` is written in float16 (as ``halve_weights.py``), its training
options and the ranking in ``extra``."""

import argparse
import json
from pathlib import Path

import torch
from safetensors import safe_open

from sg2_core import create_method, demo, load_networks, save_networks
from sg2_core.images import to_float
from sg2_core.training.fit import load_dataset_images


def held_out_images(count: int = 512) -> torch.Tensor:
    """Fashion-MNIST test images in [-1, 1] (from the 5000th on) that are none of the demo's test images."""
    images = to_float(load_dataset_images("fmnist-test", None, 32, 1))
    demo_images = demo.load_test_images()[0]
    nearest = torch.cdist(images.flatten(1), demo_images.flatten(1)).amin(1)
    return images[nearest > 1e-3][5000 : 5000 + count]


def mse(method, images: torch.Tensor, batch: int = 128) -> float:
    with torch.no_grad():
        errors = [((method(x).render() - x) ** 2).mean() for x in images.split(batch)]
    return float(torch.stack(errors).mean())


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("method")
    p.add_argument("network", help="the network the method reads (e.g. encoder)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--first", type=int, default=0, help="score snapshots from this step on")
    args = p.parse_args()
    G, images = demo.load_generator(), held_out_images()
    scores = {}
    for path in sorted(args.run_dir.glob("snapshot-*.safetensors")):
        step = int(path.stem.split("-")[1])
        if step >= args.first:
            scores[path] = mse(create_method(args.method, generator=G, weights=str(path)), images)
            print(f"{path.name}: held-out MSE {scores[path]:.5f}", flush=True)
    best = min(scores, key=scores.get)
    with safe_open(str(best), "pt") as f:
        snapshot = json.loads(f.metadata()["extra"])["training"]
    ranking = ", ".join(f"{p.stem.split('-')[1].lstrip('0')}: {s:.4f}" for p, s in scores.items())
    training = {
        **snapshot["options"],
        "steps": snapshot["step"],
        "seconds": round(snapshot["seconds"], 1),
        "chosen": f"{best.name}, the lowest MSE on 512 held-out Fashion-MNIST test images ({ranking})",
    }
    network = load_networks(best)[args.network].eval()
    print(save_networks(args.out, {args.network: network}, extra={"training": training}, dtype=torch.float16))
