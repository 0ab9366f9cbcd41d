"""Rebuild this folder's test files from the shared encoder fixtures (run once, by hand):

    python build_test_data.py /work/shared/fixtures/encoders

Weights keep their float16 values, stored as one lzma-compressed flat buffer per network (keys and shapes
alongside); ``sg2_core.testing.fixture_packs.unpack_state`` rebuilds the state dicts. Inputs keep sample 0 only; outputs keep both
samples' codes only where the inputs are kept, so only sample 0.
"""

import gzip
import json
import sys
from pathlib import Path

import torch

from sg2_core.testing.fixture_packs import pack_state, squeeze

src = Path(sys.argv[1])
out = Path(__file__).resolve().parent
load = lambda name: torch.load(src / name, weights_only=True)  # noqa: E731


pack = pack_state


first = lambda io, names: {k: io[k][:1].clone() for k in names}  # noqa: E731

inputs = load("inputs.pt")
torch.save(
    {
        "x256_0_f16_lzma": squeeze(inputs["x256"][:1]),
        "y256_0_f16_lzma": squeeze(inputs["y256"][:1]),
        "disc_codes": inputs["disc_codes"].clone(),
    },
    out / "inputs.pt",
)

w, io, e4e = load("psp_fpn_weights.pt"), load("psp_fpn_io.pt"), load("e4e_io.pt")
torch.save(
    {
        "weights": pack(w["state_dict"]),
        "class": w["class"],
        "commit": w["commit"],
        **first(io, ["codes", "codes_f64"]),
        **first(e4e, [k for k in e4e if k.startswith("w_stage")]),
        "e4e_commit": e4e["commit"],
    },
    out / "psp_fpn.pt",
)

w, io = load("restyle_weights.pt"), load("restyle_io.pt")
torch.save(
    {
        "weights": pack(w["state_dict"]),
        "class": w["class"],
        "commit": w["commit"],
        **first(
            io,
            [
                "codes",
                "codes_f64",
                "progressive_w_stage0",
                "progressive_w_stage0_f64",
                "progressive_w_stage18",
                "progressive_w_stage18_f64",
            ],
        ),
    },
    out / "restyle.pt",
)

w, io = load("e4e_disc_weights.pt"), load("e4e_disc_io.pt")
torch.save(
    {
        "state_dict": w["state_dict"],
        "class": w["class"],
        "commit": w["commit"],
        "logits": io["logits"],
        "logits_f64": io["logits_f64"],
    },
    out / "e4e_disc.pt",
)

layouts = json.loads((src / "keys_official.json").read_text())["layouts"]
names = [
    "psp_GradualStyleEncoder",
    "e4e_Encoder4Editing",
    "restyle_BackboneEncoder_6ch",
    "restyle_ProgressiveBackboneEncoder_6ch",
    "e4e_LatentCodesDiscriminator",
    "psp_BackboneEncoderUsingLastLayerIntoW",
]
keep = {n: {k: layouts[n][k] for k in ("class", "n_keys", "n_parameters", "keys")} for n in names}
with gzip.open(out / "layouts_official.json.gz", "wt", encoding="utf-8", compresslevel=9) as f:
    json.dump(keep, f, separators=(",", ":"), sort_keys=True)
