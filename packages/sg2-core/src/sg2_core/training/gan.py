"""Train a StyleGAN2: ``python -m sg2_core.train --data DATA --resolution R --out DIR [--preset NAME]``.

The run writes into ``--out``:

- ``snapshot-<images>.safetensors`` every ``--snap-kimg`` thousand images and at the end (atomically;
  native format with G, D, G_ema and the training state), which ``--resume DIR_OR_FILE`` continues exactly;
- ``samples-<images>.png``: a grid from G_ema for fixed latents, at every snapshot;
- ``log.jsonl``: one line of losses, images/s and timing per tick (``--tick-kimg``);
- ``run.json``: the configs and options of the run.

One folder holds one run: a fresh run refuses a non-empty ``--out`` (rather than making a numbered
sub-folder as NVIDIA's training does, so the folder you name is the folder you get and ``--resume DIR``
is unambiguous). ``--resume`` writes into the snapshot's own folder (or a new, empty one) and first drops
the log rows written after that snapshot, so the log has one row per tick. Resuming a run that is
already complete prints so and exits 0 (a restarted job that finds its work done has succeeded); a
snapshot that trained past ``--kimg`` is an error (exit 2). SIGINT or SIGTERM (Ctrl-C, a scheduler's
preemption) stops at the end of the current step (at the next tick with several processes), writes a
snapshot and exits with 128 + the signal number (130, 143), like a shell reports a stopped process; a
second signal stops at once.

Multi-GPU (or multi-process CPU) runs use ``torchrun --nproc_per_node N -m sg2_core.train ...``; only
rank 0 writes files. See :mod:`sg2_core.training.trainer` for what one step does.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from sg2_core import threads
from sg2_core.checkpoints import native
from sg2_core.datasets import make_loader, open_dataset
from sg2_core.demo import DISCRIMINATOR_CONFIG as DEMO_D
from sg2_core.demo import GENERATOR_CONFIG as DEMO_G
from sg2_core.images import save_grid, to_float
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.training import run
from sg2_core.training.run import (
    SNAPSHOT_PATTERN,
    StopOnSignal,
    latest_snapshot,
    mean_over_ranks,
    snapshot_name,
    snapshots,
    stop_agreed,
    trim_log,
)
from sg2_core.training.trainer import Trainer, TrainingOptions


@dataclass(frozen=True)
class Preset:
    """Architecture and options for a kind of run; ``configs(resolution, channels)`` builds G and D configs."""

    description: str
    options: TrainingOptions
    channel_base: int = 32768
    channel_max: int = 512
    z_dim: int = 512
    mapping_layers: int = 8
    mbstd_group_size: int = 4
    fixed: tuple[GeneratorConfig, DiscriminatorConfig] | None = None

    def configs(self, resolution: int, channels: int) -> tuple[GeneratorConfig, DiscriminatorConfig]:
        if self.fixed is not None:
            g, d = self.fixed
            if (resolution, channels) != (g.resolution, g.img_channels):
                raise ValueError(
                    f"this preset is for {g.img_channels}-channel {g.resolution}px images, "
                    f"the data has {channels} channels at {resolution}px"
                )
            return g, d
        g = GeneratorConfig(
            z_dim=self.z_dim,
            w_dim=self.z_dim,
            resolution=resolution,
            img_channels=channels,
            mapping_layers=self.mapping_layers,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
        )
        d = DiscriminatorConfig(
            resolution=resolution,
            img_channels=channels,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            mbstd_group_size=self.mbstd_group_size,
        )
        return g, d


PRESETS = {
    "fmnist32": Preset(
        "the embedded demo: Fashion-MNIST padded to 32x32, 64 channels, CPU-friendly (NVIDIA's cifar settings: "
        "no path length, no style mixing)",
        TrainingOptions(
            batch_size=32,
            g_lr=0.0025,
            d_lr=0.0025,
            r1_gamma=0.01,
            pl_weight=0,
            style_mixing=0,
            ema_kimg=10,
            ema_rampup=0.05,
        ),
        fixed=(DEMO_G, DEMO_D),
    ),
    "small": Preset(
        "small data sets (NVIDIA's --cfg=auto at 128 px or less, with adaptive augmentation)",
        TrainingOptions(
            batch_size=32, g_lr=0.0025, d_lr=0.0025, r1_gamma=0.05, ema_kimg=10, ema_rampup=0.05, augment="ada"
        ),
        channel_base=16384,
        mapping_layers=2,
    ),
    "paper256": Preset(
        "StyleGAN2-ADA paper, 256 px (FFHQ/LSUN)",
        TrainingOptions(batch_size=64, g_lr=0.0025, d_lr=0.0025, r1_gamma=1, ema_kimg=20),
        channel_base=16384,
        mbstd_group_size=8,
    ),
    "paper512": Preset(
        "StyleGAN2-ADA paper, 512 px",
        TrainingOptions(batch_size=64, g_lr=0.0025, d_lr=0.0025, r1_gamma=0.5, ema_kimg=20),
        mbstd_group_size=8,
    ),
    "tiny": Preset(
        "smoke tests: 16-32 channels, trains at hundreds of images/s on a CPU",
        TrainingOptions(batch_size=8, r1_gamma=0.1, ema_kimg=0.1),
        channel_base=256,
        channel_max=32,
        z_dim=32,
        mapping_layers=2,
    ),
    "stylegan2": Preset("StyleGAN2 config F (1024 px FFHQ)", TrainingOptions(batch_size=32, r1_gamma=10, ema_kimg=10)),
}


def save_snapshot(trainer: Trainer, out_dir: Path) -> Path:
    path = out_dir / snapshot_name(trainer.images_seen)
    return native.save(
        path, G=trainer.G, D=trainer.D, G_ema=trainer.G_ema, extra={"training": trainer.training_state()}
    )


def resume(trainer: Trainer, path) -> Path:
    path = latest_snapshot(path)
    ckpt = native.load(path)
    state = ckpt.extra.get("training")
    if state is None:
        raise ValueError(f"{path} holds networks but no training state, so it cannot be resumed")
    trainer.load_training_state(state, ckpt.G, ckpt.D, ckpt.G_ema)
    return path


def check_run_folder(out_dir, resume_from=None) -> Path | None:
    """Refuse a run folder that would mix two runs; returns the snapshot to resume (or None).

    A fresh run needs a missing or empty ``out_dir`` (its run.json, log and snapshots would otherwise be
    overwritten, appended to and later resumed by mistake). A resumed run writes into the folder of its
    snapshot, or into a missing or empty folder; and never over snapshots newer than the one it resumes.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file, not a folder")
    held = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    if resume_from is None:
        if held:
            shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
            raise ValueError(
                f"--out {out_dir} is not empty ({shown}); continue that run with --resume {out_dir}, "
                "or give a new or empty folder"
            )
        return None
    snapshot = latest_snapshot(resume_from)
    if held and snapshot.parent.resolve() != out_dir.resolve():
        raise ValueError(
            f"--out {out_dir} is not empty and is not the folder of the resumed snapshot {snapshot}; "
            "resume into that folder or into a new or empty one"
        )
    if held:
        resumed = int(m.group(1)) if (m := SNAPSHOT_PATTERN.search(snapshot.name)) else -1
        newer = sorted(p.name for images, p in snapshots(out_dir) if images > resumed)
        if newer:
            raise ValueError(
                f"--out {out_dir} holds snapshots newer than {snapshot.name} ({', '.join(newer)}); "
                "resume from the newest one, or into a new or empty folder"
            )
    return snapshot


