"""Collaborative learning: the embedding network, the iterator, the cache, training, files and the methods."""

import pickle

import pytest
import torch

from inv_optim.collab import REFINE_STEPS, Collab, CollabRefine, LatentCache, iterator_loss, refine_wplus
from inv_optim.embedding import EmbeddingConfig, build_embedding, load_embedding, read_metadata, save_embedding
from inv_optim.training import CollabObjective, CollabTrainer, LossWeights
from sg2_core import Generator, GeneratorConfig, Inversion, demo
from sg2_core.methods.weights import MissingWeightsError, generator_hash


@pytest.fixture(scope="module")
def demo_like():
    """A tiny 1-channel 32 px generator: the demo domain's shape, so the fmnist identity branch applies."""
    torch.manual_seed(1)
    config = GeneratorConfig(
        resolution=32, img_channels=1, z_dim=16, w_dim=16, channel_base=128, channel_max=16, mapping_layers=2
    )
    return Generator(config).eval().requires_grad_(False)


def _render(generator, n, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ws = generator.mapping(torch.randn(n, generator.z_dim, generator=gen))
        return generator.synthesis(ws, noise_mode="const").clamp(-1, 1)


@pytest.fixture(scope="module")
def demo_like_file(demo_like, tmp_path_factory):
    torch.manual_seed(2)
    net = build_embedding(demo_like)
    with torch.no_grad():  # a non-trivial network: the zero-initialised head would only give w_avg
        net.head.weight.normal_(0, 0.05)
    return save_embedding(net, tmp_path_factory.mktemp("collab") / "net.safetensors"), net


def test_fused_network_shapes_and_starting_point(demo_like):
    net = build_embedding(demo_like)
    assert net.config.backbone == "fused" and net.identity is not None
    assert not any(p.requires_grad for p in net.identity.parameters())  # frozen identity encoder
    x = _render(demo_like, 3, 0)
    ws = net(x)
    assert ws.shape == (3, demo_like.num_ws, demo_like.w_dim)
    # zero-initialised head: an untrained network proposes the mean w everywhere (the projector's start)
    torch.testing.assert_close(ws, net.w_avg.expand_as(ws))


def test_attribute_backbone_for_other_domains(generator):
    net = build_embedding(generator)  # 16 px, 3 channels: no fmnist identity branch
    assert net.config.backbone == "attribute" and net.identity is None
    assert net(_render(generator, 2, 0)).shape == (2, generator.num_ws, generator.w_dim)
    with pytest.raises(ValueError, match="1-channel 32 px"):
        build_embedding(generator, backbone="fused")


def test_method_returns_wplus_inversion_in_one_network_call(demo_like, demo_like_file, mse_distance):
    path, _ = demo_like_file
    method = Collab(demo_like, weights=path, distance=mse_distance)
    assert method.name == "collab" and method.space == "w+" and method.refine_steps == 0
    x = _render(demo_like, 4, 3)
    calls = {"network": 0, "synthesis": 0}
    hooks = [
        method.network.register_forward_hook(lambda *a: calls.__setitem__("network", calls["network"] + 1)),
        demo_like.synthesis.register_forward_hook(lambda *a: calls.__setitem__("synthesis", calls["synthesis"] + 1)),
    ]
    try:
        inv = method(x)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"network": 1, "synthesis": 0}  # no optimisation, not even a rendering
    assert isinstance(inv, Inversion) and inv.space == "w+" and inv.latents.shape == (4, 8, 16)
    assert not inv.latents.requires_grad
    torch.testing.assert_close(inv.latents, method.network(x))
    assert inv.extras["refine_steps"].tolist() == [0] * 4


def test_refinement_improves_on_the_network(demo_like, demo_like_file, mse_distance):
    path, _ = demo_like_file
    method = CollabRefine(demo_like, weights=path, distance=mse_distance, refine_steps=8, lr=0.05)
    assert method.space == "w+"
    x = _render(demo_like, 3, 4)
    inv = method(x)
    assert inv.extras["distance"].shape == (3,)
    assert (inv.extras["distance"] < inv.extras["network_distance"]).all()
    with torch.no_grad():  # the reported distance is the returned code's
        d = mse_distance(inv.render(), x)
    torch.testing.assert_close(d, inv.extras["distance"])
    assert CollabRefine(demo_like, weights=path, distance=mse_distance).name == "collab+refine"


