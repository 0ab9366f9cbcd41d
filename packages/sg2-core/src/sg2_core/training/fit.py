"""The training loop every learned inversion method shares (encoders, hypernetworks, VAEs).

A family describes one method's training as an :class:`Objective` (its networks, optimisers and one
step on a batch of images) and its command line with :func:`parser`; :func:`run` does the rest the same
way for all of them:

- ``--run-dir DIR``: ``snapshot-<step>.safetensors`` every ``--snap-every`` steps, at the end and on
  SIGINT/SIGTERM (atomic; sg2-core's native network format, the training state under ``extra``),
  ``samples-<step>.png`` (validation inputs above their reconstructions), ``log.jsonl`` (losses every
  ``--log-every`` steps, validation MSE/PSNR at every snapshot) and the final networks, ``DIR/final.safetensors``
  unless ``--out`` names another file;
- ``--resume`` continues DIR's newest snapshot exactly: the same steps, bit for bit, as an uninterrupted
  run (data order, RNG, optimiser state); training options that differ from the snapshot's are refused;
- ``--steps`` counts the whole run, ``--minutes`` this invocation; a parser made with ``time_budget=True``
  also takes ``--minutes`` alone (the run then ends on time, and a resume adds another budget);
- several processes with ``torchrun --nproc_per_node N -m <family>.train ...`` (gloo on CPUs, nccl on
  GPUs): each rank trains on its share of every batch, :meth:`Objective.optimize` averages the gradients,
  only rank 0 writes files.

A signal stops the run after the current step with a snapshot written, exit code 128 + the signal.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from sg2_core import threads
from sg2_core.checkpoints.errors import CheckpointWarning
from sg2_core.checkpoints.native import load_networks, save_networks
from sg2_core.images import save_grid, to_float, to_uint8
from sg2_core.moved import renamed
from sg2_core.training.run import (
    StopOnSignal,
    latest_snapshot,
    launch,
    optimizer_state_in,
    optimizer_state_out,
    snapshot_name,
    trim_log,
    world,
)


class Objective:
    """One method's training. Subclasses set ``networks`` (``{name: module}``: what snapshots hold; each a
    class registered with ``sg2_core.register_network``) and ``optimizers`` (``{name: optimizer}``), and
    implement :meth:`step` and :meth:`reconstruct`; :meth:`final` says what the output file holds."""

    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    indexed: bool = False
    """True: :meth:`step` also gets ``indices``, the batch's positions in the training set (``[B]`` long, CPU),
    for state kept per training image (e.g. a latent cache, sized in :meth:`prepare`)."""

    def prepare(self, num_images: int) -> None:
        """Called once with the number of training images, before the first step and a resume's :meth:`load_state`."""

    def step(self, images: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Train on ``images`` ``[B, C, R, R]`` in [-1, 1] (this rank's share); returns detached scalar losses.
        An :attr:`indexed` objective's step is ``step(images, step, indices)``."""
        raise NotImplementedError

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """The method's reconstruction of ``images`` under no_grad (for validation and sample grids)."""
        raise NotImplementedError

    def final(self) -> dict[str, nn.Module]:
        """The networks of the output file (default: all of :attr:`networks`)."""
        return self.networks

    def done(self) -> bool:
        """True once the objective's own criterion ends training early (e.g. a fidelity threshold crossed);
        checked before every step, the ranks agreeing. A resumed run that was done stays done."""
        return False

    def state(self) -> dict:
        """Training state beyond networks and optimisers (JSON values and tensors), for exact resumes."""
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def optimize(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """``zero_grad``, ``backward``, the gradients averaged over ranks, ``step``."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        _, size = world()
        if size > 1 and params:
            flat = torch.cat([p.grad.flatten() for p in params])
            dist.all_reduce(flat)
            flat /= size
            torch.nn.utils.vector_to_parameters(flat, [p.grad for p in params])
        optimizer.step()


class DataOrder:
    """Global batches of dataset indices: a seeded permutation per epoch, the last partial batch dropped."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if batch_size > n:
            raise ValueError(f"--batch-size {batch_size} is larger than the {n} training images")
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.cursor = torch.randperm(n, generator=self.generator), 0

    def next(self) -> torch.Tensor:
        if self.cursor + self.batch_size > self.n:
            self.order, self.cursor = torch.randperm(self.n, generator=self.generator), 0
        self.cursor += self.batch_size
        return self.order[self.cursor - self.batch_size : self.cursor]

    def state(self) -> dict:
        return {"order": self.order, "cursor": self.cursor, "generator": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.order, self.cursor = state["order"].clone(), int(state["cursor"])
        self.generator.set_state(state["generator"])


def parser(prog: str, description: str, *, time_budget: bool = False) -> argparse.ArgumentParser:
    """The options every trainer takes; a family adds its own (losses, sizes) before parsing. ``time_budget``:
    ``--minutes`` alone may bound a run (for objectives whose schedule does not depend on the run's length)."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--run-dir", help="folder of the run (snapshots, samples, log); a fresh run needs it new or empty")
    p.add_argument(
        "--out",
        help="file for the final networks (refused if it exists unless --overwrite); default DIR/final.safetensors",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--resume", action="store_true", help="continue the newest snapshot in --run-dir exactly")
    if time_budget:
        p.add_argument("--steps", type=int, help="total optimisation steps of the run (default: no limit)")
        p.add_argument("--minutes", type=float, help="stop this invocation after this much wall time")
    else:
        p.add_argument("--steps", type=int, required=True, help="total optimisation steps of the run")
        p.add_argument("--minutes", type=float, help="also stop this invocation after this much wall time")
    p.add_argument("--batch-size", type=int, default=16, help="images per step, over all processes")
    p.add_argument("--generator", default="demo", help="generator checkpoint (its G_ema), or 'demo'")
    p.add_argument("--data", default="fmnist-train", help="training images (sg2_core.datasets.open_dataset source)")
    p.add_argument("--num-images", type=int, help="train on the first N images only")
    p.add_argument(
        "--val-data",
        default="demo-test",
        help="validation images: 'demo-test' (the demo's 256 held-out images), or an open_dataset source",
    )
    p.add_argument("--val-images", type=int, default=64, help="how many validation images")
    p.add_argument("--snap-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="default: cuda:LOCAL_RANK when a GPU is available, else cpu")
    threads.add_option(p)
    p.add_argument("--no-progress", action="store_true")
    return p


def load_generator(spec: str, device) -> tuple[nn.Module, str]:
    """The frozen generator a method trains for: the demo's, or a checkpoint's G_ema."""
    if spec in (None, "demo"):
        from sg2_core import demo

        return demo.load_generator(device), "demo"
    from sg2_core.checkpoints import load_checkpoint

    return load_checkpoint(spec).G_ema.to(device).eval().requires_grad_(False), str(spec)


def load_dataset_images(source: str, limit: int | None, resolution: int, channels: int) -> torch.Tensor:
    """uint8 ``[N, C, R, R]``: the first ``limit`` images of an ``open_dataset`` source (padded to ``resolution``)
    or of ``demo-test``; ``--data`` and ``--val-data`` are read with it. (Image files for an inversion, as
    float, come from ``sg2_core.images.load_images``.)"""
    if source == "demo-test":
        from sg2_core import demo

        images = demo.load_test_images()[0]
        if images.shape[1:] != (channels, resolution, resolution):
            raise ValueError(
                f"the demo test images are {tuple(images.shape[1:])}, this generator makes "
                f"{(channels, resolution, resolution)}: give --val-data"
            )
        return to_uint8(images)[:limit]
    from sg2_core.datasets import open_dataset

    dataset = open_dataset(source, pad_to=resolution)
    if (dataset.channels, dataset.resolution) != (channels, resolution):
        raise ValueError(
            f"{source} holds {dataset.channels}-channel {dataset.resolution} px images, the generator "
            f"makes {channels}-channel {resolution} px ones"
        )
    n = len(dataset) if limit is None else min(limit, len(dataset))
    return torch.stack([dataset[i][0] for i in range(n)])


# fit.load_images was this function's name, the same as sg2_core.images.load_images' (image files, as float).
__getattr__ = renamed(__name__, {"load_images": f"{__name__}.load_dataset_images"}, removed_in="sg2-core 0.8")


def check_args(args) -> Path | None:
    """Refuse, before any work, what would fail or lose work later; returns the snapshot to resume."""
    if args.steps is None and args.minutes is None:
        raise ValueError("give --steps S (the run's length), --minutes M (this invocation's time), or both")
    for name in ("steps", "batch_size", "snap_every", "log_every", "val_images"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_images is not None and args.num_images < 1:
        raise ValueError(f"--num-images must be >= 1, got {args.num_images}")
    if args.minutes is not None and not args.minutes > 0:
        raise ValueError(f"--minutes must be > 0, got {args.minutes}")
    if args.run_dir is None and (args.out is None or args.resume):
        raise ValueError("give --run-dir DIR (and --resume to continue it), or --out FILE for a run without snapshots")
    _, size = world()
    if args.batch_size % size:
        raise ValueError(f"--batch-size {args.batch_size} does not split over {size} processes")
    check_out_file(args.out, args.overwrite)
    return None if args.run_dir is None else check_run_dir(args.run_dir, args.resume)


def check_out_file(out, overwrite: bool) -> None:
    """Refuse an ``--out`` that is a folder, exists (unless ``overwrite``) or lies in a missing folder."""
    if out is None:
        return
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name")
    if out.exists() and not overwrite:
        raise ValueError(f"--out {out} exists; pass --overwrite to replace it, or choose another file")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: the folder {out.parent} does not exist")


def check_run_dir(run_dir, resume: bool) -> Path | None:
    """The snapshot to resume (``resume``), or None for a fresh run, which needs a new or empty folder."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--run-dir {run_dir} is a file, not a folder")
    if resume:
        return latest_snapshot(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        held = sorted(p.name for p in run_dir.iterdir())
        raise ValueError(
            f"--run-dir {run_dir} is not empty ({', '.join(held[:3])}{', ...' if len(held) > 3 else ''}); "
            "continue that run with --resume, or give a new or empty folder"
        )
    return None


class _Run:
    """The state :func:`run` saves and restores: objective, data order, RNG, step, seconds trained."""

    def __init__(self, objective: Objective, order: DataOrder, options: dict):
        # as the snapshot stores them (JSON: tuples become lists), so a resume compares like with like
        self.objective, self.order, self.step, self.seconds = objective, order, 0, 0.0
        self.options = json.loads(json.dumps(options))

    def save(self, folder: Path) -> Path:
        o = self.objective
        extra = {
            "training": {
                "step": self.step,
                "seconds": self.seconds,
                "options": self.options,
                "rng": torch.get_rng_state(),
                "data_order": self.order.state(),
                "objective": o.state(),
                "optimizers": {k: optimizer_state_out(v.state_dict()) for k, v in o.optimizers.items()},
            }
        }
        with warnings.catch_warnings():  # a dropped entry would make the snapshot unresumable: fail instead
            warnings.simplefilter("error", CheckpointWarning)
            return save_networks(folder / snapshot_name(self.step), o.networks, extra=extra)

    def load(self, path: Path) -> None:
        loaded = load_networks(path)
        state = loaded.extra.get("training")
        if state is None or "data_order" not in state:
            raise ValueError(f"{path} is not a training snapshot of sg2_core.training.fit (no training state)")
        theirs = state["options"]
        changed = sorted(k for k in self.options.keys() | theirs.keys() if self.options.get(k) != theirs.get(k))
        if changed:
            raise ValueError(
                f"{path.name} was trained with other options ({', '.join(changed)}): resuming with them "
                "changed would not continue the same run; start a new run instead"
            )
        o = self.objective
        missing = sorted(set(o.networks) - set(loaded))
        if missing:
            raise ValueError(f"{path.name} lacks the networks {missing} this run trains")
        for name, net in o.networks.items():
            if loaded[name].config != net.config:
                raise ValueError(f"{path.name}: network {name!r} has another config than this run builds")
            net.load_state_dict(loaded[name].state_dict())
        for name, opt in o.optimizers.items():
            opt.load_state_dict(optimizer_state_in(state["optimizers"][name]))
        o.load_state(state["objective"])
        self.order.load_state(state["data_order"])
        torch.set_rng_state(state["rng"])
        self.step, self.seconds = int(state["step"]), float(state.get("seconds", 0.0))


@torch.no_grad()
def validate(objective: Objective, images: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    """MSE and PSNR (peak-to-peak 2, images in [-1, 1]) of the reconstructions of ``images``, every network
    in eval mode meanwhile (batch norm's running statistics)."""
    modes = {m: m.training for net in objective.networks.values() for m in net.modules()}  # frozen parts stay eval
    for net in objective.networks.values():
        net.eval()
    try:
        out = torch.cat([objective.reconstruct(chunk) for chunk in images.split(32)])
    finally:
        for m, training in modes.items():
            m.training = training
    mse = (out.float() - images).square().flatten(1).mean(1)
    psnr = 10 * torch.log10(4 / mse.clamp_min(1e-10))
    return {"val_mse": mse.mean().item(), "val_psnr": psnr.mean().item()}, out


def run(args, build, options: dict, *, name: str) -> int:
    """Train ``build(generator, device) -> Objective`` as ``args`` (from :func:`parser`) say; ``options``
    (JSON values) are the family's training options, kept in every snapshot and compared on resume.
    Returns the process's exit code; one-line errors go to stderr."""
    return launch(args, lambda device: _run(args, build, options, name, device))


def _run(args, build, options, name, device) -> int:
    rank, size = world()
    snapshot = check_args(args)
    torch.manual_seed(args.seed)
    generator, g_source = load_generator(args.generator, device)
    shape = (generator.img_channels, generator.img_resolution)
    data = load_dataset_images(args.data, args.num_images, shape[1], shape[0])
    val = to_float(load_dataset_images(args.val_data, args.val_images, shape[1], shape[0]).to(device))
    objective = build(generator, device)
    objective.prepare(len(data))
    order = DataOrder(len(data), args.batch_size, args.seed)
    state = _Run(
        objective,
        order,
        {
            "method": name,
            "generator": g_source,
            "data": args.data,
            "num_images": len(data),
            "batch_size": args.batch_size,
            "seed": args.seed,
            **options,
        },
    )
    if snapshot is not None:
        state.load(snapshot)
        if args.steps is not None and state.step > args.steps:
            raise ValueError(
                f"the snapshot {snapshot.name} has already trained {state.step} steps, more than "
                f"--steps {args.steps}; raise --steps to train further"
            )
        if state.step == args.steps:
            print(
                f"nothing to train: the run in {args.run_dir} is complete ({state.step} steps); raise --steps "
                "to train further",
                file=sys.stderr,
            )
            return 0
    run_dir = None if args.run_dir is None else Path(args.run_dir)
    writer = rank == 0
    if writer and run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        trim_log(run_dir / "log.jsonl", state.step, key="step")
    if size > 1:
        dist.barrier()
    out = Path(args.out) if args.out is not None else run_dir / "final.safetensors"
    params = sum(p.numel() for net in objective.networks.values() for p in net.parameters() if p.requires_grad)
    if writer:
        print(
            f"{name}: generator {g_source}; data {args.data} ({len(data)} images); {params} trainable "
            f"parameters; {size} process(es), {torch.get_num_threads()} threads, {device}"
            + (f"; resumed {snapshot.name} at step {state.step}" if snapshot is not None else ""),
            flush=True,
        )
    log = (run_dir / "log.jsonl").open("a") if writer and run_dir is not None else None
    bar = _progress(args, state.step, writer)
    share = args.batch_size // size
    start, recent, snapped, seconds_before = time.perf_counter(), [], state.step, state.seconds
    try:
        with StopOnSignal() as stop:
            while args.steps is None or state.step < args.steps:
                if _should_stop(stop, args, start, state.step, size, objective):
                    break
                batch = order.next()[rank * share : (rank + 1) * share]
                images = to_float(data[batch].to(device))
                if objective.indexed:
                    losses = objective.step(images, state.step, batch)
                else:
                    losses = objective.step(images, state.step)
                state.step += 1
                state.seconds = seconds_before + time.perf_counter() - start
                recent.append(losses)
                if bar is not None:
                    bar.update(1)
                if state.step % args.log_every == 0 or state.step == args.steps:
                    row = {"step": state.step, "seconds": round(time.perf_counter() - start, 2), **_means(recent)}
                    recent = []
                    if bar is not None:
                        bar.set_postfix(
                            {k: f"{v:.3g}" for k, v in row.items() if k not in ("step", "seconds")}, refresh=False
                        )
                    if log is not None:
                        log.write(json.dumps(row) + "\n")
                        log.flush()
                if state.step % args.snap_every == 0 and run_dir is not None:
                    _snapshot(state, objective, val, run_dir, log, writer)
                    snapped = state.step
        if run_dir is not None and snapped != state.step:  # the end, or a signal: the state to resume from
            _snapshot(state, objective, val, run_dir, log, writer)
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    if size > 1:
        dist.barrier()
    if writer:
        metrics, _ = validate(objective, val)
        info = {"training": {**state.options, "steps": state.step, "seconds": round(state.seconds, 1), **metrics}}
        path = save_networks(out, {k: v.eval() for k, v in objective.final().items()}, extra=info)
        unfinished = args.steps is None or state.step < args.steps
        early = " (the objective stopped early)" if unfinished and objective.done() else ""
        print(
            f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) after {state.step} steps{early}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()),
            flush=True,
        )
    if stop.signum is not None and (args.steps is None or state.step < args.steps):
        if writer:
            resume = f"; continue with --run-dir {run_dir} --resume" if run_dir is not None else ""
            print(
                f"stopped by {signal.Signals(stop.signum).name} at step {state.step}; the networks so far are "
                f"in {out}{resume}",
                file=sys.stderr,
            )
        return 128 + stop.signum
    return 0


def _means(rows: list[dict]) -> dict[str, float]:
    """Each loss's mean over the rows that have it (some terms run only every few steps, like R1)."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return {k: sum(float(r[k]) for r in rows if k in r) / sum(k in r for r in rows) for k in keys}


def _should_stop(stop, args, start, step, size, objective) -> bool:
    """A signal, ``--minutes`` spent, or the objective done; with several processes every rank agrees (one
    all-reduce a step)."""
    mine = stop.signum is not None or (args.minutes is not None and time.perf_counter() - start > 60 * args.minutes)
    mine = mine or objective.done()
    if size == 1:
        return mine
    flag = torch.tensor([float(mine)])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _snapshot(state: _Run, objective: Objective, val: torch.Tensor, run_dir: Path, log, writer: bool) -> None:
    if not writer:
        return
    metrics, recon = validate(objective, val)
    state.save(run_dir)
    k = min(16, len(val))
    save_grid(torch.cat([val[:k], recon[:k].clamp(-1, 1)]).cpu(), run_dir / f"samples-{state.step:09d}.png", nrow=k)
    if log is not None:
        log.write(json.dumps({"step": state.step, **metrics}) + "\n")
        log.flush()


def _progress(args, initial: int, writer: bool):
    if args.no_progress or not writer:
        return None
    from tqdm import tqdm

    return tqdm(total=args.steps, initial=initial, unit="step", dynamic_ncols=True)
