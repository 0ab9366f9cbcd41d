"""StyleGAN2 networks, checkpoint I/O, latent-space helpers and the registry of inversion methods."""

from importlib.metadata import version as _version

from .checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointKeyError,
    CheckpointWarning,
    UnsafePickleError,
    detect_format,
    load_checkpoint,
    save_checkpoint,
)
from .checkpoints.native import LoadedNetworks, load_networks, register_network, save_networks
from .config import DISCRIMINATOR_PRESETS, GENERATOR_PRESETS, DiscriminatorConfig, GeneratorConfig
from .directions import Directions, apply_direction, ganspace, sefa
from .discriminator import Discriminator
from .generator import Generator, MappingNetwork, SynthesisNetwork, mix_styles, truncate
from .inversion import SPACES, Inversion
from .layers import use_impl
from .losses import PathLengthRegularizer, d_logistic_loss, g_nonsaturating_loss, lazy_optimizer_settings, r1_penalty
from .method import WEIGHTS, Method, StepInfo
from .registry import (
    InversionMethod,
    MethodSpec,
    check_images,
    create_method,
    list_methods,
    method_factory,
    method_info,
    method_spec,
    register_method,
)

__version__ = _version("sg2-core")

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointKeyError",
    "CheckpointWarning",
    "DISCRIMINATOR_PRESETS",
    "Directions",
    "Discriminator",
    "DiscriminatorConfig",
    "GENERATOR_PRESETS",
    "Generator",
    "GeneratorConfig",
    "Inversion",
    "InversionMethod",
    "LoadedNetworks",
    "Method",
    "MethodSpec",
    "SPACES",
    "StepInfo",
    "WEIGHTS",
    "MappingNetwork",
    "PathLengthRegularizer",
    "SynthesisNetwork",
    "UnsafePickleError",
    "apply_direction",
    "check_images",
    "create_method",
    "d_logistic_loss",
    "detect_format",
    "g_nonsaturating_loss",
    "ganspace",
    "lazy_optimizer_settings",
    "list_methods",
    "load_checkpoint",
    "load_networks",
    "method_factory",
    "method_info",
    "method_spec",
    "mix_styles",
    "r1_penalty",
    "register_method",
    "register_network",
    "save_checkpoint",
    "save_networks",
    "sefa",
    "truncate",
    "use_impl",
]
