import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sg2_core import demo
from sg2_core.interfacegan import main
from sg2_core.methods.directions import (
    Directions,
    apply_direction,
    ganspace,
    load_directions,
    sample_w,
    save_directions,
    sefa,
)
from sg2_core.methods.interfacegan import SKLEARN_HINT, fit_boundary, project_boundary, score_latents

pytest.importorskip("sklearn", reason=SKLEARN_HINT)


def _linear_scores(seed: int, n: int = 20000, dim: int = 128, noise: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, dim, generator=g, dtype=torch.float64)
    normal = torch.randn(dim, generator=g, dtype=torch.float64)
    normal /= normal.norm()
    return w, w @ normal + noise * torch.randn(n, generator=g, dtype=torch.float64), normal


@pytest.mark.parametrize("seed", [0, 1])
def test_a_linear_score_gives_back_its_normal(seed):
    w, scores, normal = _linear_scores(seed)
    boundary = fit_boundary(w, scores)  # the paper's defaults: 2% per class (400), 30% of them held out
    assert boundary.method == "interfacegan" and boundary.vectors.shape == (1, 128)
    torch.testing.assert_close(boundary.vectors.double().norm(dim=1), torch.ones(1, dtype=torch.float64))
    # Measured cosines 0.988-0.991 over seeds 0-2 (280 samples per class in 128 dimensions, score noise 0.1):
    # the bound leaves room for other seeds and SVM versions, and is far above a random direction's ~0.1.
    assert float(boundary.vectors[0].double() @ normal) > 0.97
    assert boundary.values.tolist() == [1.0]  # the held-out extremes are separable too
    # Float32 latents and scores give the same boundary: the fit runs in float64 either way.
    single = fit_boundary(w.float(), scores.float())
    assert float(single.vectors[0].double() @ boundary.vectors[0].double()) > 0.999


def test_the_normal_points_to_high_scores_and_nan_scores_are_left_out():
    w, scores, normal = _linear_scores(0, n=4000)
    flipped = fit_boundary(w, -scores, ratio=0.05)
    assert float(flipped.vectors[0].double() @ normal) < -0.9
    # NaN scores on the samples furthest along -normal: counted as low scores they would pull the fit.
    unscored = scores.clone()
    unscored[torch.argsort(w @ normal)[:200]] = float("nan")
    kept = ~torch.isnan(unscored)
    torch.testing.assert_close(
        fit_boundary(w, unscored, ratio=0.05).vectors, fit_boundary(w[kept], scores[kept], ratio=0.05).vectors
    )
    assert torch.isnan(fit_boundary(w, scores, ratio=0.05, validation=0).values).all()  # nothing held out


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ratio": 0.6}, "ratio must be in (0, 0.5]"),
        ({"validation": 1.0}, "validation must be in [0, 1)"),
        ({"ratio": 0.0001}, "sample more latents or raise ratio"),
    ],
)
def test_fit_refuses_what_cannot_give_a_boundary(kwargs, message):
    w, scores, _ = _linear_scores(0, n=1000)
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_boundary(w, scores, **kwargs)
    with pytest.raises(ValueError, match="one score per latent"):
        fit_boundary(w, scores[:-1])
    with pytest.raises(ValueError, match="barely vary"):
        fit_boundary(w, torch.ones(len(w)))


def _unit(v):
    return v / v.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("m", [1, 2, 3])
