"""The file of ``Inversion.save`` / ``Inversion.load``: one safetensors file, never a pickle.

Tensors: ``latents``, ``offset.<layer>``, ``condition.<layer>.scale`` / ``condition.<layer>.shift`` (feature
conditions) and the tensor extras (``extra.<n>``, as in the native network
format). Metadata: ``format`` / ``format_version``, ``space``, the generator's config (JSON) and a
hash of its weights (``sg2_core.methods.weights.generator_hash``), ``extra`` (JSON with tensor references).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from sg2_core.checkpoints._io import atomic_write, check_input, one_line
from sg2_core.checkpoints.errors import CheckpointError
from sg2_core.checkpoints.native import _decode, _encode_extra, _safetensors, read_tagged
from sg2_core.methods.weights import generator_hash
from sg2_core.nn.feature_conditions import PARTS, FeatureCondition

FILE_FORMAT = "sg2-toolkit-inversion"
FILE_VERSION = "1"
_OFFSET_PREFIX = "offset."
_CONDITION_PREFIX = "condition."


def __getattr__(name: str):
    if name == "weights_hash":  # its name before sg2-core 0.7; the one identity of generators is generator_hash
        warnings.warn(
            "sg2_core.methods.inversion_file.weights_hash is now sg2_core.methods.weights.generator_hash; "
            "the old name goes away in sg2-core 0.8",
            DeprecationWarning,
            stacklevel=2,
        )
        return generator_hash
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write(
    path, latents, space: str, generator, offsets, extras: dict, *, overwrite: bool = False, conditions=None
) -> Path:
    """Write one inversion's parts (``offsets`` and ``conditions`` may be None), atomically; refuses an existing
    file."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    tensors = {"latents": latents.detach().cpu().contiguous()}
    for name, offset in (offsets or {}).items():
        tensors[_OFFSET_PREFIX + name] = offset.detach().cpu().contiguous()
    for name, condition in (conditions or {}).items():
        for part, t in condition.parts():
            tensors[f"{_CONDITION_PREFIX}{name}.{part}"] = t.detach().cpu().contiguous()
    encoded, extra_tensors = _encode_extra(extras)
    tensors.update(extra_tensors)
    metadata = {
        "format": FILE_FORMAT,
        "format_version": FILE_VERSION,
        "space": space,
        "generator_config": json.dumps(generator.config.to_dict()),
        "generator_hash": generator_hash(generator),
        "extra": json.dumps(encoded),
    }
    data = _safetensors().torch.save(tensors, metadata=metadata)
    return atomic_write(path, lambda f: f.write(data))


def read(
    path, generator, *, check_weights: bool = True
) -> tuple[Path, torch.Tensor, str, dict | None, dict, dict | None]:
    """``(path, latents, space, offsets or None, extras, feature conditions or None)`` of a file for ``generator``, on its device; refuses a
    file made for another config, or (``check_weights``) other weights."""
    path = check_input(path)
    metadata, tensors = read_tagged(path, FILE_FORMAT, FILE_VERSION, "an inversion file")
    recorded = json.loads(metadata["generator_config"])
    own = json.loads(json.dumps(generator.config.to_dict()))  # tuples as lists, as stored
    differ = sorted(k for k in {*recorded, *own} if recorded.get(k) != own.get(k))
    if differ:
        detail = ", ".join(f"{k}: file {recorded.get(k)!r}, generator {own.get(k)!r}" for k in differ)
        raise CheckpointError(f"the inversion was made for a generator of another config ({detail})", path)
    if check_weights and metadata.get("generator_hash") != generator_hash(generator):
        raise CheckpointError(
            "the inversion was made with a generator of the same config but other weights "
            "(the weight hashes differ); pass the generator it was made with, or "
            "check_weights=False to use it anyway",
            path,
        )
    device = next(generator.parameters()).device
    try:
        extras = _decode(json.loads(metadata.get("extra", "{}")), tensors)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"the 'extra' metadata is invalid: {one_line(exc)}", path) from exc
    offsets = {k[len(_OFFSET_PREFIX) :]: v.to(device) for k, v in tensors.items() if k.startswith(_OFFSET_PREFIX)}
    extras = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in extras.items()}
    conditions = _read_conditions(tensors, device, path)
    return path, tensors["latents"].to(device), metadata["space"], offsets or None, extras, conditions


def _read_conditions(tensors: dict, device, path) -> dict[str, FeatureCondition] | None:
    """``condition.<layer>.<part>`` tensors as ``{layer: FeatureCondition}``."""
    parts: dict[str, dict] = {}
    for key, t in tensors.items():
        if not key.startswith(_CONDITION_PREFIX):
            continue
        name, _, part = key[len(_CONDITION_PREFIX) :].rpartition(".")
        if part not in PARTS or not name:
            raise CheckpointError(
                f"unknown feature-condition tensor {key!r} (expected condition.<layer>.{PARTS})", path
            )
        parts.setdefault(name, {})[part] = t.to(device)
    return {name: FeatureCondition(**p) for name, p in parts.items()} or None
