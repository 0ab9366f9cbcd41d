"""Collaborative learning (Guan et al. 2020): an embedding network proposes W+ codes, an optimisation
iterator refines them, and the refined codes supervise the network. At test time: one forward pass,
optionally followed by ``refine_steps`` iterator steps.

The iterator is ``refine_wplus``: Adam on the W+ codes only (the generator's constant noise, as the
network's codes are rendered), loss per image ``distance + mse * MSE`` (the paper's "L2 + alpha LPIPS"), a
cosine learning-rate ramp-down (the projector's schedule without its ramp-up or w noise: the start is already
a good code). The projector cannot start from given latents, hence this small loop; it reuses the
projector's schedule and distance. It returns, per image, the best code it visited (the start included),
so refining never makes a code worse.

Registry methods: ``collab`` (one forward pass, ``refine_steps=0``) and ``collab+refine``
(``refine_steps=REFINE_STEPS``). Both default to the network shipped for the demo generator.
"""

from __future__ import annotations

import warnings
from importlib.resources import as_file, files

import torch

from sg2_core import Inversion, check_images

from ._common import check_device
from .distance import Distance, default_distance
from .embedding import check_generator, generator_fingerprint, load_embedding, read_metadata
from .schedule import learning_rate

DEMO_WEIGHTS = "collab_fmnist32.safetensors"
REFINE_STEPS = 50  # collab+refine's default: closes the MSE gap to 300-step W+ projection on the demo (README)
REFINE_LR = 0.1  # the projector's peak lr; 0.02 and 0.05 closed less of the gap in 30 steps (README)


def iterator_loss(distance, images, targets, mse: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image ``(distance, distance + mse * MSE)``, both ``[N]``."""
    d = distance(images, targets)
    return d, d + mse * (images - targets).square().flatten(1).mean(dim=1) if mse else d


def refine_wplus(generator, images: torch.Tensor, ws: torch.Tensor, *, steps: int, distance, lr: float = REFINE_LR,
                 mse: float = 1.0, rampdown: float = 0.25, betas=(0.9, 0.999)):
    """Refine W+ codes ``ws [N, num_ws, w_dim]`` towards ``images`` with ``steps`` Adam updates.

    Returns ``(codes, loss, distance)``: per image the best code seen (start included) and its iterator loss
    and distance. The loss is a per-image sum, so an image's result does not depend on its batch.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"refine steps must be an int >= 0, got {steps!r}")
    synthesis = generator.synthesis
    target = images.detach()
    w = ws.detach().clone().requires_grad_(steps > 0)
    best = ws.detach().clone()
    best_loss = torch.full((w.shape[0],), float("inf"), device=w.device)
    best_dist = best_loss.clone()
    optimizer = torch.optim.Adam([w], lr=lr, betas=tuple(betas)) if steps else None

    def keep_best(loss, dist, codes):
        better = loss < best_loss
        best[better] = codes.detach()[better]
        best_loss[better], best_dist[better] = loss[better], dist[better]

    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr, rampup=0.0, rampdown=rampdown)
        d, loss = iterator_loss(distance, synthesis(w, noise_mode="const"), target, mse)
        keep_best(loss.detach(), d.detach(), w)  # the loss of the code before this update
        (w.grad,) = torch.autograd.grad(loss.sum(), [w])  # only the codes: the generator stays untouched
        optimizer.step()
    with torch.no_grad():
        d, loss = iterator_loss(distance, synthesis(w, noise_mode="const"), target, mse)
        keep_best(loss, d, w)
    return best, best_loss, best_dist


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
    """The embedding network for ``generator``: ``weights`` (a file) or the shipped demo network; raises when
    it was trained for a generator of another config, warns when only the weights differ."""
    if weights is None:
        resource = demo_weights_path()
        if not resource.is_file():
            raise FileNotFoundError(f"the demo embedding network {DEMO_WEIGHTS} is missing (expected at {resource}); "
                                    "train one with python -m inv_optim.train_collab --out FILE, pass weights=FILE")
        with as_file(resource) as path:
            return _load_checked(path, generator, device, "the shipped demo embedding network "
                                                          "(trained for sg2_core.demo.load_generator())")
    return _load_checked(weights, generator, device, f"embedding network {weights}")


