"""HyperInverter (Dinh et al., CVPR 2022) as an ``sg2_core.Method``: a W code, then per-image weight offsets.

Phase I gives one w per image (its own W encoder plus ``G.mapping.w_avg``, any registered W-space method by
name, or an ``init=`` Inversion). Phase II is trained on one phase I (``HyperConfig.phase1``): the weights
trained on a method's codes use that method unless told otherwise, and naming another phase I than the one
the weights were trained on warns, since the predicted offsets then miss (on the demo, ``phase1="psp-w"`` with
the weights trained on the own W encoder: MSE 0.110 against pSp-W's own 0.098).

Phase II encodes the input and the phase-I image with the W-bar encoder, and the hypernetwork turns both
stacks of 8x8 maps into a residual for the main weight of every synthesis conv and toRGB. The result renders as
``G.synthesis(ws, weight_offsets=deltas)`` in one batched pass; the reference deep-copies the generator for
every image instead (``python -m inv_hyper.bench`` compares the two).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from sg2_core import Inversion, Method, StepInfo, create_method, list_methods, method_spec
from sg2_core.methods.weights import resolve_weights

from .checkpoints import read_networks
from .networks import HyperConfig, HyperNetworks

__all__ = ["DEMO_WEIGHTS", "HyperInverter", "HyperInverterW"]

DEMO_WEIGHTS = "hyperinverter_fmnist32.safetensors"  # phase I and II trained on the demo generator (see README)
DEMO_WEIGHTS_BY_PHASE1 = {"e4e-w": "hyperinverter-e4e-w_fmnist32.safetensors"}  # phase II on that method's codes


def demo_weights(phase1: str | None) -> str:
    """The shipped file for the demo generator whose phase II was trained on ``phase1`` (else the default)."""
    return DEMO_WEIGHTS_BY_PHASE1.get(phase1, DEMO_WEIGHTS)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear with align_corners=False, as HyperInverter resizes before its encoders (identity at ``size``)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def add_offsets(a: dict | None, b: dict | None) -> dict | None:
    """Two ``{layer: offset}`` dicts summed layer-wise (HyperInverter's and HyperStyle's alike); a layer only one
    side has counts as zero on the other, and nothing on either side gives None."""
    a, b = a or {}, b or {}
    return {
        name: a[name] + b[name] if name in a and name in b else a.get(name, b.get(name)) for name in {**a, **b}
    } or None


def w_space_start(generator, phase1: str | None, options: dict | None, role: str):
    """The registered W-space method named ``phase1`` that a hypernetwork refines (None: the networks' own W
    encoder); ``role`` begins the refusal of another space's method."""
    if phase1 is None:
        if options:
            raise ValueError("phase1_options needs phase1=NAME")
        return None
    spec = method_spec(phase1)
    if spec.space != "w":
        raise ValueError(
            f"phase1={phase1!r} is a {spec.space!r}-space method; {role} a W-space method (space 'w'): one of "
            f"{list_methods(space='w')}"
        )
    return create_method(phase1, generator=generator, **(options or {}))


@torch.no_grad()
def w_start_codes(generator, phase1, w_encoder, encoder_size: int, images: torch.Tensor, resize_to):
    """The W start without an init, HyperInverter's phase I and HyperStyle's alike: W+ codes ``[N, num_ws, w_dim]``
    and the offsets of ``phase1`` (a method from :func:`w_space_start`), or without one ``w_encoder`` at
    ``encoder_size`` plus ``w_avg`` (one w repeated, no offsets). ``resize_to(images, size)`` brings the images to
    the input size: each family resizes as its reference does (bilinear here, HyperStyle's adaptive pooling)."""
    if phase1 is not None:
        size = getattr(phase1, "input_resolution", None) or generator.img_resolution
        result = phase1(resize_to(images, size))
        offsets = result.weight_offsets and {name: t.detach() for name, t in result.weight_offsets.items()}
        return result.ws.detach(), offsets or None
    w = w_encoder(resize_to(images, encoder_size)) + generator.mapping.w_avg
    return w[:, None].expand(-1, generator.num_ws, -1).contiguous(), None


def phase2_offsets(generator, ws: torch.Tensor, offsets: dict | None, predict_deltas) -> dict:
    """Phase II on the phase-I start (``ws`` and that method's ``offsets``), for inference and training alike: the
    phase-I image renders with the start's own offsets, ``predict_deltas(w_images)`` gives the hypernetwork's, and
    the result is both summed, which renders as ``G.synthesis(ws, weight_offsets=result)``."""
    with torch.no_grad():
        w_images = generator.synthesis(ws, weight_offsets=offsets, noise_mode="const")
    return add_offsets(predict_deltas(w_images), offsets)


