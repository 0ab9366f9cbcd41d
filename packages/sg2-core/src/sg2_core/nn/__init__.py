"""The networks: StyleGAN2's generator and discriminator, their layers and configs, per-sample weight offsets and
feature conditions."""

from sg2_core.nn.config import DISCRIMINATOR_PRESETS, GENERATOR_PRESETS, DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.feature_conditions import FeatureCondition
from sg2_core.nn.generator import Generator, MappingNetwork, SynthesisNetwork, mix_styles, truncate
from sg2_core.nn.layers import use_impl

__all__ = [
    "DISCRIMINATOR_PRESETS",
    "Discriminator",
    "DiscriminatorConfig",
    "FeatureCondition",
    "GENERATOR_PRESETS",
    "Generator",
    "GeneratorConfig",
    "MappingNetwork",
    "SynthesisNetwork",
    "mix_styles",
    "truncate",
    "use_impl",
]