def test_refine_never_returns_a_worse_code(demo_like, mse_distance):
    x = _render(demo_like, 2, 5)
    start = demo_like.mapping(torch.randn(2, demo_like.z_dim))
    _, start_loss = iterator_loss(mse_distance, demo_like.synthesis(start, noise_mode="const"), x, 1.0)
    # a huge learning rate makes every update worse: the start must come back unchanged
    codes, loss, _ = refine_wplus(demo_like, x, start, steps=3, distance=mse_distance, lr=1e3)
    torch.testing.assert_close(codes, start)
    torch.testing.assert_close(loss, start_loss)
    codes, loss, _ = refine_wplus(demo_like, x, start, steps=5, distance=mse_distance, lr=0.05)
    assert (loss < start_loss).all()


def test_cache_keeps_the_best_code():
    cache = LatentCache(5, 2, 3)
    assert torch.isinf(cache.get([0, 4])[1]).all()
    first = torch.ones(2, 2, 3)
    assert cache.update([1, 3], first, torch.tensor([0.5, 0.5])).tolist() == [True, True]
    worse, better = torch.full((2, 3), 2.0), torch.full((2, 3), 3.0)
    replaced = cache.update([1, 3], torch.stack([worse, better]), torch.tensor([0.9, 0.1]))
    assert replaced.tolist() == [False, True]
    codes, loss = cache.get([1, 3])
    torch.testing.assert_close(codes, torch.stack([torch.ones(2, 3), better]))
    torch.testing.assert_close(loss, torch.tensor([0.5, 0.1]))
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        cache.get([5])


def test_training_steps_reduce_the_network_loss(generator, mse_distance):
    torch.manual_seed(0)
    g = generator.requires_grad_(False)
    net = build_embedding(g, channels=(16, 16), hidden=64)
    images = _render(g, 8, 7)
    options = dict(
        distance=mse_distance,
        iterator_steps=2,
        iterator_lr=0.05,
        lr=3e-3,
        weights=LossWeights(latent=1.0, image=1.0, perceptual=1.0),
    )
    objective = CollabObjective(net, g, **options)
    objective.prepare(8)
    indices = torch.arange(8)

    def image_loss():
        with torch.no_grad():
            return objective.network_loss(images, net(images))[0].item()

    before = image_loss()
    for step in range(12):
        record = objective.step(images, step, indices)
    assert image_loss() < 0.8 * before
    assert objective.cache.loss.isfinite().all() and record["from_cache"] > 0  # later steps restart from the cache
    assert not any(p.grad is not None for p in g.parameters())  # the generator is never trained
    with pytest.warns(DeprecationWarning, match="CollabObjective"):  # the 0.3 name: sized at construction
        old = CollabTrainer(net, g, 8, **options)
    old.step(images, indices)
    assert old.steps == 1 and old.cache.loss.isfinite().all() and old.optimizer is old.optimizers["network"]


def test_save_load_round_trip_without_pickle(demo_like, demo_like_file, monkeypatch):
    path, net = demo_like_file
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle

    def no_pickle(*args, **kwargs):
        raise AssertionError("the loader must not unpickle")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = load_embedding(path)
    assert loaded.config == net.config and isinstance(read_metadata(path)["config"], EmbeddingConfig)
    x = _render(demo_like, 2, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net.eval()(x))
    assert EmbeddingConfig.from_json(net.config.to_json()) == net.config


def test_mismatched_generator_is_a_clear_error(demo_like, demo_like_file, generator, mse_distance):
    path, _ = demo_like_file
    with pytest.raises(ValueError, match=r"trained for another generator.*resolution: trained for 32, got 16"):
        Collab(generator, weights=path, distance=mse_distance)
    other = Generator(demo_like.config).eval()  # same config, other weights: usable, but warned about
    with pytest.warns(UserWarning, match="same config but other weights"):
        Collab(other, weights=path, distance=mse_distance)


