"""Inversion methods: the contract (Method), the registry, Inversion and its file, latent directions, and where
a method's weights come from (weights)."""

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
from sg2_core.methods.weights import MissingWeightsError, generator_hash, is_demo_generator, resolve_weights

__all__ = [
    "Directions",
    "Inversion",
    "Method",
    "MethodSpec",
    "MissingWeightsError",
    "SPACES",
    "StepInfo",
    "WEIGHTS",
    "apply_direction",
    "check_images",
    "create_method",
    "ganspace",
    "generator_hash",
    "is_demo_generator",
    "list_methods",
    "method_info",
    "method_spec",
    "register_method",
    "resolve_weights",
    "sefa",
]
