"""Train HFGI's consultation branch: ``python -m inv_encoders.train --method hfgi --steps S --run-dir DIR [options]``.

As the official trainer (``training/coach.py``, ``train.sh``): e4e and the generator are frozen (``--e4e FILE``: a
``python -m inv_encoders.train --method e4e`` file or an official e4e ``.pt``; default: the e4e method's weights for
this generator, the shipped one on the demo); only ADA and the consultation encoder learn, with Ranger at lr 1e-4.
Per batch: the e4e codes and their render (constant noise); the distortion ``x - low(render)``; its copy warped by a
random perspective (``--distortion-scale`` 0.15 with probability ``--aug-rate`` 0.9, one warp per batch, as
torchvision's ``RandomPerspective`` on a batch) goes into ADA with the low-resolution render, so ADA learns to undo
misalignment; the conditions from ADA's output modulate the second render. Loss: the reconstruction losses (L2 1,
LPIPS 0.8, ID 0.1 on faces; ``inv_metrics.losses``) of the second render, resized to the input size, plus
``--res-lambda`` (0.1) times the mean absolute difference between ADA's output and the unwarped distortion. The
output holds ``encoder`` (the frozen e4e) and ``hfgi``, which ``create_method("hfgi", generator=G, weights=FILE)``
reads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sg2_core.training import fit
from sg2_core.training.optim import Ranger

from .hfgi import HFGINetwork, config_for
from .networks import StyleEncoder
from .training import method_parser, parse_with_loss, run_trainer

DISTORTION_SCALE, AUG_RATE, RES_LAMBDA = 0.15, 0.9, 0.1


def perspective_grid(height: int, width: int, corners: torch.Tensor) -> torch.Tensor:
    """``grid_sample``'s grid (align_corners=True) for the warp that moves the image's corners (pixel coordinates
    ``(x, y)``: top-left, top-right, bottom-right, bottom-left) to ``corners`` ``[4, 2]``: each output pixel reads the
    input where the inverse homography (``corners`` -> the image's corners) sends it."""
    start = torch.tensor([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=torch.float64)
    end = corners.to(torch.float64)
    rows, rhs = [], []
    for (ex, ey), (sx, sy) in zip(end.tolist(), start.tolist()):
        rows += [[ex, ey, 1, 0, 0, 0, -sx * ex, -sx * ey], [0, 0, 0, ex, ey, 1, -sy * ex, -sy * ey]]
        rhs += [sx, sy]
    a, b, c, d, e, f, g, h = torch.linalg.solve(torch.tensor(rows), torch.tensor(rhs)).tolist()
    y, x = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    den = g * x + h * y + 1
    src_x, src_y = (a * x + b * y + c) / den, (d * x + e * y + f) / den
    return torch.stack([2 * src_x / (width - 1) - 1, 2 * src_y / (height - 1) - 1], dim=-1)[None]


def random_perspective(x: torch.Tensor, distortion_scale: float, p: float, generator: torch.Generator) -> torch.Tensor:
    """One random perspective warp of the whole batch with probability ``p`` (torchvision's ``RandomPerspective``
    draw: each corner moves inwards by up to ``distortion_scale`` of half the size), bilinear, zeros outside."""
    if torch.rand((), generator=generator).item() >= p:
        return x
    height, width = x.shape[-2:]
    reach = torch.tensor([distortion_scale * (width // 2), distortion_scale * (height // 2)])
    inwards = torch.tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=torch.float64)
    start = torch.tensor([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=torch.float64)
    corners = start + inwards * torch.rand(4, 2, generator=generator, dtype=torch.float64) * reach
    grid = perspective_grid(height, width, corners).to(x.device, x.dtype).expand(x.shape[0], -1, -1, -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class HFGIObjective(fit.Objective):
    """ADA and the consultation encoder on a frozen e4e and generator."""

    def __init__(
        self,
        generator,
        encoder: StyleEncoder,
        hfgi: HFGINetwork,
        loss,
        *,
        lr: float = 1e-4,
        distortion_scale: float = DISTORTION_SCALE,
        aug_rate: float = AUG_RATE,
        res_lambda: float = RES_LAMBDA,
        seed: int = 0,
    ):
        self.G, self.encoder, self.hfgi, self.loss = generator, encoder.eval().requires_grad_(False), hfgi.train(), loss
        self.distortion_scale, self.aug_rate, self.res_lambda = distortion_scale, aug_rate, res_lambda
        self.networks = {"hfgi": hfgi}
        self.optimizers = {"hfgi": Ranger(hfgi.parameters(), lr=lr)}
        self.warps = torch.Generator().manual_seed(seed)  # its own stream, kept in state(): resume is exact

    def final(self):
        return {"encoder": self.encoder, "hfgi": self.hfgi}

    def _codes_and_render(self, images):
        with torch.no_grad():
            codes = self.encoder(images)
            return codes, self.G.synthesis(codes, noise_mode="const")

    def _pool(self, y: torch.Tensor) -> torch.Tensor:
        size = self.hfgi.config.input_size  # pSp's face_pool: the generator's output at the input size
        return y if y.shape[-1] == size else F.adaptive_avg_pool2d(y, (size, size))

    def step(self, images, step):
        codes, rendered = self._codes_and_render(images)
        low = self.hfgi.low_resolution(rendered).to(images.dtype)
        distortion = images - low
        warped = random_perspective(distortion, self.distortion_scale, self.aug_rate, self.warps)
        aligned = self.hfgi.grid_align(torch.cat([warped, low], 1))
        out = self.G.synthesis(codes, noise_mode="const", feature_conditions=self.hfgi.conditions_of(aligned))
        total, terms = self.loss(self._pool(out), images)
        if self.res_lambda:
            terms["res"] = (aligned - distortion).abs().mean()
            total = total + self.res_lambda * terms["res"]
        self.optimize(self.optimizers["hfgi"], total)
        return {"loss": total.detach(), **{k: v.detach() for k, v in terms.items()}}

    def reconstruct(self, images):
        codes, rendered = self._codes_and_render(images)
        conditions = self.hfgi(images, rendered)
        return self.G.synthesis(codes, noise_mode="const", feature_conditions=conditions)

    def state(self):
        return {"warps": self.warps.get_state()}

    def load_state(self, state):
        if "warps" in state:
            self.warps.set_state(state["warps"])


def read_e4e(path, generator) -> StyleEncoder:
    """The frozen e4e: ``path`` (a trained or official file), or with ``None`` the e4e method's own weights for
    ``generator`` (the shipped encoder on the demo)."""
    from sg2_core import create_method

    encoder = create_method("e4e", generator=generator, weights=path).net
    if not isinstance(encoder, StyleEncoder) or encoder.config.kind != "e4e":
        raise ValueError(f"{path}: holds no e4e encoder")
    return encoder


def train_hfgi(argv=None) -> int:
    p = method_parser("hfgi", __doc__)
    p.add_argument("--e4e", metavar="FILE", help="the frozen e4e (default: the e4e method's weights for the generator)")
    p.add_argument("--condition-layer", help="the conditioned layer (default: b64.conv0, or half the output size)")
    p.add_argument("--aligner-widths", type=int, nargs=4, help="ADA's widths (default: 16 32 48 64)")
    p.add_argument("--consultation-widths", type=int, nargs=3, help="the consultation encoder's (default: 32 48 64)")
    p.add_argument("--distortion-scale", type=float, default=DISTORTION_SCALE, help="the random perspective's reach")
    p.add_argument("--aug-rate", type=float, default=AUG_RATE, help="the probability of a warp per batch")
    p.add_argument("--res-lambda", type=float, default=RES_LAMBDA, help="weight of |ADA out - distortion|")
    args = parse_with_loss(p, argv)
    if not 0 <= args.aug_rate <= 1 or not 0 <= args.distortion_scale <= 1:
        p.error(f"--aug-rate and --distortion-scale must be in [0, 1], got {args.aug_rate}, {args.distortion_scale}")
    widths = {
        k: tuple(v)
        for k, v in (("aligner_widths", args.aligner_widths), ("consultation_widths", args.consultation_widths))
        if v
    }
    # HFGIObjective's keywords, saved as given
    settings = {k: getattr(args, k) for k in ("lr", "distortion_scale", "aug_rate", "res_lambda")}
    options = {**settings, **{k: list(v) for k, v in widths.items()}}

    def build(generator, device, loss, seed):
        encoder = read_e4e(args.e4e, generator).to(device)
        config = config_for(
            generator.synthesis, encoder.config.input_size, condition_layer=args.condition_layer, **widths
        )
        options["condition_layer"] = config.condition_layer
        with torch.device(device):
            hfgi = HFGINetwork(config)
        return HFGIObjective(generator, encoder, hfgi, loss, **settings, seed=seed)

    return run_trainer(args, build, options, name="hfgi")
