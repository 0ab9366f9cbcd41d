"""The full-size official encoder layouts (shared/fixtures/encoders/keys_official.json, the listings kept in
data/encoders/layouts_official.json.gz) build from sg2_core.encoders on the meta device: every key, no extra
one, every shape, and the parameter count."""

import gzip
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from sg2_core.encoders import IRBackbone, PyramidStyleEncoder, WEncoder

LAYOUTS = json.loads(
    gzip.decompress((Path(__file__).parent / "data" / "encoders" / "layouts_official.json.gz").read_bytes())
)


class VAEStyleEncoder(PyramidStyleEncoder):
    """How inv-vae composes AgileGAN's encoder: pSp's layout plus two plain linears for mu and log-variance."""

    def __init__(self, n_styles=18, **kwargs):
        super().__init__(n_styles, **kwargs)
        self.fc_mu = nn.Linear(self.style_dim, self.style_dim)
        self.fc_var = nn.Linear(self.style_dim, self.style_dim)


BUILDERS = {
    "psp_GradualStyleEncoder": lambda: PyramidStyleEncoder(18),  # = e4e's Encoder4Editing
    "psp_BackboneEncoderUsingLastLayerIntoW": lambda: WEncoder(),  # = HyperInverter's W encoder
    "restyle_BackboneEncoder_6ch": lambda: PyramidStyleEncoder(18, 6, pyramid=False),  # = its progressive one
    "hyper_LayerWiseEncoder": lambda: PyramidStyleEncoder(18, style_spatial=8),
    "agile_VAEStyleEncoder": lambda: VAEStyleEncoder(18),
    "arcface_Backbone_ir_se50_112": lambda: IRBackbone(50, "ir_se", 112, dropout=0.6),
}


def test_every_listing_has_a_builder():
    assert set(LAYOUTS) == set(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_official_layout_builds_on_meta(name):
    with torch.device("meta"):
        module = BUILDERS[name]()
    ours = {k: list(v.shape) for k, v in module.state_dict().items()}
    official = LAYOUTS[name]["keys"]
    assert sorted(set(official) - set(ours)) == [], "missing keys"
    assert sorted(set(ours) - set(official)) == [], "unexpected keys"
    assert {k: s for k, s in ours.items() if official[k] != s} == {}, "shape mismatches"
    assert len(ours) == LAYOUTS[name]["n_keys"]
    assert sum(p.numel() for p in module.parameters()) == LAYOUTS[name]["n_parameters"]
    # a strict load of a state dict in that layout succeeds (meta tensors carry the shapes)
    module.load_state_dict({k: torch.empty(s, device="meta") for k, s in official.items()}, strict=True, assign=True)
