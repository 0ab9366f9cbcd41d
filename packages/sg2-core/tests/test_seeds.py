"""sg2_core.methods.seeds: the per-image seed rule every method with randomness keeps (and sg2_core.invert)."""

import numpy as np
import pytest
import torch

from sg2_core.methods.seeds import per_image_seeds


def test_an_int_gives_image_i_seed_plus_i():
    assert per_image_seeds(7, 3) == [7, 8, 9]
    assert per_image_seeds(np.int64(7), 2) == [7, 8]
    assert per_image_seeds(torch.tensor(7), 2) == [7, 8]
    assert per_image_seeds(0, 0) == []


def test_one_seed_per_image_is_taken_as_given():
    assert per_image_seeds([5, 1, 9], 3) == [5, 1, 9]
    assert per_image_seeds((np.int32(2), 3), 2) == [2, 3]
    assert all(type(s) is int for s in per_image_seeds(np.arange(3), 3))


@pytest.mark.parametrize(
    "seed, match",
    [
        ([1, 2], r"one seed per image \(3\), got 2"),
        (True, "one seed per image"),
        (1.0, "one seed per image"),
        ([1, 2.5, 3], "one seed per image"),
        ([1, True, 3], "one seed per image"),
        ("123", "one seed per image"),
        (None, "one seed per image"),
    ],
)
def test_anything_else_is_one_clear_error(seed, match):
    with pytest.raises(ValueError, match=match):
        per_image_seeds(seed, 3)


def test_the_error_names_the_option():
    with pytest.raises(ValueError, match="^pivot_seed must be"):
        per_image_seeds([1], 3, option="pivot_seed")
