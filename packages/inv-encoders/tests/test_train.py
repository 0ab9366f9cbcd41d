"""python -m inv_encoders.train: every method trains a few steps on the demo, its file loads into the method,
e4e's schedule and discriminator, and bad input."""

import contextlib
import io

import pytest
import torch

from sg2_core import create_method, demo, load_networks

from inv_encoders.train import main
from inv_encoders.train_encoders import progressive_stage

TINY = ["--widths", "16", "32", "48", "64", "--batch-size", "4", "--num-images", "16", "--val-images", "4",
        "--threads", "1", "--no-progress", "--log-every", "1", "--snap-every", "2", "--lr", "1e-3"]


def _train(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return code, err.getvalue()


@pytest.mark.parametrize("method", ["psp", "psp-w", "e4e", "restyle-e4e"])
def test_each_method_trains_and_its_file_loads(method, tmp_path):
    extra = ["--n-iters", "2"] if method.startswith("restyle") else []
    extra += ["--progressive-start", "1", "--progressive-every", "1", "--r1-every", "1"] if "e4e" in method else []
    code, err = _train("--method", method, "--steps", "3", "--run-dir", str(tmp_path / "run"), *TINY, *extra)
    assert code == 0, err
    run = tmp_path / "run"
    log = (run / "log.jsonl").read_text()
    assert '"val_psnr"' in log and (run / "samples-000000003.png").is_file()
    if "e4e" in method:
        snapshot = load_networks(run / "snapshot-000000003.safetensors")
        assert set(snapshot) == {"encoder", "discriminator"}  # the latent D trains alongside
        assert '"stage": 2.0' in log and '"d_r1"' in log and '"w_disc"' in log
    G = demo.load_generator()
    images = demo.load_test_images()[0][:2]
    method_ = create_method(method, generator=G, weights=run / "final.safetensors", **(
        {"n_iters": 2} if method.startswith("restyle") else {}))
    assert torch.isfinite(method_(images).render()).all()


def test_e4e_schedule():
    assert [progressive_stage(s, 10, 5, 8) for s in (0, 9, 10, 14, 15, 40, 1000)] == [0, 0, 1, 1, 2, 7, 7]


def test_bad_input_names_the_problem(tmp_path):
    code, err = _train("--method", "psp", "--steps", "1", "--run-dir", str(tmp_path / "a"), *TINY)
    assert code == 0, err
    G = demo.load_generator()
    with pytest.raises(ValueError, match="holds a pSp encoder, not a e4e one"):
        create_method("e4e", generator=G, weights=tmp_path / "a" / "final.safetensors")
    code, err = _train("--method", "psp", "--steps", "1", "--run-dir", str(tmp_path / "b"), *TINY,
                       "--id-weights", str(tmp_path / "missing-arcface.pth"))
    assert code != 0 and "missing-arcface.pth" in err
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    code, err = _train("--method", "nope", "--steps", "1")
    assert code == 2 and "not a trainable method of inv_encoders" in err
