"""python -m inv_metrics.fid on image folders and on a generator checkpoint (fmnist features, tiny sets)."""

import numpy as np
import pytest
import torch
from PIL import Image

from inv_metrics import fid as fid_cli
from inv_metrics import fid_from_features, kid_from_features, load_features


def _write(folder, u8):
    folder.mkdir()
    for i, img in enumerate(u8):
        Image.fromarray(img[0].numpy()).save(folder / f"{i:04d}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from sg2_core.demo import load_test_images

    images, _ = load_test_images()
    u8 = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    root = tmp_path_factory.mktemp("fid")
    _write(root / "a", u8[:40])
    _write(root / "b", u8[40:100])
    return root, u8


@pytest.mark.slow
def test_folders_print_labelled_numbers_equal_to_the_api(folders, capsys):
    root, u8 = folders
    cache = root / "cache"
    argv = [str(root / "a"), "--reference", str(root / "b"), "--cache-dir", str(cache), "--kid-subset-size", "30"]
    assert fid_cli.main(argv) == 0
    out = capsys.readouterr().out
    net = load_features("fmnist")
    fa, fb = net(u8[:40].float() / 127.5 - 1), net(u8[40:100].float() / 127.5 - 1)
    fid = fid_from_features(fa, fb)
    kid = kid_from_features(fa, fb, subset_size=30)
    assert f"FID (fmnist-features): {fid:.4f}" in out
    assert f"KID (fmnist-features): {kid[0]:.6f} ± {kid[1]:.6f}" in out
    assert len(list(cache.glob("fmnist-features-*.npz"))) == 1
    assert fid_cli.main(argv) == 0  # second run reads the cached reference features
    assert f"FID (fmnist-features): {fid:.4f}" in capsys.readouterr().out


def test_generator_checkpoint_source(folders, tmp_path, capsys):
    from sg2_core import Generator, save_checkpoint
    from sg2_core.checkpoints import Checkpoint
    from sg2_core.demo import GENERATOR_CONFIG

    torch.manual_seed(0)
    path = tmp_path / "g.safetensors"
    save_checkpoint(path, Checkpoint(G_ema=Generator(GENERATOR_CONFIG)))
    root, _ = folders
    assert (
        fid_cli.main(
            [
                str(path),
                "--reference",
                str(root / "b"),
                "--num-samples",
                "20",
                "--batch-size",
                "10",
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    out = captured.out
    assert "FID (fmnist-features)" in out and "[20 vs 60 images]" in out
    assert "KID subset size reduced to 20" in out


def test_inception_without_weights_is_a_clear_error(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    root, _ = folders
    assert fid_cli.main([str(root / "a"), "--reference", str(root / "b"), "--features", "inception"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inv_metrics.fid: error: ") and "weights-inception-2015-12-05-6726825d.pth" in err
    assert len(err.strip().splitlines()) == 1


def test_mixed_sizes_are_refused(tmp_path):
    (tmp_path / "m").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "m" / "a.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "m" / "b.png")
    with pytest.raises(ValueError, match="one size"):
        fid_cli.read_folder(fid_cli.image_files(tmp_path / "m"), grey=True)


def test_usage_error_is_sg2_cores_one_class():
    from sg2_core.errors import UsageError

    assert fid_cli.UsageError is UsageError and issubclass(UsageError, ValueError)
