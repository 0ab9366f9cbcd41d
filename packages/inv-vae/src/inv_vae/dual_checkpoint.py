"""The official AgileGAN two-path generator (``DualGenerator``, flyingbread-elon/AgileGAN
``lib/generator/model_dual.py``) read into an :class:`~inv_vae.AttributeGenerator`.

Its state dict is a rosinality generator whose upsampling blocks below 128 px exist twice, ``convsA`` /
``to_rgbsA`` (path A, female in the reference's ``test.py``) and ``convsB`` / ``to_rgbsB`` (path B, male), and
whose blocks from 128 px on are shared as ``convsC`` / ``to_rgbsC``, numbered from 0 again; the mapping
(``style.*``), ``input``, ``conv1``, ``to_rgb1`` and the noise buffers ``noises.noise_{i}`` (one per layer, all
of the right size) are shared. Each path is renamed to the plain rosinality layout and read by sg2-core's
rosinality reader; every key is checked strictly first (one error lists every missing, unexpected and
mis-shaped key, in the file's own names). Each noise buffer goes to its own layer: the reference's constant-noise
forward instead feeds the shared 128 px blocks the 8 px buffers again and fails (:mod:`inv_vae.attribute_generator`).
The file: a ``torch.save``'d dict with ``g_ema`` (what the reference's ``test.py`` reads; optional top-level
``latent_avg``) or the state dict itself, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from sg2_core.checkpoints import CheckpointError, rosinality
from sg2_core.checkpoints.base import check_state, count, expected_shapes

from .attribute_generator import AttributeGenerator

__all__ = ["DUAL_ATTRIBUTES", "from_dual_state_dict", "is_dual_state_dict", "load_dual"]

DUAL_ATTRIBUTES = ("female", "male")  # paths A and B, as the reference's test.py picks them
_BRANCHED = re.compile(r"^(convs|to_rgbs)([ABC])\.(\d+)\.(.+)$")
_PLAIN = re.compile(r"^(convs|to_rgbs)\.(\d+)\.(.+)$")


def is_dual_state_dict(state: Mapping) -> bool:
    return any(isinstance(k, str) and k.startswith("convsA.") for k in state)


def _per_path(state: Mapping, n_split: int) -> tuple[dict, dict]:
    """The plain rosinality state dicts of paths A and B (shared tensors in both)."""
    paths = ({}, {})
    for key, value in state.items():
        m = _BRANCHED.match(key)
        if m is None:
            for p in paths:
                p[key] = value
            continue
        kind, branch, j, rest = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        if branch == "C":  # the shared high-resolution blocks continue the numbering after the split ones
            j += 2 * n_split if kind == "convs" else n_split
            for p in paths:
                p[f"{kind}.{j}.{rest}"] = value
        else:
            paths["AB".index(branch)][f"{kind}.{j}.{rest}"] = value
    return paths


def _dual_names(key: str, n_split: int) -> list[str]:
    """The file's names of a plain rosinality key (two names for a split block, one otherwise)."""
    m = _PLAIN.match(key)
    if m is None:
        return [key]
    kind, j, rest = m.group(1), int(m.group(2)), m.group(3)
    split = j < (2 * n_split if kind == "convs" else n_split)
    if split:
        return [f"{kind}A.{j}.{rest}", f"{kind}B.{j}.{rest}"]
    return [f"{kind}C.{j - (2 * n_split if kind == 'convs' else n_split)}.{rest}"]


def from_dual_state_dict(
    state: Mapping, attributes: Sequence[str] = DUAL_ATTRIBUTES, latent_avg=None, path=None
) -> AttributeGenerator:
    """An AttributeGenerator (path 0 = A, path 1 = B) from a DualGenerator state dict."""
    if not isinstance(state, Mapping) or not is_dual_state_dict(state):
        raise CheckpointError(
            "not an AgileGAN two-path generator: no 'convsA.*' keys (a plain rosinality "
            "generator loads with sg2_core.load_checkpoint)",
            path,
        )
    n_split = count(state, "to_rgbsA.{}.conv.weight")
    if n_split == 0:
        raise CheckpointError(
            "the two-path generator has no 'to_rgbsA.0.conv.weight': cannot tell its split blocks", path
        )
    path_a, path_b = _per_path(state, n_split)
    config = rosinality.infer_generator_config(path_a, path)
    meta = {k: torch.empty(shape, device="meta") for k, shape in expected_shapes(config).items()}
    plain = rosinality.generator_to_rosinality(meta, config)  # every rosinality key and shape of one path
    expected, optional = {}, set()
    for key, tensor in plain.items():
        for name in _dual_names(key, n_split):
            expected[name] = tuple(tensor.shape)
            if key.endswith("kernel") or key.startswith("noises."):
                optional.add(name)  # kernels follow from the config; missing noise is drawn (with a warning)
    check_state(
        expected,
        state,
        "the AgileGAN two-path generator (DualGenerator names)",
        path,
        optional=optional,
        hint=f"(architecture inferred: {config}, {n_split} split blocks)",
    )
    a = rosinality.generator_from_rosinality(path_a, config, path, what="two-path generator, path A")
    b = rosinality.generator_from_rosinality(path_b, config, path, what="two-path generator, path B")
    split = tuple(2 ** (k + 3) for k in range(n_split))
    if latent_avg is not None:
        a.mapping.w_avg.copy_(torch.as_tensor(latent_avg).reshape(-1)[: config.w_dim])
    net = AttributeGenerator.from_generator(a, attributes, split=split)
    with torch.no_grad():
        for name, block in net.paths[1].items():
            block.load_state_dict(getattr(b.synthesis, name).state_dict(), strict=True)
    return net.eval().requires_grad_(False)


def load_dual(path, attributes: Sequence[str] = DUAL_ATTRIBUTES) -> AttributeGenerator:
    """An official AgileGAN two-path generator file (``g_ema`` of a DualGenerator, or its state dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    obj = torch.load(path, map_location="cpu", weights_only=True)  # never runs code from the file
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"holds a {type(obj).__name__}, not a dict", path)
    state = obj.get("g_ema", obj)
    return from_dual_state_dict(state, attributes, latent_avg=obj.get("latent_avg"), path=path)
