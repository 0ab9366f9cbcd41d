"""Train HyperStyle: ``python -m inv_hyper.train --method hyperstyle --phase1 METHOD --steps S --run-dir DIR``.

The W start is frozen: a registered W-space method's codes (``--phase1``, e.g. ``e4e-w`` with its default weights;
the file records it, and ``HyperStyle`` then starts from it), as the paper trains on a pretrained e4e W encoder.
Each batch runs ``--iterations`` refinement steps as the reference's coach does: the hypernetwork reads the target
and the current render, its changes are added to the (detached) sum so far, the render's loss is taken at every
step, and the summed gradients make one optimiser step. The loss defaults are the paper's (L2 1.0, LPIPS 0.8, ID 0.1
with a face network); Adam at ``--lr`` 1e-4 (the reference uses Ranger). The run's shape (snapshots, exact
``--resume``, samples, validation, torchrun) is ``sg2_core.training.fit``'s; the output holds ``networks``
(HyperStyleNetworks), which ``HyperStyle(weights=FILE)`` reads.
"""

from __future__ import annotations

import sys

import torch

from sg2_core import create_method, list_methods
from sg2_core.training import fit

from .hyperstyle import HyperStyleConfig, HyperStyleNetworks
from .hyperstyle_method import iterate, pool
from .methods import w_start_codes


class HyperStyleObjective(fit.Objective):
    """The hypernetwork on a frozen W start, ``iterations`` refinement steps per batch."""

    def __init__(self, generator, networks: HyperStyleNetworks, loss, lr: float, phase1, iterations: int):
        self.generator, self.loss, self.net, self.phase1, self.iterations = (
            generator,
            loss,
            networks,
            phase1,
            iterations,
        )
        networks.train()
        self.networks = {"networks": networks}
        self.optimizers = {"hypernet": torch.optim.Adam(networks.hypernet.parameters(), lr=lr)}

    def start(self, images: torch.Tensor) -> tuple[torch.Tensor, dict | None]:
        """The frozen W start's codes and offsets, as ``HyperStyle`` computes them."""
        encoder = self.net.w_encoder
        return w_start_codes(self.generator, self.phase1, encoder, self.net.config.encoder_size, images, pool)

    def renders(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The render after every iteration (each one's changes on the detached sum of the earlier ones)."""
        ws, offsets = self.start(images)
        return [r for r, _ in iterate(self.generator, self.net.hypernet, images, ws, offsets, self.iterations)]

    def step(self, images, step):
        total, parts = 0.0, {}
        for i, rendered in enumerate(self.renders(images)):
            loss, terms = self.loss(rendered, images)
            total = total + loss
            parts[f"loss_{i + 1}"] = loss.detach()
        self.optimize(self.optimizers["hypernet"], total)
        return {"loss": total.detach() / self.iterations, **parts}

    def reconstruct(self, images):
        return self.renders(images)[-1]


def main(argv=None) -> int:
    from inv_metrics.losses import add_loss_arguments, loss_from_arguments

    p = fit.parser("python -m inv_hyper.train --method hyperstyle", __doc__)
    p.add_argument("--phase1", required=True, help="the W start: a registered W-space method (e.g. e4e-w)")
    p.add_argument("--iterations", type=int, default=5, help="refinement steps per batch (the reference's 5)")
    p.add_argument("--lr", type=float, default=1e-4)
    sizes = p.add_argument_group("network sizes (the defaults are the official ones)")
    sizes.add_argument("--widths", type=int, nargs=4, default=(64, 128, 256, 512))
    sizes.add_argument("--code-dim", type=int, default=512)
    sizes.add_argument("--shared-inner", type=int, default=128)
    sizes.add_argument("--inner", type=int, default=256)
    sizes.add_argument("--encoder-size", type=int, default=256)
    add_loss_arguments(p)
    args = p.parse_args(argv)
    if args.phase1 not in list_methods(space="w"):
        what = "not a W-space method" if args.phase1 in list_methods() else "not a registered method"
        print(f"error: --phase1 {args.phase1} is {what}; one of {list_methods(space='w')}", file=sys.stderr)
        return 2
    if args.iterations < 1:
        print(f"error: --iterations must be >= 1, got {args.iterations}", file=sys.stderr)
        return 2
    config = HyperStyleConfig(
        widths=tuple(args.widths),
        code_dim=args.code_dim,
        shared_inner=args.shared_inner,
        inner=args.inner,
        encoder_size=args.encoder_size,
        phase1=args.phase1,
    )
    options = {"lr": args.lr, "iterations": args.iterations, "phase1": args.phase1, "sizes": config.to_dict()}

    def build(generator, device):
        loss, loss_options = loss_from_arguments(args, generator, device)
        options["loss"] = loss_options
        with torch.device(device):
            networks = HyperStyleNetworks.for_generator(generator, config)
        phase1 = create_method(args.phase1, generator=generator, device=device)
        return HyperStyleObjective(generator, networks, loss, args.lr, phase1, args.iterations)

    return fit.run(args, build, options, name="hyperstyle")
