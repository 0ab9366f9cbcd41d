"""Train pSp, e4e or ReStyle: ``python -m inv_encoders.train --method NAME --steps S --run-dir DIR [options]``.

The papers' losses and optimiser are the defaults: L2 1.0, LPIPS 0.8 (the Fashion-MNIST perceptual distance
on the demo), ID 0.1 with a face network; pSp's ``--w-norm`` (0, the FFHQ setting); e4e's delta regulariser
2e-4, its latent discriminator (weight 0.1; Adam 2e-5, logistic loss, R1 gamma 10 every 16 steps; real codes
are ``mapping(z)``; ``--w-pool-size`` 50: e4e's history pools of real and fake codes, 0 = none) and the
progressive schedule (stage 0 = one w until ``--progressive-start``, one more delta every ``--progressive-every``
steps); ``e4e-w`` is the W-only encoder trained with e4e's latent discriminator on its one w (no deltas, no
stages); ReStyle's loss at each of ``--n-iters`` iterations, the previous estimate
and image detached, one optimiser step per batch. ``psp-edges`` is pSp image-to-image: the encoder reads
``sg2_core.methods.conditions.apply_condition("edges", images)`` (in training and validation) and its losses compare
the generator's output with the original images. Ranger (RAdam + Lookahead) at lr 1e-4. The run's shape
(snapshots, exact ``--resume``, samples, validation, torchrun) is ``sg2_core.training.fit``'s; the output holds
``encoder`` (a StyleEncoder), which ``create_method(NAME, generator=G, weights=FILE)`` reads.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from sg2_core import register_network
from sg2_core.methods.conditions import apply_condition
from sg2_core.nn.config import Serializable
from sg2_core.training import fit
from sg2_core.training.optim import Ranger
from sg2_core.training.run import world

from .networks import PROGRESSIVE, W_ONLY, LatentCodesDiscriminator, StyleEncoder, StyleEncoderConfig
from .pools import LatentPool

METHODS = ("psp", "psp-w", "psp-edges", "e4e", "e4e-w", "restyle-psp", "restyle-e4e")
ADVERSARIAL = ("e4e", "e4e-w", "restyle-e4e")  # trained with e4e's latent discriminator
KINDS = {"psp-edges": ("psp", "edges")}  # method -> (encoder kind, input condition); others: (method, None)


@dataclass(frozen=True)
class LatentDiscriminatorConfig(Serializable):
    style_dim: int = 512
    n_mlp: int = 4


@register_network(config_class=LatentDiscriminatorConfig)
class LatentDiscriminator(LatentCodesDiscriminator):
    """e4e's latent discriminator built from a config (so snapshots of a run can hold it)."""

    def __init__(self, config: LatentDiscriminatorConfig):
        super().__init__(config.style_dim, config.n_mlp)
        self.config = config


