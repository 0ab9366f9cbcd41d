"""Rebuild this folder's small test files from the project's shared fixtures (run once, by hand).

    python build_test_data.py /work/shared/fixtures

Each output keeps only the pieces the tests use; the expected values are those recorded in the fixtures.
"""

import json
import sys
from pathlib import Path

import torch

src = Path(sys.argv[1])
out = Path(__file__).resolve().parent
load = lambda p: torch.load(src / p, weights_only=True)  # noqa: E731

# LPIPS (metrics/lpips_alex.pt): 4 of the 8 pairs; the trunk is regenerated in the test from its seed.
d = load("metrics/lpips_alex.pt")
keep = [0, 2, 3, 7]  # identical, noise0.2, blur, independent
torch.save(
    {
        "x": d["x"][keep].clone(),
        "y": d["y"][keep].clone(),
        "kinds": [d["kinds"][i] for i in keep],
        "lpips": d["lpips"][keep].clone(),
        "lpips_per_layer": d["lpips_per_layer"][keep].clone(),
        "mse_pm1": d["mse_pm1"][keep].clone(),
        "trunk_sums": {k: v.double().sum().item() for k, v in d["trunk_fp16"].items()},
        "lin_v0_1": d["lin_v0_1"],
    },
    out / "lpips_alex_small.pt",
)

# SSIM / MS-SSIM / PSNR (metrics/ssim_psnr_images.pt + ssim_psnr.json, piq 0.6.0 values).
d, j = load("metrics/ssim_psnr_images.pt"), json.loads((src / "metrics/ssim_psnr.json").read_text())
ref = j["piq_0.6.0 (HyperInverter pin)"]
torch.save(
    {
        "x64_u8": d["x64_u8"],
        "y64_u8": d["y64_u8"],
        "x200x176_u8": d["x200x176_u8"],
        "y200x176_u8": d["y200x176_u8"],
        "psnr64": ref["64"]["psnr(data_range=1.0)"],
        "ssim64": ref["64"]["ssim(data_range=1.0, downsample=False)"],
        "psnr200": ref["200x176"]["psnr(data_range=1.0)"],
        "ssim200": ref["200x176"]["ssim(data_range=1.0, downsample=False)"],
        "ms_ssim200": ref["200x176"]["multi_scale_ssim(data_range=1.0)"],
    },
    out / "ssim_psnr_small.pt",
)

# FID / KID on fixed features (metrics/fid_kid_feats.pt + fid_kid.json).
d, j = load("metrics/fid_kid_feats.pt"), json.loads((src / "metrics/fid_kid.json").read_text())
kid = j["kid"]
torch.save(
    {
        **d,
        "fid_xy": j["fid"]["X_vs_Y"]["torch_fidelity_0.4.0.fid_statistics_to_metric"],
        "fid_rank_deficient": j["fid"]["Xs50_vs_Ys60_rank_deficient"]["torch_fidelity_0.4.0.fid_statistics_to_metric"],
        "kid100": kid["torch_fidelity(kid_subsets=100,kid_subset_size=100,rng_seed=2020,float64 feats)"],
        "kid500": kid["torch_fidelity(kid_subsets=100,kid_subset_size=500,rng_seed=2020,float64 feats)"],
    },
    out / "fid_kid_feats.pt",
)

# Inception with formula weights (metrics/inception_hashweights.pt) and end to end (metrics/tfid_e2e.pt).
d = load("metrics/inception_hashweights.pt")
torch.save(
    {
        "imgs128_u8": d["imgs128_u8"],
        "tfid_128_2048": d["tfid_128"]["2048"],
        "base_seed": d["weights_base_seed"],
        "weights_first5": d["weights_first5"],
        "weights_checksum": d["weights_checksum"],
    },
    out / "inception_small.pt",
)
d = load("metrics/tfid_e2e.pt")
torch.save({k: d[k] for k in ("imgsA_u8", "imgsB_u8", "calculate_metrics_2048", "settings")}, out / "tfid_e2e.pt")

# insightface ArcFace stand-in (metrics/id_arcface_tiny.pt).
d = load("metrics/id_arcface_tiny.pt")
torch.save(
    {k: d[k] for k in ("onnx_bytes", "aligned_bgr_u8", "embeddings", "pairs", "cosine_sims")},
    out / "id_arcface_tiny.pt",
)

# IR-SE50 ArcFace (encoders/arcface_*.pt, reduced widths): sample 0 of the ID-loss inputs.
w, io, inputs = load("encoders/arcface_weights.pt"), load("encoders/arcface_io.pt"), load("encoders/inputs.pt")
torch.save(
    {
        "state_dict": w["state_dict"],
        "config": w["config"],
        "x112": inputs["x112"],
        "x256_0": inputs["x256"][:1].clone(),
        "y256_0": inputs["y256"][:1].clone(),
        "emb_x112": io["emb_x112"],
        "emb_x256_preproc": io["emb_x256_preproc"],
        "preproc_x256_sample0": io["preproc_x256_sample0"],
        "cos_sample0": io["id_logs"][0]["diff_target"],
    },
    out / "arcface_ir_se50_small.pt",
)
