"""python -m inv_metrics.report end to end on a tiny random generator, with methods registered here."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import sg2_core
from inv_metrics.report import run_report
from inv_metrics.report.__main__ import main
from sg2_core import Generator, GeneratorConfig, Inversion

RES, N, BATCH = 16, 6, 4


class MeanW(sg2_core.Method):
    """Every image inverted to the generator's mean w (its reconstruction is computable independently)."""

    space, name = "w", "mean-w"
    demo_options = {"scale": 2.0}

    def __init__(self, generator=None, *, scale: float = 1.0, **options):
        super().__init__(generator, **options)
        self.scale = scale

    def invert(self, images, init):
        w = self.generator.mapping.w_avg.to(images.device)
        return Inversion(w.expand(len(images), -1).clone(), "w", self.generator)


class Explode(sg2_core.Method):
    """Fails when built."""

    space, name = "w", "test-explode"

    def __init__(self, generator=None, **options):
        raise RuntimeError("kaboom: this method always fails")


def per_image_mse(x, y):  # a distance for sg2-w that works at 16 px (no pretrained network)
    return (x - y).square().flatten(1).mean(dim=1)


@pytest.fixture(scope="module")
def methods():
    sg2_core.register_method("test-mean-w", replace=True)(MeanW)
    sg2_core.register_method("test-explode", replace=True)(Explode)
    yield
    sg2_core.methods.registry.unregister_method("test-mean-w")
    sg2_core.methods.registry.unregister_method("test-explode")


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = Generator(
        GeneratorConfig(
            z_dim=16, w_dim=16, resolution=RES, img_channels=1, mapping_layers=2, channel_base=64, channel_max=16
        )
    )
    with torch.no_grad():
        g.mapping.w_avg.copy_(g.mean_w(200))
    return g.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def images(generator):
    with torch.no_grad():
        z = torch.randn(N, 16, generator=torch.Generator().manual_seed(1))
        return generator.synthesis(generator.mapping(z), noise_mode="const").clamp(-1, 1)


HAS_SG2_W = "sg2-w" in sg2_core.list_methods()