def progressive_stage(step: int, start: int, every: int, n_styles: int) -> int:
    """e4e's stage at ``step``: 0 (W only) before ``start``, then one more delta every ``every`` steps."""
    if step < start:
        return 0
    return min(n_styles - 1, 1 + (step - start) // every)


def build_encoder(kind: str, generator, widths, input_size=None) -> StyleEncoder:
    restyle = kind.startswith("restyle")
    config = StyleEncoderConfig(
        kind=kind,
        n_styles=generator.num_ws,
        style_dim=generator.w_dim,
        widths=tuple(widths),
        in_channels=generator.img_channels * (2 if restyle else 1),
        pyramid=not restyle,
        input_size=input_size or generator.img_resolution,
    )
    net = StyleEncoder(config)
    net.set_latent_avg(generator.mapping.w_avg.detach().float().cpu())
    return net


def encoder_from(kind: str, source: StyleEncoder, generator) -> StyleEncoder:
    """A ``kind`` encoder that starts from the trained ``source``: its architecture and every weight (ReStyle
    trains from a pretrained trunk the same way, the image's channels of the input layer copied). The channels a
    ReStyle encoder adds for the current reconstruction start at zero, so its first iteration (from
    ``latent_avg``) gives exactly what ``source`` gives; ReStyle's own code fills them with random numbers."""
    src = source.config
    if (kind in PROGRESSIVE) != (src.kind in PROGRESSIVE) or (kind in W_ONLY) != (src.kind in W_ONLY):
        raise ValueError(
            f"a {kind} encoder cannot start from a {src.kind} one: their codes combine differently (start "
            "restyle-psp from psp, restyle-e4e from e4e)"
        )
    if (src.n_styles, src.style_dim) != (generator.num_ws, generator.w_dim):
        raise ValueError(
            f"the {src.kind} encoder predicts {src.n_styles} codes of width {src.style_dim}, the generator takes "
            f"{generator.num_ws} of width {generator.w_dim}"
        )
    channels = generator.img_channels * (2 if kind.startswith("restyle") else 1)
    net = StyleEncoder(dataclasses.replace(src, kind=kind, in_channels=channels))
    state = net.state_dict()
    for key, value in source.state_dict().items():
        target = state[key]
        if value.shape == target.shape:
            target.copy_(value)
        elif value.ndim == 4 and value.shape[1] < target.shape[1] and value.shape[2:] == target.shape[2:]:
            target.zero_()[:, : value.shape[1]].copy_(value)  # the input layer, widened
        else:
            raise ValueError(
                f"{key}: the {src.kind} encoder has shape {list(value.shape)}, expected {list(target.shape)}"
            )
    net.load_state_dict(state)
    return net


def read_encoder(path: str, generator) -> StyleEncoder:
    """A trained encoder: a ``python -m inv_encoders.train`` file or an official pSp / e4e / ReStyle ``.pt``."""
    from sg2_core import load_networks

    from .checkpoints import load

    if Path(path).suffix == ".safetensors":
        net = load_networks(path).get("encoder")
        if not isinstance(net, StyleEncoder):
            raise ValueError(
                f"{path}: holds no 'encoder' StyleEncoder (a file written by python -m inv_encoders.train)"
            )
        return net
    return load(path, generator=generator).encoder


class EncoderObjective(fit.Objective):
    """pSp / pSp-W / e4e / e4e-W / ReStyle training for a frozen generator."""

    def __init__(
        self,
        kind: str,
        generator,
        encoder: StyleEncoder,
        loss,
        *,
        lr: float = 1e-4,
        w_norm: float = 0.0,
        delta_norm: float = 2e-4,
        w_disc: float = 0.1,
        d_lr: float = 2e-5,
        r1_gamma: float = 10.0,
        r1_every: int = 16,
        progressive_start: int = 0,
        progressive_every: int = 100,
        n_iters: int = 5,
        condition: str | None = None,
        w_pool_size: int = 0,
        pool_seed: int = 0,
    ):
        self.kind, self.G, self.net, self.loss = kind, generator, encoder.train(), loss
        self.condition = condition
        self.progressive = kind in PROGRESSIVE
        self.w_norm, self.delta_norm = w_norm, delta_norm if self.progressive else 0.0
        self.w_disc = w_disc if kind in ADVERSARIAL else 0.0
        self.r1_gamma, self.r1_every, self.n_iters = r1_gamma, r1_every, n_iters
        self.start, self.every = progressive_start, progressive_every
        self.networks = {"encoder": encoder}
        self.optimizers = {"encoder": Ranger(encoder.parameters(), lr=lr)}
        self.stage: int | None = None if not self.progressive else 0
        if self.w_disc:
            device = next(encoder.parameters()).device
            with torch.device(device):
                self.D = LatentDiscriminator(LatentDiscriminatorConfig(generator.w_dim))
            self.networks["discriminator"] = self.D
            self.optimizers["discriminator"] = torch.optim.Adam(self.D.parameters(), lr=d_lr)
        # e4e's history pools (size 0: none); their own seeded generators, so resume is exact
        self.pools = {
            which: LatentPool(w_pool_size if self.w_disc else 0, generator.w_dim, 2 * pool_seed + i)
            for i, which in enumerate(("real", "fake"))
        }

    def final(self):
        return {"encoder": self.net}

    def _pool(self, y: torch.Tensor) -> torch.Tensor:
        size = self.net.config.input_size
        return y if y.shape[-1] == size else F.adaptive_avg_pool2d(y, (size, size))

    def _render(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.ndim == 2:  # psp-w / e4e-w: one w for every layer
            codes = codes[:, None].expand(-1, self.G.num_ws, -1)
        return self.G.synthesis(codes, noise_mode="const")

    def _iterations(self, images: torch.Tensor):
        """ReStyle's loop: yields (codes, reconstruction) per iteration, each from the detached previous one."""
        n = images.shape[0]
        avg = self.net.latent_avg
        with torch.no_grad():
            ws = avg.expand(n, -1, -1)
            y = self._pool(self.G.synthesis(avg[None], noise_mode="const")).expand(n, -1, -1, -1)
        for _ in range(self.n_iters):
            codes = self.net(torch.cat([images, y], dim=1), base=ws, stage=self.stage)
            out = self._render(codes)
            yield codes, out
            ws, y = codes.detach(), self._pool(out).detach()

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        """What the encoder reads: the images, or their condition maps (image-to-image pSp)."""
        return images if self.condition is None else apply_condition(self.condition, images)

    def step(self, images, step):
        if self.progressive:
            self.stage = progressive_stage(step, self.start, self.every, self.G.num_ws)
        if self.kind.startswith("restyle"):
            total, terms = 0.0, {}
            for t, (codes, out) in enumerate(self._iterations(images)):
                loss_t, parts = self._loss(codes, out, images)
                total = total + loss_t  # the previous estimates are detached: the sum's gradient is each loss's
                terms[f"loss_iter{t + 1}"] = loss_t.detach()
            terms.update(parts)
        else:
            codes = self.net(self._inputs(images), stage=self.stage)
            total, terms = self._loss(codes, self._render(codes), images)
        self.optimize(self.optimizers["encoder"], total)
        out = {"loss": total.detach(), **terms}
        if self.w_disc:
            out.update(self._train_discriminator(codes.detach(), step))
        if self.progressive:
            out["stage"] = torch.tensor(float(self.stage))
        return out

    def _active(self, codes: torch.Tensor) -> torch.Tensor:
        """The codes e4e's discriminator may see: each sample's active entries (0..stage), ``[N, k, D]``
        (e4e-w: its one w, k = 1)."""
        return codes[:, None] if codes.ndim == 2 else codes[:, : (self.stage or 0) + 1]

    def _loss(self, codes, out, images):
        from inv_metrics.losses import delta_regularizer, w_norm

        total, terms = self.loss(out, images)
        if self.w_norm and codes.ndim == 3:
            terms["w_norm"] = w_norm(codes, self.net.latent_avg)
            total = total + self.w_norm * terms["w_norm"]
        if self.delta_norm and self.stage:
            terms["delta"] = delta_regularizer(codes, self.stage)
            total = total + self.delta_norm * terms["delta"]
        if self.w_disc:
            self.D.requires_grad_(False)
            terms["w_disc"] = F.softplus(-self.D(self._active(codes).flatten(0, 1))).mean()
            self.D.requires_grad_(True)
            total = total + self.w_disc * terms["w_disc"]
        return total, {k: v.detach() for k, v in terms.items()}

    def _train_discriminator(self, codes, step) -> dict:
        with torch.no_grad():
            z = torch.randn(codes.shape[0], self.G.z_dim, device=codes.device)
            real = self.G.mapping(z)
            real = real[:, 0] if real.ndim == 3 else real
        if self.pools["fake"].size:  # e4e with pools: one random active code per sample, through the history
            # e4e-w's w goes in as [N, D]: no pick to draw, so its runs keep the pool's random sequence
            real, fake = (
                self.pools["real"].query(real),
                self.pools["fake"].query(codes if codes.ndim == 2 else self._active(codes)),
            )
        else:
            fake = self._active(codes).flatten(0, 1)
        loss = F.softplus(self.D(fake)).mean() + F.softplus(-self.D(real)).mean()
        parts = {"d_loss": loss.detach()}
        if step % self.r1_every == 0:
            real = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(real).sum(), real, create_graph=True)
            penalty = grad.square().sum(1).mean()
            loss = loss + self.r1_gamma / 2 * self.r1_every * penalty
            parts["d_r1"] = penalty.detach()
        self.optimize(self.optimizers["discriminator"], loss)
        return parts

    def reconstruct(self, images):
        if self.kind.startswith("restyle"):
            out = None
            for _, out in self._iterations(images):
                pass
            return out
        return self._render(self.net(self._inputs(images), stage=self.stage))

    def state(self):
        state = {"stage": self.stage}
        if self.pools["fake"].size:
            state["pools"] = {k: pool.state() for k, pool in self.pools.items()}
        return state

    def load_state(self, state):
        self.stage = state.get("stage")
        for k, pool_state in state.get("pools", {}).items():
            self.pools[k].load_state(pool_state)


def trainer(method: str):
    """The ``trainer`` entry of ``method``: ``main(argv)`` for ``--method method``."""

    def main(argv=None) -> int:
        return train(method, argv)

    return main


def method_parser(method: str, doc: str) -> argparse.ArgumentParser:
    """``fit``'s parser for ``python -m inv_encoders.train --method method`` with Ranger's ``--lr``, which every
    encoder trainer takes; the trainer adds its own options, then :func:`parse_with_loss` the image loss's."""
    p = fit.parser(f"python -m inv_encoders.train --method {method}", doc)
    p.add_argument("--lr", type=float, default=1e-4, help="Ranger's learning rate")
    return p


def parse_with_loss(p: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """``argv`` parsed by ``p`` with the image loss's options (``inv_metrics.losses``) added after the trainer's."""
    from inv_metrics.losses import add_loss_arguments

    add_loss_arguments(p)
    return p.parse_args(argv)


def run_trainer(args, build, options: dict, *, name: str) -> int:
    """:func:`sg2_core.training.fit.run` of ``build(generator, device, loss, seed) -> Objective``: ``loss`` is the
    image loss ``args`` name (its settings saved as ``options["loss"]``), ``seed`` this rank's seed for the
    objective's own random streams (one stream per rank)."""
    from inv_metrics.losses import loss_from_arguments

    def build_with_loss(generator, device):
        loss, options["loss"] = loss_from_arguments(args, generator, device)
        return build(generator, device, loss, args.seed + 1000 * world()[0])

    return fit.run(args, build_with_loss, options, name=name)


def train(method: str, argv=None) -> int:
    kind, condition = KINDS.get(method, (method, None))
    p = method_parser(method, __doc__)
    p.add_argument("--widths", type=int, nargs=4, help="IR-SE50 stage widths (default: 64 128 256 512)")
    p.add_argument("--input-size", type=int, help="the encoder's input size (default: the generator's)")
    p.add_argument("--w-norm", type=float, default=0.0, help="pSp's latent-norm weight")
    p.add_argument("--delta-norm", type=float, default=2e-4, help="e4e: delta regulariser weight")
    p.add_argument("--w-disc", type=float, default=0.1, help="e4e: latent discriminator weight (0: none)")
    p.add_argument("--d-lr", type=float, default=2e-5)
    p.add_argument("--r1-gamma", type=float, default=10.0)
    p.add_argument("--r1-every", type=int, default=16)
    p.add_argument(
        "--w-pool-size",
        type=int,
        default=50,
        help="e4e: history pools of latent codes for the latent discriminator, this many codes each (0: none)",
    )
    p.add_argument(
        "--progressive-start", type=int, default=None, help="e4e: steps at stage 0 (default: a fifth of --steps)"
    )
    p.add_argument(
        "--progressive-every",
        type=int,
        default=None,
        help="e4e: steps per added delta (default: spread over the rest of the run)",
    )
    p.add_argument("--n-iters", type=int, default=5, help="ReStyle: iterations per batch")
    p.add_argument(
        "--init-from",
        metavar="FILE",
        help="start from this trained encoder (its architecture and weights; e.g. restyle-psp from a psp file)",
    )
    args = parse_with_loss(p, argv)
    if args.init_from and (args.widths or args.input_size):
        p.error("--widths / --input-size and --init-from: the architecture comes from the --init-from file")
    if args.w_pool_size < 0:
        p.error(f"--w-pool-size must be >= 0 (0: no history pools), got {args.w_pool_size}")
    start = args.steps // 5 if args.progressive_start is None else args.progressive_start
    if not args.init_from:
        args.widths = args.widths or (64, 128, 256, 512)
    widths = args.widths and list(args.widths)  # None: the --init-from file's
    options = {"lr": args.lr, "widths": widths, "input_size": args.input_size, "w_norm": args.w_norm}
    if condition is not None:  # in the output file too: the methods refuse a file trained on other inputs
        options["condition"] = condition
    if kind in PROGRESSIVE:
        options.update(delta_norm=args.delta_norm, progressive_start=start)
    if kind in ADVERSARIAL:
        options.update(
            w_disc=args.w_disc,
            d_lr=args.d_lr,
            r1_gamma=args.r1_gamma,
            r1_every=args.r1_every,
            w_pool_size=args.w_pool_size,
        )
    if kind.startswith("restyle"):
        options["n_iters"] = args.n_iters
    if args.init_from:
        options["init_from"] = Path(args.init_from).name

    def build(generator, device, loss, seed):
        every = args.progressive_every or max(1, (args.steps - start) // max(1, generator.num_ws))
        options["progressive_every"] = every
        if args.init_from:
            encoder = encoder_from(kind, read_encoder(args.init_from, generator), generator).to(device)
        else:
            with torch.device(device):
                encoder = build_encoder(kind, generator, args.widths, args.input_size)
        return EncoderObjective(
            kind,
            generator,
            encoder,
            loss,
            lr=args.lr,
            w_norm=args.w_norm,
            delta_norm=args.delta_norm,
            w_disc=args.w_disc,
            d_lr=args.d_lr,
            r1_gamma=args.r1_gamma,
            r1_every=args.r1_every,
            progressive_start=start,
            progressive_every=every,
            n_iters=args.n_iters,
            condition=condition,
            w_pool_size=args.w_pool_size,
            pool_seed=seed,
        )

    return run_trainer(args, build, options, name=method)


train_psp, train_psp_w, train_e4e = trainer("psp"), trainer("psp-w"), trainer("e4e")
train_e4e_w = trainer("e4e-w")
train_psp_edges = trainer("psp-edges")
train_restyle_psp, train_restyle_e4e = trainer("restyle-psp"), trainer("restyle-e4e")
