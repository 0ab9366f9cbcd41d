"""sg2_core.training.fit, the training loop of learned inversion methods: exact resume (after --steps and after a
SIGTERM), refusals, and two gloo processes equal to one process with the whole batch."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sg2_core import Generator, GeneratorConfig, save_networks
from sg2_core.training import fit

# A tiny learned method: a conv + linear encoder to W, trained with pixel MSE through a 16 px generator.
# It has no batch norm, so the mean of two half-batch gradients is the whole batch's gradient.
TRAINER = """
import sys
from dataclasses import dataclass
import torch
from torch import nn
from sg2_core import register_network
from sg2_core.training import fit
from sg2_core.nn.config import Serializable

@dataclass(frozen=True)
class TinyConfig(Serializable):
    w_dim: int = 16

@register_network(config_class=TinyConfig)
class TinyEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, config.w_dim)
    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))

class Tiny(fit.Objective):
    def __init__(self, G, lr, stop_after=None):
        self.G, self.net, self.stop_after, self.steps = G, TinyEncoder(TinyConfig(G.w_dim)), stop_after, 0
        self.networks = {"encoder": self.net}
        self.optimizers = {"adam": torch.optim.Adam(self.net.parameters(), lr=lr)}
    def reconstruct(self, x):
        w = self.net(x) + self.G.mapping.w_avg
        return self.G.synthesis(w[:, None].expand(-1, self.G.num_ws, -1), noise_mode="const")
    def done(self):
        return self.stop_after is not None and self.steps >= self.stop_after
    def state(self):
        return {"steps": self.steps}
    def load_state(self, state):
        self.steps = state["steps"]
    def step(self, x, step):
        self.steps += 1
        loss = (self.reconstruct(x) - x).square().mean()
        self.optimize(self.optimizers["adam"], loss)
        return {"loss": loss.detach()}

def main(argv):
    p = fit.parser("tiny", "a tiny trainer")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--stop-after", type=int)
    args = p.parse_args(argv)
    return fit.run(args, lambda G, device: Tiny(G, args.lr, args.stop_after), {"lr": args.lr, "sizes": (4, 8)},
                   name="tiny")

if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def setup(tmp_path):
    G = Generator(
        GeneratorConfig(
            z_dim=16, w_dim=16, resolution=16, img_channels=1, mapping_layers=2, channel_base=256, channel_max=16
        )
    )
    save_networks(tmp_path / "g.safetensors", {"G_ema": G})
    images = torch.Generator().manual_seed(0)
    data = (torch.rand(24, 16, 16, generator=images) * 255).to(torch.uint8).numpy()
    np.save(tmp_path / "data.npy", data)
    (tmp_path / "tiny_trainer.py").write_text(TRAINER)
    return tmp_path


_modules = {}


