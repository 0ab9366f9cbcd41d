"""Latent projection (StyleGAN2 paper, Appendix D): optimise w (or W+) and the noise maps with Adam.

The public way in is the registry: ``create_method("sg2-w" | "sg2-w+", generator=G, **options)``
(:class:`ProjectorW`, :class:`ProjectorWPlus`); ``_project`` is the engine behind them. ``project`` and
``Projector`` are deprecated names of those.

Every image of a batch has its own latent, noise maps, random stream and early stop, and the loss is
a per-sample sum, so a sample's trajectory does not depend on the batch it ran in: a batch of N
reproduces N runs of one image (up to float rounding), only faster.
"""

from __future__ import annotations

import warnings

import torch

from sg2_core import Inversion, Method, StepInfo, check_images
from sg2_core.methods.method import check_device, check_init
from sg2_core.methods.seeds import per_image_seeds

from ._common import FrozenRows, per_sample_randn, sample_generators
from .distance import Distance, default_distance, downsample
from .noise_maps import noise_regularization, normalize_maps_
from .schedule import learning_rate, w_noise_std

# Official projector defaults; HyperInverter's baselines differ only in steps (its evaluation/latent_creators).
PRESETS = {
    "official": {"w": {"steps": 1000}, "w+": {"steps": 1000}},
    "hyperinverter": {"w": {"steps": 600}, "w+": {"steps": 2000}},
}
NOISE_REGULARIZE_WEIGHT = 1e5
NOISE_CHOICES = ("optimize", "random", "const")


