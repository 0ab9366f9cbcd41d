"""HyperStyle (Alaluf et al., CVPR 2022) as an ``sg2_core.Method``: a W start, then iterative relative weight changes.

The W start is the networks' own W encoder (e4e's, ``w = E(x) + w_avg``; officially ``faces_w_encoder.pt``, given
as ``w_encoder=``), any registered W-space method by name (``phase1=``, as HyperInverter's phase I), or an
``init=`` Inversion. Each iteration the hypernetwork reads the target and the current render (both resized to its
input size by adaptive average pooling, the reference's ``face_pool``), predicts relative changes for the tuned
layers and adds them to the sum so far (default 5 iterations, as the paper); the sum is rendered as per-sample
weight offsets (``sg2_core.nn.offsets.from_relative_units``), so a batch renders in one pass without generator
copies.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from sg2_core import Inversion, Method, StepInfo
from sg2_core.methods.weights import resolve_weights
from sg2_core.nn.offsets import from_relative_units

from .hyperstyle import HyperStyleConfig, HyperStyleNetworks
from .hyperstyle_checkpoints import read_hyperstyle
from .methods import add_offsets, w_space_start, w_start_codes

__all__ = ["HyperStyle", "add_offsets", "iterate", "pool"]


def pool(images: torch.Tensor, size: int) -> torch.Tensor:
    """The reference's ``face_pool`` (adaptive average pooling; it repeats pixels when it enlarges)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.adaptive_avg_pool2d(images, (size, size))


def iterate(generator, hypernet, images, ws, offsets, iterations: int, final_render: bool = True):
    """HyperStyle's loop, for inference and training alike: yields ``(render, summed relative deltas)`` after each
    iteration. Each one reads the target and the current render at the hypernetwork's size and adds its changes to
    the sum so far, detached (the reference trains each iteration on its own); ``final_render=False`` skips the
    last render (None)."""
    size = hypernet.encoder_size
    target = pool(images, size).to(ws.dtype)
    with torch.no_grad():
        render = generator.synthesis(ws, weight_offsets=offsets, noise_mode="const")
    deltas = None
    for i in range(iterations):
        step = hypernet(torch.cat([target, pool(render.detach(), size)], dim=1))
        deltas = add_offsets({k: v.detach() for k, v in (deltas or {}).items()}, step)
        render = None
        if final_render or i < iterations - 1:  # the next iteration reads it
            total = add_offsets(offsets, from_relative_units(generator.synthesis, deltas))
            render = generator.synthesis(ws, weight_offsets=total, noise_mode="const")
        yield render, deltas


