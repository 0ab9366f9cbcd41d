"""AgileGAN's inversion as an ``sg2_core.Method``: ``agilegan``, one Gaussian posterior per W+ entry in Z+.

The VAE encoder gives ``mu`` and ``logvar`` for each of the generator's ``num_ws`` layers; the result is the
Z+ inversion ``mu`` (test time uses the mean, as the reference does), which ``Inversion.ws`` maps through the
generator's frozen mapping network entry by entry. ``extras`` holds ``mu`` and ``logvar`` ``[N, num_ws, z_dim]``.

``init=``: the encoder was trained against the N(0, I) prior; an init moves that prior's mean to the init's
Z+ codes ``z0``. For a Gaussian posterior N(mu, s^2) this gives the mean ``mu + s^2 * z0`` (``s^2`` capped at
1, the prior's own variance): the init matters where the encoder is unsure and hardly where it is sure. A
W or W+ init is first brought to Z+ by fitting one z per entry through the frozen mapping network.

Showcase (the report's extra grid rows): ``style=`` a style generator (a shipped name such as ``edges``, a file
written by ``python -m inv_vae.train style``, or a Generator); on the demo generator the shipped ``edges`` style
by default, elsewhere none (``style=False``: none). :meth:`AgileGAN.showcase` renders the inversion through it,
as ``python -m inv_vae.stylize`` does.

Weights (``sg2_core.methods.weights``): ``weights=`` an AgileGAN encoder file (official ``encoder.pt`` layout or
our native file, read by :func:`inv_vae.load`) or a :class:`VAEStyleEncoder`; ``allow_untrained=True`` builds a
random encoder (``widths``, ``input_size``, seeded by ``weights_seed``: tests only). Without either, the demo
generator gets the shipped ``inv_vae/assets/agilegan_fmnist32.safetensors`` (trained by ``python -m inv_vae.train
encoder``, see the README); any other generator is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import torch

from sg2_core import Inversion, Method, StepInfo
from sg2_core.encoders import DEFAULT_WIDTHS
from sg2_core.methods.weights import is_demo_generator, resolve_weights
from sg2_core.nn.generator import normalize_2nd_moment

from .checkpoints import check_generator, load
from .networks import VAEConfig, VAEStyleEncoder

__all__ = ["DEMO_WEIGHTS", "AgileGAN", "default_weights", "fit_z"]

DEMO_WEIGHTS = "agilegan_fmnist32.safetensors"  # the shipped encoder for sg2_core.demo's generator
DEMO_STYLE = "edges"  # the shipped style generator for it (inv_vae.stylize.SHIPPED_STYLES), the showcase's default
FIT_STEPS, FIT_LR = 100, 0.1


def default_weights(generator) -> Path | None:
    """The shipped encoder file for ``generator`` (the demo generator: ``is_demo_generator``), or None."""
    if not is_demo_generator(generator):
        return None
    path = files("inv_vae").joinpath("assets", DEMO_WEIGHTS)
    return Path(str(path)) if path.is_file() else None


def fit_z(generator, ws: torch.Tensor, steps: int = FIT_STEPS, lr: float = FIT_LR) -> tuple[torch.Tensor, torch.Tensor]:
    """Z+ codes ``[N, num_ws, z_dim]`` whose mapping approximates W+ ``ws`` ``[N, num_ws, w_dim]`` (Adam from a
    fixed start, each entry on its own; scaled to the prior's second moment, as the mapping ignores the scale),
    and the per-image mean squared error of the fit. The generator gets no gradient."""
    n, num_ws, _ = ws.shape
    target = ws.detach().reshape(n * num_ws, -1)
    start = torch.randn(generator.z_dim, generator=torch.Generator().manual_seed(0))
    z = start.to(ws).expand(n * num_ws, -1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = (generator.mapping(z)[:, 0] - target).pow(2).mean(dim=1).sum()
            (grad,) = torch.autograd.grad(loss, z)  # not .backward(): nothing lands in the generator's .grad
            z.grad = grad
            optimizer.step()
    with torch.no_grad():
        z = normalize_2nd_moment(z.detach(), dim=1)
        error = (generator.mapping(z)[:, 0] - target).pow(2).mean(dim=1).reshape(n, num_ws).mean(dim=1)
    return z.reshape(n, num_ws, -1), error


class AgileGAN(Method):
    """AgileGAN (Song et al., SIGGRAPH 2021): a hierarchical VAE encoder inverting into Z+ (mu at test time)."""

    name, space = "agilegan", "z+"
    needs = ("generator", "own-weights")
    trainable, trainer = True, "inv_vae.training:main"  # python -m inv_vae.train encoder|style
    test_options = {"allow_untrained": True, "widths": (16, 32, 48, 64)}  # a small random encoder
    full_size_options = {"allow_untrained": True, "input_size": 256}  # AgileGAN encodes at 256 px
    demo_weights = ("inv_vae", DEMO_WEIGHTS)

    def __init__(
        self,
        generator=None,
        *,
        weights=None,
        allow_untrained: bool = False,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        input_size: int | None = None,
        weights_seed: int = 0,
        style=None,
        callback=None,
        device=None,
    ):
        super().__init__(generator, callback=callback, device=device)
        dtype = next(self.generator.parameters()).dtype
        net = self._network(weights, allow_untrained, widths, input_size, weights_seed)
        self.net = net.to(self.device, dtype).eval().requires_grad_(False)
        check_generator(self.net.config, self.generator)
        self.input_resolution = self.net.config.input_size
        self.input_channels = self.net.config.in_channels
        if style is None and is_demo_generator(self.generator):
            style = DEMO_STYLE
        self.style_spec, self._style = (None if style is False else style), None

    def style_generator(self):
        """The style generator of ``style=`` (loaded once and checked against the generator), or None."""
        from .stylize import check_style, load_style

        if self._style is None and self.style_spec is not None:
            if isinstance(self.style_spec, (str, Path)):
                self._style = load_style(self.style_spec, self.generator)
            else:
                check_style(self.style_spec, self.generator)
                self._style = self.style_spec.eval().requires_grad_(False)
        return self._style

    def showcase(self, inversion: Inversion, images: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``{'agilegan stylised (STYLE)': inversion rendered through the style generator}``; {} without one.
        An attribute-aware style generator's paths are predicted from ``images`` (the inputs), else from the
        inversion's rendering."""
        style = self.style_generator()
        if style is None:
            return {}
        spec = self.style_spec
        label = Path(spec).stem if isinstance(spec, (str, Path)) else "style"  # 'edges', or the file's name
        from .stylize import render_style

        with torch.no_grad():  # attribute paths: predicted from the inputs, as stylize does
            source = images
            if source is None and hasattr(style, "paths"):
                source = inversion.render()
            return {f"agilegan stylised ({label})": render_style(inversion, style, source)}

    def _network(self, weights, allow_untrained, widths, input_size, weights_seed) -> VAEStyleEncoder:
        g = self.generator

        def untrained() -> VAEStyleEncoder:
            config = VAEConfig(
                n_styles=g.num_ws,
                z_dim=g.z_dim,
                in_channels=g.img_channels,
                input_size=input_size or g.img_resolution,
                widths=tuple(widths),
            )
            return VAEStyleEncoder(config)

        return resolve_weights(
            self,
            weights,
            network_type=VAEStyleEncoder,
            read=lambda path: load(path, generator=g).encoder,
            untrained=untrained,
            accepts="an AgileGAN encoder.pt or a VAEStyleEncoder",
            allow_untrained=allow_untrained,
            weights_seed=weights_seed,
        )

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        g = self.generator
        dtype = next(g.parameters()).dtype
        extras = {}
        with torch.no_grad():
            mu, logvar = (t.to(dtype) for t in self.net.posterior(images.to(dtype)))
            z = mu
        self.report(StepInfo(1, 1, stage="encode"))
        if init is not None:
            if init.space == "z+":
                z0 = init.latents.detach().to(mu)
            else:
                z0, extras["init_fit_error"] = fit_z(g, init.ws.detach().to(mu))
            with torch.no_grad():
                z = mu + logvar.exp().clamp(max=1.0) * z0
        extras.update(mu=mu, logvar=logvar)
        return Inversion(z.detach(), "z+", g, extras=extras)
