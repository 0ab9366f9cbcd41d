"""python -m inv_encoders.train: every method trains a few steps on the demo, its file loads into the method,
e4e's schedule, discriminator and history pools (exact resume), image-to-image pSp, and bad input."""

import contextlib
import io

import pytest
import torch

from inv_encoders.train import main
from inv_encoders.training import EncoderObjective, build_encoder, encoder_from, progressive_stage
from sg2_core import create_method, demo, load_networks
from sg2_core.methods.conditions import apply_condition

TINY = [
    "--widths",
    "16",
    "32",
    "48",
    "64",
    "--batch-size",
    "4",
    "--num-images",
    "16",
    "--val-images",
    "4",
    "--threads",
    "1",
    "--no-progress",
    "--log-every",
    "1",
    "--snap-every",
    "2",
    "--lr",
    "1e-3",
]


def _train(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return code, err.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["psp", "psp-w", "e4e", "e4e-w", "restyle-e4e"])
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
        assert '"d_r1"' in log and '"w_disc"' in log
        assert ('"stage": 2.0' in log) == (method != "e4e-w")  # e4e-w: one w, no stages
    G = demo.load_generator()
    images = demo.load_test_images()[0][:2]
    method_ = create_method(
        method,
        generator=G,
        weights=run / "final.safetensors",
        **({"n_iters": 2} if method.startswith("restyle") else {}),
    )
    assert torch.isfinite(method_(images).render()).all()


@pytest.mark.parametrize("source_kind", ["psp", "e4e"])
def test_restyle_started_from_a_trained_encoder_gives_its_codes_first(source_kind):
    G = demo.load_generator()
    images = demo.load_test_images()[0][:3]
    torch.manual_seed(0)
    source = build_encoder(source_kind, G, (16, 32, 48, 64)).eval()
    net = encoder_from(f"restyle-{source_kind}", source, G).eval()
    assert net.config.in_channels == 2 * G.img_channels and net.config.pyramid
    with torch.no_grad():
        avg = G.synthesis(net.latent_avg[None], noise_mode="const").expand(3, -1, -1, -1)
        first, single = net(torch.cat([images, avg], 1)), source(images)
    # the reconstruction's channels weigh zero: the same sums as the source's, through a wider convolution; each
    # side within 0.5 eps * max|code| of a float64 run (this CPU, and capped to AVX2 and one thread), so 4 eps
    # leaves 4x over the two together
    torch.testing.assert_close(first, single, rtol=0, atol=4 * torch.finfo(torch.float32).eps * single.abs().max())
    restyle = create_method(f"restyle-{source_kind}", generator=G, weights=net, n_iters=2)(images)
    assert restyle.extras["reconstructions"].shape[1] == 2 and torch.isfinite(restyle.latents).all()
    with pytest.raises(ValueError, match="cannot start from a psp one"):
        encoder_from("restyle-e4e", build_encoder("psp", G, (16, 32, 48, 64)), G)


def test_e4e_schedule():
    assert [progressive_stage(s, 10, 5, 8) for s in (0, 9, 10, 14, 15, 40, 1000)] == [0, 0, 1, 1, 2, 7, 7]


def test_bad_input_names_the_problem(tmp_path):
    code, err = _train("--method", "psp", "--steps", "1", "--run-dir", str(tmp_path / "a"), *TINY)
    assert code == 0, err
    G = demo.load_generator()
    with pytest.raises(ValueError, match="holds a pSp encoder, not a e4e one"):
        create_method("e4e", generator=G, weights=tmp_path / "a" / "final.safetensors")
    code, err = _train(
        "--method",
        "psp",
        "--steps",
        "1",
        "--run-dir",
        str(tmp_path / "b"),
        *TINY,
        "--id-weights",
        str(tmp_path / "missing-arcface.pth"),
    )
    assert code != 0 and "missing-arcface.pth" in err
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    code, err = _train(
        "--method", "restyle-psp", "--steps", "1", "--init-from", str(tmp_path / "a" / "final.safetensors"), *TINY
    )
    assert code == 2 and "the architecture comes from the --init-from file" in err
    code, err = _train("--method", "nope", "--steps", "1")
    assert code == 2 and "not a trainable method of inv_encoders" in err


