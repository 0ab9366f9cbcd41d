"""Train AgileGAN: ``python -m inv_vae.train encoder|style --steps S --run-dir DIR [options]``.

``encoder``: the hierarchical VAE encoder for a frozen generator. Each image gives one Gaussian per W+ entry;
a reparameterised sample ``z = mu + eps * exp(logvar / 2)`` goes entry by entry through the frozen mapping
network and is rendered with constant noise. Loss: L2 1.0 + perceptual 0.8 (LPIPS; the Fashion-MNIST
distance on the demo) + ID 0.1 (with ``--id-weights``, a face network) + ``--kl`` 5e-4 times the KL to N(0, I)
(mmgeneration's weight). The heads ``fc_mu`` / ``fc_var`` start at zero (the reference's init: every code
starts as the prior). Ranger at ``--lr`` 1e-4. The output holds ``encoder``, which
``create_method('agilegan', generator=G, weights=FILE)`` reads.

``style``: inversion-consistent transfer learning. A copy of the generator (and the checkpoint's discriminator;
the demo's for ``--generator demo``) is fine-tuned on ``--exemplars`` (a folder of about 100 images, or
``fmnist-edges``: Fashion-MNIST edge drawings, see :mod:`inv_vae.exemplars`) with latents drawn from the
prior the encoder matches: Z+, one z per layer, each through the mapping network (frozen unless
``--train-mapping``). StyleGAN2's non-saturating loss, lazy R1 (``--r1-gamma`` every 16 steps) and path length
(``--pl-weight`` every 4 steps) from ``sg2_core.training.losses``, Adam with the lazy ratio; FreezeD keeps the first
``--freeze-d`` discriminator blocks (from the input) fixed. Early stop: ``--steps``, or the fidelity criterion:
every ``--fidelity-every`` steps the perceptual distance between the source and the tuned generator on 64 fixed
Z+ latents; once it exceeds ``--fidelity-threshold`` the run ends there (``Objective.done``).
The output holds ``generator``, the stylised copy, for ``python -m inv_vae.stylize --style FILE``.
The run's shape (snapshots, exact ``--resume``, samples, validation, torchrun) is ``sg2_core.training.fit``'s.
"""

from __future__ import annotations

import copy
import sys

import torch

from sg2_core.training import fit
from sg2_core.training.losses import (
    PathLengthRegularizer,
    d_logistic_loss,
    g_nonsaturating_loss,
    lazy_optimizer_settings,
    r1_penalty,
)
from sg2_core.training.optim import Ranger
from sg2_core.training.run import world

from .exemplars import resolve_exemplars
from .losses import KL_WEIGHT, kl_divergence
from .networks import VAEConfig, VAEStyleEncoder
from .sync_batchnorm import synchronize_batchnorm

KINDS = ("encoder", "style")
FIDELITY_LATENTS, FIDELITY_SEED = 64, 1234


def map_zplus(generator, z: torch.Tensor) -> torch.Tensor:
    """Z+ ``[N, num_ws, z_dim]`` -> W+ ``[N, num_ws, w_dim]``: each entry through the mapping on its own."""
    n, num_ws, z_dim = z.shape
    return generator.mapping(z.reshape(n * num_ws, z_dim))[:, 0].reshape(n, num_ws, -1)


def build_encoder(generator, widths, input_size=None) -> VAEStyleEncoder:
    g = generator
    net = VAEStyleEncoder(
        VAEConfig(
            n_styles=g.num_ws,
            z_dim=g.z_dim,
            in_channels=g.img_channels,
            input_size=input_size or g.img_resolution,
            widths=tuple(widths),
        )
    )
    with torch.no_grad():  # the reference zero-initialises both heads: every code starts as the prior N(0, I)
        for head in (net.fc_mu, net.fc_var):
            head.weight.zero_()
            head.bias.zero_()
    return net