def test_missing_or_foreign_files_are_clear_errors(demo_like, tmp_path):
    with pytest.raises(FileNotFoundError, match="inv_optim.train"):
        Collab(demo_like, weights=tmp_path / "absent.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a collaborative embedding network file"):
        Collab(demo_like, weights=tmp_path / "other.safetensors")


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 3, 32, 32), r"shape \[N, 1, 32, 32\]"),
        (torch.zeros(2, 1, 32, 32, dtype=torch.uint8), "float"),
        (torch.full((1, 1, 32, 32), float("nan")), "NaN"),
        (torch.full((1, 1, 32, 32), 200.0), r"\[-1, 1\]"),
    ],
)
def test_bad_images_are_clear_errors(demo_like, demo_like_file, mse_distance, bad, message):
    method = Collab(demo_like, weights=demo_like_file[0], distance=mse_distance)
    with pytest.raises(ValueError, match=message):
        method(bad)


def test_bad_options(demo_like, demo_like_file):
    with pytest.raises(ValueError, match="refine_steps"):
        Collab(demo_like, weights=demo_like_file[0], refine_steps=-1)
    with pytest.raises(ValueError, match="needs generator"):
        Collab(None)


def test_registry_entries_build_the_methods(demo_like, demo_like_file, mse_distance):
    import tomllib
    from importlib import import_module
    from pathlib import Path

    entries = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    entries = entries["project"]["entry-points"]["sg2_toolkit.methods"]
    for name, steps in (("collab", 0), ("collab+refine", REFINE_STEPS)):
        module, attribute = entries[name].split(":")
        method = getattr(import_module(module), attribute)(
            generator=demo_like, weights=demo_like_file[0], distance=mse_distance
        )
        assert method.name == name and method.space == "w+" and method.refine_steps == steps


def test_shipped_network_is_for_the_demo_generator_and_refuses_others(generator):
    import json

    from inv_optim.collab import demo_weights_path

    path = demo_weights_path()
    if not path.is_file():
        pytest.skip("the demo network is not shipped in this tree")
    metadata = read_metadata(path)  # the metadata only: the demo generator is not needed
    assert metadata["config"].generator == json.loads(json.dumps(demo.GENERATOR_CONFIG.to_dict()))
    assert metadata["training"]["steps"] > 0
    with pytest.raises(
        MissingWeightsError,
        match=r"^collab: no weights for this generator: pass weights= \(an EmbeddingNetwork, or the file that python "
        r"-m inv_optim.train --method collab writes\) or allow_untrained=True for random weights \(tests only\); "
        r"the shipped inv_optim/assets/collab_fmnist32.safetensors is for sg2_core.demo's generator only$",
    ):
        Collab(generator)  # default weights, a 16 px generator
    assert torch.equal(Collab(demo.load_generator()).network.head.weight, load_embedding(path).head.weight)


def test_allow_untrained_builds_a_seeded_random_network(demo_like, demo_like_file, mse_distance):
    one, same, other = (
        Collab(demo_like, allow_untrained=True, weights_seed=seed, distance=mse_distance) for seed in (0, 0, 1)
    )
    assert one.network.config.generator_hash == generator_hash(demo_like)
    assert torch.equal(one.network.trunk.weight, same.network.trunk.weight)
    assert not torch.equal(one.network.trunk.weight, other.network.trunk.weight)
    assert one(_render(demo_like, 2, 0)).latents.shape == (2, demo_like.num_ws, demo_like.w_dim)
    net = demo_like_file[1]  # a network object is taken as it is
    assert Collab(demo_like, weights=net, distance=mse_distance).network is net


def test_embedding_file_is_sg2_cores_network_format_and_the_legacy_one_still_loads(demo_like, tmp_path):
    from safetensors.torch import save_file

    from sg2_core import load_networks

    net = build_embedding(demo_like, backbone="attribute", channels=(4, 4, 4), hidden=8)
    path = save_embedding(net, tmp_path / "net.safetensors", {"training": {"steps": 3}})
    loaded = load_networks(path)
    assert list(loaded) == ["network"] and loaded.extra == {"training": {"steps": 3}}
    assert read_metadata(path)["config"] == net.config and read_metadata(path)["training"] == {"steps": 3}
    again = load_embedding(path)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.equal(again(x), net.eval()(x))
    # inv-optim 0.2 wrote its own format: same tensors, config JSON under "config"
    legacy = tmp_path / "legacy.safetensors"
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        str(legacy),
        metadata={"format": "inv_optim.collab.embedding/1", "config": net.config.to_json()},
    )
    assert torch.equal(load_embedding(legacy)(x), net(x))


