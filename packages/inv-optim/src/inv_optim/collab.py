"""Collaborative learning (Guan et al. 2020): an embedding network proposes W+ codes, an optimisation
iterator refines them, and the refined codes supervise the network. At test time: one forward pass,
optionally followed by ``refine_steps`` iterator steps.

The iterator is the W+ projector started from the network's codes (``init=``), in the settings of
:data:`ITERATOR_OPTIONS`: Adam on the W+ codes only, rendered with the generator's constant noise (as the
network's codes are), no w noise, a cosine learning-rate ramp-down without ramp-up, and per image the best
code visited (the start included), so refining never makes a code worse. Loss per image:
``distance + mse * MSE`` (the paper's "L2 + alpha LPIPS"). Any other registered method can be the iterator
(``iterator=NAME``): it is called with the network's inversion as ``init``.

Registry methods: ``collab`` (one forward pass, ``refine_steps=0``) and ``collab+refine``
(``refine_steps=REFINE_STEPS``). Their network comes from ``weights=`` (a file of ``python -m inv_optim.train`` or
an :class:`~inv_optim.embedding.EmbeddingNetwork`), ``allow_untrained=True`` (random, seeded by ``weights_seed``) or,
for the demo generator, the network shipped for it (``sg2_core.methods.weights``).
"""

from __future__ import annotations

import warnings
from importlib.resources import as_file, files

import torch

from sg2_core import Inversion, Method, StepInfo, create_method
from sg2_core.methods.weights import generator_hash, resolve_weights

from .distance import Distance, default_distance
from .embedding import EmbeddingNetwork, build_embedding, check_generator, load_embedding, read_metadata
from .projector import ProjectorWPlus, _project

DEMO_WEIGHTS = "collab_fmnist32.safetensors"
REFINE_STEPS = 50  # collab+refine's default: closes the MSE gap to 300-step W+ projection on the demo (README)
REFINE_LR = 0.1  # the projector's peak lr; 0.02 and 0.05 closed less of the gap in 30 steps (README)
ITERATOR_OPTIONS = {
    "noise": "const",
    "initial_noise_factor": 0.0,
    "lr_rampup": 0.0,
    "keep_best": True,
    "noise_regularize": 0,
}
"""The projector as collab's iterator: starts from given codes, so no w noise or ramp-up; constant noise."""


