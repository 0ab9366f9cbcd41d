"""Implementation choice, availability report and the one-time CUDA fallback warning."""

import subprocess
import sys
import warnings

import pytest
import torch

from sg2_kernels import _backend, available_impls, use_impl


def test_reference_is_always_available():
    report = available_impls()
    assert set(report) == {"ref", "cpp", "cuda"}
    assert report["ref"] is None
    for impl, reason in report.items():
        assert reason is None or isinstance(reason, str) and reason


def test_cli_lists_every_impl_with_a_reason():
    out = subprocess.run([sys.executable, "-m", "sg2_kernels"], capture_output=True, text=True, check=True).stdout
    for impl, reason in available_impls().items():
        line = next(row for row in out.splitlines() if row.strip().startswith(impl))
        assert ("available" if reason is None else reason) in line


def test_auto_choice_on_cpu():
    expected = "cpp" if available_impls()["cpp"] is None else "ref"
    assert _backend.choose_impl(None, torch.device("cpu"), "op") == expected


def test_cuda_fallback_warns_once(monkeypatch):
    monkeypatch.setattr(_backend, "_load", lambda impl: (None, "pretend it was not built"))
    monkeypatch.setattr(_backend, "_warned_cuda_fallback", False)
    with pytest.warns(RuntimeWarning, match="pretend it was not built.*To get the fast path"):
        assert _backend.choose_impl(None, torch.device("cuda"), "upfirdn2d") == "ref"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _backend.choose_impl(None, torch.device("cuda"), "upfirdn2d") == "ref"


def test_missing_compiled_impl_says_why(monkeypatch):
    monkeypatch.setattr(_backend, "_load", lambda impl: (None, "not built at install time: SG2_KERNELS_BUILD=none"))
    with pytest.raises(RuntimeError, match="impl='cpp' is unavailable: not built.*SG2_KERNELS_BUILD=none"):
        _backend.choose_impl("cpp", torch.device("cpu"), "upfirdn2d")


def test_use_impl_sets_the_default_for_calls_without_impl():
    cpu = torch.device("cpu")
    automatic = _backend.choose_impl(None, cpu, "op")
    with use_impl("ref"):
        assert _backend.choose_impl(None, cpu, "op") == "ref"
        with pytest.raises(ValueError, match="impl='cuda' runs on cuda tensors"):
            _backend.choose_impl("cuda", cpu, "op")  # an explicit choice still wins, and is checked
    assert _backend.choose_impl(None, cpu, "op") == automatic
    with pytest.raises(ValueError, match="impl must be one of"):
        with use_impl("fast"):
            pass
