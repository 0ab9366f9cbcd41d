"""``python -m sg2_core.convert IN OUT``: conversions, what it prints, and that nothing the user had is lost."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sg2_core.checkpoints import CheckpointWarning, load_checkpoint
from sg2_core.convert import main

DATA = Path(__file__).parent / "data"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nvidia_pickle_to_rosinality_reproduces_the_fixture(tmp_path, nvidia_pkl, capsys):
    src, marker = nvidia_pkl
    out = tmp_path / "stylegan2-32.pt"
    assert main([str(src), str(out)]) == 0
    printed = capsys.readouterr()
    assert f"wrote {out} (rosinality)" in printed.out and "g_ema       <- G_ema: Generator 32px" in printed.out
    assert (
        "not written (no place in the rosinality format): nvidia_source, nvidia_init_kwargs, training_set_kwargs"
        in printed.out
    )
    assert "channel_multiplier" in printed.err  # the fixture's channel table is not rosinality's stock one
    written = torch.load(out, weights_only=True)
    expected = torch.load(DATA / "g32_rosinality.pt", weights_only=True)
    assert set(written) == set(expected)
    assert torch.equal(written["latent_avg"], expected["latent_avg"])
    for part in ("g_ema", "g", "d"):
        assert set(written[part]) == set(expected[part])
        for key, value in expected[part].items():
            assert torch.equal(written[part][key], value), (part, key)
    assert not marker.exists()


def test_rosinality_to_native_and_back(tmp_path, capsys):
    st = tmp_path / "model.safetensors"
    assert main([str(DATA / "g32_rosinality.pt"), str(st)]) == 0
    out = capsys.readouterr().out
    assert f"read  {DATA / 'g32_rosinality.pt'} (rosinality): G, D, G_ema" in out
    assert f"wrote {st} (native)" in out and "D           Discriminator 32px" in out
    ckpt = load_checkpoint(st)
    assert ckpt.extra["converted_from"] == {"format": "rosinality", "file": "g32_rosinality.pt"}
    g_state = torch.load(DATA / "g32_nvidia_state.pt", weights_only=True)
    for key, value in g_state.items():
        assert torch.equal(ckpt.G_ema.state_dict()[key], value), key
    back = tmp_path / "again.pt"
    assert main([str(st), str(back)]) == 0
    expected = torch.load(DATA / "g32_rosinality.pt", weights_only=True)
    written = torch.load(back, weights_only=True)
    for key, value in expected["d"].items():
        assert torch.equal(written["d"][key], value), key


def test_format_override_and_unknown_extension(tmp_path, capsys):
    out = tmp_path / "model.bin"
    assert main([str(DATA / "g32_rosinality.pt"), str(out)]) == 2
    assert "cannot tell the output format from the extension '.bin'" in capsys.readouterr().err
    assert not out.exists()
    assert main([str(DATA / "g32_rosinality.pt"), str(out), "--format", "native"]) == 0
    assert load_checkpoint(out).format == "native"


def test_never_overwrites_the_input(tmp_path, capsys):
    src = tmp_path / "model.pt"
    src.write_bytes((DATA / "g32_rosinality.pt").read_bytes())
    before = digest(src)
    assert main([str(src), str(src)]) == 2
    assert "refusing to overwrite the input file" in capsys.readouterr().err
    os.link(src, tmp_path / "hardlink.pt")
    assert main([str(src), str(tmp_path / "hardlink.pt"), "--overwrite"]) == 2  # same file under another name
    assert "refusing to overwrite the input file" in capsys.readouterr().err
    assert digest(src) == before


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"precious")
    assert main([str(DATA / "g32_rosinality.pt"), str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main([str(DATA / "g32_rosinality.pt"), str(out), "--overwrite"]) == 0
    assert load_checkpoint(out).format == "native"


def test_failures_leave_nothing_behind(tmp_path, capsys):
    bad = tmp_path / "broken.pt"
    bad.write_bytes((DATA / "g32_rosinality.pt").read_bytes()[:5000])
    out = tmp_path / "out.safetensors"
    assert main([str(bad), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "broken.pt" in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pt"]
    assert main([str(tmp_path / "missing.pkl"), str(out)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint file not found" in err and "missing.pkl" in err


def test_compute_w_avg_for_files_without_latent_avg(tmp_path, capsys):
    """rosinality's train.py writes no latent_avg: the w_avg stays unknown (NaN, never a made-up zero one) unless
    --compute-w-avg estimates it; a rosinality output then gets no latent_avg at all."""
    src = DATA / "ros_train_16.pt"
    out = tmp_path / "out.safetensors"
    assert main([str(src), str(out)]) == 0
    assert "no latent_avg" in capsys.readouterr().err
    with pytest.warns(CheckpointWarning, match="is unknown: it is NaN in the file"):
        assert torch.isnan(load_checkpoint(out).G_ema.mapping.w_avg).all()
    assert main([str(src), str(tmp_path / "out.pt")]) == 0
    captured = capsys.readouterr()
    assert "latent_avg is not written" in captured.err and "latent_avg  not written (unknown)" in captured.out
    assert "latent_avg" not in torch.load(tmp_path / "out.pt", weights_only=True)
    assert main([str(src), str(out), "--overwrite", "--compute-w-avg", "256"]) == 0
    ckpt = load_checkpoint(out)
    assert torch.equal(ckpt.G_ema.mapping.w_avg, ckpt.G_ema.mean_w(256))


def test_nan_w_avg_in_a_pickle(tmp_path, capsys):
    out = tmp_path / "out.pt"
    assert main([str(DATA / "ada_paper256_16.pkl"), str(out), "--compute-w-avg", "128"]) == 0
    ckpt = load_checkpoint(DATA / "ada_paper256_16.pkl", compute_w_avg=128)
    assert torch.equal(torch.load(out, weights_only=True)["latent_avg"], ckpt.G_ema.mapping.w_avg)


def test_stylegan3_pickles_exit_2_with_one_line(tmp_path, capsys):
    assert main([str(DATA / "sg3_stylegan3-r_16.pkl"), str(tmp_path / "out.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "StyleGAN3 (config T/R) networks are not supported" in err and "config R" in err


@pytest.mark.filterwarnings("ignore")
def test_runs_as_a_module(tmp_path):
    out = tmp_path / "model.safetensors"
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-m", "sg2_core.convert", str(DATA / "g32_rosinality.pt"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {out} (native)" in result.stdout


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--format {native,rosinality}" in help_text and "--overwrite" in help_text
