"""FID and KID from features, torch-fidelity's formulas, and a per-dataset cache of reference features.

FID: ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) with torch-fidelity's eigenvalue route.
KID: unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3 over random subsets drawn with
``numpy.random.RandomState(seed)`` exactly as torch-fidelity draws them; mean and std (ddof 0).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch


def _as_features(a, what: str) -> torch.Tensor:
    a = torch.as_tensor(np.asarray(a)) if not isinstance(a, torch.Tensor) else a.detach().cpu()
    if a.ndim != 2:
        raise ValueError(f"{what} must be [N, D] features, got shape {tuple(a.shape)}")
    if len(a) < 2:
        raise ValueError(f"{what} needs at least 2 samples, got {len(a)}")
    if not torch.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or inf")
    return a if a.is_floating_point() else a.double()


def _check_pair(a, b):
    a, b = _as_features(a, "a"), _as_features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    if a.dtype != b.dtype:
        a, b = a.double(), b.double()
    return a, b


def fid_from_features(a, b) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets [N1, D] and [N2, D]."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = _check_pair(a, b)
    stats = fid_features_to_statistics(a), fid_features_to_statistics(b)
    return fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]


def kid_from_features(a, b, subsets: int = 100, subset_size: int = 1000, seed: int = 2020) -> tuple[float, float]:
    """KID (mean, std) over ``subsets`` random subsets of ``subset_size`` per set.

    torch-fidelity refuses a subset larger than a set; here ``subset_size`` is clamped to the smaller set
    size with a warning (so small test sets still give a number; report the size used).
    """
    from torch_fidelity.metric_kid import kid_features_to_metric

    a, b = _check_pair(a, b)
    smallest = min(len(a), len(b))
    if subset_size > smallest:
        warnings.warn(
            f"KID subset size {subset_size} is larger than the smaller feature set ({smallest}); using {smallest}",
            stacklevel=2,
        )
        subset_size = smallest
    out = kid_features_to_metric(a, b, kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed, verbose=False)
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


# ------------------------------------------------------------------------------------------ feature cache


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "inv_metrics"


def dataset_fingerprint(files) -> str:
    """sha256 over the files' names and contents (in sorted order): the identity of a reference dataset."""
    h = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        h.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def cached_features(fingerprint: str, extractor, compute, cache_dir=None) -> np.ndarray:
    """Features of a dataset: loaded from ``{cache_dir}/{name}-{key}.npz`` or computed with ``compute()`` and
    stored (with their mean and covariance). The key hashes the dataset fingerprint, the extractor's name and
    its weights, so a different network or weight file never reuses another's cache."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    ident = f"{fingerprint}|{extractor.name}|{getattr(extractor, 'weights_id', '')}"
    path = cache_dir / f"{extractor.name}-{hashlib.sha256(ident.encode()).hexdigest()[:20]}.npz"
    if path.is_file():
        with np.load(path) as data:
            if str(data["ident"]) == ident:
                return data["features"]
    features = np.asarray(compute())
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, features=features, mu=features.mean(0), sigma=np.cov(features, rowvar=False), ident=ident)
    os.replace(tmp, path)
    return features
