"""Pivotal Tuning Inversion (Roich et al. 2021): a pivot latent, then the generator tuned around it.

Many images tune at once: each image's tuning is a set of per-sample weight offsets of the synthesis
network (``Generator.synthesis(..., weight_offsets=)``), so one batched forward serves the whole batch
and the result carries offsets, never a generator copy. By default every convolution and toRGB weight
gets an offset; biases, the constant input, noise strengths and the style affines stay shared (an offset
of those would be one more per-sample input the synthesis network does not take). ``mode='copy'`` tunes
a deep copy of the synthesis network per image, one image after the other (PTI's own way, with the
same layers), and reports the difference as offsets too.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch

from sg2_core import Inversion, Method, StepInfo, create_method
from sg2_core.methods.seeds import per_image_seeds
from sg2_core.methods.weights import MissingWeightsError
from sg2_core.nn.offsets import layer_key

from ._common import FrozenRows, sample_generators
from .distance import Distance, default_distance
from .projector import ProjectorW

# PTI's pivot: NVIDIA's projector, 450 steps, w_avg from 600 samples, effective peak lr 0.01 (its schedule
# overrides the 5e-3 given to the optimiser).
PIVOT_DEFAULTS = {"steps": 450, "lr": 0.01, "w_avg_samples": 600}
MODES = ("offsets", "copy")


def _per_sample_mse(x, y):
    return (x - y).square().flatten(1).mean(dim=1)


class PTI(Method):
    """Registry method ``pti``: a pivot latent, then per-image weight offsets tuned around it.

    Called with ``init=`` an existing inversion of the images, PTI tunes around that pivot (and on top of
    its weight offsets) instead of running its pivot method.

    Options:
        pivot: ``'projector'`` (W projection, ``PIVOT_DEFAULTS``), the name of any registered method (built
            with ``sg2_core.create_method(pivot, generator=G, **pivot_options)``) or a method object.
        pivot_options: options of the pivot method (override ``PIVOT_DEFAULTS`` for the projector).
        steps, lr: tuning steps (at most) and Adam learning rate (PTI: 350, 3e-4).
        distance: name or callable for the tuning loss and the stop test (default LPIPS-Alex, or
            ``'fmnist'`` on the demo domain); the projector pivot uses it too unless ``pivot_options`` names one.
        mse, distance_weight: weights of the per-image MSE and distance in the tuning loss (1, 1).
        stop_distance: an image stops tuning once its distance is at most this (0.06; None: never).
        locality: PTI's locality regulariser (codes ``alpha`` away from the pivot towards random truncated
            codes render as the untuned generator does), with ``locality_mse``/``locality_distance``
            weights (0.1/0.1) and ``locality_truncation`` 0.5.
        mode: ``'offsets'`` (batched, default) or ``'copy'`` (one generator copy per image, sequential).
        layers: synthesis layers to tune (default: every conv and toRGB weight).
        seed: an int (image ``i`` uses ``seed + i``) or one per image; noise_regularize: the projector pivot's.
        callback: receives a ``StepInfo`` after every step (``stage`` 'pivot' or 'tune').
    """

    name = "pti"
    space = "w"  # the default pivot's; an instance takes its pivot method's space
    # What `python -m inv_metrics.report` uses on its embedded default (32 demo images on a CPU in minutes).
    demo_options = {"pivot_options": {"steps": 200}, "steps": 50}  # the pivot equals the sg2-w row
    test_options = {"steps": 3, "lr": 3e-3, "pivot_options": {"steps": 2, "w_avg_samples": 64}}
    full_size_options = {"steps": 1, "pivot_options": {"steps": 1}}  # one pivot step, one tuning step
    test_batch_tolerance = 1e-2  # Adam turns batched rounding into lr-sized steps (see test_pti)

    def __init__(
        self,
        generator=None,
        *,
        pivot="projector",
        pivot_options=None,
        steps: int = 350,
        lr: float = 3e-4,
        distance=None,
        mse: float = 1.0,
        distance_weight: float = 1.0,
        stop_distance: float | None = 0.06,
        locality: bool = False,
        locality_alpha: float = 30.0,
        locality_mse: float = 0.1,
        locality_distance: float = 0.1,
        locality_truncation: float = 0.5,
        mode: str = "offsets",
        layers=None,
        seed=0,
        noise_regularize=None,
        device=None,
        callback=None,
    ):
        super().__init__(generator, callback=callback, device=device)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {steps!r}")
        known = generator.synthesis.weight_layer_names
        self.layers = list(known) if layers is None else [layer_key(str(x)) for x in layers]
        unknown = [x for x in self.layers if x not in known]
        if unknown:
            raise ValueError(f"layers: unknown synthesis layers {unknown}; layers with weights: {known}")
        self.steps, self.lr, self.mode, self.seed = steps, lr, mode, seed
        self.mse, self.distance_weight, self.stop_distance = mse, distance_weight, stop_distance
        self.locality = (
            dict(alpha=locality_alpha, mse=locality_mse, distance=locality_distance, truncation=locality_truncation)
            if locality
            else None
        )
        self.distance = Distance(distance or default_distance(generator, "pti"))
        self.distance.check_weights(self.name)
        self.pivot_method = self._build_pivot(pivot, dict(pivot_options or {}), distance, noise_regularize)
        self.pivot_name = pivot if isinstance(pivot, str) else getattr(pivot, "name", type(pivot).__name__)
        self.space = self.pivot_method.space

    def _build_pivot(self, pivot, options, distance, noise_regularize):
        if callable(pivot) and not isinstance(pivot, str):
            if options:
                raise ValueError("pivot_options apply to a pivot given by name; this pivot is already built")
            return pivot
        if not isinstance(pivot, str):
            raise ValueError(f"pivot must be 'projector', a registered method name or a method, got {pivot!r}")
        if pivot == "projector":
            options = {**PIVOT_DEFAULTS, "seed": self.seed, **options}
            if distance is not None:
                options.setdefault("distance", distance)
            if noise_regularize is not None:
                options.setdefault("noise_regularize", noise_regularize)
            if self.callback is not None:
                options.setdefault("callback", lambda info: self.callback(replace(info, stage="pivot")))
            try:
                return ProjectorW(self.generator, **options)
            except MissingWeightsError as error:  # the pivot's distance: name the option that sets it
                raise MissingWeightsError(f"{self.name}: pivot_options.{str(error).removeprefix('sg2-w: ')}") from None
        try:
            return create_method(pivot, generator=self.generator, **options)
        except ValueError as error:
            raise ValueError(f"PTI pivot {pivot!r}: {error}") from error

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        """Tune around ``init`` (the pivot) or, without it, around the pivot method's inversion."""
        pivot = self.pivot_method(images) if init is None else init
        seeds = per_image_seeds(self.seed, images.shape[0])
        if self.mode == "offsets":
            offsets, report = self._tune(images, pivot, seeds)
        else:
            parts = [self._tune_copy(images[i : i + 1], pivot[i], seeds[i : i + 1]) for i in range(images.shape[0])]
            offsets = {k: torch.cat([p[0][k] for p in parts]) for k in parts[0][0]}
            report = {k: torch.cat([p[1][k] for p in parts]) for k in parts[0][1]}
        extras = {
            **report,
            "distance_name": self.distance.name,
            "pivot_method": self.pivot_name,
            **{f"pivot.{k}": v for k, v in pivot.extras.items()},
        }
        return Inversion(pivot.latents.detach(), pivot.space, self.generator, offsets, extras)

    # --- the tuning loop, shared by both modes --------------------------------------------------------------

    def _losses(self, image, target):
        d = self.distance(image, target)
        return d, self.mse * _per_sample_mse(image, target) + self.distance_weight * d

    def _locality_loss(self, ws_pivot, render_tuned, render_original, generators):
        """PTI's locality term: codes ``alpha`` from the pivot towards random truncated codes (the step
        normalised over the whole W+ code, as PTI does) render as the untuned generator does."""
        g, n = self.generator, ws_pivot.shape[0]
        z = torch.stack([torch.randn(g.z_dim, generator=gen, device=ws_pivot.device) for gen in generators])
        with torch.no_grad():
            ws_z = g.mapping(z, truncation_psi=self.locality["truncation"])
            direction = ws_z - ws_pivot
            ws_r = ws_pivot + self.locality["alpha"] * direction / direction.flatten(1).norm(dim=1).reshape(n, 1, 1)
            original = render_original(ws_r)
        tuned = render_tuned(ws_r)
        return self.locality["mse"] * _per_sample_mse(tuned, original) + self.locality["distance"] * self.distance(
            tuned, original
        )

    def _loop(self, target, ws, params, render_tuned, render_original, seeds, per_sample=True):
        n = target.shape[0]
        generators = sample_generators(seeds, target.device) if self.locality else None
        optimizer = torch.optim.Adam(params, lr=self.lr)
        active = torch.ones(n, dtype=torch.bool, device=target.device)
        steps_used = torch.full((n,), self.steps, dtype=torch.long, device=target.device)
        with torch.no_grad():
            pivot_d, _ = self._losses(render_original(ws, "const"), target)
        for step in range(self.steps):
            d, loss = self._losses(render_tuned(ws, "const"), target)
            if self.stop_distance is not None:  # PTI checks before the step's update
                reached = active & (d.detach() <= self.stop_distance)
                steps_used[reached] = step
                active &= ~reached
                if not active.any():
                    break
            if self.locality:
                loss = loss + self._locality_loss(
                    ws, lambda w: render_tuned(w, "none"), lambda w: render_original(w, "none"), generators
                )
            # per-sample offsets: a stopped image's rows stay as they are (one image per copy stops by breaking)
            frozen = FrozenRows(params, ~active) if per_sample else None
            grads = torch.autograd.grad((loss * active).sum(), params)
            for p, grad in zip(params, grads):
                p.grad = grad
            optimizer.step()
            if frozen is not None:
                frozen.restore()
            self.report(StepInfo(step, self.steps, d.detach(), loss.detach(), active.clone(), "tune"))
        with torch.no_grad():
            final = render_tuned(ws, "const")
            report = {
                "distance": self.distance(final, target),
                "l2": _per_sample_mse(final, target),
                "pivot_distance": pivot_d,
                "pivot_l2": _per_sample_mse(render_original(ws, "const"), target),
                "steps": steps_used,
                "stopped": steps_used < self.steps,
            }
        return report

    def _tune(self, target, pivot, seeds):
        """Per-sample offsets of every tuned layer, optimised in one batch."""
        synthesis, n = self.generator.synthesis, target.shape[0]
        ws = pivot.ws.detach()
        base = {k: v.detach() for k, v in (pivot.weight_offsets or {}).items()}
        offsets = {
            name: base.get(name, synthesis.layer(name).weight.new_zeros(n, *synthesis.layer(name).weight.shape))
            .clone()
            .requires_grad_(True)
            for name in self.layers
        }
        fixed = {k: v for k, v in base.items() if k not in offsets}

        def render_tuned(w, noise_mode):
            return synthesis(w, noise_mode=noise_mode, weight_offsets={**fixed, **offsets})

        def render_original(w, noise_mode):
            return synthesis(w, noise_mode=noise_mode, weight_offsets=base or None)

        report = self._loop(target, ws, list(offsets.values()), render_tuned, render_original, seeds)
        return {**fixed, **{k: v.detach() for k, v in offsets.items()}}, report

    def _tune_copy(self, target, pivot, seeds):
        """One image: a deep copy of the synthesis network, its tuned layers' weights optimised directly."""
        synthesis = self.generator.synthesis
        base = {k: v.detach() for k, v in (pivot.weight_offsets or {}).items()}
        tuned = copy.deepcopy(synthesis).requires_grad_(False)
        with torch.no_grad():
            for name, offset in base.items():
                tuned.layer(name).weight.add_(offset[0])
        params = [tuned.layer(name).weight.requires_grad_(True) for name in self.layers]
        ws = pivot.ws.detach()

        def render_tuned(w, noise_mode):
            return tuned(w, noise_mode=noise_mode)

        def render_original(w, noise_mode):
            return synthesis(w, noise_mode=noise_mode, weight_offsets=base or None)

        report = self._loop(target, ws, params, render_tuned, render_original, seeds, per_sample=False)
        offsets = {
            name: (tuned.layer(name).weight.detach() - synthesis.layer(name).weight.detach()).unsqueeze(0)
            for name in synthesis.weight_layer_names
            if name in self.layers or name in base
        }
        return offsets, report