@pytest.fixture(scope="module")
def report(methods, generator, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    names = ["test-mean-w", "test-explode", "no-such-method"] + (["sg2-w"] if HAS_SG2_W else [])
    options = {"sg2-w": {"steps": 4, "w_avg_samples": 64, "distance": per_image_mse}}
    return out, run_report(generator, images, out, methods=names, options=options, batch_size=BATCH, progress=False)


def test_rows_errors_and_columns(report):
    _, rep = report
    rows = {r["method"]: r for r in rep["rows"]}
    assert list(rows)[:3] == ["test-mean-w", "test-explode", "no-such-method"]
    assert "kaboom" in rows["test-explode"]["error"] and rows["test-explode"]["metrics"] == {}
    assert "unknown method 'no-such-method'" in rows["no-such-method"]["error"]
    ok = rows["test-mean-w"]
    assert ok["error"] is None and set(ok["metrics"]) == {"mse", "psnr", "ssim", "w_spread"}
    assert ok["metrics"]["w_spread"] == 0  # one w for every layer
    assert ok["seconds_per_image"] > 0 and ok["seconds_per_image"] * ok["images_per_second"] == pytest.approx(1)
    assert len(ok["batch_seconds"]) == 2  # 6 images in batches of 4
    labels = [c["label"] for c in rep["columns"]]
    assert labels == ["MSE (L2 on [-1,1])", "PSNR (dB)", "SSIM", "W+ spread"]
    assert rep["notes"]["MS-SSIM"].startswith("MS-SSIM needs > 160 px")
    assert "--lpips-weights" in rep["notes"]["LPIPS (lpips-alex)"]
    assert "1x32x32" in rep["notes"]["fmnist-features"]


def test_metric_values_recomputed_independently(report, generator, images):
    import piq

    out, _ = report
    row = next(r for r in json.loads((out / "report.json").read_text())["rows"] if r["method"] == "test-mean-w")
    with torch.no_grad():
        recon = generator.synthesis(generator.mapping.w_avg.expand(N, generator.num_ws, -1), noise_mode="const")
    x01, y01 = ((recon + 1) / 2).clamp(0, 1).double(), ((images + 1) / 2).clamp(0, 1).double()
    mse = (recon - images).double().square().mean(dim=(1, 2, 3))
    psnr = -10 * torch.log10((x01 - y01).square().mean(dim=(1, 2, 3)) + 1e-8)
    ssim = piq.ssim(x01.float(), y01.float(), data_range=1.0, reduction="none")
    assert row["metrics"]["mse"] == pytest.approx(mse.mean().item(), rel=1e-5)
    assert row["metrics"]["psnr"] == pytest.approx(psnr.mean().item(), rel=1e-4)
    assert row["metrics"]["ssim"] == pytest.approx(ssim.mean().item(), rel=1e-4)


@pytest.mark.skipif(not HAS_SG2_W, reason="inv-optim (sg2-w) is not installed")
def test_projector_row(report):
    _, rep = report
    row = next(r for r in rep["rows"] if r["method"] == "sg2-w")
    assert row["error"] is None, row["error"]
    assert row["space"] == "w" and row["options"]["steps"] == 4
    assert np.isfinite(row["metrics"]["mse"]) and row["images_per_second"] > 0


def test_files_and_grid(report):
    out, rep = report
    for name in ("report.json", "report.md", "report.html", "grid.png"):
        assert (out / name).is_file(), name
    succeeded = [r for r in rep["rows"] if r["error"] is None]
    assert rep["grid"]["rows"][0] == "inputs" and len(rep["grid"]["rows"]) == 1 + 2 * len(succeeded)
    grid = np.array(Image.open(out / "grid.png"))
    label = rep["grid"]["label_width"]
    assert grid.shape == (RES * (1 + 2 * len(succeeded)), label + RES * N)
    # The label column has dark text on white in every row (one label per row).
    for row in range(1 + 2 * len(succeeded)):
        column = grid[row * RES : (row + 1) * RES, :label]
        assert column.max() == 255 and column.min() < 128, row
    md = (out / "report.md").read_text()
    assert "| test-mean-w |" in md and "kaboom" in md and "MSE (L2 on [-1,1])" in md
    assert "<table id='metrics'>" in (out / "report.html").read_text()


def test_grid_rows_content(report, images):
    out, rep = report
    grid = np.array(Image.open(out / "grid.png"))[:, rep["grid"]["label_width"] :]
    expected = sg2_core.images.to_uint8(images)[:, 0]  # first row: the inputs, left to right
    for i in range(N):
        assert np.array_equal(grid[:RES, i * RES : (i + 1) * RES], expected[i].numpy())


# ------------------------------------------------------------------------------------------- command line


def write_pngs(folder, count, size=RES, mode="L", seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"img{seed}_{i}.png")
    return folder


@pytest.fixture(scope="module")
def checkpoint(generator, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "g16.safetensors"
    sg2_core.save_checkpoint(path, sg2_core.Checkpoint(G_ema=generator))
    return path


def run_cli(*args):
    return main([*map(str, args), "--no-progress"])


def test_cli_skips_unreadable_and_mis_sized_files(methods, checkpoint, tmp_path, capsys):
    folder = write_pngs(tmp_path / "imgs", 3)
    (folder / "broken.png").write_bytes(b"not a png at all")
    write_pngs(folder / "sub", 1, size=8, seed=1)
    write_pngs(folder / "rgb", 1, mode="RGB", seed=2)
    out = tmp_path / "out"
    assert run_cli(checkpoint, "--images", folder, "--methods", "test-mean-w,test-explode", "--out", out) == 0
    rep = json.loads((out / "report.json").read_text())
    problems = "\n".join(rep["problems"])
    assert "broken.png: unreadable image" in problems
    assert "img1_0.png: it is 1x8x8" in problems and "img2_0.png: it is 3x16x16" in problems
    assert rep["num_images"] == 3
    rows = {r["method"]: r for r in rep["rows"]}
    assert rows["test-mean-w"]["error"] is None and rows["test-mean-w"]["options"] == {}  # no demo options
    assert "kaboom" in rows["test-explode"]["error"]
    err = capsys.readouterr().err.rstrip()
    assert err.splitlines()[-1] == "inv_metrics.report: 1 of 2 method(s) failed: test-explode (their rows say why)"


def test_cli_exits_1_when_no_method_produced_a_row(methods, checkpoint, tmp_path, capsys):
    folder = write_pngs(tmp_path / "imgs", 2)
    assert run_cli(checkpoint, "--images", folder, "--methods", "test-explode", "--out", tmp_path / "o") == 1
    last = capsys.readouterr().err.rstrip().splitlines()[-1]
    assert last.startswith(
        "inv_metrics.report: error: no method produced a row; all 1 failed: test-explode: RuntimeError: kaboom"
    )


@pytest.mark.parametrize(
    "mode,size,message",
    [
        ("L", 32, "the images are 1x32x32 (channels x height x width) but the generator makes 1x16x16"),
        ("RGB", 16, "the images are 3x16x16 (channels x height x width) but the generator makes 1x16x16"),
    ],
)
def test_cli_refuses_images_of_another_shape(methods, checkpoint, tmp_path, capsys, mode, size, message):
    folder = write_pngs(tmp_path / "imgs", 2, size=size, mode=mode)
    assert run_cli(checkpoint, "--images", folder, "--methods", "test-mean-w", "--out", tmp_path / "o") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_checkpoint_resolution_against_shipped_images(checkpoint, tmp_path, capsys):
    assert run_cli(checkpoint, "--out", tmp_path / "o") == 2
    assert "the shipped test images are 1x32x32" in capsys.readouterr().err


def test_cli_folder_without_usable_images(checkpoint, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"garbage")
    (folder / "b.jpg").write_bytes(b"")
    assert run_cli(checkpoint, "--images", folder, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "no usable image of the generator's size" in err and "a.png" in err


def test_cli_bad_checkpoint_and_options(checkpoint, tmp_path, capsys):
    bad = tmp_path / "g.safetensors"
    bad.write_bytes(b"\x00" * 10)
    assert run_cli(bad, "--out", tmp_path / "o") == 2
    assert f"cannot load the generator checkpoint {bad}" in capsys.readouterr().err
    folder = write_pngs(tmp_path / "imgs", 2)
    assert run_cli(checkpoint, "--images", folder, "--options", "steps=3", "--out", tmp_path / "o") == 2
    assert "expected METHOD:KEY=VALUE" in capsys.readouterr().err


class Stepper(sg2_core.Method):
    """A method with steps: reports each through ``callback``."""

    space, name = "w", "test-stepper"

    def __init__(self, generator=None, *, steps: int = 3, **options):
        super().__init__(generator, **options)
        self.steps = steps

    def invert(self, images, init):
        for step in range(self.steps):
            self.report(sg2_core.StepInfo(step=step, steps=self.steps, stage="project"))
        return MeanW(self.generator)(images)


def test_progress_per_method_step_and_only_the_grid_images_are_kept(generator, images):
    from inv_metrics.report.runner import run_method

    sg2_core.register_method("test-stepper", replace=True)(Stepper)
    try:
        seen, batches = [], []
        direction = torch.randn(generator.w_dim)
        result = run_method(
            "test-stepper",
            generator,
            images,
            batch_size=4,
            options={},
            edit_count=2,
            direction=direction,
            on_step=lambda b, n, info: seen.append((b, n, info.step, info.steps, info.stage)),
            on_batch=lambda x, y: batches.append(len(y)),
        )
    finally:
        sg2_core.methods.registry.unregister_method("test-stepper")
    assert result.error is None
    warmup = [(-1, 2, s, 3, "project") for s in range(3)]
    assert seen == warmup + [(b, 2, s, 3, "project") for b in (0, 1) for s in range(3)]
    assert batches == [4, 2]  # every reconstruction went to the metrics, batch by batch
    assert result.reconstructions.shape[0] == 2 and result.edits.shape[0] == 2  # the grid's, not all N


def test_report_reads_a_folder_a_batch_at_a_time(methods, generator, tmp_path):
    from inv_metrics.report.inputs import ImageSource, folder_images

    folder = write_pngs(tmp_path / "imgs", 5)
    source, _, _ = folder_images(folder, generator)
    assert isinstance(source, ImageSource) and len(source) == 5
    rep = run_report(generator, source, tmp_path / "o", methods=["test-mean-w"], batch_size=2, progress=False)
    assert rep["rows"][0]["error"] is None and len(rep["rows"][0]["batch_seconds"]) == 3


def test_latent_stats_measure_the_spread_and_every_iteration(generator, images):
    from inv_metrics.report.latent_stats import LatentStats
    from sg2_core import Inversion

    ws = torch.zeros(2, generator.num_ws, generator.w_dim)
    ws[0, 0, 0], ws[1, :, 1] = 2.0, 5.0  # image 0: one layer off the mean; image 1: one w repeated
    steps = torch.stack([images[:2] + 0.5, images[:2] + 0.1], dim=1)
    stats = LatentStats()
    stats.add(images[:2], Inversion(ws, "w+", generator, extras={"reconstructions": steps}))
    out = stats.result()
    L = generator.num_ws
    # image 0: the off layer is 2 (L-1)/L from the mean, the others 2/L
    assert out["w_spread"] == pytest.approx((2 * (L - 1) / L + (L - 1) * 2 / L) / L / 2)
    assert out["per_iteration_mse"] == pytest.approx([0.25, 0.01])


class FromLowres(sg2_core.Method):
    """An image-to-image stand-in: takes the 4x low-resolution maps, renders the mean w, shows its negative."""

    name, space, input_condition = "test-from-lowres", "w", "lowres"
    given: list = []
    shown: list = []  # what showcase was handed

    def invert(self, images, init):
        FromLowres.given.append(images.clone())
        w = self.generator.mapping.w_avg.to(images.device)
        return Inversion(w.expand(len(images), -1).clone(), "w", self.generator)

    def showcase(self, inversion, images=None):
        FromLowres.shown.append(images.clone())
        return {"negative": -inversion.render(), "wrong size": torch.zeros(len(inversion), 1, 4, 4)}


def test_image_to_image_methods_get_their_condition_and_showcase_rows(methods, generator, images, tmp_path):
    from sg2_core.methods.conditions import apply_condition

    sg2_core.register_method("test-from-lowres", replace=True)(FromLowres)
    FromLowres.given.clear()
    FromLowres.shown.clear()
    try:
        rep = run_report(
            generator,
            images,
            tmp_path,
            methods=["test-mean-w", "test-from-lowres"],
            batch_size=BATCH,
            progress=False,
            grid_images=N,
        )
    finally:
        sg2_core.methods.registry.unregister_method("test-from-lowres")
    lowres = apply_condition("lowres", images)
    assert torch.equal(torch.cat(FromLowres.given[1:]), lowres)  # after the warm-up: every batch's maps
    shown = torch.cat(FromLowres.shown)  # the showcase gets what the method inverted, for the grid's images
    assert len(shown) >= N and torch.equal(shown, lowres[: len(shown)])
    mean_w, from_lowres = rep["rows"]
    assert from_lowres["input_condition"] == "lowres" and mean_w["input_condition"] is None
    assert from_lowres["metrics"]["mse"] == pytest.approx(mean_w["metrics"]["mse"])  # scored against the images
    assert rep["grid"]["rows"] == [
        "inputs",
        "test-mean-w: reconstruction",
        "test-mean-w: edit",
        "test-from-lowres: input (lowres)",
        "test-from-lowres: output",
        "test-from-lowres: edit",
        "test-from-lowres: negative",
    ]
    grid = np.array(Image.open(tmp_path / "grid.png"))[:, rep["grid"]["label_width"] :]
    rows = {label: grid[i * RES : (i + 1) * RES] for i, label in enumerate(rep["grid"]["rows"])}
    first = lambda x: sg2_core.images.to_uint8(x)[0, 0].numpy()  # noqa: E731
    assert np.array_equal(rows["test-from-lowres: input (lowres)"][:, :RES], first(lowres))
    recon = generator.synthesis(generator.mapping.w_avg[None].expand(1, generator.num_ws, -1), noise_mode="const")
    assert np.array_equal(rows["test-from-lowres: negative"][:, :RES], first(-recon))
    assert "test-from-lowres (from lowres)" in (tmp_path / "report.md").read_text()
