"""Train the collaborative-learning embedding network (Guan et al. 2020) for a generator.

    python -m inv_optim.train --method collab (--out FILE | --run-dir DIR [--resume]) [--generator CHECKPOINT]
        [--data fmnist-train] [--num-images N] [--minutes 12 | --steps S] [--batch-size 32] [--iterator-steps 4]
        [--lr 1e-3] [--threads 2] [--seed 0] [--snap-every 200]

Each step: the network proposes W+ codes for a batch; the iterator (``refine_wplus``) starts from the better of
the proposal and the image's cached code and refines it for ``--iterator-steps`` steps; the cache keeps each
image's best code so far; the network is trained towards the cached codes (latent L2) and the images (image L2
+ perceptual distance of its own rendering). The cache makes optimisation accumulate over epochs: an image's
target keeps improving each time it is drawn, which is why ``--num-images`` can pick a subset that is seen
several times within a short budget.

``--run-dir DIR`` writes ``snapshot-<steps>.safetensors`` there every ``--snap-every`` steps, at the end and on
SIGINT/SIGTERM (atomically; sg2-core's native format: the network, and under ``extra["training"]`` the optimizer
state, the latent cache, the data order and its generator's state, the step count and the options), and the final
network as ``DIR/network.safetensors`` unless ``--out`` names another file. A fresh run refuses a non-empty DIR;
``--resume`` continues DIR's newest snapshot exactly (the same steps, bit for bit, as an uninterrupted run) and
refuses other training options; ``--steps`` counts all steps of the run, ``--minutes`` this invocation's.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sg2_core import CheckpointWarning, load_networks, save_networks
from sg2_core.training.fit import DataOrder, check_out_file, check_run_dir

from .collab import LatentCache, iterator_loss, refine_wplus
from .distance import Distance, default_distance
from .embedding import build_embedding, save_embedding

TRAIN_ITERATOR_LR = 0.02  # gentler than test time's 0.1: a few steps per visit, accumulated by the cache
SNAPSHOT = "snapshot-{:09d}.safetensors"  # sg2_core.train's naming: its latest_snapshot finds the newest


@dataclass(frozen=True)
class LossWeights:
    """The network's loss: ``latent * |w_e - w_cache|^2 + image * MSE(G(w_e), x) + perceptual * d(G(w_e), x)``."""

    latent: float = 10.0
    image: float = 1.0
    perceptual: float = 1.0


