"""Training: losses go down, lazy regularisers run and carry gradients, resume is exact (also after SIGKILL),
two gloo processes stay in sync, and the command line reports bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sg2_core.checkpoints import native
from sg2_core.training.gan import PRESETS, main, resume, save_snapshot
from sg2_core.training.trainer import Trainer, TrainingOptions

G_TINY, D_TINY = PRESETS["tiny"].configs(16, 1)


def _reals(step: int, n: int = 8) -> torch.Tensor:
    """A structured 'dataset': bright squares at random places on a dark background."""
    gen = torch.Generator().manual_seed(step)
    images = -torch.ones(n, 1, 16, 16)
    for i, (y, x) in enumerate(torch.randint(0, 10, (n, 2), generator=gen).tolist()):
        images[i, :, y : y + 6, x : x + 6] = 1
    return images


def _trainer(**options) -> Trainer:
    return Trainer(G_TINY, D_TINY, TrainingOptions(**{"batch_size": 8, "r1_gamma": 0.1, **options}))


def _run(trainer: Trainer, steps: int) -> list[dict]:
    return [trainer.step(_reals(trainer.step_count)) for _ in range(steps)]


def test_discriminator_loss_falls_against_a_frozen_generator():
    losses = [float(s["loss_D"]) for s in _run(_trainer(g_lr=0.0), 12)]
    assert np.mean(losses[-3:]) < losses[0] - 0.3, losses


def test_generator_loss_falls_against_a_frozen_discriminator():
    losses = [float(s["loss_G"]) for s in _run(_trainer(d_lr=0.0, g_lr=0.01), 12)]
    assert np.mean(losses[-3:]) < losses[0] - 0.05, losses


def test_lazy_regularisers_run_at_their_intervals_with_their_weights(monkeypatch):
    trainer = _trainer(r1_interval=2, pl_interval=3, r1_gamma=0.5, pl_weight=2.0)
    weights = []
    original = Trainer._optimize

    def recording(self, optimizer, net, loss, weight=1.0):
        weights.append((self.step_count, "G" if net is self.G else "D", weight))
        return original(self, optimizer, net, loss, weight)

    monkeypatch.setattr(Trainer, "_optimize", recording)
    stats = _run(trainer, 6)
    assert [i for i, s in enumerate(stats) if "r1_penalty" in s] == [0, 2, 4]
    assert [i for i, s in enumerate(stats) if "pl_penalty" in s] == [0, 3]
    assert (0, "D", 0.5 / 2 * 2) in weights and (3, "G", 2.0 * 3) in weights
    # Adam's settings are scaled by interval / (interval + 1) for the lazy schedule.
    assert trainer.opt_D.param_groups[0]["lr"] == pytest.approx(0.002 * 2 / 3)
    assert trainer.opt_G.param_groups[0]["betas"][1] == pytest.approx(0.99**0.75)
    assert float(trainer.path_length.pl_mean) > 0


def test_gradients_flow_through_the_lazy_terms():
    trainer = _trainer()
    trainer._train_only(trainer.D)
    trainer._r1_penalty(_reals(0)).backward()
    d_grads = {n: p.grad for n, p in trainer.D.named_parameters()}
    assert d_grads["b16.conv0.weight"].abs().sum() > 0  # R1 reaches the first layers through the input gradient
    trainer._train_only(trainer.G)
    trainer._pl_penalty().backward()
    g_grads = {n: p.grad for n, p in trainer.G.named_parameters()}
    assert g_grads["synthesis.b16.conv1.weight"].abs().sum() > 0
    assert g_grads["mapping.fc0.weight"].abs().sum() > 0


def _states(trainer: Trainer) -> dict:
    return {name: net.state_dict() for name, net in (("G", trainer.G), ("D", trainer.D), ("G_ema", trainer.G_ema))}


def _assert_same_weights(a: dict, b: dict):
    for name in a:
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key} differs"


def test_resume_continues_exactly(tmp_path):
    options = dict(augment="ada", ada_kimg=0.1, r1_interval=2, pl_interval=3)
    straight = _trainer(**options)
    _run(straight, 7)

    first = _trainer(**options)
    _run(first, 4)
    save_snapshot(first, tmp_path)
    second = _trainer(**options)
    resume(second, tmp_path)
    assert (second.step_count, second.images_seen) == (4, 32)
    _run(second, 3)

    _assert_same_weights(_states(straight), _states(second))
    assert torch.equal(straight.path_length.pl_mean, second.path_length.pl_mean)
    assert straight.augment.p == second.augment.p > 0
    for a, b in zip(straight.opt_G.state_dict()["state"].values(), second.opt_G.state_dict()["state"].values()):
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_resume_rejects_a_snapshot_of_another_architecture_or_other_options(tmp_path):
    save_snapshot(_trainer(), tmp_path)
    other = Trainer(G_TINY.replace(z_dim=16, w_dim=16), D_TINY, TrainingOptions(batch_size=8, r1_gamma=0.1))
    with pytest.raises(ValueError, match="G is GeneratorConfig"):
        resume(other, tmp_path)
    with pytest.raises(ValueError, match=r"other options \(g_lr, seed\)"):
        resume(_trainer(seed=3, g_lr=0.01), tmp_path)


def _cli(out, data, *extra, kimg="0.32"):
    return [
        sys.executable,
        "-m",
        "sg2_core.train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--kimg",
        kimg,
        "--snap-kimg",
        "0.04",
        "--tick-kimg",
        "0.04",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
        *extra,
    ]


@pytest.fixture
def npy_data(tmp_path):
    path = tmp_path / "squares.npy"
    np.save(path, ((torch.cat([_reals(i) for i in range(8)])[:, 0] + 1) * 127.5).to(torch.uint8).numpy())
    return path


def _final_weights(out: Path) -> dict:
    last = max(out.glob("snapshot-*.safetensors"))
    ckpt = native.load(last)
    return last.name, {name: net.state_dict() for name, net in ckpt.networks().items()}


def _log_images(out: Path) -> list[int]:
    return [json.loads(line)["images"] for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """One uninterrupted CLI run (320 images), shared by the kill and signal tests."""
    root = tmp_path_factory.mktemp("straight")
    data = root / "squares.npy"
    np.save(data, ((torch.cat([_reals(i) for i in range(8)])[:, 0] + 1) * 127.5).to(torch.uint8).numpy())
    subprocess.run(_cli(root / "run", data), check=True, env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=300)
    return root / "run", data


def _start_and_wait_for_a_snapshot(out: Path, data, *extra) -> subprocess.Popen:
    proc = subprocess.Popen(
        _cli(out, data, *extra), env={**os.environ, "PYTHONHASHSEED": "0"}, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    while not list(out.glob("snapshot-*.safetensors")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(straight_run):
    straight, data = straight_run
    killed = straight.parent / "killed"
    # Snapshots every 80 images, ticks every 40: the kill usually leaves log rows after the last snapshot,
    # which the resumed run must drop (it logs those ticks again).
    proc = _start_and_wait_for_a_snapshot(killed, data, "--snap-kimg", "0.08")
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    snapshots = sorted(p.name for p in killed.glob("snapshot-*.safetensors"))
    assert snapshots and snapshots[-1] != "snapshot-000000320.safetensors", "the run finished before the kill"
    subprocess.run(_cli(killed, data, "--resume", str(killed)), check=True, timeout=300)

    name_a, weights_a = _final_weights(straight)
    name_b, weights_b = _final_weights(killed)
    assert name_a == name_b == "snapshot-000000320.safetensors"
    _assert_same_weights(weights_a, weights_b)
    assert _log_images(killed) == _log_images(straight) == list(range(40, 321, 40))  # no duplicate rows
    log = [json.loads(line) for line in (straight / "log.jsonl").read_text().splitlines()]
    assert log[-1]["images"] == 320 and log[-1]["images_per_s"] > 0 and "loss_D" in log[-1]
    assert (straight / "samples-000000320.png").stat().st_size > 0


@pytest.mark.slow
def test_sigint_writes_a_snapshot_exits_130_and_resumes_to_the_same_weights(straight_run):
    straight, data = straight_run
    stopped = straight.parent / "sigint"
    proc = _start_and_wait_for_a_snapshot(stopped, data, "--snap-kimg", "0.16", "--tick-kimg", "0.016")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = max(stopped.glob("snapshot-*.safetensors"))
    images = int(last.stem.split("-")[1])
    assert 160 < images < 320, (images, err)  # a snapshot at the stop, not just the periodic one
    assert f"stopped by SIGINT at {images} images; wrote {last}, continue with --resume {stopped}" in err
    assert _log_images(stopped)[-1] == images

    subprocess.run(
        _cli(stopped, data, "--resume", str(stopped), "--snap-kimg", "0.16", "--tick-kimg", "0.016"),
        check=True,
        timeout=300,
    )
    _, weights_a = _final_weights(straight)
    name, weights_b = _final_weights(stopped)
    assert name == "snapshot-000000320.safetensors"
    _assert_same_weights(weights_a, weights_b)
    logged = _log_images(stopped)
    assert logged == sorted(set(logged)) and logged[-1] == 320


@pytest.mark.slow
def test_sigterm_also_stops_with_a_snapshot(tmp_path, npy_data):
    proc = _start_and_wait_for_a_snapshot(tmp_path / "run", npy_data, "--snap-kimg", "0.16", "--workers", "2")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert "stopped by SIGTERM at" in err


def _api_run(out, data, **kwargs):
    from sg2_core.training.gan import train

    return train(
        data,
        out,
        **{
            "preset": "tiny",
            "kimg": 0.016,
            "snap_kimg": 0.008,
            "tick_kimg": 0.008,
            "workers": 0,
            "progress": False,
            **kwargs,
        },
    )


def _contents(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_fresh_run_refuses_a_non_empty_folder_and_leaves_it_as_it_was(tmp_path, npy_data):
    out = tmp_path / "run"
    _api_run(out, npy_data)
    before = _contents(out)
    with pytest.raises(
        ValueError,
        match=rf"--out {out} is not empty \(log.jsonl, run.json, samples-000000008.png, "
        rf"\.\.\.\); continue that run with --resume {out}",
    ):
        _api_run(out, npy_data)
    assert _contents(out) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not the folder of the resumed snapshot"):
        _api_run(other, npy_data, resume_from=out)
    with pytest.raises(ValueError, match="snapshots newer than snapshot-000000008.safetensors"):
        _api_run(out, npy_data, resume_from=out / "snapshot-000000008.safetensors")
    assert _contents(out) == before and _contents(other) == {"notes.txt": b"mine"}


def test_resume_of_a_complete_run_says_so_and_past_kimg_is_an_error(tmp_path, npy_data, capsys):
    out = tmp_path / "run"
    _api_run(out, npy_data)
    before = _contents(out)
    assert _api_run(out, npy_data, resume_from=out).images_seen == 16
    assert "nothing to train: the run in" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"already trained on 16 images, more than --kimg 0.008 \(8 images\)"):
        _api_run(out, npy_data, resume_from=out, kimg=0.008)
    assert _contents(out) == before
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="--kimg must be a positive number"):
            _api_run(tmp_path / "new", npy_data, kimg=bad)
    with pytest.raises(ValueError, match="--snap-kimg must be a positive number"):
        _api_run(tmp_path / "new", npy_data, snap_kimg=0)
    assert not (tmp_path / "new").exists()


def test_resume_drops_the_log_rows_written_after_its_snapshot(tmp_path, npy_data):
    out = tmp_path / "run"
    _api_run(out, npy_data, kimg=0.008)
    with (out / "log.jsonl").open("a") as log:  # what a run killed between a tick and its snapshot leaves
        log.write(json.dumps({"images": 16, "step": 2, "loss_D": 9.0}) + "\n")
    _api_run(out, npy_data, resume_from=out)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["images"] for r in rows] == [8, 16] and rows[1]["loss_D"] != 9.0


DDP_SCRIPT = """
import sys, torch
from sg2_core.training.gan import PRESETS
from sg2_core.training.trainer import Trainer, TrainingOptions
torch.distributed.init_process_group("gloo")
rank = torch.distributed.get_rank()
torch.set_num_threads(1)
g, d = PRESETS["tiny"].configs(16, 1)
trainer = Trainer(g, d, TrainingOptions(batch_size=8, r1_gamma=0.1, r1_interval=2, pl_interval=2))
for step in range(3):
    gen = torch.Generator().manual_seed(step)
    trainer.step(torch.rand(8, 1, 16, 16, generator=gen)[rank * 4:(rank + 1) * 4] * 2 - 1)  # this rank's half
