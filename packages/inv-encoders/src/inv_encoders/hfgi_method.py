"""The ``hfgi`` method: e4e's W+ codes plus the feature conditions of HFGI's consultation branch.

``weights=``: the official checkpoint (``checkpoint/ckpt.pt``: e4e, the generator, ADA and the consultation
encoder; read by :func:`inv_encoders.hfgi_checkpoints.load_hfgi`), a file of ``python -m inv_encoders.train --method
hfgi`` (networks ``encoder`` and ``hfgi``), or :class:`HFGIWeights`; ``allow_untrained=True`` builds random ones
(tests). ``init=``: e4e's codes are added to ``init``'s W+ instead of ``latent_avg`` (as ``e4e``), and the
conditions are made against the render of those codes.

Edits: ``Inversion.edit`` keeps the conditions (as the official Cog demo, which aligns the distortion to the unedited
render); :meth:`HFGI.realigned_edit` re-aligns them to the edited render as the official ``scripts/inference.py`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from sg2_core import Inversion, StepInfo
from sg2_core.methods.directions import apply_direction
from sg2_core.methods.weights import resolve_weights

from .hfgi import HFGINetwork, config_for
from .hfgi_checkpoints import load_hfgi
from .methods import E4E, read_trained
from .networks import StyleEncoder


class HFGIWeights(NamedTuple):
    """The two parts ``hfgi`` runs: e4e's encoder and HFGI's networks (``weights=HFGIWeights(encoder, hfgi)``)."""

    encoder: StyleEncoder
    hfgi: HFGINetwork


def read_trained_hfgi(path, generator) -> HFGIWeights:
    """The ``encoder`` (e4e) and ``hfgi`` networks of a ``python -m inv_encoders.train --method hfgi`` file."""
    from sg2_core import load_networks

    net = load_networks(path).get("hfgi")
    if not isinstance(net, HFGINetwork):
        raise ValueError(f"{path}: holds no 'hfgi' HFGINetwork (a file written by python -m inv_encoders.train)")
    return HFGIWeights(read_trained(path, "e4e", generator), net)


class HFGI(E4E):
    """HFGI (Wang et al. 2022): e4e's codes, then the distortion ``x - G(w)`` aligned by ADA and encoded into a
    scale and a shift for one generator layer's features (``Inversion.feature_conditions``; official ``b64.conv0``).
    ``extras['aligned']``: ADA's aligned distortion map ``[N, C, s, s]``."""

    name = "hfgi"
    demo_weights = ("inv_encoders", "hfgi_fmnist32.safetensors")
    trainer = "inv_encoders.hfgi_training:train_hfgi"

    def _network(self, weights, allow_untrained, widths, input_size, weights_seed) -> StyleEncoder:
        pair = resolve_weights(
            self,
            weights,
            network_type=HFGIWeights,
            read=self._read_pair,
            untrained=lambda: self._untrained_pair(widths, input_size),
            accepts="an official HFGI checkpoint or an HFGIWeights(encoder, hfgi)",
            allow_untrained=allow_untrained,
            weights_seed=weights_seed,
        )
        encoder, hfgi = pair
        if not isinstance(encoder, StyleEncoder) or encoder.config.kind != "e4e":
            raise ValueError(f"HFGIWeights.encoder must be an e4e StyleEncoder, got {type(encoder).__name__}")
        if not isinstance(hfgi, HFGINetwork):
            raise ValueError(f"HFGIWeights.hfgi must be an HFGINetwork, got {type(hfgi).__name__}")
        if hfgi.config.input_size != encoder.config.input_size:
            raise ValueError(
                f"HFGI's networks take {hfgi.config.input_size} px images, its e4e encoder {encoder.config.input_size}"
            )
        hfgi.check_generator(self.generator.synthesis)
        self.hfgi = hfgi.to(self.device).eval()
        return encoder

    def _read_pair(self, path: Path) -> HFGIWeights:
        if path.suffix == ".safetensors":
            return read_trained_hfgi(path, self.generator)
        ckpt = load_hfgi(path, generator=self.generator)
        return HFGIWeights(ckpt.encoder, ckpt.hfgi)

    def _untrained_pair(self, widths, input_size) -> HFGIWeights:
        encoder = self._untrained(widths, input_size)
        return HFGIWeights(encoder, HFGINetwork(config_for(self.generator.synthesis, encoder.config.input_size)))

    def conditions(self, images: torch.Tensor, ws: torch.Tensor, edited_ws: torch.Tensor | None = None):
        """``({layer: FeatureCondition}, aligned map)`` for ``images`` and their codes ``ws``: the distortion against
        ``G(ws)``, aligned by ADA to the render of ``edited_ws`` (default ``ws``)."""
        synthesis = self.generator.synthesis
        with torch.no_grad():
            rendered = synthesis(ws, noise_mode="const")
            target = None if edited_ws is None else synthesis(edited_ws, noise_mode="const")
            aligned = self.hfgi.align(images, rendered, target)
            return self.hfgi.conditions_of(aligned), aligned

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        with torch.no_grad():
            base = None if init is None else init.ws.to(images)
            codes = self.net(images, base=base, stage=self.stage)
        self.report(StepInfo(1, 2, stage="encode"))
        conditions, aligned = self.conditions(images, codes)
        self.report(StepInfo(2, 2, stage="consult"))
        return Inversion(codes, "w+", self.generator, extras={"aligned": aligned}, feature_conditions=conditions)

    def realigned_edit(self, images: torch.Tensor, inversion: Inversion, direction, strength, layers=None) -> Inversion:
        """The official edit: ``inversion``'s W+ moved by ``strength * direction``, with the conditions remade from
        ``images``' distortion against the unedited render, aligned to the edited one."""
        edited = apply_direction(inversion.ws, direction, strength, layers)
        conditions, aligned = self.conditions(images, inversion.ws, edited)
        return Inversion(edited, "w+", self.generator, extras={"aligned": aligned}, feature_conditions=conditions)
