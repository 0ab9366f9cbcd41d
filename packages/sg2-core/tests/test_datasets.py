import gzip
import zipfile
from itertools import islice

import numpy as np
import pytest
import torch
from PIL import Image

from sg2_core.datasets import FASHION_MNIST_DIR, InfiniteSampler, make_loader, open_dataset, read_idx
from sg2_core.images import ImageDtypeError, make_grid, save_grid, to_float, to_uint8


def random_images(n=5, size=8, channels=3, seed=0):
    """uint8 [N, H, W, C] (C dropped for grey)."""
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def write_pngs(folder, images, names=None):
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"img{i:03d}.png" for i in range(len(images))]
    for name, image in zip(names, images):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / name)
    return folder


def write_idx(path, array, compress=True):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def chw(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2) if images.ndim == 4 else torch.from_numpy(images)[:, None]


# ---------------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    images = random_images(4, 6, channels=1)
    labels = np.array([3, 1, 4, 1], np.int32)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a", images, compress)), images)
    out = read_idx(write_idx(tmp_path / "b", labels, compress))
    assert out.dtype == np.int32 and np.array_equal(out, labels)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file.*magic"):
        read_idx(tmp_path / "text")
    good = write_idx(tmp_path / "good", random_images(3, 4, channels=1), compress=False).read_bytes()
    (tmp_path / "short").write_bytes(good[:-5])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "short")
    (tmp_path / "broken.gz").write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(tmp_path / "broken.gz")


def test_idx_dataset_with_labels_file(tmp_path):
    images = random_images(6, 28, channels=1)
    labels = np.arange(6, dtype=np.uint8) % 10
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    ds = open_dataset(tmp_path / "train-images-idx3-ubyte.gz", pad_to=32)
    assert (len(ds), ds.resolution, ds.channels) == (6, 32, 1)
    image, label = ds[4]
    assert image.dtype == torch.uint8 and image.shape == (1, 32, 32) and label == 4
    assert torch.equal(image[0, 2:30, 2:30], torch.from_numpy(images[4]))
    assert image[:, :2].sum() == 0 and image[:, 30:].sum() == 0 and image[:, :, :2].sum() == 0
    assert ds.labels.tolist() == labels.tolist()
    with pytest.raises(ValueError, match="not a power of two.*pad_to=32"):
        open_dataset(tmp_path / "train-images-idx3-ubyte.gz")


# ---------------------------------------------------------------------------------------------- sources


def test_folder_recursive_sorted_rgb(tmp_path):
    images = random_images(4, 8)
    folder = write_pngs(tmp_path / "imgs", images, ["b.png", "a.png", "sub/c.png", "sub/a.png"])
    (folder / "notes.txt").write_text("not an image")
    ds = open_dataset(folder)
    assert (len(ds), ds.resolution, ds.channels, ds.has_labels) == (4, 8, 3, False)
    order = [1, 0, 3, 2]  # a.png, b.png, sub/a.png, sub/c.png
    for i, j in enumerate(order):
        image, label = ds[i]
        assert label == -1 and torch.equal(image, chw(images)[j])
    assert ds.labels.tolist() == [-1] * 4


def test_zip_matches_folder_and_pickles(tmp_path):
    import pickle

    images = random_images(3, 16)
    folder = write_pngs(tmp_path / "imgs", images)
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, f"ds/{p.name}")
    ds = open_dataset(tmp_path / "d.zip")
    assert len(ds) == 3 and ds.resolution == 16
    assert torch.equal(ds[2][0], chw(images)[2])
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker gets: no open zip handle
    assert torch.equal(clone[1][0], chw(images)[1])


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_arrays_and_npy(tmp_path, layout):
    nhwc = random_images(5, 4, channels=1 if layout == "NHW" else 3)
    array = {
        "NHW": nhwc,
        "NHWC": nhwc,
        "NCHW": np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2) if nhwc.ndim == 4 else nhwc),
    }[layout]
    np.save(tmp_path / "x.npy", array)
    for source in (array, tmp_path / "x.npy"):
        ds = open_dataset(source)
        assert ds.channels == (1 if layout == "NHW" else 3) and ds.resolution == 4
        assert torch.equal(torch.stack([ds[i][0] for i in range(5)]), chw(nhwc))