def test_train_command_dispatches_to_the_collab_trainer(capsys):
    from inv_optim.train import main

    assert main(["--list"]) == 0
    assert "collab" in capsys.readouterr().out
    assert main(["--method", "nope"]) == 2
    assert "'nope' is not a trainable method of inv_optim" in capsys.readouterr().err
    assert main(["--method", "collab", "--help"]) == 0
    assert "--iterator-steps" in capsys.readouterr().out


# --- python -m inv_optim.train --method collab --run-dir: snapshots and exact resume ---------------------------


@pytest.fixture(scope="module")
def run_files(demo_like, tmp_path_factory):
    """The tiny generator as a checkpoint file and five 32 px images (batch 2: an epoch is 2 steps)."""
    import numpy as np

    from sg2_core.checkpoints import native

    folder = tmp_path_factory.mktemp("collab_run")
    native.save(folder / "g.safetensors", G_ema=demo_like)
    np.save(folder / "images.npy", (np.random.default_rng(0).random((5, 32, 32)) * 255).astype(np.uint8))
    return folder


def _train(run_files, *args) -> int:
    from inv_optim.train import main

    return main(
        [
            "--method",
            "collab",
            "--generator",
            str(run_files / "g.safetensors"),
            "--data",
            str(run_files / "images.npy"),
            "--batch-size",
            "2",
            "--iterator-steps",
            "1",
            "--snap-every",
            "2",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--log-every",
            "100",
            "--val-images",
            "4",
            "--no-progress",
            *args,
        ]
    )


def _snapshot(path):
    from sg2_core import load_networks

    loaded = load_networks(path)
    return loaded["network"].state_dict(), loaded.extra["training"]


def _assert_same_state(a, b):
    (net_a, state_a), (net_b, state_b) = a, b
    assert net_a.keys() == net_b.keys() and all(torch.equal(net_a[k], net_b[k]) for k in net_a)
    for key in ("codes", "loss"):
        assert torch.equal(state_a["objective"]["cache"][key], state_b["objective"]["cache"][key])
    opt_a, opt_b = state_a["optimizers"]["network"]["state"], state_b["optimizers"]["network"]["state"]
    assert opt_a.keys() == opt_b.keys() and all(torch.equal(opt_a[k][m], opt_b[k][m]) for k in opt_a for m in opt_a[k])
    assert state_a["step"] == state_b["step"] and state_a["data_order"]["cursor"] == state_b["data_order"]["cursor"]


@pytest.fixture(scope="module")
def straight_run(run_files):
    """Six steps in one go."""
    run = run_files / "straight"
    assert _train(run_files, "--run-dir", str(run), "--steps", "6") == 0
    return run


def test_run_dir_writes_snapshots_and_the_network(straight_run):
    from inv_optim.embedding import load_embedding

    assert sorted(p.name for p in straight_run.iterdir()) == [
        "final.safetensors",
        "log.jsonl",
        *(f"samples-00000000{i}.png" for i in (2, 4, 6)),
        *(f"snapshot-00000000{i}.safetensors" for i in (2, 4, 6)),
    ]
    net, state = _snapshot(straight_run / "snapshot-000000006.safetensors")
    cache, adam = state["objective"]["cache"], state["optimizers"]["network"]
    assert state["step"] == 6 and state["options"]["batch_size"] == 2 and cache["loss"].isfinite().all()
    assert set(adam["state"]) == {str(i) for i in range(len(adam["param_groups"][0]["params"]))}
    final = load_embedding(straight_run / "final.safetensors").state_dict()
    assert all(torch.equal(final[k], net[k]) for k in net)  # the final network is the last snapshot's