def _trainer(root):
    """The tiny trainer imported in this process (once per file: it registers its network class)."""
    path = root / "tiny_trainer.py"
    if path not in _modules:
        spec = importlib.util.spec_from_file_location(f"tiny_trainer_{len(_modules)}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[path] = module
    return _modules[path]


def _args(root, run_dir, steps, *extra):
    return [
        str(root / "tiny_trainer.py"),
        "--run-dir",
        str(run_dir),
        "--steps",
        str(steps),
        "--generator",
        str(root / "g.safetensors"),
        "--data",
        str(root / "data.npy"),
        "--val-data",
        str(root / "data.npy"),
        "--val-images",
        "4",
        "--batch-size",
        "4",
        "--snap-every",
        "3",
        "--log-every",
        "1",
        "--no-progress",
        *extra,
    ]


def _run(root, run_dir, steps, *extra, check=True):
    """The trainer's main in this process: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = _trainer(root).main(_args(root, run_dir, steps, *extra)[1:])
    if check:
        assert code == 0, err.getvalue()
    return code, err.getvalue()


def _run_process(root, run_dir, steps, *extra):
    done = subprocess.run(
        [sys.executable, *_args(root, run_dir, steps, *extra)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


def _weights(path) -> dict:
    return {k: v for k, v in load_file(path).items() if k.startswith("encoder.")}


def _info(path) -> dict:
    from sg2_core.checkpoints.native import read_header

    return json.loads(read_header(path)["extra"])["training"]


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_continues_exactly_and_logs_each_step_once(setup):
    _run(setup, setup / "straight", 8)
    _run(setup, setup / "split", 4)
    assert sorted(p.name for p in (setup / "split").glob("snapshot-*")) == [
        "snapshot-000000003.safetensors",
        "snapshot-000000004.safetensors",
    ]
    _run(setup, setup / "split", 8, "--resume")
    _assert_same(_weights(setup / "straight" / "final.safetensors"), _weights(setup / "split" / "final.safetensors"))
    rows = [json.loads(line) for line in (setup / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 9))
    assert [r["step"] for r in rows if "val_mse" in r] == [3, 4, 6, 8]
    assert (setup / "split" / "samples-000000008.png").is_file()
    info = _info(setup / "split" / "final.safetensors")
    assert info["steps"] == 8 and info["lr"] == 1e-3 and info["val_psnr"] > 0


@pytest.mark.slow
def test_a_sigterm_leaves_a_snapshot_that_resumes_exactly(setup):
    steps = 200
    _run_process(setup, setup / "straight", steps, "--snap-every", "1000")
    run_dir = setup / "killed"
    proc = subprocess.Popen(
        [sys.executable, *_args(setup, run_dir, steps, "--snap-every", "1000")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = run_dir / "log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.is_file() and log.read_text().count("\n") >= 5) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    assert len(list(run_dir.glob("snapshot-*"))) == 1
    _run_process(setup, run_dir, steps, "--resume", "--snap-every", "1000")
    _assert_same(_weights(setup / "straight" / "final.safetensors"), _weights(run_dir / "final.safetensors"))


def test_the_objective_can_end_training_early_and_stays_done_on_resume(setup):
    _run(setup, setup / "early", 8, "--stop-after", "5")
    assert _info(setup / "early" / "final.safetensors")["steps"] == 5
    rows = [json.loads(line) for line in (setup / "early" / "log.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == 5
    _run(setup, setup / "straight", 5)
    _assert_same(_weights(setup / "straight" / "final.safetensors"), _weights(setup / "early" / "final.safetensors"))
    code, _ = _run(setup, setup / "early", 8, "--resume", "--stop-after", "5")
    assert code == 0 and _info(setup / "early" / "final.safetensors")["steps"] == 5


def test_refusals_name_the_problem(setup):
    _run(setup, setup / "a", 3)
    code, err = _run(setup, setup / "a", 6, check=False)
    assert code == 2 and "is not empty" in err and "--resume" in err
    code, err = _run(setup, setup / "a", 6, "--resume", "--lr", "0.01", check=False)
    assert code == 2 and "other options (lr)" in err
    code, err = _run(setup, setup / "a", 2, "--resume", check=False)
    assert code == 2 and "already trained 3 steps" in err
    code, err = _run(setup, setup / "a", 3, "--resume", check=False)
    assert code == 0 and "nothing to train" in err
    code, err = _run(setup, setup / "b", 3, "--batch-size", "100", check=False)
    assert code == 2 and "larger than the 24 training images" in err
    assert not (setup / "b").exists() or not any((setup / "b").iterdir())


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process_with_the_whole_batch(setup):
    _run(setup, setup / "one", 6)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        *_args(setup, setup / "two", 6),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "2 process(es)" in done.stdout
    one, two = _weights(setup / "one" / "final.safetensors"), _weights(setup / "two" / "final.safetensors")
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6)  # equal in math; rounding may differ


def test_load_images_is_a_deprecated_name_of_load_dataset_images():
    with pytest.warns(
        DeprecationWarning, match=r"fit\.load_images moved to sg2_core\.training\.fit\.load_dataset_images"
    ):
        assert fit.load_images is fit.load_dataset_images
    images = fit.load_dataset_images("demo-test", 3, 32, 1)
    assert images.dtype == torch.uint8 and images.shape == (3, 1, 32, 32)


def test_an_indexed_objective_gets_its_batches_positions_and_minutes_alone_bound_a_time_budget_run(setup):
    tiny, seen = _trainer(setup), {"indices": []}
    data = torch.from_numpy(np.load(setup / "data.npy"))[:, None].float() / 127.5 - 1

    class Indexed(tiny.Tiny):
        indexed = True

        def prepare(self, num_images):
            seen["num_images"] = num_images

        def step(self, x, step, indices):
            seen["indices"].append(indices)
            torch.testing.assert_close(x, data[indices])  # the images at those positions
            return super().step(x, step)

    def train(argv):
        args = fit.parser("indexed", "", time_budget=True).parse_args(argv)
        with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
            code = fit.run(args, lambda G, device: Indexed(G, 1e-3), {"lr": 1e-3}, name="indexed")
        return code, err.getvalue()

    argv = _args(setup, setup / "indexed", 6)[1:]
    assert train(argv) == (0, "")
    assert seen["num_images"] == 24 and torch.cat(seen["indices"]).sort().values.tolist() == list(range(24))
    without_steps = argv[:2] + argv[4:]  # --run-dir DIR, then the rest without --steps
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        fit.parser("tiny", "").parse_args(without_steps)  # a schedule that needs the run's length: --steps required
    code, err = train(without_steps)
    assert code == 2 and "give --steps S (the run's length), --minutes M (this invocation's time), or both" in err
    without_steps[1] = str(setup / "timed")
    assert train([*without_steps, "--minutes", "0.001"]) == (0, "")
    info = _info(setup / "timed" / "final.safetensors")
    assert info["steps"] >= 1 and info["seconds"] >= 0