@pytest.mark.slow
def test_psp_edges_trains_on_edge_maps_and_its_file_loads(tmp_path):
    code, err = _train("--method", "psp-edges", "--steps", "2", "--run-dir", str(tmp_path / "run"), *TINY)
    assert code == 0, err
    final = tmp_path / "run" / "final.safetensors"
    assert load_networks(final).extra["training"]["condition"] == "edges"
    G = demo.load_generator()
    images = demo.load_test_images()[0][:3]
    method = create_method("psp-edges", generator=G, weights=final)
    edges = apply_condition("edges", images)
    with torch.no_grad():  # the method reads the edge map as it is: the encoder on it, then G
        expected = G.synthesis(method.net(edges), noise_mode="const")
    torch.testing.assert_close(method(edges).render(), expected, rtol=0, atol=1e-5)
    assert method.input_channels == 1
    with pytest.raises(ValueError, match=r"images must have shape \[N, 1, 32, 32\] with N >= 1, got \[3, 3, 32, 32\]"):
        method(edges.repeat(1, 3, 1, 1))
    # a file trained on edge maps is not a plain pSp, nor the other way round
    with pytest.raises(ValueError, match="holds an encoder trained on 'edges' maps, this method takes images"):
        create_method("psp", generator=G, weights=final)
    code, err = _train("--method", "psp", "--steps", "1", "--run-dir", str(tmp_path / "plain"), *TINY)
    assert code == 0, err
    with pytest.raises(ValueError, match="holds an encoder trained on images, this method takes 'edges' maps"):
        create_method("psp-edges", generator=G, weights=tmp_path / "plain" / "final.safetensors")


def test_psp_edges_trains_and_validates_on_the_conditioned_images():
    """One step's loss and the validation's reconstruction: the encoder reads edges(x), the losses compare
    G's output with x itself."""
    G = demo.load_generator()
    x = demo.load_test_images()[0][:4]
    torch.manual_seed(0)
    encoder = build_encoder("psp", G, (16, 32, 48, 64))
    seen = []
    loss = lambda out, images: seen.append(images) or ((out - images).square().mean(), {})  # noqa: E731
    objective = EncoderObjective("psp", G, encoder, loss, condition="edges")
    with torch.no_grad():
        expected = G.synthesis(encoder(apply_condition("edges", x)), noise_mode="const")
        torch.testing.assert_close(objective.reconstruct(x), expected, rtol=0, atol=0)
        plain = G.synthesis(encoder(x), noise_mode="const")
    assert (plain - expected).abs().amax() > 1e-3  # the condition matters
    out = objective.step(x, 0)
    torch.testing.assert_close(out["loss"], (expected - x).square().mean(), rtol=1e-5, atol=0)
    assert torch.equal(seen[-1], x)


E4E_POOL = [
    "--method",
    "e4e",
    "--progressive-start",
    "1",
    "--progressive-every",
    "1",
    "--r1-every",
    "2",
    "--w-pool-size",
    "6",
]


@pytest.mark.slow
def test_e4e_with_history_pools_resumes_exactly(tmp_path):
    code, err = _train(*E4E_POOL, "--steps", "4", "--run-dir", str(tmp_path / "once"), *TINY)
    assert code == 0, err
    snapshot = load_networks(tmp_path / "once" / "snapshot-000000002.safetensors")
    pools = snapshot.extra["training"]["objective"]["pools"]
    assert pools["real"]["codes"].shape == pools["fake"]["codes"].shape == (6, 128)  # 2 steps x 4 fill 6
    code, err = _train(*E4E_POOL, "--steps", "2", "--run-dir", str(tmp_path / "twice"), *TINY)
    assert code == 0, err
    code, err = _train(*E4E_POOL, "--steps", "4", "--run-dir", str(tmp_path / "twice"), "--resume", *TINY)
    assert code == 0, err
    once, twice = (load_networks(tmp_path / run / "snapshot-000000004.safetensors") for run in ("once", "twice"))
    for name in ("encoder", "discriminator"):
        a, b = once[name].state_dict(), twice[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    a, b = (s.extra["training"]["objective"]["pools"] for s in (once, twice))
    assert all(torch.equal(a[k]["codes"], b[k]["codes"]) for k in a)
    code, err = _train(*E4E_POOL[:-1], "-1", "--steps", "1", "--run-dir", str(tmp_path / "bad"), *TINY)
    assert code == 2 and "--w-pool-size must be >= 0 (0: no history pools), got -1" in err
    assert not (tmp_path / "bad").exists()