def iterator_loss(distance, images, targets, mse: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image ``(distance, distance + mse * MSE)``, both ``[N]``."""
    d = distance(images, targets)
    return d, d + mse * (images - targets).square().flatten(1).mean(dim=1) if mse else d


def refine_wplus(
    generator,
    images: torch.Tensor,
    ws: torch.Tensor,
    *,
    steps: int,
    distance,
    lr: float = REFINE_LR,
    mse: float = 1.0,
    rampdown: float = 0.25,
    betas=(0.9, 0.999),
):
    """The iterator on W+ codes ``ws [N, num_ws, w_dim]``: ``steps`` projector updates from them.

    Returns ``(codes, loss, distance)``: per image the best code seen (start included) and its iterator loss
    and distance. The loss is a per-image sum, so an image's result does not depend on its batch.
    """
    start = Inversion(ws.detach(), "w+", generator)
    no_w_stats = (ws.new_zeros(generator.w_dim), 0.0)  # unused: the start is given and there is no w noise
    inversion = _project(
        generator,
        images,
        space="w+",
        init=start,
        steps=steps,
        lr=lr,
        distance=distance,
        mse=mse,
        lr_rampdown=rampdown,
        betas=betas,
        w_stats=no_w_stats,
        **ITERATOR_OPTIONS,
    )
    return inversion.latents, inversion.extras["loss"], inversion.extras["distance"]


class LatentCache:
    """The best code found so far for every training image: ``codes [num_images, num_ws, w_dim]`` and
    ``loss [num_images]`` (inf until first seen), indexed by dataset index."""

    def __init__(self, num_images: int, num_ws: int, w_dim: int, device=None):
        if num_images < 1:
            raise ValueError(f"a latent cache needs num_images >= 1, got {num_images}")
        self.codes = torch.zeros(num_images, num_ws, w_dim, device=device)
        self.loss = torch.full((num_images,), float("inf"), device=device)

    def __len__(self) -> int:
        return self.codes.shape[0]

    def _index(self, indices) -> torch.Tensor:
        indices = torch.as_tensor(indices, dtype=torch.long, device=self.codes.device)
        if indices.numel() and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"cache indices must lie in [0, {len(self)}), got [{indices.min()}, {indices.max()}]")
        return indices

    def get(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        indices = self._index(indices)
        return self.codes[indices], self.loss[indices]

    @torch.no_grad()
    def update(self, indices, codes: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        """Stores the codes whose loss beats the cached one; returns which did (``[B]`` bool)."""
        indices = self._index(indices)
        if len(set(indices.tolist())) != len(indices):
            raise ValueError("cache.update needs distinct indices within a batch")
        better = loss.detach().to(self.loss.device) < self.loss[indices]
        self.codes[indices[better]] = codes.detach().to(self.codes)[better]
        self.loss[indices[better]] = loss.detach().to(self.loss)[better]
        return better

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"codes": self.codes, "loss": self.loss}


def demo_weights_path():
    """The network shipped for the demo generator (a Traversable inside the package)."""
    return files("inv_optim").joinpath("assets", DEMO_WEIGHTS)


def load_network(generator, weights=None, device=None):
    """Deprecated (goes away in inv-optim's next minor version): the network of ``create_method("collab", generator=G,
    weights=...)``, which also checks that ``generator`` is the demo generator before using the shipped one.

    The embedding network for ``generator``: ``weights`` (a file) or the shipped demo network; raises when
    it was trained for a generator of another config, warns when only the weights differ."""
    warnings.warn(
        "inv_optim.collab.load_network is deprecated and goes away in inv-optim's next minor version: build the "
        "method, create_method('collab', generator=G, weights=FILE), or read a file with "
        "inv_optim.embedding.load_embedding",
        DeprecationWarning,
        stacklevel=2,
    )
    if weights is None:
        resource = demo_weights_path()
        if not resource.is_file():
            raise FileNotFoundError(
                f"the demo embedding network {DEMO_WEIGHTS} is missing (expected at {resource}); "
                "train one with python -m inv_optim.train --out FILE, pass weights=FILE"
            )
        with as_file(resource) as path:
            return _load_checked(
                path,
                generator,
                device,
                "the shipped demo embedding network (trained for sg2_core.demo.load_generator())",
            )
    return _load_checked(weights, generator, device, f"embedding network {weights}")


def _load_checked(path, generator, device, where: str):
    from pathlib import Path

    if not Path(path).is_file():
        raise FileNotFoundError(f"{where}: file not found; train one with python -m inv_optim.train --out {path}")
    config = read_metadata(path)["config"]
    check_generator(config, generator, where)
    # Files of inv-optim 0.3 and earlier record a sum of squares instead (generator_fingerprint): not checked any more.
    if config.generator_hash is not None and config.generator_hash != generator_hash(generator):
        warnings.warn(
            f"{where} was trained for a generator with the same config but other weights (its generator_hash "
            "differs); its codes will be poor: retrain it with python -m inv_optim.train --method collab",
            stacklevel=3,
        )
    return load_embedding(path, device)


class Collab(Method):
    """Registry method ``collab``: the embedding network's W+ codes in one forward pass, then
    ``refine_steps`` iterator steps (0 by default).

    Options: ``weights`` (a ``train`` file or an ``EmbeddingNetwork``; default: the network shipped for the demo
    generator), ``allow_untrained`` (a random network, seeded by ``weights_seed``: tests and baselines),
    ``refine_steps``, ``lr`` (iterator peak lr), ``mse`` (iterator MSE weight), ``distance`` (name or callable;
    default ``fmnist`` on the demo domain, else LPIPS-VGG), ``iterator`` (a registered method name to refine
    with instead of the W+ projector; ``iterator_options`` are its options), ``device`` (the generator's).
    Called with ``init=``, the iterator refines that inversion instead of the network's codes.
    Extras per image: ``refine_steps``; with refinement also ``distance`` and ``loss`` (iterator's, final) and
    ``network_distance`` (of the starting code).
    """

    name = "collab"
    space = "w+"
    trainable = True
    trainer = "inv_optim.training:main"
    needs = ("generator", "own-weights")
    default_refine_steps = 0
    demo_weights = ("inv_optim", DEMO_WEIGHTS)
    test_options = {}  # the network shipped for the demo generator: one forward pass
    full_size_options = {"allow_untrained": True}

    def __init__(
        self,
        generator=None,
        *,
        weights=None,
        allow_untrained: bool = False,
        weights_seed: int = 0,
        refine_steps: int | None = None,
        distance=None,
        lr: float = REFINE_LR,
        mse: float = 1.0,
        iterator: str | None = None,
        iterator_options=None,
        device=None,
        callback=None,
    ):
        super().__init__(generator, callback=callback, device=device)
        refine_steps = self.default_refine_steps if refine_steps is None else refine_steps
        if not isinstance(refine_steps, int) or isinstance(refine_steps, bool) or refine_steps < 0:
            raise ValueError(f"refine_steps must be an int >= 0, got {refine_steps!r}")
        if isinstance(weights, EmbeddingNetwork):
            check_generator(weights.config, generator, "weights")
        network = resolve_weights(
            self,
            weights,
            network_type=EmbeddingNetwork,
            read=lambda path: _load_checked(path, generator, None, f"embedding network {path}"),
            untrained=lambda: build_embedding(generator),
            accepts="an EmbeddingNetwork",
            allow_untrained=allow_untrained,
            weights_seed=weights_seed,
        )
        self.network = network.to(self.device).eval().requires_grad_(False)
        self.refine_steps, self.lr, self.mse = refine_steps, lr, mse
        self.distance = Distance(distance or default_distance(generator))
        if refine_steps:  # the distance is used only when refining
            self.distance.check_weights(self.name)
        self.iterator_name = iterator
        self.iterator = self._build_iterator(iterator, dict(iterator_options or {}))

    def _build_iterator(self, name, options):
        if name is None:
            if options:
                raise ValueError("iterator_options apply to an iterator given by name (iterator=NAME)")
            return None  # the W+ projector, built per call with the step count
        if self.refine_steps == 0:
            raise ValueError(f"iterator={name!r} refines, but refine_steps is 0")
        return create_method(name, generator=self.generator, callback=self.callback, **options)

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        steps = self.refine_steps
        if init is None:
            with torch.no_grad():
                start = Inversion(self.network(images), "w+", self.generator)
        else:
            start = init
        n = len(start)
        extras = {"refine_steps": torch.full((n,), steps, dtype=torch.long, device=images.device)}
        if not steps:
            return Inversion(start.ws.detach(), "w+", self.generator, start.weight_offsets, extras)
        with torch.no_grad():
            start_d, _ = iterator_loss(self.distance, start.render(), images, self.mse)
        if self.iterator is None:
            no_w_stats = (images.new_zeros(self.generator.w_dim), 0.0)  # the start is given and there is no w noise
            refined = ProjectorWPlus(
                self.generator,
                steps=steps,
                lr=self.lr,
                distance=self.distance,
                mse=self.mse,
                callback=self._refine_callback,
                w_stats=no_w_stats,
                **ITERATOR_OPTIONS,
            )
        else:
            refined = self.iterator
        result = refined(images, init=start)
        extras.update(
            {k: v for k, v in result.extras.items() if k in ("distance", "loss")},
            network_distance=start_d,
            distance_name=self.distance.name,
        )
        return Inversion(result.latents, result.space, self.generator, result.weight_offsets, extras)

    def _refine_callback(self, info: StepInfo) -> None:
        self.report(StepInfo(info.step, info.steps, info.distance, info.loss, info.active, "refine"))


class CollabRefine(Collab):
    """Registry method ``collab+refine``: ``collab`` followed by ``REFINE_STEPS`` iterator steps."""

    name = "collab+refine"
    default_refine_steps = REFINE_STEPS
    test_options = {"refine_steps": 3}
    full_size_options = {"allow_untrained": True, "refine_steps": 1}


__all__ = [
    "Collab",
    "CollabRefine",
    "DEMO_WEIGHTS",
    "ITERATOR_OPTIONS",
    "LatentCache",
    "REFINE_STEPS",
    "iterator_loss",
    "load_network",
    "refine_wplus",
]
