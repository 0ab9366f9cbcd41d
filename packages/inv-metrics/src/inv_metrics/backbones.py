"""The IR / IR-SE face trunk, under the names inv-metrics has always exported.

The network itself lives in sg2-core (``sg2_core.encoders``), shared with the encoder families: IR-SE50 (pSp's
ArcFace ID loss) and IR-101 (CurricularFace, the paper's ID metric) are ``IRBackbone``s with an embedding head,
keys ``input_layer.*``, ``body.{i}.*``, ``output_layer.*`` as in the reference checkpoints. This module adds the
strict loader of a face-network file.
"""

from __future__ import annotations

import torch
from torch import nn

from sg2_core.encoders import (  # noqa: F401  (re-exported)
    DEFAULT_WIDTHS,
    SE_REDUCTION,
    UNITS_PER_STAGE,
    BottleneckIR,
    IRBackbone,
    IRTrunk,
    SEModule,
    ir_se,
)

__all__ = [
    "DEFAULT_WIDTHS",
    "SE_REDUCTION",
    "UNITS_PER_STAGE",
    "BottleneckIR",
    "IRBackbone",
    "IRTrunk",
    "SEModule",
    "ir_se",
    "load_state",
]


def load_state(module: nn.Module, path, what: str) -> nn.Module:
    """Load a plain state dict (or one under 'state_dict') strictly, with a clear error naming the file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k.removeprefix("module."): v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit {what}: {err}") from None
    return module