def _sample_latents(G, n: int = 64, seed: int = 123) -> torch.Tensor:
    return torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def save_samples(trainer: Trainer, path: Path, z: torch.Tensor) -> None:
    images = trainer.G_ema(z.to(trainer.device), noise_mode="const")
    save_grid(images.cpu(), path, nrow=int(math.sqrt(len(z))))


def _tick_means(tick_stats: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """The mean of each statistic over the tick's steps and over ranks, read back from the device once."""
    keys = sorted(tick_stats)
    if not keys:
        return {}
    means = mean_over_ranks(torch.stack([torch.stack(tick_stats[k]).float().mean() for k in keys]))
    return dict(zip(keys, means.tolist()))


def _crossed(images: int, batch: int, every: int) -> bool:
    """Whether the last batch took the image count past a multiple of ``every``."""
    return images // every > (images - batch) // every


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after a snapshot was written (``--resume`` continues it)."""

    def __init__(self, signum: int, snapshot: Path | None, images: int):
        self.signum, self.snapshot, self.images = signum, snapshot, images
        where = f"; wrote {snapshot}, continue with --resume {snapshot.parent}" if snapshot else ""
        super().__init__(f"{signal.Signals(signum).name} at {images} images{where}")


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(
                f"--{name.replace('_', '-')} must be a positive number of thousands of images, got {value}"
            )


def train(
    data,
    out_dir,
    *,
    preset: str = "small",
    resolution: int | None = None,
    kimg: float = 100,
    snap_kimg: float = 10,
    tick_kimg: float = 1,
    resume_from=None,
    device=None,
    workers: int | None = None,
    xflip: bool = False,
    pad_to: int | None = None,
    progress: bool = True,
    **option_overrides,
) -> Trainer:
    """Train for ``kimg`` thousand images in total (counting what a resumed snapshot had seen).

    Refuses (``ValueError``) a fresh run into a non-empty ``out_dir`` and a resume whose snapshot has already
    trained past ``kimg``. SIGINT/SIGTERM stop the run at the next step (at the next tick with several
    processes) with a snapshot written, raising :class:`TrainingInterrupted`.
    """
    rank, world = run.world()
    _check_positive(kimg=kimg, snap_kimg=snap_kimg, tick_kimg=tick_kimg)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    spec = PRESETS[preset]
    out_dir = Path(out_dir)
    snapshot = check_run_folder(out_dir, resume_from)
    if world > 1:
        dist.barrier()  # every rank has looked at the folder before rank 0 writes into it
    dataset = open_dataset(data, resolution=resolution, xflip=xflip, pad_to=pad_to)
    g_config, d_config = spec.configs(dataset.resolution, dataset.channels)
    options = TrainingOptions.from_dict({**spec.options.to_dict(), **option_overrides})
    trainer = Trainer(g_config, d_config, options, device=device)
    total = int(kimg * 1000)
    if snapshot is not None:
        resume(trainer, snapshot)
        if trainer.images_seen >= total:
            if trainer.images_seen - options.batch_size >= total:
                raise ValueError(
                    f"the snapshot {snapshot.name} has already trained on {trainer.images_seen} images, "
                    f"more than --kimg {kimg} ({total} images); raise --kimg to train further"
                )
            print(
                f"nothing to train: the run in {snapshot.parent} is complete ({trainer.images_seen} images, "
                f"--kimg {kimg}); raise --kimg to train further",
                file=sys.stderr,
            )
            return trainer
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if snapshot is not None:
            trim_log(out_dir / "log.jsonl", trainer.images_seen)
        if not (out_dir / "run.json").exists():
            (out_dir / "run.json").write_text(
                json.dumps(
                    {
                        "data": str(data),
                        "preset": preset,
                        "G": g_config.to_dict(),
                        "D": d_config.to_dict(),
                        "options": options.to_dict(),
                        "world_size": world,
                        **({"resumed_from": str(snapshot)} if snapshot is not None else {}),
                    },
                    indent=2,
                )
            )

    snap_every, tick_every = max(1, int(snap_kimg * 1000)), max(1, int(tick_kimg * 1000))
    loader = make_loader(
        dataset,
        trainer.local_batch,
        seed=options.seed,
        rank=rank,
        world_size=world,
        start_batch=trainer.step_count,
        num_workers=workers,
    )
    sample_z = _sample_latents(trainer.G)
    bar = tqdm(
        total=total,
        initial=trainer.images_seen,
        unit="img",
        unit_scale=True,
        dynamic_ncols=True,
        disable=not (progress and rank == 0),
    )
    log = (out_dir / "log.jsonl").open("a") if rank == 0 else None
    tick_stats, tick_start, tick_images = {}, time.perf_counter(), trainer.images_seen
    last_snapshot = snapshot
    with StopOnSignal() as stop:
        try:
            while trainer.images_seen < total:
                images, _ = next(loader)
                for k, v in trainer.step(to_float(images)).items():
                    tick_stats.setdefault(k, []).append(v)
                bar.update(options.batch_size)
                done = trainer.images_seen >= total
                tick = _crossed(trainer.images_seen, options.batch_size, tick_every)
                # One process checks its flag every step; several agree on it at each tick (one all-reduce).
                if world == 1:
                    stopping = stop.signum is not None
                else:
                    stopping = (tick or done) and stop_agreed(stop, trainer.device)
                if tick or done or stopping:
                    means = _tick_means(tick_stats)  # every rank takes part: the means are averaged over ranks
                    bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
                    if log is not None:
                        seconds = time.perf_counter() - tick_start
                        log.write(
                            json.dumps(
                                {
                                    "images": trainer.images_seen,
                                    "step": trainer.step_count,
                                    "images_per_s": (trainer.images_seen - tick_images) / seconds,
                                    **means,
                                }
                            )
                            + "\n"
                        )
                        log.flush()
                    tick_stats, tick_start, tick_images = {}, time.perf_counter(), trainer.images_seen
                if rank == 0 and (_crossed(trainer.images_seen, options.batch_size, snap_every) or done or stopping):
                    last_snapshot = save_snapshot(trainer, out_dir)
                    save_samples(trainer, out_dir / f"samples-{trainer.images_seen:09d}.png", sample_z)
                if stopping:
                    break
        finally:
            bar.close()
            if log is not None:
                log.close()
    if world > 1:
        dist.barrier()  # rank 0 may still be writing the last snapshot; leave together
    if stop.signum is not None and trainer.images_seen < total:
        raise TrainingInterrupted(stop.signum, last_snapshot if rank == 0 else None, trainer.images_seen)
    return trainer


def _parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m sg2_core.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets:\n" + "\n".join(f"  {k:10s} {v.description}" for k, v in PRESETS.items()),
    )
    p.add_argument("--data", required=True, help="image folder, .zip, .npy/.npz, IDX file, or fmnist-train")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--resolution", type=int, help="expected image size (checked; also the padding target with --pad)")
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--kimg", type=float, default=100, help="total thousands of images to train on")
    p.add_argument("--snap-kimg", type=float, default=10, help="snapshot and sample grid interval")
    p.add_argument("--tick-kimg", type=float, default=1, help="log interval")
    p.add_argument("--resume", help="snapshot file, or run directory (its newest snapshot)")
    p.add_argument("--batch", type=int, help="total batch size over all processes")
    p.add_argument("--gamma", type=float, help="R1 weight")
    p.add_argument("--lr", type=float, help="learning rate of G and D")
    p.add_argument("--augment", choices=["none", "fixed", "ada"])
    p.add_argument("--augment-p", type=float)
    p.add_argument("--mirror", action="store_true", help="add x-flipped copies of the data")
    p.add_argument("--pad", action="store_true", help="zero-pad smaller images to --resolution")
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="data loader processes (default: up to 2)")
    p.add_argument("--device", help="default: cuda:LOCAL_RANK when a GPU is available, else cpu")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    threads.add_option(p)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    return run.launch(args, lambda device: _train_command(args, device))


def _train_command(args, device) -> int:
    overrides = {
        k: v
        for k, v in {
            "batch_size": args.batch,
            "r1_gamma": args.gamma,
            "g_lr": args.lr,
            "d_lr": args.lr,
            "augment": args.augment,
            "augment_p": args.augment_p,
            "seed": args.seed,
            "amp": args.amp or None,
        }.items()
        if v is not None
    }
    try:
        train(
            args.data,
            args.out,
            preset=args.preset,
            resolution=args.resolution,
            kimg=args.kimg,
            snap_kimg=args.snap_kimg,
            tick_kimg=args.tick_kimg,
            resume_from=args.resume,
            device=device,
            workers=args.workers,
            xflip=args.mirror,
            pad_to=args.resolution if args.pad else None,
            progress=not args.no_progress,
            **overrides,
        )
    except TrainingInterrupted as exc:
        # 128 + signal number, as a shell reports a process stopped by that signal: `train && next` stops.
        print(f"stopped by {exc}", file=sys.stderr)
        return 128 + exc.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
