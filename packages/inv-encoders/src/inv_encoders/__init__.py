"""Encoder-based StyleGAN2 inversion: pSp, e4e and ReStyle on the shared encoder parts of ``sg2_core.encoders``.

- :mod:`inv_encoders.networks`: the encoders (:class:`StyleEncoder`) and e4e's latent discriminator;
- :func:`load`: an official pSp / e4e / ReStyle checkpoint file into them (:mod:`inv_encoders.checkpoints`);
- :mod:`inv_encoders.methods`: the methods ``psp``, ``e4e``, ``restyle-psp``, ``restyle-e4e`` (sg2_core.Method).
"""

from importlib.metadata import version as _version

from .checkpoints import EncoderCheckpoint, load
from .networks import LatentCodesDiscriminator, StyleEncoder, StyleEncoderConfig

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("inv-encoders")

__all__ = ["EncoderCheckpoint", "LatentCodesDiscriminator", "StyleEncoder", "StyleEncoderConfig", "load"]
