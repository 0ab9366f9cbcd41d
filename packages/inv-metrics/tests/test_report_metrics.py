"""The report's metric columns on the demo domain (1x32x32) and its options handling."""

import pytest
import torch

import inv_metrics as im
from inv_metrics.report.metrics_table import build_metrics, compute_metrics
from inv_metrics.report.options import merge_option, parse_option, resolve_options


def test_demo_domain_columns_and_values():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(12, 1, 32, 32, generator=gen) * 2 - 1
    y = (x + 0.3 * torch.randn(12, 1, 32, 32, generator=gen)).clamp(-1, 1)
    metrics, notes = build_metrics(1, 32)
    labels = {m.key: m.label for m in metrics}
    assert labels["lpips_fmnist"] == "LPIPS-like (fmnist-features)"
    assert labels["fid_fmnist"] == "FID (fmnist-features)" and labels["kid_fmnist"] == "KID (fmnist-features)"
    assert "ms_ssim" not in labels and "MS-SSIM needs > 160 px" in notes["MS-SSIM"]
    values, errors = compute_metrics(metrics, x, y, batch_size=5)  # batches of 5, 5, 2 average per image
    assert errors == {}
    feats = im.load_features("fmnist")
    assert values["fid_fmnist"] == pytest.approx(im.fid_from_features(feats(y), feats(x)), rel=1e-6)
    kid, kid_std = im.kid_from_features(feats(y), feats(x), subset_size=6)  # half of the 12 images
    assert values["kid_fmnist"] == pytest.approx(kid, rel=1e-6)
    assert values["kid_fmnist_std"] == pytest.approx(kid_std, rel=1e-6) and kid_std > 0
    assert values["lpips_fmnist"] == pytest.approx(im.load_distance("fmnist")(y, x).mean().item(), rel=1e-5)
    assert values["mse"] == pytest.approx((x - y).square().mean().item(), rel=1e-5)
    same, _ = compute_metrics(metrics, x, x, batch_size=12)
    assert same["mse"] == 0 and same["lpips_fmnist"] == pytest.approx(0, abs=1e-6)


def test_a_failing_metric_is_reported_not_raised():
    metrics, _ = build_metrics(1, 32)
    x = torch.zeros(1, 1, 32, 32)
    values, errors = compute_metrics(metrics, x, x, batch_size=1)  # FID needs >= 2 images
    assert "mse" in values and "at least 2 samples" in errors["fid_fmnist"]


def test_options_parsing_and_overrides():
    assert parse_option("pti:pivot_options.steps=50") == ("pti", ["pivot_options", "steps"], 50)
    assert parse_option("sg2-w:distance=fmnist") == ("sg2-w", ["distance"], "fmnist")
    with pytest.raises(ValueError, match="METHOD:KEY=VALUE"):
        parse_option("steps=3")
    options = {"pivot_options": {"steps": 100, "lr": 0.01}, "steps": 100}
    merge_option(options, ["pivot_options", "steps"], 7)
    assert options == {"pivot_options": {"steps": 7, "lr": 0.01}, "steps": 100}


def test_demo_options_come_from_the_factory():
    import sg2_core

    @sg2_core.register_method("test-demo-opts", replace=True)
    class WithDemo(sg2_core.Method):
        space = "w"
        demo_options = {"steps": 3, "inner": {"a": 1}}

    try:
        opts, problems = resolve_options(
            ["test-demo-opts", "missing"], ["test-demo-opts:inner.b=2", "other:steps=1"], True
        )
        assert opts == {"test-demo-opts": {"steps": 3, "inner": {"a": 1, "b": 2}}, "missing": {}}
        assert WithDemo.demo_options == {"steps": 3, "inner": {"a": 1}}  # copied, not changed
        assert "'other' is not among the methods run" in problems[0]
        assert resolve_options(["test-demo-opts"], [], False)[0] == {"test-demo-opts": {}}
    finally:
        sg2_core.methods.registry.unregister_method("test-demo-opts")


def test_kid_is_left_out_below_its_minimum_and_fid_on_few_images_says_so():
    from inv_metrics.report.metrics_table import KID_MIN_IMAGES

    few, few_notes = build_metrics(1, 32, num_images=32)
    assert "kid_fmnist" not in {m.key for m in few} and "fid_fmnist" in {m.key for m in few}
    assert few_notes["KID"].startswith(f"left out: 32 images are fewer than the {KID_MIN_IMAGES}")
    assert "fewer than the feature dimensions of fmnist-features (128 dims)" in few_notes["FID"]
    enough, notes = build_metrics(1, 32, num_images=200)
    assert {"kid_fmnist", "fid_fmnist"} <= {m.key for m in enough} and "FID" not in notes
    assert "mean ± std over 100 subsets of 100 images" in notes["KID"] and "below 0" in notes["KID"]


def test_kid_cell_shows_its_std():
    from inv_metrics.report.writers import table_cells

    report = {
        "columns": [{"key": "kid_x", "label": "KID (x)", "std_key": "kid_x_std"}],
        "rows": [
            {
                "method": "m",
                "metrics": {"kid_x": -1.5e-3, "kid_x_std": 2.0e-3},
                "seconds_per_image": 1.0,
                "images_per_second": 1.0,
                "error": None,
            }
        ],
    }
    assert table_cells(report)[1][0][1] == "-1.500e-03 ± 2.000e-03"
