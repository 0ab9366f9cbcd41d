"""Rebuild this folder's test files from the shared encoder fixtures (run once, by hand):

    python build_test_data.py /work/shared/fixtures/encoders

Only what test_encoders*.py reads is kept (README.md lists it); the values are the fixtures', unchanged.
Weights keep their float16 values, stored as one flat tensor per network (a state dict of ~500 small
tensors costs ~15 KB more per file in torch's zip format); ``unpack`` in the tests rebuilds the state dict.
"""

import gzip
import json
import sys
from pathlib import Path

import torch

from sg2_core.testing.fixture_packs import pack_state

src = Path(sys.argv[1])
out = Path(__file__).resolve().parent
load = lambda name: torch.load(src / name, weights_only=True)  # noqa: E731


def pack(state_dict):
    return pack_state(state_dict, compress=False)


inputs = load("inputs.pt")
torch.save({"x256_0": inputs["x256"][:1].clone(), "x112": inputs["x112"].clone()}, out / "inputs.pt")

w, io, e4e = load("psp_fpn_weights.pt"), load("psp_fpn_io.pt"), load("e4e_io.pt")
maps = {f"{k}_sample0": io[f"{k}_sample0"] for k in ("c2", "c3", "p2")}
maps.update({f"{k}_sample0_ch0to3": io[f"{k}_sample0"][:4].clone() for k in ("c1", "p1")})
torch.save(
    {
        "weights": pack(w["state_dict"]),
        "config": w["config"],
        "class": w["class"],
        "commit": w["commit"],
        "codes_0": io["codes"][:1].clone(),
        "codes_f64_0": io["codes_f64"][:1].clone(),
        **maps,
        **{f"e4e_{k}_0": v[:1].clone() for k, v in e4e.items() if k.startswith("w_stage")},
        "e4e_commit": e4e["commit"],
    },
    out / "psp_fpn.pt",
)

w, io = load("w_encoder_weights.pt"), load("w_encoder_io.pt")
torch.save(
    {
        "weights": pack(w["state_dict"]),
        "class": w["class"],
        "commit": w["commit"],
        "w_0": io["w"][:1].clone(),
        "w_f64_0": io["w_f64"][:1].clone(),
    },
    out / "w_encoder.pt",
)

w, io = load("arcface_weights.pt"), load("arcface_io.pt")
torch.save(
    {
        "weights": pack(w["state_dict"]),
        "class": w["class"],
        "commit": w["commit"],
        "emb_x112": io["emb_x112"],
        "emb_x112_f64": io["emb_x112_f64"],
    },
    out / "arcface.pt",
)

layouts = json.loads((src / "keys_official.json").read_text())["layouts"]
names = [
    "psp_GradualStyleEncoder",
    "psp_BackboneEncoderUsingLastLayerIntoW",
    "restyle_BackboneEncoder_6ch",
    "hyper_LayerWiseEncoder",
    "agile_VAEStyleEncoder",
    "arcface_Backbone_ir_se50_112",
]
keep = {n: {k: layouts[n][k] for k in ("class", "n_keys", "n_parameters", "keys")} for n in names}
with gzip.open(out / "layouts_official.json.gz", "wt", encoding="utf-8", compresslevel=9) as f:
    json.dump(keep, f, separators=(",", ":"), sort_keys=True)
