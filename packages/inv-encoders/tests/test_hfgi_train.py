"""python -m inv_encoders.train --method hfgi: the random perspective warp, and a few steps on the demo whose file
loads into the method."""

import contextlib
import io

import pytest
import torch

from inv_encoders.hfgi_training import perspective_grid, random_perspective
from inv_encoders.train import main
from inv_encoders.training import build_encoder
from sg2_core import create_method, demo, load_networks, save_networks


def test_the_identity_warp_keeps_the_image():
    x = torch.randn(2, 3, 9, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    corners = torch.tensor([[0, 0], [11, 0], [11, 8], [0, 8]], dtype=torch.float64)
    out = torch.nn.functional.grid_sample(x, perspective_grid(9, 12, corners).expand(2, -1, -1, -1), align_corners=True)
    # bilinear weights at exact pixel centres in float64: a few ulps
    torch.testing.assert_close(out, x, rtol=0, atol=1e-12)


def test_a_warp_moves_the_corners_inwards():
    x = torch.ones(1, 1, 32, 32)
    never = random_perspective(x, 0.5, 0.0, torch.Generator().manual_seed(0))
    assert never is x
    warped = random_perspective(x, 0.5, 1.0, torch.Generator().manual_seed(0))
    assert warped.shape == x.shape
    corners = warped[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners < 1).all() and warped[0, 0, 16, 16] == pytest.approx(1.0)  # zeros come in at the edges only
    again = random_perspective(x, 0.5, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(warped, again)  # seeded: the same warp


@pytest.mark.slow
def test_hfgi_trains_and_its_file_loads(tmp_path):
    G = demo.load_generator()
    torch.manual_seed(0)
    e4e = tmp_path / "e4e.safetensors"
    save_networks(e4e, {"encoder": build_encoder("e4e", G, (16, 32, 48, 64))})
    args = ["--method", "hfgi", "--steps", "3", "--run-dir", str(tmp_path / "run"), "--e4e", str(e4e)]
    args += ["--aligner-widths", "4", "8", "8", "8", "--consultation-widths", "4", "8", "8", "--batch-size", "4"]
    args += ["--num-images", "16", "--val-images", "4", "--threads", "1", "--no-progress", "--log-every", "1"]
    args += ["--snap-every", "2", "--lr", "1e-3"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    assert code == 0, err.getvalue()
    run = tmp_path / "run"
    log = (run / "log.jsonl").read_text()
    assert '"res"' in log and '"val_psnr"' in log
    final = load_networks(run / "final.safetensors")
    assert set(final) == {"encoder", "hfgi"}
    assert final["hfgi"].config.condition_layer == "b16.conv0"  # half the demo's 32 px
    method = create_method("hfgi", generator=G, weights=run / "final.safetensors")
    images = demo.load_test_images()[0][:2]
    result = method(images)
    assert list(result.feature_conditions) == ["b16.conv0"] and torch.isfinite(result.render()).all()