def test_npz_with_labels(tmp_path):
    np.savez(tmp_path / "d.npz", images=random_images(4, 4, channels=1), labels=np.array([0, 1, 2, 3]))
    ds = open_dataset(tmp_path / "d.npz", xflip=True)
    assert ds.has_labels and ds.labels.tolist() == [0, 1, 2, 3] * 2


def test_channel_conversion(tmp_path):
    rgb = random_images(2, 8)
    folder = write_pngs(tmp_path / "rgb", rgb)
    grey_files = open_dataset(folder, channels=1)
    grey_array = open_dataset(rgb, channels=1)
    expected = np.stack([np.asarray(Image.fromarray(x).convert("L")) for x in rgb])
    for ds in (grey_files, grey_array):
        assert ds.channels == 1 and torch.equal(ds[1][0][0], torch.from_numpy(expected[1]))
    grey = random_images(2, 8, channels=1)
    up = open_dataset(grey, channels=3)
    assert up[0][0].shape == (3, 8, 8) and torch.equal(up[0][0][2], torch.from_numpy(grey[0]))


def test_xflip_mirrors_second_half():
    images = random_images(3, 8)
    ds = open_dataset(images, xflip=True)
    assert len(ds) == 6
    for i in range(3):
        assert torch.equal(ds[i + 3][0], ds[i][0].flip(-1))
        assert not torch.equal(ds[i + 3][0], ds[i][0])


# ---------------------------------------------------------------------------------------------- errors