def test_projection_is_orthogonal_to_every_condition(m):
    g = torch.Generator().manual_seed(m)
    primal = _unit(torch.randn(64, generator=g, dtype=torch.float64))
    # Conditions correlated with the primal and with each other, as attribute boundaries are.
    conditions = _unit(primal + torch.randn(m, 64, generator=g, dtype=torch.float64))
    projected = project_boundary(primal, conditions)
    assert projected.dtype == torch.float64
    torch.testing.assert_close(projected.norm(), torch.tensor(1.0, dtype=torch.float64))
    # float64: the residual dot products are rounding of unit vectors (measured < 1e-16).
    assert (conditions @ projected).abs().max() < 1e-12
    assert float(projected @ primal) > 0  # what is left still moves the primal attribute forwards
    # The paper's closed forms for one and two conditions.
    c = conditions
    if m == 1:
        expected = primal - (primal @ c[0]) * c[0]
    elif m == 2:
        p1, p2, c12 = primal @ c[0], primal @ c[1], c[0] @ c[1]
        alpha, beta = (p1 - p2 * c12) / (1 - c12**2), (p2 - p1 * c12) / (1 - c12**2)
        expected = primal - alpha * c[0] - beta * c[1]
    else:
        expected = primal - c.T @ torch.linalg.solve(c @ c.T, c @ primal)
    torch.testing.assert_close(projected, _unit(expected))


def test_projection_in_float32_keeps_its_dtype_and_refuses_a_primal_in_the_span():
    g = torch.Generator().manual_seed(0)
    primal, condition = _unit(torch.randn(2, 128, generator=g))
    projected = project_boundary(primal, condition)
    assert projected.dtype == torch.float32
    # Float32 in, float64 inside: the result rounds once to float32, so the dot is a few float32 eps.
    assert abs(float(projected @ condition)) < 8 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(project_boundary(primal, 5 * condition), projected)  # only the span counts
    with pytest.raises(ValueError, match="lies in the span"):
        project_boundary(primal, torch.stack([primal + condition, condition]))
    with pytest.raises(ValueError, match="same w_dim"):
        project_boundary(primal, condition[:64])


def test_every_kind_of_directions_round_trips_through_the_file(tmp_path, g32):
    w, scores, _ = _linear_scores(0, n=2000, dim=g32.w_dim)
    kinds = {
        "sefa": sefa(g32, layers=["b8.conv0", "b16.conv1"], num_directions=4),
        "ganspace": ganspace(g32, n=500, num_components=3),
        "interfacegan": fit_boundary(w, scores, ratio=0.1, name="linear"),
    }
    for method, directions in kinds.items():
        path = save_directions(directions, tmp_path / f"{method}.safetensors")
        loaded = load_directions(path)
        assert isinstance(loaded, Directions)
        assert (loaded.method, loaded.layers, loaded.names, loaded.total) == (
            directions.method,
            directions.layers,
            directions.names,
            directions.total,
        )
        assert torch.equal(loaded.vectors, directions.vectors)
        torch.testing.assert_close(loaded.values, directions.values, equal_nan=True, rtol=0, atol=0)
        assert (loaded.mean is None) == (directions.mean is None)
        if directions.mean is not None:
            assert torch.equal(loaded.mean, directions.mean)
    # InterFaceGAN's own boundaries are .npy [1, w_dim]: vectors only.
    np.save(tmp_path / "official.npy", kinds["interfacegan"].vectors.numpy())
    official = load_directions(tmp_path / "official.npy")
    assert torch.equal(official.vectors, kinds["interfacegan"].vectors) and official.method == ""
    with pytest.raises(ValueError, match="directions are saved as .safetensors"):
        save_directions(kinds["sefa"], tmp_path / "sefa.npy")


def test_score_latents_scores_the_generators_images(g32):
    w = sample_w(g32, 10, seed=3)
    scores = score_latents(g32, lambda images: images.mean(dim=(1, 2, 3)), w, batch_size=4)
    with torch.no_grad():  # rendered in the same batches of 4, so the same float32 sums
        images = torch.cat([g32.synthesis(c[:, None].repeat(1, g32.num_ws, 1), noise_mode="const") for c in w.split(4)])
    assert scores.dtype == torch.float64
    assert torch.equal(scores, images.mean(dim=(1, 2, 3)).double())
    with pytest.raises(ValueError, match="one score per image"):
        score_latents(g32, lambda images: images.mean(dim=(2, 3)).repeat(1, 2), w)