class CollabTrainer:
    """One collaborative-learning step at a time for ``network`` and a frozen ``generator``."""

    def __init__(
        self,
        network,
        generator,
        num_images: int,
        *,
        distance=None,
        iterator_steps: int = 2,
        iterator_lr: float = TRAIN_ITERATOR_LR,
        iterator_mse: float = 1.0,
        lr: float = 1e-3,
        weights: LossWeights = LossWeights(),
    ):
        self.network, self.generator = network, generator
        self.distance = (
            distance if isinstance(distance, Distance) else Distance(distance or default_distance(generator))
        )
        self.iterator_steps, self.iterator_lr, self.iterator_mse = iterator_steps, iterator_lr, iterator_mse
        self.weights = weights
        device = next(generator.parameters()).device
        self.cache = LatentCache(num_images, generator.num_ws, generator.w_dim, device)
        self.optimizer = torch.optim.Adam(network.trainable_parameters(), lr=lr, betas=(0.9, 0.99))
        self.steps = 0

    def network_loss(self, images, codes, targets=None) -> tuple[torch.Tensor, dict]:
        """The weighted loss of the network's ``codes`` (``targets``: the cached codes; None skips that term)."""
        rendered = self.generator.synthesis(codes, noise_mode="const")
        parts = {"image": (rendered - images).square().mean(), "perceptual": self.distance(rendered, images).mean()}
        if targets is not None:
            parts["latent"] = (codes - targets).square().mean()
        total = sum(getattr(self.weights, k) * v for k, v in parts.items())
        return total, {k: v.item() for k, v in parts.items()}

    def step(self, images: torch.Tensor, indices) -> dict:
        """One step on a batch of ``images [B, C, R, R]`` with their dataset ``indices``; returns the losses."""
        self.network.train()
        proposal = self.network(images)
        cached, cached_loss = self.cache.get(indices)
        with torch.no_grad():  # the iterator starts from whichever is better: the proposal or the cached code
            _, proposal_loss = iterator_loss(
                self.distance, self.generator.synthesis(proposal, noise_mode="const"), images, self.iterator_mse
            )
        from_cache = cached_loss < proposal_loss
        start = torch.where(from_cache[:, None, None], cached, proposal.detach())
        refined, refined_loss, _ = refine_wplus(
            self.generator,
            images,
            start,
            steps=self.iterator_steps,
            distance=self.distance,
            lr=self.iterator_lr,
            mse=self.iterator_mse,
        )
        self.cache.update(indices, refined, refined_loss)
        targets, target_loss = self.cache.get(indices)
        loss, parts = self.network_loss(images, proposal, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        return {
            "loss": loss.item(),
            **parts,
            "proposal_iterator_loss": proposal_loss.mean().item(),
            "target_iterator_loss": target_loss.mean().item(),
            "from_cache": from_cache.float().mean().item(),
        }

    def training_state(self) -> dict:
        """Everything but the network needed to continue exactly (tensors and JSON values, for ``extra``)."""
        opt = self.optimizer.state_dict()  # integer keys: the file's metadata is JSON
        return {
            "steps": self.steps,
            "cache": dict(self.cache.state_dict()),
            "optimizer": {"state": {str(k): v for k, v in opt["state"].items()}, "param_groups": opt["param_groups"]},
        }

    def load_training_state(self, state: dict) -> None:
        opt = state["optimizer"]
        groups = [{**g, "betas": tuple(g["betas"])} for g in opt["param_groups"]]
        self.optimizer.load_state_dict({"state": {int(k): v for k, v in opt["state"].items()}, "param_groups": groups})
        self.cache.codes.copy_(state["cache"]["codes"])
        self.cache.loss.copy_(state["cache"]["loss"])
        self.steps = int(state["steps"])


def save_snapshot(folder: Path, trainer: CollabTrainer, order: DataOrder, options: dict, seconds: float) -> Path:
    """The network and the run's whole state, atomically, as ``folder/snapshot-<steps>.safetensors``."""
    extra = {
        "training": {
            **trainer.training_state(),
            "data_order": order.state(),
            "options": options,
            "rng": torch.get_rng_state(),
            "seconds": seconds,
        }
    }
    with warnings.catch_warnings():  # a dropped entry would make the snapshot unresumable: fail instead
        warnings.simplefilter("error", CheckpointWarning)
        return save_networks(folder / SNAPSHOT.format(trainer.steps), {"network": trainer.network}, extra=extra)


def load_snapshot(path: Path, trainer: CollabTrainer, order: DataOrder, options: dict) -> float:
    """Restore a ``save_snapshot`` file into ``trainer`` and ``order``; returns the seconds trained so far.
    Refuses a snapshot trained with other ``options`` (resuming would not continue the same run)."""
    loaded = load_networks(path)
    state = loaded.extra.get("training")
    if "network" not in loaded or state is None or "data_order" not in state:
        raise ValueError(f"{path} is not a collab training snapshot (no network or training state)")
    theirs = state["options"]
    changed = sorted(k for k in options.keys() | theirs.keys() if options.get(k) != theirs.get(k))
    if changed:
        raise ValueError(
            f"{path.name} was trained with other options ({', '.join(changed)}): resuming with them "
            "changed would not continue the same run; start a new run instead"
        )
    if loaded["network"].config != trainer.network.config:
        raise ValueError(f"{path.name} holds a network of another config than this run builds")
    trainer.network.load_state_dict(loaded["network"].state_dict())
    trainer.load_training_state(state)
    order.load_state(state["data_order"])
    torch.set_rng_state(state["rng"])
    return float(state["seconds"])


def load_training_images(data: str, num_images: int | None, resolution: int) -> torch.Tensor:
    """The first ``num_images`` images of ``data`` (see ``sg2_core.datasets.open_dataset``) as uint8 ``[N, C, R, R]``."""
    from sg2_core.datasets import open_dataset

    dataset = open_dataset(data, pad_to=resolution)
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    return torch.stack([dataset[i][0] for i in range(n)])


def _load_generator(spec: str | None, device):
    if spec is None or spec == "demo":
        from sg2_core import demo

        return demo.load_generator(device), "sg2_core.demo.load_generator()"
    from sg2_core import load_checkpoint

    g = load_checkpoint(spec).G_ema
    return g.to(device).eval().requires_grad_(False), str(spec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--out",
        default=None,
        help="safetensors file to write (refused if it exists, see --overwrite); "
        "default with --run-dir: DIR/network.safetensors",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--run-dir", default=None, help="folder for the run's snapshots (a fresh run needs it new or empty)")
    p.add_argument("--resume", action="store_true", help="continue the newest snapshot in --run-dir")
    p.add_argument("--snap-every", type=int, default=200, help="steps between snapshots (with --run-dir)")
    p.add_argument("--generator", default=None, help="generator checkpoint (G_ema); default: the demo generator")
    p.add_argument("--data", default="fmnist-train", help="training images (sg2_core open_dataset source)")
    p.add_argument("--num-images", type=int, default=None, help="use the first N images (default: all)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much wall time")
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--iterator-steps", type=int, default=2)
    p.add_argument("--iterator-lr", type=float, default=TRAIN_ITERATOR_LR)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--latent-weight", type=float, default=10.0)
    p.add_argument("--image-weight", type=float, default=1.0)
    p.add_argument("--perceptual-weight", type=float, default=1.0)
    p.add_argument("--backbone", choices=("fused", "attribute"), default=None)
    p.add_argument("--distance", default=None, help="inv-metrics distance name (default fmnist on the demo domain)")
    p.add_argument("--device", default=None, help="default: the GPU when there is one, else cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20)
    args = p.parse_args(argv)
    if args.minutes is None and args.steps is None:
        p.error("give --minutes or --steps")
    if args.resume and args.run_dir is None:
        p.error("--resume continues a --run-dir: give it")
    if args.out is None and args.run_dir is None:
        p.error("give --out FILE or --run-dir DIR")
    try:  # every user error before any work, as one line
        device, snapshot = _check_args(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        generator, g_source = _load_generator(args.generator, device)
        data = load_training_images(args.data, args.num_images, generator.img_resolution)
        n = data.shape[0]
        network = build_embedding(generator, backbone=args.backbone)
        weights = LossWeights(args.latent_weight, args.image_weight, args.perceptual_weight)
        trainer = CollabTrainer(
            network,
            generator,
            n,
            distance=args.distance,
            iterator_steps=args.iterator_steps,
            iterator_lr=args.iterator_lr,
            lr=args.lr,
            weights=weights,
        )
        order = DataOrder(n, args.batch_size, args.seed)
        options = {
            "generator": g_source,
            "data": args.data,
            "num_images": n,
            "batch_size": args.batch_size,
            "iterator_steps": args.iterator_steps,
            "iterator_lr": args.iterator_lr,
            "lr": args.lr,
            "loss_weights": asdict(weights),
            "backbone": network.config.backbone,
            "distance": trainer.distance.name,
            "seed": args.seed,
        }
        seconds_before = 0.0 if snapshot is None else load_snapshot(snapshot, trainer, order, options)
        if args.steps is not None and trainer.steps > args.steps:
            raise ValueError(
                f"the snapshot {snapshot.name} has already trained {trainer.steps} steps, more than "
                f"--steps {args.steps}; raise --steps to train further"
            )
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if snapshot is not None and trainer.steps == args.steps:
        print(
            f"nothing to train: the run in {args.run_dir} is complete ({trainer.steps} steps); raise --steps to "
            "train further",
            file=sys.stderr,
        )
        return 0
    run_dir = None if args.run_dir is None else Path(args.run_dir)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out is not None else run_dir / "network.safetensors"
    params = sum(p.numel() for p in network.trainable_parameters())
    print(
        f"generator: {g_source}\ndata: {args.data}, {n} images\nnetwork: {network.config.backbone}, {params} "
        f"trainable parameters\nthreads {torch.get_num_threads()}, device {device}"
        + (f"\nresumed {snapshot} at step {trainer.steps}" if snapshot is not None else ""),
        flush=True,
    )

    start, history, snapped = time.perf_counter(), [], trainer.steps
    stop = _StopFlag()  # SIGINT/SIGTERM: finish the step, save a snapshot and the network, exit 128 + signal
    while True:
        elapsed = time.perf_counter() - start
        if (
            (args.steps is not None and trainer.steps >= args.steps)
            or (args.minutes is not None and elapsed >= 60 * args.minutes)
            or stop.signum is not None
        ):
            break
        indices = order.next()
        images = data[indices].to(device, torch.float32) / 127.5 - 1
        history.append(trainer.step(images, indices))
        if trainer.steps % args.log_every == 0:
            recent = history[-args.log_every :]
            mean = {k: sum(h[k] for h in recent) / len(recent) for k in recent[0]}
            print(
                f"step {trainer.steps:5d}  {elapsed:6.0f}s  "
                + "  ".join(f"{k} {v:.4f}" for k, v in mean.items())
                + f"  cached {(trainer.cache.loss < float('inf')).sum().item()}/{n}",
                flush=True,
            )
        if run_dir is not None and trainer.steps % args.snap_every == 0:
            save_snapshot(run_dir, trainer, order, options, seconds_before + time.perf_counter() - start)
            snapped = trainer.steps
    elapsed = time.perf_counter() - start
    if run_dir is not None and snapped != trainer.steps:  # the end, or a signal: the state to resume from
        save_snapshot(run_dir, trainer, order, options, seconds_before + elapsed)
    seen = trainer.cache.loss < float("inf")
    info = {
        **{k: options[k] for k in ("generator", "data", "num_images")},
        "steps": trainer.steps,
        **{k: options[k] for k in ("batch_size", "iterator_steps", "iterator_lr", "lr", "loss_weights")},
        "seconds": round(seconds_before + elapsed, 1),
        "threads": torch.get_num_threads(),
        "final_cache_iterator_loss": trainer.cache.loss[seen].mean().item() if seen.any() else None,
    }
    if stop.signum is not None:
        info["stopped_by"] = signal.Signals(stop.signum).name
    path = save_embedding(network.eval(), out, {"training": info})
    stop.restore()
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) after {trainer.steps} steps, {elapsed:.0f}s\n"
        + json.dumps(info),
        flush=True,
    )
    if stop.signum is not None:
        resume = f"; continue with --run-dir {run_dir} --resume" if run_dir is not None else ""
        print(
            f"stopped by {signal.Signals(stop.signum).name} after {trainer.steps} steps; the network so far is "
            f"in {path}{resume}",
            file=sys.stderr,
        )
        return 128 + stop.signum
    return 0


def _check_args(args) -> tuple[torch.device, Path | None]:
    """The device and the snapshot to resume (or None), after refusing what would fail or lose work later
    (before the generator is even loaded)."""
    from sg2_core.devices import resolve_device

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.minutes is not None and not args.minutes > 0:
        raise ValueError(f"--minutes must be > 0, got {args.minutes}")
    for name in ("batch_size", "log_every", "snap_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_images is not None and args.num_images < 1:
        raise ValueError(f"--num-images must be >= 1, got {args.num_images}")
    snapshot = None if args.run_dir is None else check_run_dir(args.run_dir, args.resume)
    check_out_file(args.out, args.overwrite)
    return resolve_device(args.device), snapshot


class _StopFlag:
    """The first SIGINT/SIGTERM is recorded (the loop ends after its step); a second one acts at once."""

    def __init__(self):
        self.signum = None
        self._previous = (
            {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
            if threading.current_thread() is threading.main_thread()
            else {}
        )

    def _handle(self, signum, frame):
        self.signum = signum
        self.restore()

    def restore(self):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
