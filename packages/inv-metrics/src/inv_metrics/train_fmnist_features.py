"""Train the Fashion-MNIST feature network shipped as ``assets/fmnist_features.safetensors``.

    python -m inv_metrics.train_fmnist_features --out src/inv_metrics/assets/fmnist_features.safetensors

Seeded and single-threaded by default (polite on a shared CPU): a few epochs of Adam with a one-cycle
learning rate and random horizontal flips. Prints the test accuracy and the time taken.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .fmnist import FMNISTNet, load_fmnist, to_model_input


def evaluate(net: FMNISTNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = net(images[start : start + batch_size])
            correct += (logits.argmax(1) == labels[start : start + batch_size]).sum().item()
    return correct / len(images)


def train(
    epochs: int = 4,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    root=None,
    limit: int | None = None,
    log=print,
) -> tuple[FMNISTNet, float]:
    torch.manual_seed(seed)
    train_u8, train_labels = load_fmnist("train", root)
    test_u8, test_labels = load_fmnist("test", root)
    if limit:
        train_u8, train_labels = train_u8[:limit], train_labels[:limit]
    x_train, y_train = to_model_input(train_u8), torch.from_numpy(train_labels.astype(np.int64))
    x_test, y_test = to_model_input(test_u8), torch.from_numpy(test_labels.astype(np.int64))

    net = FMNISTNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = len(x_train) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size : (step + 1) * batch_size]
            x = x_train[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = F.cross_entropy(net(x), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"epoch {epoch + 1}/{epochs}: train loss {total / steps_per_epoch:.4f}")
    accuracy = evaluate(net, x_test, y_test)
    return net.eval(), accuracy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output .safetensors file")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", default=None, help="folder with the Fashion-MNIST .gz files")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    args = parser.parse_args(argv)
    from safetensors.torch import save_file

    from .fmnist import fmnist_files

    try:
        for name in ("epochs", "batch_size", "threads"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        fmnist_files("train", args.root), fmnist_files("test", args.root)  # before any work
    except (ValueError, FileNotFoundError) as error:
        print(f"inv_metrics.train_fmnist_features: error: {error}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    net, accuracy = train(args.epochs, args.batch_size, args.lr, args.seed, args.root, args.limit)
    elapsed = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(
        state,
        str(args.out),
        metadata={"test_accuracy": f"{accuracy:.4f}", "epochs": str(args.epochs), "seed": str(args.seed)},
    )
    print(f"test accuracy {accuracy:.4f}; {elapsed:.0f} s; wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