def test_a_missing_scikit_learn_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "sklearn.svm", None)  # import sklearn.svm now raises ImportError
    w, scores, _ = _linear_scores(0, n=1000)
    with pytest.raises(ImportError, match=r"pip install 'sg2-core\[directions\]'"):
        fit_boundary(w, scores)
    np.save(tmp_path / "w.npy", w.numpy())
    np.save(tmp_path / "s.npy", scores.numpy())
    argv = ["fit", "--w", tmp_path / "w.npy", "--scores", tmp_path / "s.npy", "--out", tmp_path / "b.safetensors"]
    assert main(list(map(str, argv))) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {SKLEARN_HINT}"]


def _brightness(folder) -> np.ndarray:
    """A classifier of the demo's images, by hand: mean brightness of each PNG, in name order."""
    return np.array([np.asarray(Image.open(p), dtype=np.float64).mean() for p in sorted(folder.glob("*.png"))])


@pytest.mark.slow
def test_the_command_fits_a_boundary_that_moves_held_out_samples(tmp_path, capsys):
    """sample -> score -> fit -> project, as a user with their own classifier would, on the demo generator."""
    samples = tmp_path / "samples"
    assert main(["sample", "--num", "600", "--seed", "0", "--device", "cpu", "--out", str(samples)]) == 0
    G = demo.load_generator()
    w = np.load(samples / "w.npy")
    assert w.shape == (600, G.w_dim) and len(list((samples / "images").glob("*.png"))) == 600
    np.testing.assert_array_equal(w, sample_w(G, 600, seed=0).numpy())
    np.save(tmp_path / "bright.npy", _brightness(samples / "images"))
    fit = ["fit", "--w", str(samples / "w.npy"), "--scores", str(tmp_path / "bright.npy"), "--ratio", "0.1"]
    assert main([*fit, "--name", "bright", "--out", str(tmp_path / "bright.safetensors")]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    boundary = load_directions(tmp_path / "bright.safetensors")
    assert boundary.names == ("bright",) and boundary.values[0] > 0.9  # measured 1.0 (36 held out)

    # Held-out latents (another seed): +3 along the normal is brighter than -3 for nearly every image
    # (measured 63 of 64), and brighter than no edit for most (58 of 64; darkening saturates on the black
    # background: 44 of 64 get darker); on average -3 < 0 < +3 (measured -0.72 < -0.61 < -0.38).
    held_out = sample_w(G, 64, seed=1)
    normal = boundary.vectors[0]

    def brightness(strength):
        return score_latents(G, lambda x: x.mean(dim=(1, 2, 3)), apply_direction(held_out, normal, strength))

    darker, base, brighter = brightness(-3.0), brightness(0.0), brightness(3.0)
    assert (brighter > darker).float().mean() > 0.9 and (brighter > base).float().mean() > 0.8
    assert brighter.mean() > base.mean() > darker.mean()

    # Conditional: brightness that leaves SeFa's first direction alone, by fit --condition and by project.
    save_directions(sefa(G, num_directions=1), tmp_path / "sefa0.safetensors")
    condition = ["--condition", str(tmp_path / "sefa0.safetensors")]
    assert main([*fit, *condition, "--out", str(tmp_path / "fit_cond.safetensors")]) == 0
    assert (
        main(["project", str(tmp_path / "bright.safetensors"), *condition, "--out", str(tmp_path / "p.safetensors")])
        == 0
    )
    projected = load_directions(tmp_path / "p.safetensors")
    assert projected.names == ("bright | sefa0",)
    assert abs(float(projected.vectors[0] @ sefa(G, num_directions=1).vectors[0])) < 8 * torch.finfo().eps
    torch.testing.assert_close(load_directions(tmp_path / "fit_cond.safetensors").vectors, projected.vectors)