class HyperStyle(Method):
    """HyperStyle: a W code, then hypernetwork-predicted relative weight changes, refined over iterations."""

    name, space, needs = "hyperstyle", "w+", ("generator", "own-weights")
    trainable, trainer = True, "inv_hyper.hyperstyle_training:main"
    input_resolution = None  # the generator's; the hypernetwork resizes to its own size (256 px officially)
    # Untrained networks in reduced widths, reading 64 px, so a call takes a fraction of a second.
    test_options = {
        "allow_untrained": True,
        "widths": (8, 16, 24, 32),
        "w_encoder_widths": (16, 32, 48, 64),
        "code_dim": 16,
        "shared_inner": 8,
        "inner": 8,
        "encoder_size": 64,
        "iterations": 2,
    }
    # the defaults are the official sizes (364 M parameters with the W encoder, 256 px input); one iteration runs every
    # stage (43 s per 1024 px image on the shared 2-core CPU, 2 threads; each further one adds a 1024 px render)
    full_size_options = {"allow_untrained": True, "iterations": 1}
    demo_weights = ("inv_hyper", "hyperstyle_fmnist32.safetensors")

    def __init__(
        self,
        generator=None,
        *,
        weights=None,
        w_encoder=None,
        allow_untrained: bool = False,
        phase1: str | None = None,
        phase1_options: dict | None = None,
        iterations: int = 5,
        tuned=None,
        widths=(64, 128, 256, 512),
        w_encoder_widths=(64, 128, 256, 512),
        code_dim: int = 512,
        shared_inner: int = 128,
        inner: int = 256,
        encoder_size: int = 256,
        weights_seed: int = 0,
        callback=None,
        device=None,
    ):
        super().__init__(generator, callback=callback, device=device)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"{self.name}: iterations must be a positive int, got {iterations!r}")
        self.iterations = iterations
        if w_encoder is not None and phase1 is not None:
            raise ValueError(f"{self.name}: give w_encoder= (its own W start) or phase1= (another method's), not both")
        config = HyperStyleConfig(
            widths=tuple(widths),
            w_encoder_widths=tuple(w_encoder_widths),
            code_dim=code_dim,
            shared_inner=shared_inner,
            inner=inner,
            encoder_size=encoder_size,
        )
        untrained = weights is None and allow_untrained
        networks = resolve_weights(
            self,
            weights,
            network_type=HyperStyleNetworks,
            read=lambda path: read_hyperstyle(path, generator, w_encoder=w_encoder, phase1=phase1 or ""),
            untrained=lambda: HyperStyleNetworks.for_generator(generator, config, tuned),
            accepts="an official HyperStyle checkpoint (with w_encoder=its W encoder file) or HyperStyleNetworks",
            allow_untrained=allow_untrained,
            weights_seed=weights_seed,
        )
        if not networks.matches(generator):
            raise ValueError(f"{self.name}: the networks were built for another generator (layers, channels or w_dim)")
        dtype = next(generator.parameters()).dtype
        self.networks = networks.to(self.device, dtype).eval().requires_grad_(False)
        self.encoder_size = self.networks.config.encoder_size
        trained_on = self.networks.config.phase1 or None
        if phase1 is None:
            phase1 = trained_on
        if phase1 is None and self.networks.w_encoder is None:
            raise ValueError(f"{self.name}: these networks have no W encoder; name a W-space method: phase1=NAME")
        self.phase1 = w_space_start(self.generator, phase1, phase1_options, "HyperStyle starts from")
        if phase1 != trained_on and not untrained:
            warnings.warn(
                f"{self.name}: its hypernetwork was trained to refine the codes of "
                f"{repr(trained_on) if trained_on else 'its own W encoder'}, not those of phase1={phase1!r}, "
                "so its weight changes fit them worse",
                stacklevel=2,
            )

    @torch.no_grad()
    def start(self, images: torch.Tensor) -> tuple[torch.Tensor, dict | None]:
        """The W start without an init: W+ codes ``[N, num_ws, w_dim]`` (one w repeated) and the method's offsets."""
        return w_start_codes(self.generator, self.phase1, self.networks.w_encoder, self.encoder_size, images, pool)

    @torch.no_grad()
    def refine(self, images, ws, offsets=None, *, keep_steps: bool = False, final_render: bool = True):
        """The iterations from ``ws`` (and ``offsets``, the start's own): ``(render, relative deltas summed)`` after
        the last (``render`` None without ``final_render``: the inversion renders itself); with ``keep_steps``, the
        list of both after every iteration."""
        steps = []
        for i, step in enumerate(
            iterate(self.generator, self.networks.hypernet, images, ws, offsets, self.iterations, final_render)
        ):
            self.report(StepInfo(i, self.iterations, stage="refine"))
            steps.append(step)
        return steps if keep_steps else steps[-1]

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        G = self.generator
        with torch.no_grad():
            if init is not None:
                ws, offsets = init.ws.detach(), init.weight_offsets
            else:
                ws, offsets = self.start(images)
            _, deltas = self.refine(images, ws, offsets, final_render=False)
            total = add_offsets(offsets, from_relative_units(G.synthesis, deltas))
        return Inversion(ws, "w+", G, weight_offsets={n: t.detach() for n, t in total.items()}, extras={"phase1": ws})
