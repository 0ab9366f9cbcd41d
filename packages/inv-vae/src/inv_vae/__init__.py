"""AgileGAN (Song et al., SIGGRAPH 2021): hierarchical VAE inversion into Z+ and an attribute-aware generator.

- :mod:`inv_vae.networks`: the VAE encoder (:class:`VAEStyleEncoder`, per-layer mu / logvar in Z+);
- :mod:`inv_vae.losses`: its KL term;
- :func:`load`: an official AgileGAN encoder checkpoint (or our native file) into it;
- :mod:`inv_vae.methods`: the method ``agilegan`` (sg2_core.Method, space ``'z+'``);
- :mod:`inv_vae.attribute_generator`: a generator whose low-resolution blocks have one path per attribute;
- :func:`load_dual`: the official AgileGAN two-path generator (``DualGenerator``) into one;
- :mod:`inv_vae.attributes`: each image's path, given or predicted (the demo: Fashion-MNIST class groups).
"""

from importlib.metadata import version as _version

from sg2_core.moved import old_paths

from .attribute_generator import AttributeGenerator, AttributeGeneratorConfig
from .checkpoints import AgileCheckpoint, load
from .dual_checkpoint import load_dual
from .losses import KL_WEIGHT, kl_divergence
from .networks import VAEConfig, VAEOutput, VAEStyleEncoder, reparameterize

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("inv-vae")

# Module names shared by every family since sg2-core 0.7; the old ones go away in inv-vae's next minor.
old_paths(
    {
        "inv_vae.method": "inv_vae.methods",
        "inv_vae.checkpoint": "inv_vae.checkpoints",
        "inv_vae.train_vae": "inv_vae.training",
    },
    removed_in="the next minor version of inv-vae",
)

__all__ = [
    "AgileCheckpoint",
    "AttributeGenerator",
    "AttributeGeneratorConfig",
    "KL_WEIGHT",
    "VAEConfig",
    "VAEOutput",
    "VAEStyleEncoder",
    "kl_divergence",
    "load",
    "load_dual",
    "reparameterize",
]
