"""Choose a demo training run's snapshot by held-out reconstruction MSE and write it as a shipped file:
``python ship_snapshot.py METHOD RUN_DIR OUT.safetensors NETWORK [NETWORK ...] [--first STEP]``.

fit validates on the demo test images, which the report also measures; choosing a snapshot by them would tune the
report. Here every snapshot of ``RUN_DIR`` from ``--first`` on is scored on 512 Fashion-MNIST test images that are
none of the demo's, and the best one's networks (those the method's file holds, e.g. ``encoder``) are written in
float16 (as ``halve_weights.py``), with its training options, validation figures and the ranking in ``extra``."""

import argparse
import json
from pathlib import Path

import torch
from safetensors import safe_open

from sg2_core import create_method, demo, load_networks, save_networks
from sg2_core.images import to_float
from sg2_core.training.fit import load_dataset_images

HELD_OUT_FROM = 5000  # the first images of the test set stay untouched, the set is the same for every run


def held_out_images(count: int = 512) -> torch.Tensor:
    """``count`` Fashion-MNIST test images in [-1, 1] from the 5000th on, leaving out the demo's test images."""
    demo_indices = set(demo.fmnist_test_indices())
    images = load_dataset_images("fmnist-test", None, 32, 1)
    keep = [i for i in range(HELD_OUT_FROM, len(images)) if i not in demo_indices][:count]
    return to_float(images[keep])


def mse(method, images: torch.Tensor, batch: int = 128) -> float:
    with torch.no_grad():
        errors = [((method(x).render() - x) ** 2).mean() for x in images.split(batch)]
    return float(torch.stack(errors).mean())


def step_of(path: Path) -> int:
    return int(path.stem.split("-")[1])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("method")
    p.add_argument("run_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("networks", nargs="+", help="the networks the method's file holds (e.g. encoder; encoder hfgi)")
    p.add_argument("--first", type=int, default=0, help="score snapshots from this step on")
    args = p.parse_args()
    snapshots = [s for s in sorted(args.run_dir.glob("snapshot-*.safetensors")) if step_of(s) >= args.first]
    if not snapshots:
        p.error(f"{args.run_dir} holds no snapshot-*.safetensors from step {args.first} on")
    G, images = demo.load_generator(), held_out_images()
    scores = {}
    for path in snapshots:
        scores[path] = mse(create_method(args.method, generator=G, weights=str(path)), images)
        print(f"{path.name}: held-out MSE {scores[path]:.5f}", flush=True)
    best = min(scores, key=scores.get)
    with safe_open(str(best), "pt") as f:
        snapshot = json.loads(f.metadata()["extra"])["training"]
    log = [json.loads(line) for line in (args.run_dir / "log.jsonl").read_text().splitlines()]
    validation = [row for row in log if row.get("step") == snapshot["step"] and "val_mse" in row][-1:]
    loaded = load_networks(best)
    missing = [name for name in args.networks if name not in loaded]
    if missing:
        p.error(f"{best.name} holds no {missing}; its networks: {sorted(loaded)}")
    training = {
        **snapshot["options"],
        "steps": snapshot["step"],
        "seconds": round(snapshot["seconds"], 1),
        **{k: v for row in validation for k, v in row.items() if k.startswith("val_")},
        "held_out_mse": scores[best],
        "chosen": f"{best.name}: the lowest MSE on {len(images)} held-out Fashion-MNIST test images ("
        + ", ".join(f"step {step_of(path)} {score:.4f}" for path, score in scores.items())
        + ")",
    }
    networks = {name: loaded[name].eval() for name in args.networks}
    print(save_networks(args.out, networks, extra={"training": training}, dtype=torch.float16))
