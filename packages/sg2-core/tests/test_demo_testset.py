import pytest
import torch

from sg2_core.datasets import FASHION_MNIST_DIR, open_dataset
from sg2_core.demo import fmnist_test_indices, load_test_images
from sg2_core.images import to_uint8


def test_load_test_images():
    images, labels = load_test_images()
    assert images.shape == (256, 1, 32, 32) and images.dtype == torch.float32
    assert images.min() == -1 and images.max() == 1
    assert torch.all(images[:, :, :2] == -1) and torch.all(images[:, :, :, 30:] == -1)  # the 2 px zero padding
    assert labels.shape == (256,) and labels.dtype == torch.int64
    assert labels.min() >= 0 and labels.max() <= 9
    assert labels.bincount(minlength=10).tolist() == [26] * 6 + [25] * 4


@pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_test_images_are_the_recorded_test_split_images():
    indices = torch.tensor(fmnist_test_indices())
    assert len(indices) == 256 and indices.unique().numel() == 256
    test = open_dataset("fmnist-test", pad_to=32)
    images, labels = load_test_images()
    assert torch.equal(to_uint8(images), torch.stack([test[int(i)][0] for i in indices]))
    assert torch.equal(labels, test.labels[indices])
