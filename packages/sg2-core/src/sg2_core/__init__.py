"""StyleGAN2 networks, checkpoint I/O, training, and the contract and registry of inversion methods.

The subpackages name the jobs (a map is in the README): ``nn``, ``checkpoints``, ``training``, ``methods``,
``encoders``, ``testing``; the commands (``invert``, ``convert``, ``train``, ``bench``) and images, datasets and
the demo sit at the top. The public names below are importable from ``sg2_core`` itself.
"""

from importlib.metadata import version as _version

from sg2_core.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointKeyError,
    CheckpointWarning,
    UnsafePickleError,
    detect_format,
    load_checkpoint,
    save_checkpoint,
)
from sg2_core.checkpoints.native import LoadedNetworks, load_networks, register_network, save_networks
from sg2_core.methods import (
    SPACES,
    WEIGHTS,
    Directions,
    Inversion,
    Method,
    MethodSpec,
    MissingWeightsError,
    StepInfo,
    apply_direction,
    check_images,
    create_method,
    ganspace,
    list_methods,
    method_info,
    method_spec,
    register_method,
    sefa,
)
from sg2_core.methods.registry import method_factory
from sg2_core.moved import old_paths
from sg2_core.nn import (
    DISCRIMINATOR_PRESETS,
    GENERATOR_PRESETS,
    Discriminator,
    DiscriminatorConfig,
    FeatureCondition,
    Generator,
    GeneratorConfig,
    MappingNetwork,
    SynthesisNetwork,
    mix_styles,
    truncate,
    use_impl,
)
from sg2_core.training.losses import (
    PathLengthRegularizer,
    d_logistic_loss,
    g_nonsaturating_loss,
    lazy_optimizer_settings,
    r1_penalty,
)

__version__ = _version("sg2-core")
# Paths from before the subpackages (0.7); they go away in 0.8.
old_paths(
    {
        f"sg2_core.{old}": f"sg2_core.{new}"
        for old, new in {
            "config": "nn.config",
            "generator": "nn.generator",
            "discriminator": "nn.discriminator",
            "layers": "nn.layers",
            "cpu_inference": "nn.cpu_inference",
            "offsets": "nn.offsets",
            "method": "methods.method",
            "registry": "methods.registry",
            "inversion": "methods.inversion",
            "_inversion_file": "methods.inversion_file",
            "directions": "methods.directions",
            "conditions": "methods.conditions",
            "latents": "methods.latents",
            "fixture_packs": "testing.fixture_packs",
            "trainer": "training.trainer",
            "fit": "training.fit",
            "losses": "training.losses",
            "augment": "training.augment",
            "optim": "training.optim",
            "train_method": "training.cli",
        }.items()
    },
    removed_in="sg2-core 0.8",
)


def __getattr__(name: str):  # InversionMethod: deprecated (only Method subclasses are methods), gone in 0.8
    from sg2_core.methods.registry import _deprecated

    return _deprecated(name, __name__)


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointKeyError",
    "CheckpointWarning",
    "DISCRIMINATOR_PRESETS",
    "Directions",
    "Discriminator",
    "DiscriminatorConfig",
    "FeatureCondition",
    "GENERATOR_PRESETS",
    "Generator",
    "GeneratorConfig",
    "Inversion",
    "LoadedNetworks",
    "Method",
    "MethodSpec",
    "MissingWeightsError",
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
