"""Support for the packages' tests: the method conformance check and the float16 fixture packs."""

from sg2_core.testing.conformance import check_method

__all__ = ["check_method"]
