"""sg2_core.devices.resolve_device: the one device check of every command (sg2_core.invert included)."""

import pytest
import torch

import sg2_core.invert
from sg2_core.devices import resolve_device
from sg2_core.errors import UsageError


def test_cpu_and_the_default():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("spec", ["nonsense", "cpu:x"])
def test_a_bad_name_is_a_usage_error_naming_the_option(spec):
    with pytest.raises(UsageError, match=f"^--gpu {spec!r} is not a device"):
        resolve_device(spec, option="--gpu")
    assert issubclass(UsageError, ValueError)


def test_a_missing_or_out_of_range_gpu_is_refused():
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(UsageError, match="--device cuda:"):
        resolve_device(f"cuda:{count}")  # one past the last GPU, or any GPU on a machine without one


def test_invert_uses_the_same_function_and_error():
    assert sg2_core.invert.resolve_device is resolve_device
    assert sg2_core.invert.UsageError is UsageError