def _load_checked(path, generator, device, where: str):
    from pathlib import Path

    if not Path(path).is_file():
        raise FileNotFoundError(f"{where}: file not found; train one with python -m inv_optim.train_collab --out "
                                f"{path}")
    config = read_metadata(path)["config"]
    check_generator(config, generator, where)
    if config.generator_fingerprint is not None:
        own = generator_fingerprint(generator)
        if abs(own - config.generator_fingerprint) > 1e-5 * abs(config.generator_fingerprint):
            warnings.warn(f"{where} was trained for a generator with the same config but other weights "
                          f"(fingerprint {config.generator_fingerprint:.6g}, this one {own:.6g}); its codes will "
                          "be poor: retrain it with python -m inv_optim.train_collab", stacklevel=3)
    return load_embedding(path, device)


class Collab:
    """Registry method ``collab``: the embedding network's W+ codes in one forward pass, then
    ``refine_steps`` iterator steps (0 by default).

    Options: ``weights`` (a ``train_collab`` file; default: the network shipped for the demo generator),
    ``refine_steps``, ``lr`` (iterator peak lr), ``mse`` (iterator MSE weight), ``distance`` (name or callable;
    default ``fmnist`` on the demo domain, else LPIPS-VGG), ``device`` (must be the generator's).
    Extras per image: ``refine_steps``; with refinement also ``distance`` and ``loss`` (iterator's, final) and
    ``network_distance`` (of the network's own code).
    """

    name = "collab"
    space = "w+"
    trainable = True
    default_refine_steps = 0

    def __init__(self, generator=None, *, weights=None, refine_steps: int | None = None, distance=None,
                 lr: float = REFINE_LR, mse: float = 1.0, device=None):
        if generator is None:
            raise ValueError(f"{self.name} needs generator=G")
        refine_steps = self.default_refine_steps if refine_steps is None else refine_steps
        if not isinstance(refine_steps, int) or refine_steps < 0:
            raise ValueError(f"refine_steps must be an int >= 0, got {refine_steps!r}")
        self.generator = generator
        self.device = check_device(generator, device)
        self.network = load_network(generator, weights, self.device)
        self.refine_steps, self.lr, self.mse = refine_steps, lr, mse
        self.distance = Distance(distance or default_distance(generator))


    def __call__(self, images: torch.Tensor, refine_steps: int | None = None) -> Inversion:
        check_images(images, self.generator)
        steps = self.refine_steps if refine_steps is None else refine_steps
        target = images.detach().to(self.device, torch.float32)
        with torch.no_grad():
            ws = self.network(target)
        n = ws.shape[0]
        extras = {"refine_steps": torch.full((n,), steps, dtype=torch.long, device=ws.device)}
        if steps:
            with torch.no_grad():
                start_d, _ = iterator_loss(self.distance, self.generator.synthesis(ws, noise_mode="const"), target,
                                           self.mse)
            ws, loss, d = refine_wplus(self.generator, target, ws, steps=steps, distance=self.distance, lr=self.lr,
                                       mse=self.mse)
            extras.update(distance=d, loss=loss, network_distance=start_d, distance_name=self.distance.name)
        return Inversion(ws.detach(), "w+", self.generator, None, extras)


class CollabRefine(Collab):
    """Registry method ``collab+refine``: ``collab`` followed by ``REFINE_STEPS`` iterator steps."""

    name = "collab+refine"
    default_refine_steps = REFINE_STEPS


__all__ = ["Collab", "CollabRefine", "DEMO_WEIGHTS", "LatentCache", "REFINE_STEPS", "iterator_loss",
           "load_network", "refine_wplus"]
