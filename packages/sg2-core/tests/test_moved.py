"""sg2_core.moved.renamed: a module's deprecated names hand out the new object with a warning naming it."""

import types
import warnings

import pytest

from sg2_core.moved import renamed


def test_renamed_names_warn_and_others_are_attribute_errors():
    module = types.ModuleType("pkg.old")
    module.__getattr__ = renamed("pkg.old", {"join": "os.path.join"}, removed_in="pkg 9")
    import os.path

    with pytest.warns(DeprecationWarning, match=r"pkg\.old\.join moved to os\.path\.join; .* goes away in pkg 9"):
        assert module.join is os.path.join
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not hasattr(module, "split")  # an AttributeError, no warning
    with pytest.raises(AttributeError, match="module 'pkg.old' has no attribute 'split'"):
        module.split  # noqa: B018
