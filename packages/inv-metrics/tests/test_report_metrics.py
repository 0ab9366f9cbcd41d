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
    with pytest.warns(UserWarning):
        kid = im.kid_from_features(feats(y), feats(x))[0]
    assert values["kid_fmnist"] == pytest.approx(kid, rel=1e-6)
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
    class WithDemo:
        demo_options = {"steps": 3, "inner": {"a": 1}}

    try:
        opts, problems = resolve_options(["test-demo-opts", "missing"], ["test-demo-opts:inner.b=2",
                                                                         "other:steps=1"], True)
        assert opts == {"test-demo-opts": {"steps": 3, "inner": {"a": 1, "b": 2}}, "missing": {}}
        assert WithDemo.demo_options == {"steps": 3, "inner": {"a": 1}}  # copied, not changed
        assert "'other' is not among the methods run" in problems[0]
        assert resolve_options(["test-demo-opts"], [], False)[0] == {"test-demo-opts": {}}
    finally:
        sg2_core.registry.unregister_method("test-demo-opts")
