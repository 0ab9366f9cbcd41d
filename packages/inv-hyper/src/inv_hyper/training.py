"""Train HyperInverter: ``python -m inv_hyper.train --phase 1|2 --steps S --run-dir DIR [options]``.

Phase 1 trains the W encoder (w = E(x) + w_avg, one w for every layer) with the image loss. Phase 2 keeps
that encoder frozen (``--phase1 FILE``: a phase-1 result) and trains the W-bar encoder and the hypernetwork;
``--phase1 METHOD`` (a registered W-space method, e.g. ``e4e-w``, with its default weights) trains them on that
method's codes instead, with networks of the size options and no W encoder of their own (the file records the
method, which ``HyperInverter`` then uses as its phase I):
the refined image is ``HyperInverter``'s, ``G.synthesis(ws, weight_offsets=hypernet(...) + the phase-I method's
offsets)`` (``methods.phase2_offsets``). After ``--adv-start`` steps phase 2
adds the non-saturating adversarial loss (weight ``--adv``) against the generator's discriminator, which is
fine-tuned alongside (logistic loss, R1 with gamma ``--r1-gamma`` every ``--r1-every`` steps). The defaults are
the paper's: L2 1.0, LPIPS 0.8, ID 0.1 with a face network, adversarial 0.005, R1 gamma 10 every 16 steps,
Adam with lr 1e-4. The run's shape (snapshots, exact ``--resume``, samples, validation, torchrun) is
``sg2_core.training.fit``'s; the output holds ``networks`` (HyperNetworks), which ``HyperInverter(weights=FILE)`` reads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sg2_core import list_methods
from sg2_core.training import fit
from sg2_core.training.losses import d_logistic_loss, g_nonsaturating_loss, r1_penalty

from .checkpoints import read_networks
from .methods import phase2_offsets, resize, w_start_codes
from .networks import HyperConfig, HyperNetworks


class PhaseOne(fit.Objective):
    """The W encoder alone: ``G(E(x) + w_avg)`` against ``x``."""

    def __init__(self, generator, networks: HyperNetworks, loss, lr: float):
        self.generator, self.loss = generator, loss
        self.net = networks.train()
        self.networks = {"networks": networks}
        self.optimizers = {"w_encoder": torch.optim.Adam(networks.w_encoder.parameters(), lr=lr)}

    def ws(self, images: torch.Tensor) -> torch.Tensor:
        G = self.generator
        w = self.net.w_encoder(resize(images, self.net.config.encoder_size)) + G.mapping.w_avg
        return w[:, None].expand(-1, G.num_ws, -1)

    def step(self, images, step):
        rendered = self.generator.synthesis(self.ws(images), noise_mode="const")
        loss, terms = self.loss(rendered, images)
        self.optimize(self.optimizers["w_encoder"], loss)
        return {"loss": loss.detach(), **terms}

    def reconstruct(self, images):
        return self.generator.synthesis(self.ws(images), noise_mode="const")


class PhaseTwo(fit.Objective):
    """The W-bar encoder and the hypernetwork on a frozen phase I (the networks' W encoder, or ``phase1``: a
    W-space method); adversarial after a warm-up."""

    def __init__(
        self,
        generator,
        networks: HyperNetworks,
        loss,
        lr: float,
        *,
        discriminator=None,
        adv: float = 0.0,
        adv_start: int = 0,
        r1_gamma: float = 10.0,
        r1_every: int = 16,
        d_lr: float = 1e-4,
        phase1=None,
    ):
        self.generator, self.loss, self.net, self.phase1 = generator, loss, networks, phase1
        networks.train()
        if networks.w_encoder is not None:
            networks.w_encoder.eval().requires_grad_(False)
        params = [*networks.w_bar_encoder.parameters(), *networks.hypernet.parameters()]
        self.networks = {"networks": networks}
        self.optimizers = {"hyper": torch.optim.Adam(params, lr=lr)}
        self.adv, self.adv_start, self.r1_gamma, self.r1_every = adv, adv_start, r1_gamma, r1_every
        self.D = discriminator
        if adv:
            self.D = discriminator.train().requires_grad_(True)
            self.networks["D"] = self.D
            self.optimizers["D"] = torch.optim.Adam(self.D.parameters(), lr=d_lr, betas=(0.0, 0.99))

    def start(self, images: torch.Tensor) -> tuple[torch.Tensor, dict | None]:
        """The frozen phase I's codes and weight offsets (a method's; None for the own W encoder), as
        ``HyperInverter`` computes them."""
        encoder = self.net.w_encoder
        return w_start_codes(self.generator, self.phase1, encoder, self.net.config.encoder_size, images, resize)

    def refine(self, images: torch.Tensor) -> torch.Tensor:
        """The render ``HyperInverter`` gives with these networks. The W-bar encoder reads the two stacks in two
        passes, so that in training mode each one's batch norm uses its own statistics."""
        size = self.net.config.encoder_size
        encoder = self.net.w_bar_encoder

        def predict_deltas(w_images):
            return self.net.hypernet(encoder(resize(w_images, size)), encoder(resize(images, size)))

        ws, offsets = self.start(images)
        total = phase2_offsets(self.generator, ws, offsets, predict_deltas)
        return self.generator.synthesis(ws, weight_offsets=total, noise_mode="const")

    def final(self):
        return {"networks": self.net}

    def step(self, images, step):
        rendered = self.refine(images)
        loss, terms = self.loss(rendered, images)
        adversarial = self.adv and step >= self.adv_start
        if adversarial:
            self.D.requires_grad_(False)
            terms["adv"] = g_nonsaturating_loss(self.D(rendered)).mean()
            loss = loss + self.adv * terms["adv"]
            self.D.requires_grad_(True)
        self.optimize(self.optimizers["hyper"], loss)
        out = {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
        if adversarial:
            out.update(self._train_discriminator(images, rendered.detach(), step))
        return out

    def _train_discriminator(self, reals, fakes, step) -> dict:
        d_loss = d_logistic_loss(self.D(reals), self.D(fakes)).mean()
        parts = {"d_loss": d_loss.detach()}
        if step % self.r1_every == 0:  # lazy R1, scaled by the interval as StyleGAN2 does
            reals = reals.detach().requires_grad_(True)
            penalty = r1_penalty(reals, self.D(reals)).mean()
            d_loss = d_loss + self.r1_gamma / 2 * self.r1_every * penalty
            parts["r1"] = penalty.detach()
        self.optimize(self.optimizers["D"], d_loss)
        return parts

    def reconstruct(self, images):
        return self.refine(images)


def _discriminator(spec: str, device):
    """The generator's discriminator (the adversarial loss's critic): the demo's, or the checkpoint's D."""
    if spec in (None, "demo"):
        from sg2_core import demo

        return demo.load_discriminator(device)
    from sg2_core import load_checkpoint

    D = load_checkpoint(spec).D
    if D is None:
        raise ValueError(
            f"--adv needs the generator's discriminator, and {spec} holds none (only a generator); "
            "pass --adv 0, or a checkpoint with D"
        )
    return D.to(device)


def main(argv=None) -> int:
    from inv_metrics.losses import add_loss_arguments, loss_from_arguments

    p = fit.parser("python -m inv_hyper.train", __doc__)
    p.add_argument("--phase", type=int, choices=(1, 2), required=True)
    p.add_argument(
        "--phase1",
        help="phase 2: the phase-1 result (a file written by --phase 1) whose W encoder it "
        "uses, or a registered W-space method (e.g. e4e-w) whose codes it refines",
    )
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--adv", type=float, default=0.005, help="phase 2: adversarial weight (0: none)")
    p.add_argument(
        "--adv-start",
        type=int,
        default=None,
        help="phase 2: steps before the adversarial loss (default: half of --steps)",
    )
    p.add_argument("--d-lr", type=float, default=1e-4)
    p.add_argument("--r1-gamma", type=float, default=10.0)
    p.add_argument("--r1-every", type=int, default=16)
    sizes = p.add_argument_group("network sizes (phase 1, and phase 2 on a method; phase 2 on a file takes the file's)")
    sizes.add_argument("--widths", type=int, nargs=4, default=(64, 128, 256, 512))
    sizes.add_argument("--feature-dim", type=int, default=512)
    sizes.add_argument("--hidden-dim", type=int, default=128)
    sizes.add_argument("--extractor-dim", type=int, default=64)
    sizes.add_argument("--encoder-size", type=int, default=256)
    add_loss_arguments(p)
    args = p.parse_args(argv)
    if args.phase == 2 and not args.phase1:
        print("error: --phase 2 needs --phase1 FILE (the result of --phase 1)", file=sys.stderr)
        return 2
    phase1_method = args.phase == 2 and not Path(args.phase1).is_file()
    if phase1_method and args.phase1 not in list_methods(space="w"):
        what = "not a W-space method" if args.phase1 in list_methods() else "neither a file nor a registered method"
        print(
            f"error: --phase1 {args.phase1} is {what}; HyperInverter's phase I must be a phase-1 file or one of "
            f"{list_methods(space='w')}",
            file=sys.stderr,
        )
        return 2
    adv_start = args.steps // 2 if args.adv_start is None else args.adv_start
    config = HyperConfig(
        widths=tuple(args.widths),
        feature_dim=args.feature_dim,
        hidden_dim=args.hidden_dim,
        extractor_dim=args.extractor_dim,
        encoder_size=args.encoder_size,
    )
    options = {"phase": args.phase, "lr": args.lr, "sizes": config.to_dict()}
    if args.phase == 2:
        options.update(
            phase1=str(args.phase1),
            adv=args.adv,
            adv_start=adv_start,
            d_lr=args.d_lr,
            r1_gamma=args.r1_gamma,
            r1_every=args.r1_every,
        )

    def build(generator, device):
        loss, loss_options = loss_from_arguments(args, generator, device)
        options["loss"] = loss_options
        if args.phase == 1:
            with torch.device(device):
                networks = HyperNetworks.for_generator(generator, config)
            return PhaseOne(generator, networks, loss, args.lr)
        from sg2_core import create_method

        if phase1_method:
            with torch.device(device):
                networks = HyperNetworks.for_generator(generator, config.replace(phase1=args.phase1))
        else:
            networks = read_networks(args.phase1, generator).to(device)
        trained_on = networks.config.phase1  # a file trained on a method's codes goes on with that method
        phase1 = create_method(trained_on, generator=generator, device=device) if trained_on else None
        D = _discriminator(args.generator, device) if args.adv else None
        return PhaseTwo(
            generator,
            networks,
            loss,
            args.lr,
            discriminator=D,
            adv=args.adv,
            adv_start=adv_start,
            r1_gamma=args.r1_gamma,
            r1_every=args.r1_every,
            d_lr=args.d_lr,
            phase1=phase1,
        )

    return fit.run(args, build, options, name=f"hyperinverter phase {args.phase}")