class EncoderObjective(fit.Objective):
    """The VAE encoder against a frozen generator: reconstruction of the reparameterised sample + KL."""

    def __init__(self, generator, encoder: VAEStyleEncoder, loss, *, lr: float = 1e-4, kl_weight: float = KL_WEIGHT):
        self.G, self.net, self.loss, self.kl_weight = generator.requires_grad_(False), encoder.train(), loss, kl_weight
        synchronize_batchnorm(encoder)  # several processes: batch statistics of the whole batch
        self.networks = {"encoder": encoder}
        self.optimizers = {"encoder": Ranger(encoder.parameters(), lr=lr)}

    def _render(self, z: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis(map_zplus(self.G, z), noise_mode="const")

    def _eps(self, n: int, z_dim: int, device) -> torch.Tensor:
        """This rank's rows of the whole batch's noise: every process count draws the same numbers per image."""
        rank, size = world()
        return torch.randn(n * size, self.G.num_ws, z_dim, device=device)[rank * n : (rank + 1) * n]

    def step(self, images, step):
        z, mu, logvar = self.net(images, eps=self._eps(images.shape[0], self.net.config.z_dim, images.device))
        total, terms = self.loss(self._render(z), images)
        kl = kl_divergence(mu, logvar)
        total = total + self.kl_weight * kl
        self.optimize(self.optimizers["encoder"], total)
        return {"loss": total.detach(), **{k: v.detach() for k, v in terms.items()}, "kl": kl.detach()}

    def reconstruct(self, images):
        return self._render(self.net.posterior(images)[0])


def freeze_discriminator(D, blocks: int) -> list[str]:
    """FreezeD: gradients off for the first ``blocks`` blocks from the input; returns their names."""
    names = [f"b{res}" for res in D.block_resolutions]
    if not 0 <= blocks <= len(names):
        raise ValueError(
            f"--freeze-d {blocks}: this discriminator has {len(names)} blocks before its epilogue ({', '.join(names)})"
        )
    for name in names[:blocks]:
        getattr(D, name).requires_grad_(False)
    return names[:blocks]


def _trainable(net) -> list:
    return [p for p in net.parameters() if p.requires_grad]


class StyleObjective(fit.Objective):
    """Transfer learning of a copy of ``source`` on style exemplars, latents from the Z+ prior."""

    def __init__(
        self,
        source,
        discriminator,
        *,
        encoder=None,
        distance=None,
        lr: float = 0.002,
        betas=(0.0, 0.99),
        r1_gamma: float = 10.0,
        r1_every: int = 16,
        pl_weight: float = 2.0,
        pl_every: int = 4,
        freeze_d: int = 0,
        train_mapping: bool = False,
        fidelity_threshold: float | None = None,
        fidelity_every: int = 50,
    ):
        self.source = source.eval().requires_grad_(False)
        self.G = copy.deepcopy(source).train().requires_grad_(True)
        if not train_mapping:
            self.G.mapping.requires_grad_(False)
        self.D = discriminator.train().requires_grad_(True)
        self.frozen = freeze_discriminator(self.D, freeze_d)
        self.encoder, self.distance = encoder, distance
        self.r1_gamma, self.r1_every, self.pl_weight, self.pl_every = r1_gamma, r1_every, pl_weight, pl_every
        self.threshold, self.fidelity_every = fidelity_threshold, fidelity_every
        self.path_length = PathLengthRegularizer().to(next(self.G.parameters()).device)
        self.networks = {"generator": self.G, "discriminator": self.D}
        self.optimizers = {
            "generator": torch.optim.Adam(
                _trainable(self.G), **lazy_optimizer_settings(lr, betas, pl_every if pl_weight > 0 else None)
            ),
            "discriminator": torch.optim.Adam(
                _trainable(self.D), **lazy_optimizer_settings(lr, betas, r1_every if r1_gamma > 0 else None)
            ),
        }
        device = next(self.G.parameters()).device
        fixed = torch.Generator().manual_seed(FIDELITY_SEED)  # its own generator: the run's RNG stream is untouched
        self.fixed_z = torch.randn(FIDELITY_LATENTS, source.num_ws, source.z_dim, generator=fixed).to(device)
        self.stopped_at: int | None = None
        self.fidelity: float | None = None

    def final(self):
        return {"generator": self.G}

    def _ws(self, n: int, device) -> torch.Tensor:
        return map_zplus(self.G, torch.randn(n, self.G.num_ws, self.G.z_dim, device=device))

    @torch.no_grad()
    def fidelity_distance(self) -> float:
        """Mean perceptual distance between the source and the tuned generator on the fixed Z+ latents."""
        ws = map_zplus(self.source, self.fixed_z)
        a = self.source.synthesis(ws, noise_mode="const")
        b = self.G.synthesis(ws, noise_mode="const")
        return float(self.distance(a, b).mean())

    def done(self) -> bool:
        return self.stopped_at is not None  # the fidelity criterion ended the run (fit stops there)

    def step(self, reals, step):
        n, device = reals.shape[0], reals.device
        out = {}
        self.D.requires_grad_(False)
        fake = self.G.synthesis(self._ws(n, device))
        out["g_loss"] = g_nonsaturating_loss(self.D(fake))
        self.optimize(self.optimizers["generator"], out["g_loss"])
        if self.pl_weight > 0 and step % self.pl_every == 0:
            ws = self._ws(max(1, n // 2), device).detach().requires_grad_(True)
            penalty = self.path_length(self.G.synthesis(ws), ws).mean()
            self.optimize(self.optimizers["generator"], penalty * self.pl_weight * self.pl_every)
            out["pl_penalty"] = penalty
        for p in self.optimizers["discriminator"].param_groups[0]["params"]:
            p.requires_grad_(True)
        with torch.no_grad():
            fake = self.G.synthesis(self._ws(n, device))
        out["d_loss"] = d_logistic_loss(self.D(reals), self.D(fake))
        self.optimize(self.optimizers["discriminator"], out["d_loss"])
        if self.r1_gamma > 0 and step % self.r1_every == 0:
            x = reals.detach().requires_grad_(True)
            penalty = r1_penalty(x, self.D(x)).mean()
            self.optimize(self.optimizers["discriminator"], penalty * self.r1_gamma / 2 * self.r1_every)
            out["r1_penalty"] = penalty
        if self.distance is not None and (step + 1) % self.fidelity_every == 0:
            self.fidelity = self.fidelity_distance()
            out["fidelity"] = torch.tensor(self.fidelity)
            if self.threshold is not None and self.fidelity > self.threshold:
                self.stopped_at = step + 1
        return {k: v.detach() for k, v in out.items()}

    @torch.no_grad()
    def reconstruct(self, images):
        """The stylised rendering of ``images`` (encoder mu through the source mapping, the tuned synthesis)
        when an encoder is given; otherwise the tuned generator on the first fixed latents."""
        if self.encoder is None:
            z = self.fixed_z[: images.shape[0]]
        else:
            z = self.encoder.posterior(images)[0]
        return self.G.synthesis(map_zplus(self.source, z), noise_mode="const")

    def state(self):
        return {"stopped_at": self.stopped_at, "fidelity": self.fidelity, "pl_mean": self.path_length.pl_mean.cpu()}

    def load_state(self, state):
        self.stopped_at, self.fidelity = state.get("stopped_at"), state.get("fidelity")
        self.path_length.pl_mean.copy_(state["pl_mean"])


def _load_discriminator(spec: str, device):
    if spec in (None, "demo"):
        from sg2_core import demo

        return copy.deepcopy(demo.load_discriminator(device))
    from sg2_core.checkpoints import load_checkpoint

    D = load_checkpoint(spec).D
    if D is None:
        raise ValueError(f"{spec} holds no discriminator; transfer learning starts from the generator's own D")
    return D.to(device)


def train_encoder(argv=None) -> int:
    from inv_metrics.losses import add_loss_arguments, loss_from_arguments

    p = fit.parser("python -m inv_vae.train encoder", __doc__)
    p.add_argument("--lr", type=float, default=1e-4, help="Ranger's learning rate")
    p.add_argument("--widths", type=int, nargs=4, default=(64, 128, 256, 512), help="IR-SE50 stage widths")
    p.add_argument("--input-size", type=int, help="the encoder's input size (default: the generator's)")
    p.add_argument("--kl", type=float, default=KL_WEIGHT, help=f"KL weight (default {KL_WEIGHT})")
    add_loss_arguments(p)
    args = p.parse_args(argv)
    if args.kl < 0:
        print(f"error: --kl must be >= 0, got {args.kl}", file=sys.stderr)
        return 2
    options = {"lr": args.lr, "widths": list(args.widths), "input_size": args.input_size, "kl": args.kl}

    def build(generator, device):
        loss, options["loss"] = loss_from_arguments(args, generator, device)
        with torch.device(device):
            encoder = build_encoder(generator, args.widths, args.input_size)
        return EncoderObjective(generator, encoder, loss, lr=args.lr, kl_weight=args.kl)

    return fit.run(args, build, options, name="agilegan")


def train_style(argv=None) -> int:
    from inv_metrics.distances import load_distance

    p = fit.parser("python -m inv_vae.train style", __doc__)
    p.add_argument("--exemplars", required=True, help="a folder of style images (about 100), or 'fmnist-edges'")
    p.add_argument(
        "--discriminator",
        help="checkpoint whose D starts the tuning (default: --generator's; the demo's for --generator demo)",
    )
    p.add_argument("--encoder", help="AgileGAN encoder for the sample grids (default: the shipped one on the demo)")
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--r1-gamma", type=float, default=10.0)
    p.add_argument("--r1-every", type=int, default=16)
    p.add_argument("--pl-weight", type=float, default=2.0)
    p.add_argument("--pl-every", type=int, default=4)
    p.add_argument("--freeze-d", type=int, default=0, help="FreezeD: discriminator blocks kept fixed, from the input")
    p.add_argument("--train-mapping", action="store_true", help="tune the mapping network too (default: frozen)")
    p.add_argument("--distance", help="fidelity distance (default: fmnist on 1-channel 32 px, else lpips-vgg)")
    p.add_argument("--fidelity-threshold", type=float, help="stop once the distance exceeds this (default: never)")
    p.add_argument("--fidelity-every", type=int, default=50)
    p.set_defaults(val_images=16, batch_size=8)
    args = p.parse_args(argv)
    if args.data != p.get_default("data"):
        print("error: style training reads --exemplars, not --data", file=sys.stderr)
        return 2
    if args.fidelity_every < 1:
        print(f"error: --fidelity-every must be >= 1, got {args.fidelity_every}", file=sys.stderr)
        return 2
    options = {
        k: getattr(args, k)
        for k in (
            "exemplars",
            "lr",
            "r1_gamma",
            "r1_every",
            "pl_weight",
            "pl_every",
            "freeze_d",
            "train_mapping",
            "fidelity_threshold",
            "fidelity_every",
        )
    }

    def build(generator, device):
        D = _load_discriminator(args.discriminator or args.generator, device)
        if (D.img_channels, D.img_resolution) != (generator.img_channels, generator.img_resolution):
            raise ValueError(
                f"the discriminator takes {D.img_channels}-channel {D.img_resolution} px images, the "
                f"generator makes {generator.img_channels}-channel {generator.img_resolution} px ones"
            )
        name = args.distance or (
            "fmnist" if (generator.img_channels, generator.img_resolution) == (1, 32) else "lpips-vgg"
        )
        options["distance"] = name
        encoder = None
        if args.encoder or args.generator == "demo":
            from .checkpoints import load
            from .methods import default_weights

            weights = args.encoder or default_weights(generator)
            encoder = None if weights is None else load(weights, generator=generator).encoder.to(device).eval()
        return StyleObjective(
            generator,
            D,
            encoder=encoder,
            distance=load_distance(name, device=device),
            lr=args.lr,
            r1_gamma=args.r1_gamma,
            r1_every=args.r1_every,
            pl_weight=args.pl_weight,
            pl_every=args.pl_every,
            freeze_d=args.freeze_d,
            train_mapping=args.train_mapping,
            fidelity_threshold=args.fidelity_threshold,
            fidelity_every=args.fidelity_every,
        )

    try:  # the exemplars are checked against the generator before any training work
        generator, _ = fit.load_generator(args.generator, "cpu")
        folder, _ = resolve_exemplars(args.exemplars, args.batch_size, generator.img_channels, generator.img_resolution)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.data = str(folder)
    return fit.run(args, build, options, name="agilegan-style")


def main(argv=None) -> int:
    """``encoder ...`` or ``style ...`` (the first word picks the trainer; ``encoder`` when none is given)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in KINDS:
        kind, argv = argv[0], argv[1:]
    else:
        kind = "encoder"
    return (train_encoder if kind == "encoder" else train_style)(argv)
