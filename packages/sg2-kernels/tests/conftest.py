"""Every test that takes ``impl_device`` runs once per implementation and device.

An implementation that is not available here is skipped, unless ``SG2_KERNELS_REQUIRE`` names it
(CI sets ``SG2_KERNELS_REQUIRE=cpp`` so a broken C++ build fails instead of skipping).
"""

import os
from pathlib import Path

import pytest
import torch

from sg2_kernels._backend import unavailable_reason

DATA = Path(__file__).parent / "data"
REQUIRED = {name for name in os.environ.get("SG2_KERNELS_REQUIRE", "").split(",") if name}


def _impl_device(impl: str, device: str) -> tuple[str, torch.device]:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    reason = unavailable_reason(impl)
    if reason is not None:
        if impl in REQUIRED:
            pytest.fail(f"impl={impl!r} is required by SG2_KERNELS_REQUIRE but unavailable: {reason}")
        pytest.skip(f"impl={impl!r} unavailable: {reason}")
    return impl, torch.device(device)


@pytest.fixture(params=[("ref", "cpu"), ("cpp", "cpu"), ("ref", "cuda"), ("cuda", "cuda")], ids="-".join)
def impl_device(request):
    return _impl_device(*request.param)


@pytest.fixture(params=[("cpp", "cpu"), ("cuda", "cuda")], ids="-".join)
def compiled_impl_device(request):
    """The compiled implementations only, to compare against the reference on the same device."""
    return _impl_device(*request.param)


@pytest.fixture(scope="session")
def ops_fixture():
    return torch.load(DATA / "ops.pt", weights_only=True)
