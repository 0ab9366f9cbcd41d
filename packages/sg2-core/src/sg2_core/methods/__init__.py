"""Inversion methods: the contract (Method), the registry, Inversion and its file, latent directions."""

from sg2_core.methods.directions import Directions, apply_direction, ganspace, sefa
from sg2_core.methods.inversion import SPACES, Inversion
from sg2_core.methods.method import WEIGHTS, Method, StepInfo
from sg2_core.methods.registry import (
    MethodSpec,
    check_images,
    create_method,
    list_methods,
    method_info,
    method_spec,
    register_method,
)

__all__ = [
    "Directions",
    "Inversion",
    "Method",
    "MethodSpec",
    "SPACES",
    "StepInfo",
    "WEIGHTS",
    "apply_direction",
    "check_images",
    "create_method",
    "ganspace",
    "list_methods",
    "method_info",
    "method_spec",
    "register_method",
    "sefa",
]
