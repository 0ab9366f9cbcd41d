"""The shipped Fashion-MNIST feature network: file, accuracy, features, perceptual distance, IDX reader."""

import gzip
import struct
from importlib.resources import files

import numpy as np
import pytest
import torch

from inv_metrics import fid_from_features, load_distance, load_features
from inv_metrics.fmnist import WEIGHTS_FILE, load_fmnist, load_fmnist_net


@pytest.fixture(scope="module")
def demo_images():
    from sg2_core.demo import load_test_images

    return load_test_images()  # 256 held-out Fashion-MNIST test images in [-1, 1], with labels


def test_shipped_file_is_small_safetensors():
    path = files("inv_metrics").joinpath("assets", WEIGHTS_FILE)
    assert path.is_file() and path.stat().st_size < 2_000_000


def test_classifier_accuracy_on_held_out_images(demo_images):
    images, labels = demo_images
    net = load_fmnist_net()
    accuracy = (net(images).argmax(1) == labels.long()).float().mean().item()
    assert accuracy > 0.85


def test_features_are_labelled_and_separate_classes(demo_images):
    images, labels = demo_images
    features = load_features("fmnist")
    assert features.name == "fmnist-features"
    f = features(images)
    assert f.shape == (256, 128)
    torch.testing.assert_close(features(images.expand(-1, 3, -1, -1)), f)  # RGB is averaged to grey
    labels = labels.long()
    shoes, tops = f[(labels == 5) | (labels == 7) | (labels == 9)], f[(labels == 0) | (labels == 2) | (labels == 6)]
    half = len(tops) // 2
    # two halves of one group are closer (FID) than two different groups
    assert fid_from_features(tops[:half], tops[half:]) < fid_from_features(tops, shoes)


def test_perceptual_distance_properties(demo_images):
    images, _ = demo_images
    x, y = images[:8], images[8:16]
    dist = load_distance("fmnist")
    assert dist.name == "fmnist-perceptual"
    assert torch.all(dist(x, x) == 0)
    torch.testing.assert_close(dist(x, y), dist(y, x))
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert torch.all(dist(x, noisy) < dist(x, y))
    xg = torch.full((2, 1, 32, 32), -1.0, requires_grad=True)  # an all-background image: zero features somewhere
    dist(xg, y[:2]).sum().backward()
    assert torch.isfinite(xg.grad).all()


def test_wrong_size_is_refused():
    with pytest.raises(ValueError, match="32x32.*28x28"):
        load_features("fmnist")(torch.zeros(1, 1, 28, 28))


def _idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_pads_to_32(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3]))
    got, labels = load_fmnist("test", root=tmp_path)
    assert got.shape == (3, 32, 32) and labels.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(got[:, 2:30, 2:30], images)
    assert got[:, :2].sum() == 0 and got[:, :, 30:].sum() == 0
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        load_fmnist("train", root=tmp_path)
