"""FID / KID against the fixture values (torch-fidelity 0.4.0 on fixed features) and the feature cache."""

import math

import numpy as np
import pytest
import torch

from inv_metrics import fid_from_features, kid_from_features
from inv_metrics.fid_kid import cached_features, dataset_fingerprint


@pytest.fixture(scope="module")
def feats(data_dir):
    return torch.load(data_dir / "fid_kid_feats.pt", weights_only=True)


def test_fid_matches_fixture_and_is_symmetric(feats):
    assert fid_from_features(feats["feats_X"], feats["feats_Y"]) == pytest.approx(feats["fid_xy"], rel=1e-9)
    assert fid_from_features(feats["feats_Y"], feats["feats_X"]) == pytest.approx(feats["fid_xy"], rel=1e-9)
    assert abs(fid_from_features(feats["feats_X"], feats["feats_X"])) < 1e-9


def test_fid_rank_deficient(feats):
    value = fid_from_features(feats["feats_Xs"], feats["feats_Ys"])
    assert value == pytest.approx(feats["fid_rank_deficient"], rel=1e-6)


def test_fid_accepts_numpy(feats):
    value = fid_from_features(feats["feats_X"].numpy(), feats["feats_Y"].numpy())
    assert value == pytest.approx(feats["fid_xy"], rel=1e-9)


def test_kid_matches_torch_fidelity_sampling(feats):
    for size, key in ((100, "kid100"), (500, "kid500")):
        mean, std = kid_from_features(feats["feats_X"], feats["feats_Y"], subsets=100, subset_size=size, seed=2020)
        assert mean == pytest.approx(feats[key]["kernel_inception_distance_mean"], rel=1e-10)
        assert std == pytest.approx(feats[key]["kernel_inception_distance_std"], rel=1e-10)


def test_kid_clamps_subset_size_with_a_warning(feats):
    with pytest.warns(UserWarning, match="larger than the smaller feature set"):
        clamped = kid_from_features(feats["feats_X"], feats["feats_Y"], subsets=100, subset_size=1000)
    # clamping to 500 = the explicit subset size 500
    assert clamped[0] == pytest.approx(feats["kid500"]["kernel_inception_distance_mean"], rel=1e-10)


def test_bad_features_are_refused():
    with pytest.raises(ValueError, match="feature sizes differ"):
        fid_from_features(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        fid_from_features(torch.zeros(5), torch.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        kid_from_features(torch.full((5, 3), math.nan), torch.zeros(5, 3), subset_size=5)


def test_feature_cache_reuses_by_dataset_and_network(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"one")
    fingerprint = dataset_fingerprint([tmp_path / "a.bin"])
    calls = []

    class Net:
        name, weights_id = "toy", "w1"

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(3, 2)

    first = cached_features(fingerprint, Net(), compute, cache_dir=tmp_path / "cache")
    second = cached_features(fingerprint, Net(), compute, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 1
    Net.weights_id = "w2"  # other weights: computed again, never the other network's features
    cached_features(fingerprint, Net(), compute, cache_dir=tmp_path / "cache")
    assert len(calls) == 2
    (tmp_path / "a.bin").write_bytes(b"two")
    assert dataset_fingerprint([tmp_path / "a.bin"]) != fingerprint
