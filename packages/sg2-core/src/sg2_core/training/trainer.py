"""One StyleGAN2 training step and the state it carries (networks, EMA, optimisers, pl_mean, augmentation).

A step follows the paper's lazy regularisation (StyleGAN2, App. C, and NVIDIA's ``training/loss.py``):
the generator's main phase (non-saturating loss, style mixing), every ``pl_interval`` steps a
path-length phase on a batch shrunk by ``pl_batch_shrink``, the discriminator's main phase (logistic
loss), every ``r1_interval`` steps an R1 phase. Each regularisation phase has its own optimiser step
with its loss multiplied by the interval, and the optimisers' lr and betas are scaled by
``interval / (interval + 1)``.

Every step reseeds torch's RNG from (seed, step, rank), so a run resumed from a snapshot draws the very
same latents, noise and augmentations as the run that was never interrupted: no RNG state is saved.
With ``torch.distributed`` initialised, each rank takes ``batch_size / world_size`` images and the
gradients (and ``pl_mean``, ``w_avg`` and the augmentation statistics) are averaged over ranks, so all ranks keep
identical weights without wrapping the networks in DDP (which does not support the double backward
of R1 and path length).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import torch

from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig, Serializable
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.generator import Generator, mix_styles
from sg2_core.training.augment import AdaptiveAugment
from sg2_core.training.losses import (
    PathLengthRegularizer,
    d_logistic_loss,
    g_nonsaturating_loss,
    lazy_optimizer_settings,
    r1_penalty,
)
from sg2_core.training.run import mean_over_ranks, optimizer_state_in, optimizer_state_out, world

AUGMENT_MODES = ("none", "fixed", "ada")


@dataclass(frozen=True)
class TrainingOptions(Serializable):
    """Hyperparameters of a run; the defaults are StyleGAN2 config F (NVIDIA ``--cfg=stylegan2``)."""

    batch_size: int = 32
    g_lr: float = 0.002
    d_lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 10.0
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float | None = None  # EMA half-life at most images_seen * ema_rampup (NVIDIA's auto config: 0.05)
    augment: str = "none"  # "none", "fixed" (probability augment_p) or "ada" (adaptive, starting at augment_p)
    augment_p: float = 0.0
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    amp: bool = False  # bfloat16 autocast of the main phases on CUDA; regularisers stay in float32
    seed: int = 0

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.augment not in AUGMENT_MODES:
            raise ValueError(f"augment must be one of {AUGMENT_MODES}, got {self.augment!r}")
        if not 0 <= self.augment_p <= 1:
            raise ValueError(f"augment_p must be in [0, 1], got {self.augment_p}")
        if not 0 <= self.style_mixing <= 1:
            raise ValueError(f"style_mixing must be in [0, 1], got {self.style_mixing}")
        for name in ("r1_interval", "pl_interval", "pl_batch_shrink"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        object.__setattr__(self, "betas", tuple(self.betas))


class Trainer:
    """Networks, optimisers and regularisers of one StyleGAN2 run; ``step(reals)`` trains on one batch."""

    def __init__(
        self,
        g_config: GeneratorConfig,
        d_config: DiscriminatorConfig,
        options: TrainingOptions | None = None,
        device=None,
    ):
        self.options = options = options or TrainingOptions()
        if g_config.resolution != d_config.resolution or g_config.img_channels != d_config.img_channels:
            raise ValueError(
                f"G makes {g_config.img_channels}x{g_config.resolution}px images but D reads "
                f"{d_config.img_channels}x{d_config.resolution}px"
            )
        self.rank, self.world_size = world()
        if options.batch_size % self.world_size:
            raise ValueError(f"batch_size {options.batch_size} is not divisible by the {self.world_size} processes")
        self.device = torch.device(device or "cpu")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)  # identical initial weights on every rank
            self.G = Generator(g_config).to(self.device).train()
            self.D = Discriminator(d_config).to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        pl_interval = options.pl_interval if options.pl_weight > 0 else None
        r1_interval = options.r1_interval if options.r1_gamma > 0 else None
        self.opt_G = torch.optim.Adam(
            self.G.parameters(), eps=1e-8, **lazy_optimizer_settings(options.g_lr, options.betas, pl_interval)
        )
        self.opt_D = torch.optim.Adam(
            self.D.parameters(), eps=1e-8, **lazy_optimizer_settings(options.d_lr, options.betas, r1_interval)
        )
        self.path_length = PathLengthRegularizer(options.pl_decay).to(self.device)
        self.augment = None
        if options.augment != "none":
            self.augment = AdaptiveAugment(
                target=options.ada_target if options.augment == "ada" else None,
                speed_images=options.ada_kimg * 1000,
                initial_p=options.augment_p,
            ).to(self.device)
        self.step_count = 0
        self.images_seen = 0

    @property
    def local_batch(self) -> int:
        return self.options.batch_size // self.world_size

    # -- one step ------------------------------------------------------------------------------------

    def step(self, reals: torch.Tensor) -> dict[str, torch.Tensor]:
        """Train on one batch of real images ``[local_batch, C, H, W]`` in [-1, 1].

        Returns this process's losses (and ``pl_mean``, ``augment_p``) as detached scalar tensors, left on
        the device so that a step never waits for the GPU; average them over ranks when logging.
        """
        o = self.options
        if reals.shape[0] != self.local_batch:
            raise ValueError(f"expected a batch of {self.local_batch} images per process, got {reals.shape[0]}")
        torch.manual_seed(o.seed * 1_000_003 + self.step_count * self.world_size + self.rank)
        reals = reals.to(self.device, torch.float32)
        stats = {}

        self._train_only(self.G)
        stats["loss_G"] = self._optimize(self.opt_G, self.G, self._g_main_loss())
        if o.pl_weight > 0 and self.step_count % o.pl_interval == 0:
            stats["pl_penalty"] = self._optimize(self.opt_G, self.G, self._pl_penalty(), o.pl_weight * o.pl_interval)
            stats["pl_mean"] = self.path_length.pl_mean.detach().clone()

        self._train_only(self.D)
        loss, real_logits = self._d_main_loss(reals)
        stats["loss_D"] = self._optimize(self.opt_D, self.D, loss)
        if o.r1_gamma > 0 and self.step_count % o.r1_interval == 0:
            stats["r1_penalty"] = self._optimize(
                self.opt_D, self.D, self._r1_penalty(reals), o.r1_gamma / 2 * o.r1_interval
            )
        if self.augment is not None:
            self.augment.update(real_logits)  # sums over ranks itself
            stats["augment_p"] = self.augment.p_tensor.detach().clone()

        mean_over_ranks(self.G.mapping.w_avg)  # each rank tracked its own latents
        self._update_ema()  # after every phase, as NVIDIA's loop: the D phase's latents moved w_avg too
        self.step_count += 1
        self.images_seen += o.batch_size
        return stats

    def _autocast(self):
        if self.options.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train_only(self, net):
        self.G.requires_grad_(net is self.G)
        self.D.requires_grad_(net is self.D)

    def _ws(self, n: int) -> torch.Tensor:
        """Mapped latents with style mixing: with probability ``style_mixing`` the entries from a random
        crossover on come from a second z (one crossover per batch, as NVIDIA's loss does)."""
        G = self.G
        ws = G.mapping(torch.randn(n, G.z_dim, device=self.device), update_w_avg=True)
        if self.options.style_mixing > 0:
            crossover = int(torch.randint(1, G.num_ws, []))
            if float(torch.rand([])) < self.options.style_mixing:
                ws = mix_styles(ws, G.mapping(torch.randn(n, G.z_dim, device=self.device)), crossover)
        return ws

    def _discriminate(self, images: torch.Tensor) -> torch.Tensor:
        if self.augment is not None:
            images = self.augment(images)
        return self.D(images)

    def _g_main_loss(self) -> torch.Tensor:
        with self._autocast():
            fakes = self.G.synthesis(self._ws(self.local_batch))
            return g_nonsaturating_loss(self._discriminate(fakes).float())

    def _pl_penalty(self) -> torch.Tensor:
        ws = self._ws(max(1, self.local_batch // self.options.pl_batch_shrink))
        penalty = self.path_length(self.G.synthesis(ws), ws).mean()
        mean_over_ranks(self.path_length.pl_mean)
        return penalty

    def _d_main_loss(self, reals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad(), self._autocast():
            fakes = self.G.synthesis(self._ws(self.local_batch))
        with self._autocast():
            real_logits = self._discriminate(reals).float()
            return d_logistic_loss(real_logits, self._discriminate(fakes.float()).float()), real_logits

    def _r1_penalty(self, reals: torch.Tensor) -> torch.Tensor:
        reals = reals.detach().requires_grad_(True)
        return r1_penalty(reals, self._discriminate(reals)).mean()

    def _optimize(self, optimizer, net, loss: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
        """One optimiser step on ``weight * loss``; returns ``loss``, detached."""
        optimizer.zero_grad(set_to_none=True)
        (loss * weight).backward()
        params = [p for p in net.parameters() if p.grad is not None]
        if self.world_size > 1 and params:
            flat = torch.cat([p.grad.flatten() for p in params])
            mean_over_ranks(flat)
            torch.nn.utils.vector_to_parameters(flat, [p.grad for p in params])
        for p in params:
            torch.nan_to_num(
                p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad
            )  # as NVIDIA: one bad batch is skipped, not fatal
        optimizer.step()
        return loss.detach().float()

    @torch.no_grad()
    def _update_ema(self):
        o = self.options
        half_life = o.ema_kimg * 1000
        if o.ema_rampup is not None:
            half_life = min(half_life, self.images_seen * o.ema_rampup)  # images before this step, as NVIDIA
        beta = 0.5 ** (o.batch_size / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # -- state ---------------------------------------------------------------------------------------

    def training_state(self) -> dict:
        """Everything but the networks needed to continue exactly (tensors and JSON-like values)."""
        return {
            "options": self.options.to_dict(),
            "step": self.step_count,
            "images_seen": self.images_seen,
            "opt_G": optimizer_state_out(self.opt_G.state_dict()),
            "opt_D": optimizer_state_out(self.opt_D.state_dict()),
            "pl_mean": self.path_length.pl_mean.detach().cpu().clone(),
            "augment": None if self.augment is None else {k: v.cpu() for k, v in self.augment.state_dict().items()},
        }

    def load_training_state(self, state: dict, G: Generator, D: Discriminator, G_ema: Generator) -> None:
        """Restore what ``training_state`` returned and the three networks' weights."""
        theirs = TrainingOptions.from_dict(state["options"])
        if theirs != self.options:
            changed = sorted(k for k, v in self.options.to_dict().items() if theirs.to_dict()[k] != v)
            raise ValueError(
                f"the snapshot was trained with other options ({', '.join(changed)}): resuming with them "
                "changed would not continue the same run; start a new run instead"
            )
        for mine, theirs, name in ((self.G, G, "G"), (self.D, D, "D"), (self.G_ema, G_ema, "G_ema")):
            if theirs is None:
                raise ValueError(f"the snapshot has no {name} network")
            if theirs.config != mine.config:
                raise ValueError(f"the snapshot's {name} is {theirs.config}, this run builds {mine.config}")
            mine.load_state_dict(theirs.state_dict())
        self.step_count, self.images_seen = int(state["step"]), int(state["images_seen"])
        self.opt_G.load_state_dict(optimizer_state_in(state["opt_G"]))
        self.opt_D.load_state_dict(optimizer_state_in(state["opt_D"]))
        self.path_length.pl_mean.copy_(state["pl_mean"])
        if (state.get("augment") is None) != (self.augment is None):
            raise ValueError("the snapshot and this run disagree on whether augmentation is used")
        if self.augment is not None:
            self.augment.load_state_dict(state["augment"])