ema = {f"G_ema.{k}": v for k, v in trainer.G_ema.state_dict().items()}
torch.save({**trainer.G.state_dict(), **trainer.D.state_dict(), **ema, "pl_mean": trainer.path_length.pl_mean},
           f"{sys.argv[1]}/rank{rank}.pt")
torch.distributed.destroy_process_group()
"""


def _torchrun(*args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]


@pytest.mark.slow
def test_two_gloo_processes_keep_identical_weights(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    subprocess.run(_torchrun(str(script), str(tmp_path)), check=True, timeout=300)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["synthesis.b16.conv1.weight"], _trainer().G.state_dict()["synthesis.b16.conv1.weight"])


@pytest.mark.slow
def test_the_command_line_trains_with_two_gloo_processes(tmp_path, npy_data):
    out = tmp_path / "run"
    subprocess.run(_torchrun("-m", "sg2_core.train", *_cli(out, npy_data, kimg="0.048")[3:]), check=True, timeout=300)
    assert sorted(p.name for p in out.glob("snapshot-*")) == [
        "snapshot-000000040.safetensors",
        "snapshot-000000048.safetensors",
    ]
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    assert _log_images(out) == [40, 48]


def test_cli_reports_bad_input(tmp_path, npy_data, capsys):
    assert main(["--data", str(npy_data), "--out", str(tmp_path / "a"), "--preset", "fmnist32"]) == 2
    assert "this preset is for 1-channel 32px images, the data has 1 channels at 16px" in capsys.readouterr().err
    assert (
        main(["--data", str(npy_data), "--out", str(tmp_path / "b"), "--preset", "tiny", "--resume", str(tmp_path)])
        == 2
    )
    assert "no snapshot-*.safetensors" in capsys.readouterr().err
    with pytest.raises(ValueError, match="augment must be one of"):
        TrainingOptions(augment="sometimes")


def test_ema_has_a_half_life_in_images():
    trainer = _trainer(ema_kimg=0.1)  # half-life 100 images, batch 8
    before = {k: v.clone() for k, v in trainer.G_ema.named_parameters()}
    trainer.step(_reals(0))
    beta = 0.5 ** (8 / 100)
    for name, p in trainer.G.named_parameters():
        expected = p.detach().lerp(before[name], beta)
        torch.testing.assert_close(dict(trainer.G_ema.named_parameters())[name], expected)
    assert torch.equal(trainer.G_ema.mapping.w_avg, trainer.G.mapping.w_avg)  # buffers are copied