@torch.no_grad()
def w_statistics(generator, n: int = 10000, seed: int = 123, batch_size: int = 4096) -> tuple[torch.Tensor, float]:
    """Mean ``[w_dim]`` of ``n`` mapped z draws, and their spread ``sqrt(sum |w - mean|^2 / n)`` (a scalar)."""
    if n < 1:
        raise ValueError(f"w_avg_samples must be >= 1, got {n}")
    device = next(generator.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    ws = torch.cat(
        [
            generator.mapping(torch.randn(min(batch_size, n - i), generator.z_dim, generator=gen).to(device))[:, 0]
            for i in range(0, n, batch_size)
        ]
    ).to(torch.float64)
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


def _project(
    generator,
    images: torch.Tensor,
    *,
    space: str = "w",
    steps: int = 1000,
    lr: float = 0.1,
    distance=None,
    mse: float = 0.0,
    noise_regularize=NOISE_REGULARIZE_WEIGHT,
    noise: str = "optimize",
    optimize_noise: bool | None = None,
    w_avg_samples: int = 10000,
    w_stats=None,
    initial_noise_factor: float = 0.05,
    noise_ramp: float = 0.75,
    lr_rampup: float = 0.05,
    lr_rampdown: float = 0.25,
    betas=(0.9, 0.999),
    seed=0,
    stop_distance: float | None = None,
    keep_best: bool = False,
    init: Inversion | None = None,
    callback=None,
    device=None,
) -> Inversion:
    """Project ``images [N, C, R, R]`` in [-1, 1] into ``space`` (``'w'`` broadcast, or ``'w+'``).

    Loss per image: ``distance + mse * MSE + noise_regularize * noise autocorrelation``, images
    area-downsampled to 256 px when larger. ``seed``: an int (image ``i`` uses ``seed + i``) or one per
    image. ``noise``: ``'optimize'`` (random maps optimised with the code, NVIDIA's projector),
    ``'random'`` (random maps kept fixed) or ``'const'`` (the generator's constant maps, no noise
    regularisation: how the codes of encoders and ``Inversion.render`` are rendered). ``init``: an
    ``Inversion`` of the images to start from instead of the mean w (a W+ start becomes a w by its mean over
    layers for ``space='w'``); its weight offsets are applied while projecting and kept in the result.
    ``stop_distance``: an image whose distance falls to it stops changing (checked before each update).
    ``keep_best``: return per image the best code visited (the start included) instead of the last.
    ``steps=0`` returns the start. ``callback(StepInfo)`` runs after every step. Returns an ``Inversion``
    whose extras hold, per image, ``distance`` (final), ``steps`` (updates used) and, unless
    ``noise='const'``, ``noise.<layer>`` (render with ``noise=noise_maps(inversion)`` to see them).
    """
    if optimize_noise is not None:  # the older switch: False kept random maps fixed
        noise = "optimize" if optimize_noise else "random"
    if noise not in NOISE_CHOICES:
        raise ValueError(f"noise must be one of {NOISE_CHOICES}, got {noise!r}")
    if space not in ("w", "w+"):
        raise ValueError(f"space must be 'w' or 'w+', got {space!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    check_images(images, generator)
    if init is not None:
        check_init(init, images, generator)
    dev = check_device(generator, device)
    target = images.detach().to(dev, torch.float32)
    n = target.shape[0]
    dist = distance if isinstance(distance, Distance) else Distance(distance or default_distance(generator))
    reg_weight = _regularize_weight(noise_regularize) if noise != "const" else 0.0
    synthesis = generator.synthesis
    offsets = (
        {k: v.detach() for k, v in init.weight_offsets.items()} if init is not None and init.weight_offsets else None
    )

    w_avg, w_std = w_stats if w_stats is not None else w_statistics(generator, w_avg_samples)
    generators = sample_generators(per_image_seeds(seed, n), dev)
    shape = [generator.w_dim] if space == "w" else [generator.num_ws, generator.w_dim]
    if init is None:
        start = w_avg.to(dev).expand(n, *shape)
    else:
        start = init.ws.detach().to(dev, torch.float32)
        start = start.mean(dim=1) if space == "w" else start
    w_opt = start.clone().requires_grad_(True)
    names = synthesis.noise_layer_names if noise != "const" else []
    maps = []
    for name in names:
        res = synthesis.layer(name).resolution
        maps.append(per_sample_randn(generators, [1, res, res], dev))
    normalize_maps_(maps)
    for m in maps:
        m.requires_grad_(noise == "optimize")
    params = [w_opt, *maps] if noise == "optimize" else [w_opt]
    optimizer = torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    target_small = downsample(target)
    best = _Best(w_opt, n) if keep_best else None

    def render(ws):
        ws = ws if space == "w+" else ws.unsqueeze(1).expand(-1, generator.num_ws, -1)
        return synthesis(ws, noise_mode="const", noise=dict(zip(names, maps)) or None, weight_offsets=offsets)

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
        if best is not None and noise_std == 0:  # the loss of the code before this update
            best.update(loss.detach(), d.detach(), w_opt)
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
        final_d, final_loss = losses(render(w_opt))
    codes = w_opt.detach()
    if best is not None:
        best.update(final_loss, final_d, w_opt)
        codes, final_d = best.codes, best.distance
    if best is not None:
        final_loss = best.loss
    extras = {
        "distance": final_d,
        "loss": final_loss,
        "steps": steps_used,
        "stopped": steps_used < steps,
        "distance_name": dist.name,
        **{f"noise.{name}": m.detach() for name, m in zip(names, maps)},
    }
    return Inversion(codes, space, generator, offsets, extras)


class _Best:
    """Per image, the code with the lowest loss seen so far (and its loss and distance)."""

    def __init__(self, codes: torch.Tensor, n: int):
        self.codes = codes.detach().clone()
        self.loss = torch.full((n,), float("inf"), device=codes.device)
        self.distance = self.loss.clone()

    @torch.no_grad()
    def update(self, loss, distance, codes) -> None:
        better = loss < self.loss
        self.codes[better] = codes.detach()[better]
        self.loss[better], self.distance[better] = loss[better], distance[better]


def noise_maps(inversion: Inversion) -> dict[str, torch.Tensor]:
    """The optimised noise maps a projection stored in its extras, ``{layer: [N, 1, r, r]}``."""
    return {k.removeprefix("noise."): v for k, v in inversion.extras.items() if k.startswith("noise.")}


class _Projector(Method):
    """Registry methods ``sg2-w`` / ``sg2-w+``: projection into W or W+; options are ``_project``'s.

    ``preset``: ``'official'`` (1000 steps) or ``'hyperinverter'`` (W 600, W+ 2000 steps); an explicit
    ``steps`` wins (0 returns the start: the mean w, or ``init``). The w statistics are computed once per
    method object, or given as ``w_stats=(mean, spread)``. Called with ``init=``, the projection starts from that inversion's codes.
    """

    # What `python -m inv_metrics.report` uses on its embedded default (32 demo images on a CPU in minutes).
    demo_options = {"steps": 200}
    # Adam turns the rounding differences of batched GEMMs into lr-sized steps: W+ 2.2e-4 after 3 steps.
    test_options = {"steps": 3, "w_avg_samples": 64}
    full_size_options = {"steps": 1}  # one step runs every part of a step; the rest repeats it
    test_batch_tolerance = 1e-3
    _SCHEDULE = ("initial_noise_factor", "noise_ramp", "lr_rampup", "lr_rampdown", "betas")

    def __init__(
        self,
        generator=None,
        *,
        space: str = "w",
        preset: str = "official",
        steps: int | None = None,
        lr: float = 0.1,
        distance=None,
        mse: float = 0.0,
        noise_regularize=NOISE_REGULARIZE_WEIGHT,
        noise: str = "optimize",
        optimize_noise: bool | None = None,
        w_avg_samples: int = 10000,
        seed=0,
        device=None,
        callback=None,
        stop_distance: float | None = None,
        keep_best: bool = False,
        w_stats=None,
        **schedule,
    ):
        super().__init__(generator, callback=callback, device=device)
        if space not in ("w", "w+"):
            raise ValueError(f"space must be 'w' or 'w+', got {space!r}")
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; presets: {sorted(PRESETS)}")
        unknown = set(schedule) - set(self._SCHEDULE)
        if unknown:
            raise TypeError(f"unknown projector options {sorted(unknown)}; schedule options: {list(self._SCHEDULE)}")
        steps = PRESETS[preset][space]["steps"] if steps is None else steps
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {steps!r}")
        if not isinstance(w_avg_samples, int) or w_avg_samples < 1:
            raise ValueError(f"w_avg_samples must be an int >= 1, got {w_avg_samples!r}")
        if optimize_noise is not None:
            noise = "optimize" if optimize_noise else "random"
        if noise not in NOISE_CHOICES:
            raise ValueError(f"noise must be one of {NOISE_CHOICES}, got {noise!r}")
        _regularize_weight(noise_regularize)
        self.space, self.name = space, "sg2-w" if space == "w" else "sg2-w+"
        self.options = dict(
            steps=steps,
            lr=lr,
            mse=mse,
            noise_regularize=noise_regularize,
            noise=noise,
            seed=seed,
            stop_distance=stop_distance,
            keep_best=keep_best,
            callback=callback,
            **schedule,
        )
        self.distance = Distance(distance or default_distance(generator))
        self.distance.check_weights(self.name)
        self.w_avg_samples = w_avg_samples
        self._w_stats = w_stats  # (mean w, spread): computed at the first call unless given

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        if self._w_stats is None:
            self._w_stats = w_statistics(self.generator, self.w_avg_samples)
        return _project(
            self.generator,
            images,
            space=self.space,
            distance=self.distance,
            w_stats=self._w_stats,
            init=init,
            **self.options,
        )


class ProjectorW(_Projector):
    """``sg2-w``: one w per image, broadcast to every layer (NVIDIA's projector)."""

    name = "sg2-w"
    space = "w"

    def __init__(self, generator=None, **options):
        super().__init__(generator, space="w", **options)


class ProjectorWPlus(_Projector):
    """``sg2-w+``: one w per layer (rosinality's ``--w_plus``)."""

    name = "sg2-w+"
    space = "w+"

    def __init__(self, generator=None, **options):
        super().__init__(generator, space="w+", **options)


def __getattr__(name: str):
    # Deprecated in 0.4: the registered methods are the one public way to the projector; gone in 0.5.
    if name not in ("project", "Projector"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"inv_optim.projector.{name} is deprecated and goes away in inv-optim 0.5: use "
        'sg2_core.create_method("sg2-w" or "sg2-w+", generator=G, **options)'
        + ("(images, init=None)" if name == "project" else ""),
        DeprecationWarning,
        stacklevel=2,
    )
    return _project if name == "project" else _Projector
