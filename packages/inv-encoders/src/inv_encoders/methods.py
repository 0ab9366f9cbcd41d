"""The encoder methods on the ``sg2_core.Method`` contract: ``psp``, ``psp-w``, ``psp-edges``, ``e4e``,
``e4e-w``, ``restyle-psp``, ``restyle-e4e``.

Each takes ``weights=``: an official checkpoint file (read by :func:`inv_encoders.load` with the given
generator), a ``.safetensors`` file from ``python -m inv_encoders.train``, or a :class:`StyleEncoder`;
``allow_untrained=True`` builds random weights (``widths``, ``input_size``, seeded by ``weights_seed``: tests).
Without either, on the demo generator, the encoder trained on it is used (``demo_weights``, shipped for every
method); for another generator the method refuses to build (``sg2_core.methods.weights``).

``init=``: pSp and e4e add their codes to ``init``'s W+ instead of ``latent_avg``; ReStyle starts its
iterations from ``init`` (its latents and its rendered image) instead of ``latent_avg`` and the average image
``G(latent_avg)``, so it can refine any other method's result.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from sg2_core import Inversion, Method, StepInfo
from sg2_core.encoders import DEFAULT_WIDTHS
from sg2_core.methods.seeds import per_image_seeds
from sg2_core.methods.weights import resolve_weights

from .checkpoints import NAMES, load
from .networks import StyleEncoder, StyleEncoderConfig


def demo_weights_file(kind: str) -> str:
    """The shipped encoder of ``kind`` for the demo generator (``inv_encoders/assets``)."""
    return f"{kind}_fmnist32.safetensors"


def _inputs(condition: str | None) -> str:
    return "images" if condition is None else f"{condition!r} maps"


def read_trained(path, kind: str, generator, condition: str | None = None) -> StyleEncoder:
    """The ``encoder`` of a ``python -m inv_encoders.train`` file, checked against ``kind`` and the input
    ``condition`` it was trained on (when the file records it)."""
    from sg2_core import load_networks

    loaded = load_networks(path)
    net = loaded.get("encoder")
    if not isinstance(net, StyleEncoder):
        raise ValueError(
            f"{path}: holds {sorted(loaded)} but no 'encoder' StyleEncoder (a file written by "
            "python -m inv_encoders.train)"
        )
    if net.config.kind != kind:
        raise ValueError(f"{path}: holds a {NAMES[net.config.kind]} encoder, not a {NAMES[kind]} one")
    training = loaded.extra.get("training") if isinstance(loaded.extra, dict) else None
    if isinstance(training, dict) and training.get("condition") != condition:
        raise ValueError(
            f"{path}: holds an encoder trained on {_inputs(training.get('condition'))}, this method "
            f"takes {_inputs(condition)}"
        )
    return net


class EncoderMethod(Method):
    """Shared construction: the encoder from ``weights``, (``allow_untrained``) random ones, or the shipped demo
    one (``sg2_core.methods.weights.resolve_weights``)."""

    kind = "psp"
    space = "w+"
    needs = ("generator", "own-weights")
    trainable = True
    test_options = {"allow_untrained": True, "widths": (16, 32, 48, 64)}  # a small random network
    full_size_options = {"allow_untrained": True, "input_size": 256}  # IR-SE50 at pSp's 256 px input
    # batch against one image at a time on the demo generator: each render is within 61 eps * max|image| (1.09) of a
    # float64 run (this CPU; AVX2- and SSE-capped kernels), so < 1.5e-5 apart; 4e-5 leaves 2.7x
    test_batch_tolerance = 4e-5

    def __init__(
        self,
        generator=None,
        *,
        callback=None,
        device=None,
        weights=None,
        allow_untrained: bool = False,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        input_size: int | None = None,
        weights_seed: int = 0,
        stage: int | None = None,
    ):
        super().__init__(generator, callback=callback, device=device)
        if stage is not None and (isinstance(stage, bool) or not isinstance(stage, int) or stage < 0):
            raise ValueError(f"stage must be None (all deltas) or an int >= 0, got {stage!r}")
        if stage is not None and self.kind not in ("e4e", "restyle-e4e"):
            raise ValueError(f"stage= is e4e's progressive stage; {self.name!r} has no stages")
        self.stage = stage
        self.net = self._network(weights, allow_untrained, widths, input_size, weights_seed).to(self.device).eval()
        cfg, g = self.net.config, self.generator
        if (cfg.n_styles, cfg.style_dim) != (g.num_ws, g.w_dim):
            raise ValueError(
                f"the encoder predicts {cfg.n_styles} codes of width {cfg.style_dim} but the generator "
                f"takes {g.num_ws} of width {g.w_dim}"
            )
        self.input_resolution = cfg.input_size
        self.input_channels = cfg.in_channels - g.img_channels if cfg.restyle else cfg.in_channels
        if cfg.restyle and self.input_channels != g.img_channels:
            raise ValueError(
                f"a ReStyle encoder takes the image and the generator's reconstruction stacked: "
                f"{2 * g.img_channels} channels for this generator, the encoder has {cfg.in_channels}"
            )

    def _network(self, weights, allow_untrained, widths, input_size, weights_seed) -> StyleEncoder:
        if isinstance(weights, StyleEncoder) and weights.config.kind != self.kind:
            raise ValueError(f"weights is a {NAMES[weights.config.kind]} encoder, not a {NAMES[self.kind]} one")
        return resolve_weights(
            self,
            weights,
            network_type=StyleEncoder,
            read=self._read,
            untrained=lambda: self._untrained(widths, input_size),
            accepts=f"an official {NAMES[self.kind]} checkpoint or a StyleEncoder",
            allow_untrained=allow_untrained,
            weights_seed=weights_seed,
        )

    def _read(self, path: Path) -> StyleEncoder:
        if path.suffix == ".safetensors":
            return read_trained(path, self.kind, self.generator, self.input_condition)
        return load(path, generator=self.generator, kind=self.kind).encoder

    def _untrained(self, widths, input_size) -> StyleEncoder:
        g = self.generator
        restyle = self.kind.startswith("restyle")
        config = StyleEncoderConfig(
            kind=self.kind,
            n_styles=g.num_ws,
            style_dim=g.w_dim,
            widths=tuple(widths),
            in_channels=g.img_channels * (2 if restyle else 1),
            pyramid=not restyle,
            input_size=input_size or g.img_resolution,
        )
        net = StyleEncoder(config)
        w_avg = g.mapping.w_avg.detach().float().cpu()
        net.set_latent_avg(w_avg if torch.isfinite(w_avg).all() else torch.zeros_like(w_avg))
        return net


class PSP(EncoderMethod):
    """pSp (Richardson et al. 2021): W+ codes from the feature pyramid, added to ``latent_avg``.

    Style mixing at inference (pSp's multi-modal outputs): with ``latent_mask`` (W+ indices), those entries
    take the W of a random z (image ``i`` draws it with ``seed + i``, or ``seed[i]``), blended as
    ``mix_alpha * injected + (1 - mix_alpha) * code`` (``mix_alpha=None``: replaced)."""

    name, kind = "psp", "psp"
    demo_weights = ("inv_encoders", demo_weights_file("psp"))
    trainer = "inv_encoders.training:train_psp"

    def __init__(
        self,
        generator=None,
        *,
        latent_mask: Sequence[int] | None = None,
        mix_alpha: float | None = None,
        seed: int | Sequence[int] = 0,
        **options,
    ):
        super().__init__(generator, **options)
        num_ws = self.generator.num_ws
        if latent_mask is not None:
            latent_mask = list(latent_mask)
            bad = [i for i in latent_mask if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < num_ws]
            if bad or not latent_mask:
                raise ValueError(f"latent_mask must list W+ indices in [0, {num_ws}), got {latent_mask!r}")
        if mix_alpha is not None and not (isinstance(mix_alpha, (int, float)) and 0 <= mix_alpha <= 1):
            raise ValueError(f"mix_alpha must be None or a number in [0, 1], got {mix_alpha!r}")
        if mix_alpha is not None and latent_mask is None:
            raise ValueError("mix_alpha needs latent_mask (the W+ entries to mix)")
        self.latent_mask, self.mix_alpha, self.seed = latent_mask, mix_alpha, seed

    def _mix(self, codes: torch.Tensor) -> torch.Tensor:
        g = self.generator
        z = torch.stack(
            [
                torch.randn(g.z_dim, generator=torch.Generator().manual_seed(s))
                for s in per_image_seeds(self.seed, len(codes))
            ]
        )
        injected = g.mapping(z.to(codes))  # pSp: the decoder's mapping of z, no truncation
        mask = self.latent_mask
        alpha = 1.0 if self.mix_alpha is None else float(self.mix_alpha)
        codes = codes.clone()
        codes[:, mask] = alpha * injected[:, mask] + (1 - alpha) * codes[:, mask]
        return codes

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        with torch.no_grad():
            base = None if init is None else init.ws.to(images)
            codes = self.net(images, base=base, stage=self.stage)
            if self.latent_mask is not None:
                codes = self._mix(codes)
        self.report(StepInfo(1, 1, stage="encode"))
        return Inversion(codes, "w+", self.generator)


class PSPW(EncoderMethod):
    """pSp's W-only encoder: one w per image plus ``latent_avg`` (with ``init``: plus the mean of its W+)."""

    name, kind, space = "psp-w", "psp-w", "w"
    demo_weights = ("inv_encoders", demo_weights_file("psp-w"))
    trainer = "inv_encoders.training:train_psp_w"

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        with torch.no_grad():
            base = None if init is None else init.ws.to(images).mean(dim=1)
            w = self.net(images, base=base)
        self.report(StepInfo(1, 1, stage="encode"))
        return Inversion(w, "w", self.generator)


class E4EW(PSPW):
    """e4e's W-only encoder: pSp-W's network trained with e4e's latent discriminator, so its codes stay closer
    to the mapped distribution (HyperInverter's "e4e W-encoder"; ``phase1="e4e-w"``)."""

    name, kind = "e4e-w", "e4e-w"
    demo_weights = ("inv_encoders", demo_weights_file("e4e-w"))
    trainer = "inv_encoders.training:train_e4e_w"


class PSPEdges(PSP):
    """Image-to-image pSp: an edge drawing (``sg2_core.methods.conditions.apply_condition("edges", images)``) in, the
    generator's image out; one input channel per image channel (1 on the demo). Style mixing as ``psp``."""

    name = "psp-edges"
    input_condition = "edges"
    demo_weights = ("inv_encoders", "psp_edges_fmnist32.safetensors")
    trainer = "inv_encoders.training:train_psp_edges"


class E4E(PSP):
    """e4e (Tov et al. 2021): one base w plus per-entry deltas; ``stage`` limits the deltas (0 = W only)."""

    name, kind = "e4e", "e4e"
    demo_weights = ("inv_encoders", demo_weights_file("e4e"))
    trainer = "inv_encoders.training:train_e4e"


class ReStylePSP(EncoderMethod):
    """ReStyle (Alaluf et al. 2021): a 6-channel encoder refines its estimate ``n_iters`` times, starting from
    ``latent_avg`` and the average image. ``extras['reconstructions']`` ``[N, n_iters, C, R, R]`` and
    ``extras['iteration_latents']`` ``[N, n_iters, num_ws, w_dim]`` keep every iteration."""

    name, kind = "restyle-psp", "restyle-psp"
    test_options = {**EncoderMethod.test_options, "n_iters": 2}
    full_size_options = {**EncoderMethod.full_size_options, "n_iters": 2}  # the second iteration feeds back the first
    demo_weights = ("inv_encoders", demo_weights_file("restyle-psp"))
    trainer = "inv_encoders.training:train_restyle_psp"

    def __init__(self, generator=None, *, n_iters: int | None = None, **options):
        super().__init__(generator, **options)
        if n_iters is not None and (isinstance(n_iters, bool) or not isinstance(n_iters, int) or n_iters < 1):
            raise ValueError(f"n_iters must be a positive int, got {n_iters!r}")
        self.n_iters = n_iters or self.net.config.n_iters

    def _pool(self, y: torch.Tensor) -> torch.Tensor:
        size = self.net.config.input_size  # pSp's face_pool: the generator's output at the encoder's size
        return y if y.shape[-1] == size else F.adaptive_avg_pool2d(y, (size, size))

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        g, n = self.generator, images.shape[0]
        with torch.no_grad():
            if init is None:
                ws = self.net.latent_avg.expand(n, -1, -1)
                y = self._pool(g.synthesis(self.net.latent_avg[None], noise_mode="const")).expand(n, -1, -1, -1)
            else:
                ws = init.ws.to(images)
                y = self._pool(init.render())
            renders, latents = [], []
            for t in range(self.n_iters):
                ws = self.net(torch.cat([images, y.to(images)], dim=1), base=ws, stage=self.stage)
                full = g.synthesis(ws, noise_mode="const")
                y = self._pool(full)
                renders.append(full)
                latents.append(ws)
                self.report(StepInfo(t + 1, self.n_iters, stage="iteration"))
        extras = {"reconstructions": torch.stack(renders, dim=1), "iteration_latents": torch.stack(latents, dim=1)}
        return Inversion(ws, "w+", g, extras=extras)


class ReStyleE4E(ReStylePSP):
    """ReStyle over e4e's progressive encoder (base w plus deltas at every iteration)."""

    name, kind = "restyle-e4e", "restyle-e4e"
    demo_weights = ("inv_encoders", demo_weights_file("restyle-e4e"))
    trainer = "inv_encoders.training:train_restyle_e4e"


def __getattr__(name: str):
    if name == "METHODS":  # deprecated: the entry points in pyproject.toml are the one list of the methods
        warnings.warn(
            "inv_encoders.methods.METHODS is deprecated and goes away in inv-encoders 0.7: the methods are the "
            "package's entry points (sg2_core.list_methods(), sg2_core.method_factory(name))",
            DeprecationWarning,
            stacklevel=2,
        )
        return {cls.name: cls for cls in (PSP, PSPW, PSPEdges, E4E, E4EW, ReStylePSP, ReStyleE4E)}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