def test_unreadable_image_is_named(tmp_path):
    folder = write_pngs(tmp_path / "imgs", random_images(2, 8))
    (folder / "img001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="cannot read image .*img001.png"):
        open_dataset(folder)


def test_mixed_sizes_and_channels(tmp_path):
    write_pngs(tmp_path / "sizes", [random_images(1, 8)[0], random_images(1, 16)[0]])
    with pytest.raises(ValueError, match="mixed sizes"):
        open_dataset(tmp_path / "sizes")
    write_pngs(tmp_path / "chans", [random_images(1, 8)[0], random_images(1, 8, channels=1)[0]])
    with pytest.raises(ValueError, match="mixed channels"):
        open_dataset(tmp_path / "chans")


def test_shape_and_resolution_errors(tmp_path):
    with pytest.raises(ValueError, match="square"):
        open_dataset(np.zeros((2, 8, 6, 3), np.uint8))
    with pytest.raises(ValueError, match="square"):
        open_dataset(np.zeros((2, 8, 6), np.uint8))
    with pytest.raises(ValueError, match="not the requested resolution 16"):
        open_dataset(np.zeros((2, 8, 8), np.uint8), resolution=16)
    with pytest.raises(ValueError, match="not a power of two"):
        open_dataset(np.zeros((2, 12, 12), np.uint8))
    with pytest.raises(ValueError, match="smaller"):
        open_dataset(np.zeros((2, 8, 8), np.uint8), pad_to=4)
    with pytest.raises(ImageDtypeError, match="uint8"):
        open_dataset(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="empty"):
        open_dataset(np.zeros((0, 8, 8), np.uint8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not found"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "x.csv").write_text("1,2,3")
    with pytest.raises(ValueError, match="unsupported dataset"):
        open_dataset(tmp_path / "x.csv")
    assert open_dataset(np.zeros((2, 8, 8), np.uint8), resolution=16, pad_to=16).resolution == 16


def test_fashion_mnist_shortcut_names_the_debian_package(monkeypatch, tmp_path):
    import sg2_core.datasets as datasets

    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        open_dataset("fmnist-test")


@pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_real_fashion_mnist_test_split():
    images = read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    ds = open_dataset("fmnist-test", pad_to=32)
    assert (len(ds), ds.resolution, ds.channels) == (10000, 32, 1)
    image, label = ds[0]
    assert label == 9  # the first test image is an ankle boot (class 9)
    assert torch.equal(image[0, 2:30, 2:30], torch.from_numpy(images[0]))
    assert sorted(ds.labels.unique().tolist()) == list(range(10))
    assert ds.labels.bincount().tolist() == [1000] * 10


# ---------------------------------------------------------------------------------------------- sampling


def take(sampler, n):
    return list(islice(iter(sampler), n))


def test_sampler_is_a_function_of_seed_and_epoch():
    a = take(InfiniteSampler(10, seed=3), 30)
    assert a == take(InfiniteSampler(10, seed=3), 30)
    assert a != take(InfiniteSampler(10, seed=4), 30)
    for epoch in range(3):  # each epoch a full permutation, from seed + epoch
        assert (
            a[10 * epoch : 10 * epoch + 10]
            == torch.randperm(10, generator=torch.Generator().manual_seed(3 + epoch)).tolist()
        )
    assert take(InfiniteSampler(4, shuffle=False), 9) == [0, 1, 2, 3, 0, 1, 2, 3, 0]


@pytest.mark.parametrize("world_size", [1, 3])
def test_sampler_resume_and_ranks(world_size):
    full = take(InfiniteSampler(7, seed=1), 60)
    for rank in range(world_size):
        stream = take(InfiniteSampler(7, seed=1, rank=rank, world_size=world_size), 40)
        assert stream[:15] == full[rank::world_size][:15]  # interleaved slices of the global stream
        for k in (0, 1, 6, 13):
            resumed = take(InfiniteSampler(7, seed=1, rank=rank, world_size=world_size, start=k), 40 - k)
            assert resumed == stream[k:]


def test_sampler_errors():
    with pytest.raises(ValueError, match="non-empty"):
        InfiniteSampler(0)
    with pytest.raises(ValueError, match="rank"):
        InfiniteSampler(5, rank=2, world_size=2)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_loader_batches_resume(num_workers):
    ds = open_dataset(random_images(10, 4, channels=1), xflip=True)
    batches = list(islice(make_loader(ds, 3, seed=5, num_workers=num_workers), 5))
    images, labels = batches[0]
    assert images.shape == (3, 1, 4, 4) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist() == [-1] * 3
    order = take(InfiniteSampler(20, seed=5), 15)
    assert torch.equal(torch.cat([b[0] for b in batches]), torch.stack([ds[i][0] for i in order]))
    resumed = list(islice(make_loader(ds, 3, seed=5, start_batch=2, num_workers=0), 3))
    for a, b in zip(resumed, batches[2:]):
        assert torch.equal(a[0], b[0])


# ---------------------------------------------------------------------------------------------- images


def test_float_uint8_round_trip(tmp_path):
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = to_float(pixels)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() == 1
    assert torch.equal(to_uint8(x), pixels)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]
    with pytest.raises(ImageDtypeError, match="uint8"):  # a ValueError (and, as before, a TypeError)
        to_float(x)
    with pytest.raises(ImageDtypeError, match="float"):
        to_uint8(pixels)
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(torch.tensor([float("nan")]))


def test_save_grid(tmp_path):
    images = torch.rand(5, 3, 4, 4) * 2 - 1
    grid = make_grid(images, nrow=2)
    assert grid.shape == (3, 12, 8) and grid[:, 8:, 4:].sum() == 0  # the sixth cell is empty
    path = save_grid(images, tmp_path / "out" / "grid.png", nrow=2)
    with Image.open(path) as png:
        saved = torch.from_numpy(np.array(png)).permute(2, 0, 1)
    assert torch.equal(saved, grid)
    assert torch.equal(saved[:, 4:8, 0:4], to_uint8(images[2]))
    grey = save_grid(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), tmp_path / "g.png", nrow=4)
    with Image.open(grey) as png:
        assert png.mode == "L" and png.size == (8, 4)
    with pytest.raises(ValueError, match="channels"):
        make_grid(torch.zeros(2, 2, 4, 4))


def test_zip_loader_in_worker_processes(tmp_path):
    images = random_images(6, 8)
    folder = write_pngs(tmp_path / "imgs", images)
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, p.name)
    ds = open_dataset(tmp_path / "d.zip")
    ds[0]  # the parent process holds an open handle; workers must open their own
    batch, _ = next(make_loader(ds, 6, seed=0, num_workers=2, shuffle=False))
    assert torch.equal(batch, chw(images))
