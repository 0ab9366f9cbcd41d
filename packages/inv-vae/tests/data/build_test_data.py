"""Rebuild this folder's test file from the shared encoder fixtures (run once, by hand):

    python build_test_data.py /work/shared/fixtures/encoders

The AgileGAN VAEStyleEncoder weights keep their float16 values as one lzma-compressed flat buffer (keys and
shapes alongside; ``sg2_core.testing.fixture_packs.unpack_state`` rebuilds the state dict). Of the input images only sample 0 of ``x256``
is kept (lzma-compressed float16 bytes); the outputs (``z``, ``mu``, ``logvar`` and their float64 versions,
``[2, 10, 32]`` each), the injected ``eps`` and the KL values are kept whole, as they are small.
"""

import gzip
import json
import sys
from pathlib import Path

import torch

from sg2_core.testing.fixture_packs import pack_state, squeeze

src = Path(sys.argv[1])
out = Path(__file__).resolve().parent


def load(name):
    return torch.load(src / name, weights_only=True)


weights, io, inputs = load("agile_vae_weights.pt"), load("agile_vae_io.pt"), load("inputs.pt")
state = weights["state_dict"]
packed = pack_state(state)
assert inputs["x256"].dtype == torch.float16
torch.save(
    {
        "weights": packed,
        "class": weights["class"],
        "commit": weights["commit"],
        "x256_0_f16_lzma": squeeze(inputs["x256"][:1]),
        "eps": inputs["agile_eps"].float(),
        **{k: io[k] for k in ("z", "mu", "logvar", "z_f64", "mu_f64", "logvar_f64", "kl", "kl_f64")},
    },
    out / "agile_vae.pt",
)

layouts = json.loads((src / "keys_official.json").read_text())
keep = {
    "layout": {k: layouts["layouts"]["agile_VAEStyleEncoder"][k] for k in ("class", "n_keys", "n_parameters", "keys")},
    "checkpoint": layouts["checkpoints"]["agilegan encoder.pt"],
}
with gzip.open(out / "agile_official_layout.json.gz", "wt", encoding="utf-8", compresslevel=9) as f:
    json.dump(keep, f, separators=(",", ":"), sort_keys=True)
