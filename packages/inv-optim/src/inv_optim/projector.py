"""Latent projection (StyleGAN2 paper, Appendix D): optimise w (or W+) and the noise maps with Adam.

Every image of a batch has its own latent, noise maps, random stream and early stop, and the loss is
a per-sample sum, so a sample's trajectory does not depend on the batch it ran in: a batch of N
reproduces N runs of one image (up to float rounding), only faster.
"""

from __future__ import annotations

import torch

from sg2_core import Inversion, check_images

from ._common import FrozenRows, StepInfo, check_device, per_sample_randn, per_sample_seeds, sample_generators
from .distance import Distance, default_distance, downsample
from .noise_maps import noise_regularization, normalize_maps_
from .schedule import learning_rate, w_noise_std

# Official projector defaults; HyperInverter's baselines differ only in steps (its evaluation/latent_creators).
PRESETS = {
    "official": {"w": {"steps": 1000}, "w+": {"steps": 1000}},
    "hyperinverter": {"w": {"steps": 600}, "w+": {"steps": 2000}},
}
NOISE_REGULARIZE_WEIGHT = 1e5


@torch.no_grad()
def w_statistics(generator, n: int = 10000, seed: int = 123, batch_size: int = 4096) -> tuple[torch.Tensor, float]:
    """Mean ``[w_dim]`` of ``n`` mapped z draws, and their spread ``sqrt(sum |w - mean|^2 / n)`` (a scalar)."""
    if n < 1:
        raise ValueError(f"w_avg_samples must be >= 1, got {n}")
    device = next(generator.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    ws = torch.cat([generator.mapping(torch.randn(min(batch_size, n - i), generator.z_dim, generator=gen).to(device))[:, 0]
                    for i in range(0, n, batch_size)]).to(torch.float64)
    mean = ws.mean(dim=0)
    std = ((ws - mean).square().sum() / n).sqrt().item()
    return mean.to(torch.float32), std


def _regularize_weight(noise_regularize) -> float:
    if noise_regularize is True:
        return NOISE_REGULARIZE_WEIGHT
    if noise_regularize is False or noise_regularize is None:
        return 0.0
    value = float(noise_regularize)
    if value < 0:
        raise ValueError(f"noise_regularize must be a bool or a weight >= 0, got {noise_regularize}")
    return value


def project(generator, images: torch.Tensor, *, space: str = "w", steps: int = 1000, lr: float = 0.1,
            distance=None, mse: float = 0.0, noise_regularize=NOISE_REGULARIZE_WEIGHT, optimize_noise: bool = True,
            w_avg_samples: int = 10000, w_stats=None, initial_noise_factor: float = 0.05, noise_ramp: float = 0.75,
            lr_rampup: float = 0.05, lr_rampdown: float = 0.25, betas=(0.9, 0.999), seed=0,
            stop_distance: float | None = None, callback=None, device=None) -> Inversion:
    """Project ``images [N, C, R, R]`` in [-1, 1] into ``space`` (``'w'`` broadcast, or ``'w+'``).

    Loss per image: ``distance + mse * MSE + noise_regularize * noise autocorrelation``, images
    area-downsampled to 256 px when larger. ``seed``: an int (image ``i`` uses ``seed + i``) or one per
    image. ``stop_distance``: an image whose distance falls to it stops changing (checked before each
    update). ``callback(StepInfo)`` runs after every step. Returns an ``Inversion`` whose extras hold, per
    image, ``distance`` (final, with the optimised noise), ``steps`` (updates used) and ``noise.<layer>``
    (the optimised maps: render with ``noise=noise_maps(inversion)`` to see what was optimised).
    """
    if space not in ("w", "w+"):
        raise ValueError(f"space must be 'w' or 'w+', got {space!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    check_images(images, generator)
    dev = check_device(generator, device)
    target = images.detach().to(dev, torch.float32)
    n = target.shape[0]
    dist = distance if isinstance(distance, Distance) else Distance(distance or default_distance(generator))
    reg_weight = _regularize_weight(noise_regularize)
    synthesis = generator.synthesis

    w_avg, w_std = w_stats if w_stats is not None else w_statistics(generator, w_avg_samples)
    generators = sample_generators(per_sample_seeds(seed, n), dev)
    shape = [generator.w_dim] if space == "w" else [generator.num_ws, generator.w_dim]
    w_opt = w_avg.to(dev).expand(n, *shape).clone().requires_grad_(True)
    names = synthesis.noise_layer_names
    maps = []
    for name in names:
        res = synthesis.layer(name).resolution
        maps.append(per_sample_randn(generators, [1, res, res], dev))
    normalize_maps_(maps)
    for m in maps:
        m.requires_grad_(optimize_noise)
    params = [w_opt, *maps] if optimize_noise else [w_opt]
    optimizer = torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    target_small = downsample(target)

    def render(ws):
        ws = ws if space == "w+" else ws.unsqueeze(1).expand(-1, generator.num_ws, -1)
        return synthesis(ws, noise_mode="const", noise=dict(zip(names, maps)))

    def losses(image):
        small = downsample(image)
        d = dist(small, target_small)
        loss = d
        if mse:
            loss = loss + mse * (small - target_small).square().flatten(1).mean(dim=1)
        if reg_weight and maps:
            loss = loss + reg_weight * noise_regularization(maps)
        return d, loss

    active = torch.ones(n, dtype=torch.bool, device=dev)
    steps_used = torch.full((n,), steps, dtype=torch.long, device=dev)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr, lr_rampup, lr_rampdown)
        noise_std = w_noise_std(step, steps, w_std, initial_noise_factor, noise_ramp)
        w_noise = per_sample_randn(generators, shape, dev) * noise_std
        d, loss = losses(render(w_opt + w_noise))
        if stop_distance is not None:
            reached = active & (d.detach() <= stop_distance)
            steps_used[reached] = step
            active &= ~reached
            if not active.any():
                break
        frozen = FrozenRows(params, ~active)
        grads = torch.autograd.grad((loss * active).sum(), params)
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        normalize_maps_(maps)
        frozen.restore()
        if callback is not None:
            callback(StepInfo(step, steps, d.detach(), loss.detach(), active.clone(), "project"))

    with torch.no_grad():
        final = dist(downsample(render(w_opt)), target_small)
    extras = {"distance": final, "steps": steps_used, "stopped": steps_used < steps,
              "distance_name": dist.name, **{f"noise.{name}": m.detach() for name, m in zip(names, maps)}}
    return Inversion(w_opt.detach(), space, generator, None, extras)


def noise_maps(inversion: Inversion) -> dict[str, torch.Tensor]:
    """The optimised noise maps a projection stored in its extras, ``{layer: [N, 1, r, r]}``."""
    return {k.removeprefix("noise."): v for k, v in inversion.extras.items() if k.startswith("noise.")}


class Projector:
    """Registry method: projection into W (``sg2-w``) or W+ (``sg2-w+``); options are ``project``'s.

    ``preset``: ``'official'`` (1000 steps) or ``'hyperinverter'`` (W 600, W+ 2000 steps); an explicit
    ``steps`` wins. The w statistics are computed once per method object.
    """

    trainable = False
    # What `python -m inv_metrics.report` uses on its embedded default (32 demo images on a CPU in minutes).
    demo_options = {"steps": 200}

    def __init__(self, generator=None, *, space: str = "w", preset: str = "official", steps: int | None = None,
                 lr: float = 0.1, distance=None, mse: float = 0.0, noise_regularize=NOISE_REGULARIZE_WEIGHT,
                 optimize_noise: bool = True, w_avg_samples: int = 10000, seed=0, device=None, callback=None,
                 stop_distance: float | None = None, **schedule):
        if generator is None:
            raise ValueError("a projector needs generator=G")
        if space not in ("w", "w+"):
            raise ValueError(f"space must be 'w' or 'w+', got {space!r}")
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; presets: {sorted(PRESETS)}")
        unknown = set(schedule) - {"initial_noise_factor", "noise_ramp", "lr_rampup", "lr_rampdown", "betas"}
        if unknown:
            raise TypeError(f"unknown projector options {sorted(unknown)}")
        self.generator, self.space = generator, space
        self.name = "sg2-w" if space == "w" else "sg2-w+"
        self.device = check_device(generator, device)
        self.options = dict(steps=steps or PRESETS[preset][space]["steps"], lr=lr, mse=mse,
                            noise_regularize=noise_regularize, optimize_noise=optimize_noise, seed=seed,
                            stop_distance=stop_distance, callback=callback, **schedule)
        self.distance = Distance(distance or default_distance(generator))
        self.w_avg_samples = w_avg_samples
        self._w_stats = None

    def __call__(self, images: torch.Tensor, **overrides) -> Inversion:
        if self._w_stats is None:
            self._w_stats = w_statistics(self.generator, self.w_avg_samples)
        return project(self.generator, images, space=self.space, distance=self.distance, w_stats=self._w_stats,
                       **{**self.options, **overrides})


class ProjectorW(Projector):
    """``sg2-w``: one w per image, broadcast to every layer (NVIDIA's projector)."""

    def __init__(self, generator=None, **options):
        super().__init__(generator, space="w", **options)


class ProjectorWPlus(Projector):
    """``sg2-w+``: one w per layer (rosinality's ``--w_plus``)."""

    def __init__(self, generator=None, **options):
        super().__init__(generator, space="w+", **options)
