"""The packages' small test copies of reference fixtures: a network's float16 weights as one flat buffer.

A state dict of float16 tensors (plus batch norms' ``num_batches_tracked``, all zero) is stored as its keys,
shapes and one flat value buffer, optionally lzma-compressed (``values_f16_lzma``; else ``values``). The
``tests/data/build_test_data.py`` scripts write it with :func:`pack_state`, the tests read it back with
:func:`unpack_state`; :func:`squeeze` / :func:`unsqueeze` do the same for a single tensor.
"""

from __future__ import annotations

import lzma
import math

import torch

__all__ = ["pack_state", "squeeze", "unpack_state", "unsqueeze"]


def squeeze(t: torch.Tensor) -> torch.Tensor:
    """A tensor's bytes, lzma-compressed, as a uint8 tensor (what ``torch.save`` stores compactly)."""
    raw = lzma.compress(t.contiguous().numpy().tobytes(), preset=9 | lzma.PRESET_EXTREME)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


def unsqueeze(packed: torch.Tensor, shape, dtype=torch.float16) -> torch.Tensor:
    """float32 ``shape`` from :func:`squeeze`'s bytes of a ``dtype`` tensor."""
    raw = bytearray(lzma.decompress(packed.numpy().tobytes()))
    return torch.frombuffer(raw, dtype=dtype).reshape(shape).float()


def pack_state(state_dict: dict, compress: bool = True) -> dict:
    """Keys, shapes and one flat float16 buffer; zero integer buffers are kept by name only."""
    floats = {k: v for k, v in state_dict.items() if v.is_floating_point()}
    if any(v.dtype != torch.float16 for v in floats.values()):
        raise ValueError("pack_state stores float16 weights; cast the state dict first")
    if any(v.any() for k, v in state_dict.items() if k not in floats):
        raise ValueError("pack_state keeps integer buffers only when they are zero (num_batches_tracked)")
    values = torch.cat([v.flatten() for v in floats.values()])
    return {
        "keys": list(floats),
        "shapes": [list(v.shape) for v in floats.values()],
        **({"values_f16_lzma": squeeze(values)} if compress else {"values": values}),
        "zero_int64": [k for k in state_dict if k not in floats],
    }


def unpack_state(packed: dict, dtype=torch.float32) -> dict:
    """The state dict :func:`pack_state` stored, its weights in ``dtype``."""
    values = unsqueeze(packed["values_f16_lzma"], (-1,)) if "values_f16_lzma" in packed else packed["values"]
    sizes = [math.prod(s) for s in packed["shapes"]]
    if sum(sizes) != values.numel():
        raise ValueError(f"the packed values hold {values.numel()} numbers, the shapes {sum(sizes)}")
    state = {k: v.reshape(s).to(dtype) for k, v, s in zip(packed["keys"], values.split(sizes), packed["shapes"])}
    return state | {k: torch.zeros((), dtype=torch.int64) for k in packed["zero_int64"]}
