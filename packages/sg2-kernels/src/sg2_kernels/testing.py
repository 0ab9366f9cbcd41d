"""Comparison helpers for tests against the reference fixtures (used by several packages)."""

import torch


def max_rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``max|actual - expected| / max|expected|``: the measure the fixtures' tolerances use."""
    actual = actual.detach().to("cpu", torch.float64)
    expected = expected.detach().to("cpu", torch.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {list(actual.shape)} != expected {list(expected.shape)}")
    return ((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30)).item()


def assert_close_rel(actual: torch.Tensor, expected: torch.Tensor, rel: float, what: str = "") -> None:
    """Fail when the max-norm relative error exceeds ``rel``; the message names ``what``."""
    err = max_rel_error(actual, expected)
    assert err <= rel, f"{what}: relative error {err:.3g} > {rel:g}"
