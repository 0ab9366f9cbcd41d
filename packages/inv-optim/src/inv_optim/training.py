"""Train the collaborative-learning embedding network (Guan et al. 2020) for a generator.

    python -m inv_optim.train --method collab (--out FILE | --run-dir DIR [--resume]) [--generator CHECKPOINT]
        [--data fmnist-train] [--num-images N] [--minutes 12 | --steps S] [--batch-size 32] [--iterator-steps 2]
        [--lr 1e-3] [--threads 2] [--seed 0] [--snap-every 200]

Each step: the network proposes W+ codes for a batch; the iterator (``refine_wplus``) starts from the better of
the proposal and the image's cached code and refines it for ``--iterator-steps`` steps; the cache keeps each
image's best code so far; the network is trained towards the cached codes (latent L2) and the images (image L2
+ perceptual distance of its own rendering). The cache makes optimisation accumulate over epochs: an image's
target keeps improving each time it is drawn, which is why ``--num-images`` can pick a subset that is seen
several times within a short budget.

The run's shape is ``sg2_core.training.fit``'s: ``--run-dir DIR`` holds ``snapshot-<steps>.safetensors`` every
``--snap-every`` steps, at the end and on SIGINT/SIGTERM (the network, and under ``extra["training"]`` its Adam
state, the latent cache, the data order, the RNG, the step count and the options), sample grids, validation
MSE/PSNR and ``log.jsonl``, and the final network as ``DIR/final.safetensors`` unless ``--out`` names another
file. A fresh run refuses a non-empty DIR; ``--resume`` continues DIR's newest snapshot exactly (the same steps,
bit for bit, as an uninterrupted run) and refuses other training options; ``--steps`` counts all steps of the
run, ``--minutes`` this invocation's (either alone, or both). Collab trains in one process: its latent cache is
not shared between torchrun's ranks.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch

from sg2_core.training import fit
from sg2_core.training.run import world

from .collab import LatentCache, iterator_loss, refine_wplus
from .distance import Distance, default_distance
from .embedding import build_embedding

TRAIN_ITERATOR_LR = 0.02  # gentler than test time's 0.1: a few steps per visit, accumulated by the cache


@dataclass(frozen=True)
class LossWeights:
    """The network's loss: ``latent * |w_e - w_cache|^2 + image * MSE(G(w_e), x) + perceptual * d(G(w_e), x)``."""

    latent: float = 10.0
    image: float = 1.0
    perceptual: float = 1.0


class CollabObjective(fit.Objective):
    """Collaborative learning of the embedding ``network`` for a frozen ``generator``, one step at a time
    (``sg2_core.training.fit`` runs it; :meth:`prepare` sizes the latent cache for the training set)."""

    indexed = True  # the latent cache keeps one code per training image

    def __init__(
        self,
        network,
        generator,
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
        self.networks = {"network": network}
        self.optimizers = {"network": torch.optim.Adam(network.trainable_parameters(), lr=lr, betas=(0.9, 0.99))}
        self.cache: LatentCache | None = None

    def prepare(self, num_images: int) -> None:
        device = next(self.generator.parameters()).device
        self.cache = LatentCache(num_images, self.generator.num_ws, self.generator.w_dim, device)

    def network_loss(self, images, codes, targets=None) -> tuple[torch.Tensor, dict]:
        """The weighted loss of the network's ``codes`` (``targets``: the cached codes; None skips that term)."""
        rendered = self.generator.synthesis(codes, noise_mode="const")
        parts = {"image": (rendered - images).square().mean(), "perceptual": self.distance(rendered, images).mean()}
        if targets is not None:
            parts["latent"] = (codes - targets).square().mean()
        total = sum(getattr(self.weights, k) * v for k, v in parts.items())
        return total, {k: v.item() for k, v in parts.items()}

    def step(self, images: torch.Tensor, step: int, indices: torch.Tensor) -> dict:
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
        self.optimize(self.optimizers["network"], loss)
        return {
            "loss": loss.item(),
            **parts,
            "proposal_iterator_loss": proposal_loss.mean().item(),
            "target_iterator_loss": target_loss.mean().item(),
            "from_cache": from_cache.float().mean().item(),
        }

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator.synthesis(self.network(images), noise_mode="const")

    def state(self) -> dict:
        return {"cache": dict(self.cache.state_dict())}

    def load_state(self, state: dict) -> None:
        self.cache.codes.copy_(state["cache"]["codes"])
        self.cache.loss.copy_(state["cache"]["loss"])


class CollabTrainer(CollabObjective):
    """Deprecated: :class:`CollabObjective` (sized with ``prepare(num_images)``, stepped as
    ``step(images, step, indices)``). Kept for inv-optim 0.3 code: sized here, stepped as ``step(images, indices)``."""

    def __init__(self, network, generator, num_images: int, **options):
        warnings.warn(
            "inv_optim.training.CollabTrainer is deprecated: use CollabObjective, which python -m inv_optim.train "
            "runs on sg2_core.training.fit",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(network, generator, **options)
        self.prepare(num_images)
        self.steps = 0

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.optimizers["network"]

    def step(self, images: torch.Tensor, indices) -> dict:
        self.steps += 1
        return super().step(images, self.steps - 1, indices)


def main(argv=None) -> int:
    p = fit.parser("python -m inv_optim.train --method collab", __doc__, time_budget=True)
    p.add_argument("--iterator-steps", type=int, default=2, help="iterator steps per visit of an image")
    p.add_argument("--iterator-lr", type=float, default=TRAIN_ITERATOR_LR, help="the iterator's peak lr")
    p.add_argument("--lr", type=float, default=1e-3, help="the network's Adam lr")
    p.add_argument("--latent-weight", type=float, default=LossWeights.latent)
    p.add_argument("--image-weight", type=float, default=LossWeights.image)
    p.add_argument("--perceptual-weight", type=float, default=LossWeights.perceptual)
    p.add_argument("--backbone", choices=("fused", "attribute"), help="default: fused on the demo domain")
    p.add_argument("--distance", help="inv-metrics distance name (default fmnist on the demo domain, else lpips-vgg)")
    p.set_defaults(batch_size=32, snap_every=200, log_every=20)
    args = p.parse_args(argv)
    weights = LossWeights(args.latent_weight, args.image_weight, args.perceptual_weight)
    options = {
        "iterator_steps": args.iterator_steps,
        "iterator_lr": args.iterator_lr,
        "lr": args.lr,
        "loss_weights": asdict(weights),
    }

    def build(generator, device):
        if world()[1] > 1:
            raise ValueError("collab trains in one process (its latent cache is not shared): run it without torchrun")
        network = build_embedding(generator, backbone=args.backbone)
        objective = CollabObjective(
            network,
            generator,
            distance=args.distance,
            iterator_steps=args.iterator_steps,
            iterator_lr=args.iterator_lr,
            lr=args.lr,
            weights=weights,
        )
        options.update(backbone=network.config.backbone, distance=objective.distance.name)
        return objective

    return fit.run(args, build, options, name="collab")
