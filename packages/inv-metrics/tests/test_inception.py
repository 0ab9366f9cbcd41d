"""Inception features and torch-fidelity end to end, with the fixture's formula weights (no real weights)."""

import pytest
import torch

from inv_metrics import MissingWeightsError, fid_from_features, kid_from_features, load_features
from inv_metrics.images import to_float


@pytest.fixture(scope="module")
def small(data_dir):
    return torch.load(data_dir / "inception_small.pt", weights_only=True)


def test_hash_weights_match_the_recipe_checks(small, inception_hash_weights):
    weights = torch.load(inception_hash_weights, weights_only=True)
    for key, first5 in small["weights_first5"].items():
        torch.testing.assert_close(weights[key].flatten()[:5], first5.float(), rtol=0, atol=0)
    for key, total in small["weights_checksum"].items():
        assert weights[key].double().sum().item() == pytest.approx(total, rel=1e-6)


def test_inception_features_match_torch_fidelity(small, inception_hash_weights):
    net = load_features("inception", weights=inception_hash_weights)
    assert net.name == "inception"
    got = net(to_float(small["imgs128_u8"]))  # [-1, 1] float -> uint8 round trip is exact
    torch.testing.assert_close(got, small["tfid_128_2048"], atol=2e-5, rtol=1e-4)


def test_missing_inception_weights_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="weights-inception-2015-12-05-6726825d.pth") as err:
        load_features("inception")
    assert str(tmp_path / "hub" / "checkpoints") in str(err.value)


@pytest.mark.slow
def test_end_to_end_equals_calculate_metrics(data_dir, inception_hash_weights, tmp_path):
    e2e = torch.load(data_dir / "tfid_e2e.pt", weights_only=True)
    net = load_features("inception", weights=inception_hash_weights)
    fa = net(to_float(e2e["imgsA_u8"]))
    fb = net(to_float(e2e["imgsB_u8"]))
    expected = e2e["calculate_metrics_2048"]
    assert fid_from_features(fa, fb) == pytest.approx(expected["frechet_inception_distance"], rel=1e-4)
    mean, std = kid_from_features(fa, fb, subset_size=12)
    assert mean == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-4)
    assert std == pytest.approx(expected["kernel_inception_distance_std"], rel=1e-3)
