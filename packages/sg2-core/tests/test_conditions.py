"""sg2_core.methods.conditions: the inputs of image-to-image methods, made the same way by trainers, the report and users."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter, ImageOps

from sg2_core.images import to_uint8
from sg2_core.methods.conditions import apply_condition, edge_drawing


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 2, 16, 16, generator=g) * 2 - 1


def test_edges_are_pillows_edge_drawing_of_every_channel(images):
    drawn = apply_condition("edges", images)
    assert drawn.shape == images.shape and drawn.dtype == images.dtype
    u8 = to_uint8(images).numpy()
    for n in range(3):
        for c in range(2):
            want = np.asarray(ImageOps.autocontrast(Image.fromarray(u8[n, c]).filter(ImageFilter.FIND_EDGES)))
            got = to_uint8(drawn[n, c]).numpy()
            assert np.array_equal(got, want)
            assert np.array_equal(edge_drawing(u8[n, c]), want)  # the one drawing (AgileGAN's exemplars too)


def test_edges_of_a_flat_image_are_black_inside():
    flat = torch.full((1, 1, 8, 8), 0.3)
    drawn = apply_condition("edges", flat)
    assert (drawn[..., 1:-1, 1:-1] == -1).all()
    assert (drawn[..., 0, :] == 1).all()  # Pillow leaves the 1-pixel border unfiltered (then autocontrast)
    assert (apply_condition("edges", torch.full((1, 1, 8, 8), -1.0)) == -1).all()  # the demo's black padding


def test_lowres_is_the_4x4_block_mean_at_full_size(images):
    low = apply_condition("lowres", images)
    assert low.shape == images.shape
    block = images[:, :, 4:8, 8:12].mean(dim=(2, 3))
    assert torch.allclose(low[:, :, 5, 9], block, atol=1e-6)
    assert torch.allclose(low[:, :, 4:8, 8:12], block[..., None, None].expand(-1, -1, 4, 4), atol=1e-6)


def test_bad_input_is_named(images):
    with pytest.raises(ValueError, match=r"unknown input condition 'sketch'; known: \['edges', 'lowres'\]"):
        apply_condition("sketch", images)
    with pytest.raises(
        ValueError, match=r"needs float images \[N, C, H, W\] in \[-1, 1\], got torch.float32 \[2, 16, 16\]"
    ):
        apply_condition("edges", images[0])
    with pytest.raises(ValueError, match="lowres needs a size divisible by 4, got 10x10"):
        apply_condition("lowres", images[:, :, :10, :10])