def test_resume_continues_bitwise_exactly(run_files, straight_run, capsys):
    run = run_files / "resumed"
    assert _train(run_files, "--run-dir", str(run), "--steps", "3") == 0  # stops mid-epoch (cursor 2 of 4)
    _, state = _snapshot(run / "snapshot-000000003.safetensors")
    assert state["step"] == 3 and state["data_order"]["cursor"] == 2
    assert _train(run_files, "--run-dir", str(run), "--resume", "--steps", "6") == 0
    assert "resumed snapshot-000000003.safetensors at step 3" in capsys.readouterr().out
    _assert_same_state(
        _snapshot(straight_run / "snapshot-000000006.safetensors"), _snapshot(run / "snapshot-000000006.safetensors")
    )
    # the run is complete: resuming it again trains nothing and succeeds; fewer steps than it has is an error
    assert _train(run_files, "--run-dir", str(run), "--resume", "--steps", "6") == 0
    assert "nothing to train: the run in" in capsys.readouterr().err
    assert _train(run_files, "--run-dir", str(run), "--resume", "--steps", "5") == 2
    assert "has already trained 6 steps, more than --steps 5" in capsys.readouterr().err


def test_sigint_writes_a_snapshot_that_resumes_exactly(run_files, straight_run, monkeypatch, capsys):
    import os
    import signal

    step = CollabObjective.step

    def step_then_sigint(self, images, i, indices):  # Ctrl-C during step 3: the step finishes, then the run stops
        out = step(self, images, i, indices)
        if i == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    run = run_files / "interrupted"
    monkeypatch.setattr(CollabObjective, "step", step_then_sigint)
    assert _train(run_files, "--run-dir", str(run), "--steps", "6") == 130
    assert f"continue with --run-dir {run} --resume" in capsys.readouterr().err
    assert (run / "snapshot-000000003.safetensors").is_file() and not (run / "snapshot-000000004.safetensors").exists()
    monkeypatch.setattr(CollabObjective, "step", step)
    assert _train(run_files, "--run-dir", str(run), "--resume", "--steps", "6") == 0
    _assert_same_state(
        _snapshot(straight_run / "snapshot-000000006.safetensors"), _snapshot(run / "snapshot-000000006.safetensors")
    )


def test_run_dir_refusals_are_one_line_errors(run_files, straight_run, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in straight_run.iterdir()}
    cases = [  # (arguments, the error line)
        (
            ("--run-dir", str(straight_run), "--steps", "8"),
            f"error: --run-dir {straight_run} is not empty (final.safetensors, log.jsonl, samples-000000002.png, "
            "...); continue that run with --resume, or give a new or empty folder",
        ),
        (
            ("--run-dir", str(straight_run), "--resume", "--steps", "8", "--lr", "0.002"),
            "error: snapshot-000000006.safetensors was trained with other options (lr): resuming with them changed "
            "would not continue the same run; start a new run instead",
        ),
        (
            ("--run-dir", str(straight_run), "--resume", "--steps", "8", "--seed", "1", "--batch-size", "1"),
            "error: snapshot-000000006.safetensors was trained with other options (batch_size, seed)",
        ),
        (
            ("--run-dir", str(tmp_path), "--resume", "--steps", "8"),
            f"error: --resume: no snapshot-*.safetensors in {tmp_path}",
        ),
        (
            ("--run-dir", str(straight_run / "final.safetensors"), "--steps", "8"),
            f"error: --run-dir {straight_run / 'final.safetensors'} is a file, not a folder",
        ),
    ]
    for args, message in cases:
        assert _train(run_files, *args) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err
    assert _train(run_files, "--resume", "--steps", "8") == 2
    assert "give --run-dir DIR (and --resume to continue it), or --out FILE" in capsys.readouterr().err
    assert _train(run_files, "--run-dir", str(tmp_path / "new")) == 2
    assert "give --steps S (the run's length), --minutes M (this invocation's time), or both" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in straight_run.iterdir()} == before  # nothing of the run was touched


def test_minutes_alone_bound_each_invocation(run_files, capsys):
    """A time budget without --steps (how the demo network was trained): each invocation trains for its
    --minutes, and a resume continues where the last one stopped."""
    from sg2_core.training.run import snapshots

    run = run_files / "timed"
    assert _train(run_files, "--run-dir", str(run), "--minutes", "0.001") == 0
    first, path = max(snapshots(run))
    assert first >= 1 and _snapshot(path)[1]["seconds"] > 0
    assert _train(run_files, "--run-dir", str(run), "--resume", "--minutes", "0.001") == 0
    assert f"resumed {path.name} at step {first}" in capsys.readouterr().out
    assert max(snapshots(run))[0] > first
