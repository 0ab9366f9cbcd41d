"""Encoder-based StyleGAN2 inversion: pSp, e4e and ReStyle on the shared encoder parts of ``sg2_core.encoders``.

- :mod:`inv_encoders.networks`: the encoders (:class:`StyleEncoder`) and e4e's latent discriminator;
- :func:`load`: an official pSp / e4e / ReStyle checkpoint file into them (:mod:`inv_encoders.checkpoints`);
- :mod:`inv_encoders.methods`: the methods ``psp``, ``e4e``, ``restyle-psp``, ``restyle-e4e`` (sg2_core.Method).
"""

from importlib.metadata import version as _version

from sg2_core.moved import old_paths

from .checkpoints import EncoderCheckpoint, load
from .networks import LatentCodesDiscriminator, StyleEncoder, StyleEncoderConfig

# Single source of truth: the version in pyproject.toml, as installed.
__version__ = _version("inv-encoders")

# Module names shared by every family since sg2-core 0.7; the old ones go away in inv-encoders's next minor.
old_paths(
    {
        "inv_encoders.train_encoders": "inv_encoders.training",
    },
    removed_in="the next minor version of inv-encoders",
)

__all__ = ["EncoderCheckpoint", "LatentCodesDiscriminator", "StyleEncoder", "StyleEncoderConfig", "load"]
