"""inv_vae.exemplars: the demo's fmnist-edges exemplars are sg2-core's edge drawings of Fashion-MNIST images."""

import numpy as np
import pytest
from PIL import Image

from inv_vae import exemplars
from sg2_core.methods.conditions import edge_drawing


def test_fmnist_edges_are_the_edges_conditions_drawings(tmp_path):
    from sg2_core.datasets import open_dataset

    try:
        data = open_dataset("fmnist-train", pad_to=32)
    except (FileNotFoundError, ValueError) as error:
        pytest.skip(f"Fashion-MNIST is not installed here: {error}")
    folder = exemplars.fmnist_edges(tmp_path / "edges", n=2)
    for i in range(2):
        saved = np.asarray(Image.open(folder / f"{i:04d}.png"))
        assert np.array_equal(saved, edge_drawing(data[i][0][0].numpy()))


def test_edge_drawing_is_a_deprecated_name_of_sg2_cores():
    with pytest.warns(DeprecationWarning, match=r"sg2_core\.methods\.conditions\.edge_drawing"):
        assert exemplars.edge_drawing is edge_drawing