class HyperInverter(Method):
    """HyperInverter: a W-space phase I, then hypernetwork-predicted per-image generator weight offsets."""

    name, space, needs = "hyperinverter", "w+", ("generator", "own-weights")
    trainable, trainer = True, "inv_hyper.training:main"
    input_resolution = None  # the generator's; both encoders resize to their own size (256 px officially)
    # Untrained networks in reduced widths, encoding at 64 px, so a call takes a fraction of a second.
    test_options = {
        "allow_untrained": True,
        "widths": (16, 32, 48, 64),
        "feature_dim": 32,
        "hidden_dim": 8,
        "extractor_dim": 16,
        "encoder_size": 64,
    }
    full_size_options = {"allow_untrained": True}  # the defaults are the official sizes (encoders at 256 px)
    demo_weights = ("inv_hyper", DEMO_WEIGHTS)

    @classmethod
    def demo_weights_for(cls, phase1: str | None = None, **options) -> tuple[str, str]:
        """The shipped networks whose phase II was trained on ``phase1``'s codes (else the default)."""
        return ("inv_hyper", demo_weights(phase1))

    def __init__(
        self,
        generator=None,
        *,
        weights=None,
        allow_untrained: bool = False,
        networks=None,
        phase1: str | None = None,
        phase1_options: dict | None = None,
        input_resolution: int | None = None,
        widths=(64, 128, 256, 512),
        feature_dim: int = 512,
        hidden_dim: int = 128,
        extractor_dim: int = 64,
        encoder_size: int = 256,
        weights_seed: int = 0,
        init_seed: int | None = None,
        callback=None,
        device=None,
    ):
        super().__init__(generator, callback=callback, device=device)
        if networks is not None:  # inv-hyper 0.4's option: weights= takes built networks now
            warnings.warn(
                f"{self.name}: networks= is deprecated and goes away in the next minor version of inv-hyper; "
                "pass weights=networks",
                DeprecationWarning,
                stacklevel=2,
            )
            if weights is not None:
                raise ValueError("give weights= (a file or HyperNetworks) or networks=, not both")
            weights = networks
        if init_seed is not None:  # inv-hyper 0.4's name; weights_seed in every family now
            warnings.warn(
                f"{self.name}: init_seed= is deprecated and goes away in the next minor version of inv-hyper; "
                "pass weights_seed=",
                DeprecationWarning,
                stacklevel=2,
            )
            weights_seed = init_seed
        if input_resolution is not None and (not isinstance(input_resolution, int) or input_resolution < 1):
            raise ValueError(
                f"input_resolution must be a positive int or None (the generator's), got {input_resolution!r}"
            )
        self.input_resolution = input_resolution
        untrained = weights is None and allow_untrained
        config = HyperConfig(
            widths=tuple(widths),
            feature_dim=feature_dim,
            hidden_dim=hidden_dim,
            extractor_dim=extractor_dim,
            encoder_size=encoder_size,
        )
        networks = resolve_weights(
            self,
            weights,
            network_type=HyperNetworks,
            read=lambda path: read_networks(path, generator),
            untrained=lambda: HyperNetworks.for_generator(generator, config),
            accepts="an official HyperInverter checkpoint or HyperNetworks",
            allow_untrained=allow_untrained,
            weights_seed=weights_seed,
            options={"phase1": phase1},
        )
        dtype = next(generator.parameters()).dtype
        self.networks = networks.to(self.device, dtype).eval().requires_grad_(False)
        self.encoder_size = self.networks.config.encoder_size
        trained_on = self.networks.config.phase1 or None
        if phase1 is None:
            phase1 = trained_on  # networks trained on a method's codes have no W encoder: that method is phase I
        self.phase1 = w_space_start(self.generator, phase1, phase1_options, "HyperInverter's phase I must be")
        if phase1 != trained_on and not untrained:
            warnings.warn(
                f"{self.name}: its phase II was trained to refine the codes of "
                f"{repr(trained_on) if trained_on else 'its own W encoder'}, not those of phase1={phase1!r}, "
                f"so its weight offsets fit them worse; train a phase II for {phase1!r}: python -m "
                f"inv_hyper.train --method hyperinverter --phase 2 --phase1 {phase1}",
                stacklevel=2,
            )

    @torch.no_grad()
    def phase1_ws(self, images: torch.Tensor) -> tuple[torch.Tensor, dict | None]:
        """Phase I without an init: W+ codes ``[N, num_ws, w_dim]`` (one w repeated) and the method's offsets."""
        return w_start_codes(self.generator, self.phase1, self.networks.w_encoder, self.encoder_size, images, resize)

    @torch.no_grad()
    def predict_offsets(self, images: torch.Tensor, w_images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Phase II: ``{layer: [N, *weight shape]}`` from the input and the phase-I image."""
        size = self.encoder_size
        # one encoder pass over both stacks (eval mode: batch norm uses its running statistics)
        both = self.networks.w_bar_encoder(torch.cat([resize(w_images, size), resize(images, size).to(w_images)]))
        w_image_codes, w_bar_codes = both.split(len(images))
        return self.networks.hypernet(w_image_codes, w_bar_codes)

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        G = self.generator
        with torch.no_grad():
            if init is not None:
                ws, offsets = init.ws.detach(), init.weight_offsets
            else:
                ws, offsets = self.phase1_ws(images)
            self.report(StepInfo(0, 2, stage="phase1"))
            total = phase2_offsets(G, ws, offsets, lambda w_images: self.predict_offsets(images, w_images))
            self.report(StepInfo(1, 2, stage="phase2"))
        total = {name: t.detach() for name, t in total.items()}
        return Inversion(ws, "w+", G, weight_offsets=total, extras={"phase1": ws})


class HyperInverterW(HyperInverter):
    """HyperInverter's phase I alone: its W encoder, one w per image (``w = E(x) + w_avg``; with ``init``:
    plus the mean of its W+ instead of ``w_avg``, as pSp's W encoder)."""

    name, space = "hyperinverter-w", "w"

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        if self.phase1 is not None:
            if self.networks.w_encoder is None:
                raise ValueError(
                    f"{self.name}: these networks refine the codes of {self.phase1.name!r} and have no "
                    f"W encoder of their own; use the {self.phase1.name!r} method itself"
                )
            raise ValueError(f"{self.name} is HyperInverter's own W encoder; phase1= belongs to hyperinverter")
        with torch.no_grad():
            base = self.generator.mapping.w_avg if init is None else init.ws.to(images).mean(dim=1)
            w = self.networks.w_encoder(resize(images, self.encoder_size)) + base
        self.report(StepInfo(0, 1, stage="phase1"))
        return Inversion(w, "w", self.generator)
