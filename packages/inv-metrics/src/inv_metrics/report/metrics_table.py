"""Which metrics a report can compute for its images, each labelled with its network, and their values.

A metric that cannot be computed here (too small for MS-SSIM, no LPIPS trunk file, no Inception weights,
features made for another domain, too few images for KID) is not a column: it gets a note saying why.

Values are accumulated batch by batch (:class:`MetricAccumulator`): per-image metrics as running sums,
FID/KID as feature rows ([N, D], a few KB per image), so no method's reconstructions are ever held all at
once and the report scales to thousands of large images.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import MissingWeightsError
from ..pixel import MS_SSIM_MIN_SIZE, ms_ssim, mse, psnr, ssim

# KID below this many images is left out: its subsets (half the set, at most 1000) would hold fewer than
# 50 images, where the unbiased estimate is mostly noise (about +-0.1 on 32 demo images, i.e. it says nothing).
KID_MIN_IMAGES = 100
KID_SUBSETS = 100


@dataclass
class Metric:
    """``per_image``: ``fn(x, y) -> [N]``, averaged over every image. Otherwise a set metric over the
    ``features`` of all reconstructions and all inputs: ``fn(features_x, features_y) -> (value, std or None)``."""

    key: str
    label: str
    network: str
    fn: Callable
    per_image: bool = True
    higher_is_better: bool = False
    features: Callable | None = None
    std: bool = False  # the value comes with a std (its column shows "mean ± std")


def _is_demo_domain(channels: int, resolution: int) -> bool:
    return channels == 1 and resolution == 32


def kid_subset_size(num_images: int) -> int:
    """Half the set (so the 100 subsets differ and their std means something), at most torch-fidelity's 1000."""
    return min(1000, num_images // 2)


def _set_metrics(features, tag: str, num_images: int) -> list[Metric]:
    from ..fid_kid import fid_from_features, kid_from_features

    def fid(a, b):
        return fid_from_features(a, b), None

    def kid(a, b):
        return kid_from_features(a, b, subsets=KID_SUBSETS, subset_size=kid_subset_size(len(a)))

    metrics = [Metric(f"fid_{tag}", f"FID ({features.name})", features.name, fid, per_image=False, features=features)]
    if num_images >= KID_MIN_IMAGES:
        metrics.append(
            Metric(
                f"kid_{tag}", f"KID ({features.name})", features.name, kid, per_image=False, features=features, std=True
            )
        )
    return metrics


def build_metrics(
    channels: int,
    resolution: int,
    *,
    lpips_weights=None,
    inception_weights=None,
    device=None,
    num_images: int | None = None,
) -> tuple[list[Metric], dict[str, str]]:
    """The metrics for ``num_images`` images ``[N, channels, resolution, resolution]`` and notes on the absent
    ones (``num_images=None``: as many as every metric needs)."""
    from ..distances import load_distance
    from ..features import load_features

    n = KID_MIN_IMAGES if num_images is None else num_images
    metrics = [
        Metric("mse", "MSE (L2 on [-1,1])", "pixels", mse),
        Metric("psnr", "PSNR (dB)", "pixels", psnr, higher_is_better=True),
        Metric("ssim", "SSIM", "pixels", ssim, higher_is_better=True),
    ]
    notes: dict[str, str] = {}
    if resolution >= MS_SSIM_MIN_SIZE:
        metrics.append(Metric("ms_ssim", "MS-SSIM", "pixels", ms_ssim, higher_is_better=True))
    else:
        notes["MS-SSIM"] = f"MS-SSIM needs > 160 px (images are {resolution} px)"
    try:
        lpips = load_distance("lpips-alex", weights=lpips_weights, device=device)
        metrics.append(Metric("lpips_alex", "LPIPS (lpips-alex)", lpips.name, lpips))
    except MissingWeightsError as error:
        notes["LPIPS (lpips-alex)"] = f"absent: no AlexNet trunk weights ({error}); pass --lpips-weights"
    feature_nets = []
    if _is_demo_domain(channels, resolution):
        fmnist = load_distance("fmnist", device=device)
        metrics.append(Metric("lpips_fmnist", "LPIPS-like (fmnist-features)", fmnist.name, fmnist))
        feature_nets.append((load_features("fmnist", device=device), "fmnist"))
    else:
        notes["fmnist-features"] = (
            f"LPIPS-like, FID and KID on fmnist-features need 1x32x32 images "
            f"(Fashion-MNIST domain); these are {channels}x{resolution}x{resolution}"
        )
    try:
        feature_nets.append((load_features("inception", weights=inception_weights, device=device), "inception"))
    except MissingWeightsError as error:
        notes["FID/KID (inception)"] = f"absent: no Inception weights ({error}); pass --inception-weights"
    for features, tag in feature_nets:
        metrics += _set_metrics(features, tag, n)
    if feature_nets:
        notes.update(set_metric_notes(n, {f.name: feature_dim(f) for f, _ in feature_nets}))
    return metrics, notes


def feature_dim(features) -> int | None:
    for attr in ("dim", "feature_dim", "out_features"):
        if isinstance(getattr(features, attr, None), int):
            return getattr(features, attr)
    return {"fmnist-features": 128, "inception": 2048}.get(getattr(features, "name", ""))


def set_metric_notes(num_images: int, dims: dict[str, int | None]) -> dict[str, str]:
    """What FID and KID mean at this sample size (the notes under the table)."""
    notes = {}
    if num_images >= KID_MIN_IMAGES:
        notes["KID"] = (
            f"mean ± std over {KID_SUBSETS} subsets of {kid_subset_size(num_images)} images per set "
            "(reconstructions vs their inputs). KID is an unbiased estimate of MMD², so it can fall "
            "below 0 when the two sets are as close as its noise: a value within ± std of 0 means "
            "no measurable difference"
        )
    else:
        notes["KID"] = (
            f"left out: {num_images} images are fewer than the {KID_MIN_IMAGES} it needs here (subsets "
            f"of at most half the set); on so few its unbiased estimate is mostly noise and can be "
            "negative. Use --num-images >= "
            f"{KID_MIN_IMAGES} for a KID column"
        )
    small = {name: d for name, d in dims.items() if d and num_images < d}
    if small:
        names = ", ".join(f"{name} ({d} dims)" for name, d in small.items())
        notes["FID"] = (
            f"on {num_images} images, fewer than the feature dimensions of {names}: the covariance "
            "estimates are rank-deficient and FID is biased upward by the small sample (it falls as "
            "N grows); compare rows of this report (same images) with each other, not with FIDs "
            "published on 10k-50k images"
        )
    return notes


class MetricAccumulator:
    """Per-image sums and set-metric features over batches of (inputs, reconstructions).

    ``input_features``: ``{metric key: [N, D] features of all inputs}`` (computed once, shared by methods).
    """

    def __init__(self, metrics: list[Metric], input_features: dict[str, torch.Tensor] | None = None):
        self.metrics, self.input_features = metrics, input_features or {}
        self.sums = {m.key: 0.0 for m in metrics if m.per_image}
        self.count = 0
        self.features: dict[int, list[torch.Tensor]] = {}  # id(extractor) -> reconstruction features
        self.errors: dict[str, str] = {}

    @torch.no_grad()
    def add(self, inputs: torch.Tensor, outputs: torch.Tensor) -> None:
        outputs = outputs.to(inputs.device)
        extractors = {}
        for metric in self.metrics:
            if metric.key in self.errors:
                continue
            if not metric.per_image:
                extractors.setdefault(id(metric.features), (metric.features, []))[1].append(metric.key)
                continue
            try:
                self.sums[metric.key] += float(metric.fn(outputs, inputs).detach().double().sum())
            except Exception as error:  # noqa: BLE001 - one failing metric must not hide the others
                self.errors[metric.key] = f"{type(error).__name__}: {error}"
        for key, (extractor, keys) in extractors.items():
            try:
                self.features.setdefault(key, []).append(extractor(outputs).detach().cpu())
            except Exception as error:  # noqa: BLE001
                self.errors.update({k: f"{type(error).__name__}: {error}" for k in keys})
        self.count += len(inputs)

    def result(self) -> tuple[dict[str, float], dict[str, str]]:
        """``(values by key, errors by key)``; a metric with a std also gives ``<key>_std``."""
        values, errors = {}, dict(self.errors)
        for metric in self.metrics:
            if metric.key in errors:
                continue
            try:
                if metric.per_image:
                    value, std = self.sums[metric.key] / self.count, None
                else:
                    value, std = metric.fn(
                        torch.cat(self.features[id(metric.features)]), self.input_features[metric.key]
                    )
                values[metric.key] = float(value) if math.isfinite(value) else float("nan")
                if metric.std:
                    values[f"{metric.key}_std"] = float(std)
            except Exception as error:  # noqa: BLE001
                errors[metric.key] = f"{type(error).__name__}: {error}"
        return values, errors


@torch.no_grad()
def features_of(metrics: list[Metric], batches) -> dict[str, torch.Tensor]:
    """``{set-metric key: [N, D] features}`` of the images in ``batches`` (each extractor run once)."""
    extractors = {id(m.features): m.features for m in metrics if not m.per_image}
    parts: dict[int, list[torch.Tensor]] = {key: [] for key in extractors}
    for batch in batches:
        for key, extractor in extractors.items():
            parts[key].append(extractor(batch).detach().cpu())
    return {m.key: torch.cat(parts[id(m.features)]) for m in metrics if not m.per_image and parts[id(m.features)]}


def compute_metrics(
    metrics: list[Metric], inputs: torch.Tensor, outputs: torch.Tensor, batch_size: int
) -> tuple[dict[str, float], dict[str, str]]:
    """``(values by key, errors by key)`` of ``outputs`` against ``inputs``, fed batch by batch."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        accumulator = MetricAccumulator(metrics, features_of(metrics, inputs.split(batch_size)))
        for x, y in zip(inputs.split(batch_size), outputs.split(batch_size)):
            accumulator.add(x, y)
        return accumulator.result()
