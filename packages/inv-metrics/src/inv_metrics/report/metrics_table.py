"""Which metrics a report can compute for its images, each labelled with its network, and their values.

A metric that cannot be computed here (too small for MS-SSIM, no LPIPS trunk file, no Inception weights,
features made for another domain) is not a column: it gets a note saying why.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import MissingWeightsError
from ..pixel import MS_SSIM_MIN_SIZE, ms_ssim, mse, psnr, ssim


@dataclass
class Metric:
    """``per_image``: ``fn(x, y) -> [N]``, averaged; otherwise ``fn(x, y) -> float`` on the whole set."""

    key: str
    label: str
    network: str
    fn: Callable
    per_image: bool = True
    higher_is_better: bool = False


def _is_demo_domain(channels: int, resolution: int) -> bool:
    return channels == 1 and resolution == 32


def _set_metrics(features, tag: str) -> list[Metric]:
    from ..fid_kid import fid_from_features, kid_from_features

    def fid(x, y):
        return fid_from_features(features(x), features(y))

    def kid(x, y):
        with warnings.catch_warnings():  # small sets: the subset size is clamped to the set (said in the label)
            warnings.simplefilter("ignore", UserWarning)
            return kid_from_features(features(x), features(y), subset_size=1000)[0]

    return [Metric(f"fid_{tag}", f"FID ({features.name})", features.name, fid, per_image=False),
            Metric(f"kid_{tag}", f"KID ({features.name})", features.name, kid, per_image=False)]


def build_metrics(channels: int, resolution: int, *, lpips_weights=None, inception_weights=None,
                  device=None) -> tuple[list[Metric], dict[str, str]]:
    """The metrics for images ``[N, channels, resolution, resolution]`` and notes on the absent ones."""
    from ..distances import load_distance
    from ..features import load_features

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
    demo = _is_demo_domain(channels, resolution)
    if demo:
        fmnist = load_distance("fmnist", device=device)
        metrics.append(Metric("lpips_fmnist", "LPIPS-like (fmnist-features)", fmnist.name, fmnist))
        metrics += _set_metrics(load_features("fmnist", device=device), "fmnist")
    else:
        notes["fmnist-features"] = (f"LPIPS-like, FID and KID on fmnist-features need 1x32x32 images "
                                    f"(Fashion-MNIST domain); these are {channels}x{resolution}x{resolution}")
    try:
        metrics += _set_metrics(load_features("inception", weights=inception_weights, device=device), "inception")
    except MissingWeightsError as error:
        notes["FID/KID (inception)"] = f"absent: no Inception weights ({error}); pass --inception-weights"
    return metrics, notes


def kid_note(num_images: int) -> str:
    return f"100 subsets of min(1000, N) = {min(1000, num_images)} images; FID/KID compare reconstructions " \
           "with their inputs"


@torch.no_grad()
def compute_metrics(metrics: list[Metric], inputs: torch.Tensor, outputs: torch.Tensor,
                    batch_size: int) -> tuple[dict[str, float], dict[str, str]]:
    """``(values by key, errors by key)``: per-image metrics averaged over every image, set metrics once."""
    values, errors = {}, {}
    for metric in metrics:
        try:
            if metric.per_image:
                parts = [metric.fn(y.to(x.device), x) for x, y in zip(inputs.split(batch_size),
                                                                        outputs.split(batch_size))]
                value = float(torch.cat([p.detach().flatten().cpu().double() for p in parts]).mean())
            else:
                value = float(metric.fn(outputs, inputs))
            values[metric.key] = value if math.isfinite(value) else float("nan")
        except Exception as error:  # noqa: BLE001 - one failing metric must not hide the others
            errors[metric.key] = f"{type(error).__name__}: {error}"
    return values, errors
