"""The losses the inversion families train with, written once.

pSp/e4e/ReStyle/HyperInverter style: ``l2`` (pixel MSE), LPIPS or the small-domain perceptual distance through
``perceptual`` / :class:`PerceptualLoss`, the identity loss :class:`IDLoss`, the latent-norm regulariser
``w_norm`` and e4e's ``delta_regularizer``. All return scalar tensors averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element (``nn.MSELoss()``, as pSp)."""
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return F.mse_loss(x, y)


def perceptual(distance: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch mean of a per-image distance from :func:`inv_metrics.load_distance` (LPIPS, fmnist perceptual)."""
    return distance(x, y).mean()


class PerceptualLoss(nn.Module):
    """``PerceptualLoss(load_distance('lpips-alex'))(y_hat, y)``: a frozen distance as a batch-mean loss."""

    def __init__(self, distance: nn.Module):
        super().__init__()
        self.distance = distance.eval().requires_grad_(False)
        self.name = getattr(distance, "name", type(distance).__name__)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return perceptual(self.distance, y_hat, y)


class IDLoss(nn.Module):
    """pSp's identity loss: mean over the batch of 1 - <f(y_hat), f(y)> for a unit-norm face embedder ``f``
    (e.g. ``load_id_network('arcface-ir-se50')``, which applies pSp's crop and pooling)."""

    def __init__(self, embedder: nn.Module):
        super().__init__()
        self.embedder = embedder.eval().requires_grad_(False)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the target's embedding is a constant, as in pSp
            target = self.embedder(y)
        return (1 - (self.embedder(y_hat) * target).sum(dim=1)).mean()


def _check_w_plus(w_plus: torch.Tensor) -> None:
    if w_plus.ndim != 3:
        raise ValueError(f"latents must be w+ codes [N, num_ws, w_dim], got shape {tuple(w_plus.shape)}")


def w_norm(w_plus: torch.Tensor, w_avg: torch.Tensor | None = None) -> torch.Tensor:
    """pSp's latent-norm regulariser: batch mean of ||w+ - w_avg|| (Frobenius over layers and channels).

    ``w_avg`` [w_dim] or [num_ws, w_dim]; without it the norm of the codes themselves (pSp without
    ``start_from_latent_avg``)."""
    _check_w_plus(w_plus)
    if w_avg is not None:
        w_plus = w_plus - w_avg
    return w_plus.norm(p=2, dim=(1, 2)).mean()


def delta_regularizer(w_plus: torch.Tensor, num_deltas: int | None = None) -> torch.Tensor:
    """e4e's delta regulariser: sum over the layers i = 1..num_deltas of mean_batch ||w_i - w_0||.

    ``num_deltas`` follows e4e's progressive stage (how many deltas are active); default: all of them."""
    _check_w_plus(w_plus)
    num_deltas = w_plus.shape[1] - 1 if num_deltas is None else num_deltas
    if not 0 <= num_deltas < w_plus.shape[1]:
        raise ValueError(f"num_deltas must be in [0, {w_plus.shape[1] - 1}], got {num_deltas}")
    deltas = w_plus[:, 1 : num_deltas + 1] - w_plus[:, :1]
    return deltas.norm(p=2, dim=2).mean(dim=0).sum()


class ReconstructionLoss(nn.Module):
    """The encoder families' image loss: ``l2 * MSE + perceptual * d(y_hat, y) + id * IDLoss`` (pSp's
    defaults 1.0 / 0.8 / 0.1; a zero weight leaves its term and its network out). ``forward`` returns
    ``(total, {term: detached value})``."""

    def __init__(
        self,
        *,
        l2: float = 1.0,
        perceptual: float = 0.8,
        distance: nn.Module | None = None,
        id: float = 0.0,
        id_network: nn.Module | None = None,
    ):
        super().__init__()
        if perceptual and distance is None:
            raise ValueError("a perceptual weight needs a distance (inv_metrics.load_distance)")
        if id and id_network is None:
            raise ValueError("an ID weight needs a face network (inv_metrics.load_id_network)")
        self.weights = {"l2": float(l2), "perceptual": float(perceptual), "id": float(id)}
        self.perceptual = PerceptualLoss(distance) if perceptual else None
        self.identity = IDLoss(id_network) if id else None

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = {}
        if self.weights["l2"]:
            terms["l2"] = l2(y_hat, y)
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(y_hat, y)
        if self.identity is not None:
            terms["id"] = self.identity(y_hat, y)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, {k: v.detach() for k, v in terms.items()}


def add_loss_arguments(parser, *, l2: float = 1.0, perceptual: float = 0.8, id: float = 0.1) -> None:
    """``--l2 --perceptual --distance --distance-weights --id --id-network --id-weights`` on a trainer's parser."""
    g = parser.add_argument_group("image loss")
    g.add_argument("--l2", type=float, default=l2, help=f"pixel MSE weight (default {l2})")
    g.add_argument(
        "--perceptual",
        type=float,
        default=perceptual,
        help=f"perceptual distance weight (default {perceptual}, LPIPS in the papers)",
    )
    g.add_argument(
        "--distance",
        help="inv_metrics distance: lpips-alex, lpips-vgg, fmnist (default: fmnist for a "
        "1-channel 32 px generator such as the demo's, else lpips-alex)",
    )
    g.add_argument("--distance-weights", help="the distance's weight file (default: its usual cache)")
    g.add_argument("--id-weights", help="a face network file: turns on the ID loss (weight --id)")
    g.add_argument("--id-network", default="arcface-ir-se50", help="which face network --id-weights holds")
    g.add_argument("--id", type=float, default=id, help=f"ID loss weight when --id-weights is given (default {id})")


def loss_from_arguments(args, generator, device=None) -> tuple[ReconstructionLoss, dict]:
    """The :class:`ReconstructionLoss` that :func:`add_loss_arguments`' options name for ``generator``, and
    those options as JSON values (for the run's record). A missing weight file raises, naming it."""
    from .distances import load_distance
    from .identity import load_id_network

    name = args.distance or (
        "fmnist" if (generator.img_channels, generator.img_resolution) == (1, 32) else "lpips-alex"
    )
    distance = load_distance(name, weights=args.distance_weights, device=device) if args.perceptual else None
    id_weight = args.id if args.id_weights else 0.0
    id_network = load_id_network(args.id_network, weights=args.id_weights, device=device) if id_weight else None
    loss = ReconstructionLoss(
        l2=args.l2, perceptual=args.perceptual, distance=distance, id=id_weight, id_network=id_network
    )
    return loss, {
        "l2": args.l2,
        "perceptual": args.perceptual,
        "distance": name if args.perceptual else None,
        "id": id_weight,
        "id_network": args.id_network if id_weight else None,
    }
