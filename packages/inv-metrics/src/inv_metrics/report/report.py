"""The report itself: run the methods on the images, measure them, write report.json/.md/.html and grid.png."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from ..fmnist_boundaries import report_edits
from . import tradeoff
from .grid import grid_rows, save_grid
from .inputs import as_source
from .metrics_table import MetricAccumulator, build_metrics, features_of
from .runner import run_method
from .writers import write_html, write_json, write_markdown

WARMUP_IMAGES = 1
EDIT_DIRECTION = "SeFa direction 0 (sg2_core.sefa over every modulated convolution)"


def _progress(total: int, desc: str, enabled: bool, unit: str = "img"):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not enabled)


def _row(result, values: dict, metric_errors: dict) -> dict:
    timing = result.timing
    if result.details.get("w_spread") is not None:
        values = {**values, "w_spread": result.details["w_spread"]}
    return {
        "method": result.name,
        "options": {k: v for k, v in result.options.items() if not callable(v)},
        "space": result.space,
        "input_condition": result.condition,
        "metrics": values,
        "metric_errors": metric_errors,
        "seconds_per_image": timing.seconds_per_image if timing else None,
        "images_per_second": timing.images_per_second if timing else None,
        "batch_seconds": timing.batch_seconds if timing else None,
        "error": result.error,
        **{k: v for k, v in result.details.items() if k.startswith("per_iteration_")},
    }


def _step_reporter(bar, min_interval: float = 0.5):
    """``on_step`` for run_method: the method's step shown on its bar (redrawn at most every ``min_interval``)."""
    last = [0.0]

    def on_step(batch: int, batches: int, info) -> None:
        now = time.perf_counter()
        if now - last[0] < min_interval and info.step + 1 < info.steps:
            return
        last[0] = now
        where = "warm-up" if batch < 0 else f"batch {batch + 1}/{batches}"
        stage = f" {info.stage}" if getattr(info, "stage", "") else ""
        bar.set_postfix_str(f"{where}{stage} step {info.step + 1}/{info.steps}", refresh=False)
        bar.refresh()

    return on_step


def run_report(
    generator,
    images,
    out_dir,
    *,
    methods=None,
    options=None,
    batch_size: int = 32,
    device=None,
    lpips_weights=None,
    inception_weights=None,
    edit_strength: float = 3.0,
    grid_images: int = 8,
    progress: bool = True,
    setup: dict | None = None,
    problems: list | None = None,
) -> dict:
    """Run ``methods`` (default: every registered one) on ``images`` with ``generator``; write the report.

    ``images``: a float tensor [N, C, R, R] in [-1, 1] or an ``ImageSource`` (read a batch at a time).
    ``options``: ``{method: {option: value}}`` passed to ``create_method``. ``setup``: extra lines for the
    report's header (where the generator and images came from). Returns the report's dictionary (what
    ``report.json`` holds); a method that fails gets a row with its error and the others still run.
    Metrics are accumulated batch by batch; only the grid's images are kept.
    """
    from sg2_core import check_images, list_methods, sefa

    start = time.perf_counter()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    generator = generator.to(device).eval().requires_grad_(False)
    source = as_source(images, device)
    n = len(source)
    if n == 0:
        raise ValueError("no images to report on")
    check_images(source.batch(0, min(n, batch_size)), generator)
    methods = list(methods) if methods is not None else list_methods()
    options = options or {}
    problems = list(problems or [])
    if not methods:
        problems.append("no inversion method is registered: install a family (e.g. inv-optim) or register one")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    c, r = generator.img_channels, generator.img_resolution
    metrics, notes = build_metrics(
        c, r, lpips_weights=lpips_weights, inception_weights=inception_weights, device=device, num_images=n
    )
    input_features = features_of(metrics, source.batches(batch_size))
    notes["timing"] = (
        f"one untimed warm-up call on {WARMUP_IMAGES} image(s) per method, then each batch timed "
        "from the method call to its rendered reconstruction (device synchronised)"
    )
    direction = sefa(generator).vectors[0].to(device)
    notes["edit"] = f"{EDIT_DIRECTION}, strength {edit_strength}, applied to every W+ entry"
    grid_edits = {label: (d.to(device), s) for label, (d, s) in report_edits(generator).items()}
    if grid_edits:
        notes["InterFaceGAN edit"] = (
            f"the grid's {', '.join(grid_edits)} rows: the edit along the demo's InterFaceGAN boundary (a linear SVM in "
            "W between the Fashion-MNIST classifier's top and bottom 2% of 20000 samples by class-logit difference; "
            "inv_metrics.fmnist_boundaries), shown on the grid's images only"
        )

    edit_metrics = [m for m in metrics if not m.per_image and m.key.startswith("fid")][:1]  # the domain's FID
    if edit_metrics:
        notes["edit FID"] = (
            f"{edit_metrics[0].label} of every image edited ({EDIT_DIRECTION}, strength "
            f"{edit_strength}) against the inputs: how well edits stay in the domain"
        )
    notes["image-to-image"] = (
        "a method with an input condition (e.g. 'edges') is given that map of each image "
        "(sg2_core.methods.conditions, made before the timed span) and scored against the image"
    )
    notes["W+ spread"] = (
        "mean over images of the mean over layers of ||w_l - mean_l w||: 0 for one w repeated "
        "(W), larger the further the codes leave W"
    )
    results, rows = [], []
    with _progress(len(methods), "methods", progress, unit="method") as outer:
        for name in methods:
            outer.set_postfix_str(name)
            accumulator = MetricAccumulator(metrics, input_features)
            edited = MetricAccumulator(edit_metrics, input_features) if edit_metrics else None
            with _progress(n, name, progress) as bar:
                result = run_method(
                    name,
                    generator,
                    source,
                    batch_size=batch_size,
                    options=options.get(name, {}),
                    direction=direction,
                    edit_strength=edit_strength,
                    edit_count=grid_images,
                    warmup_images=WARMUP_IMAGES,
                    progress=bar,
                    on_batch=accumulator.add,
                    on_step=_step_reporter(bar) if progress else None,
                    on_edits=edited.add if edited is not None else None,
                    iteration_metrics=[m for m in metrics if m.key in tradeoff.PANEL_KEYS],
                    grid_edits=grid_edits,
                )
            values, metric_errors = accumulator.result() if result.error is None else ({}, {})
            if edited is not None and result.error is None:
                edit_values, edit_errors = edited.result()
                values.update({f"edit_{k}": v for k, v in edit_values.items()})
                metric_errors.update({f"edit_{k}": v for k, v in edit_errors.items()})
            results.append(result)
            rows.append(_row(result, values, metric_errors))
            outer.update(1)

    shown = grid_rows(source.batch(0, grid_images), results, grid_images)
    label_width = save_grid(shown, out_dir / "grid.png")
    report = {
        "setup": {
            **(setup or {}),
            "images": (setup or {}).get("images", f"{n} images"),
            "shape": f"{n} x {c} x {r} x {r}",
            "methods": ", ".join(methods),
            "batch size": batch_size,
            "device": str(device),
            "torch": torch.__version__,
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        },
        "columns": [
            {
                "key": m.key,
                "label": m.label,
                "network": m.network,
                "higher_is_better": m.higher_is_better,
                **({"std_key": f"{m.key}_std"} if m.std else {}),
            }
            for m in metrics
        ]
        + [
            {"key": f"edit_{m.key}", "label": f"edit {m.label}", "network": m.network, "higher_is_better": False}
            for m in edit_metrics
        ]
        + [{"key": "w_spread", "label": "W+ spread", "network": "latents", "higher_is_better": False}],
        "rows": rows,
        "notes": notes,
        "problems": problems,
        "num_images": n,
        "edit": {
            "direction": EDIT_DIRECTION,
            "strength": edit_strength,
            "grid_edits": [{"label": label, "strength": s} for label, (_, s) in grid_edits.items()],
        },
        "grid": {
            "file": "grid.png",
            "rows": [label for label, _ in shown],
            "images_per_row": len(shown[0][1]),
            "label_width": label_width,
            "caption": f"first {len(shown[0][1])} images: inputs, then per method its reconstructions and "
            f"the edit ({EDIT_DIRECTION}, strength {edit_strength})"
            + (f", then the InterFaceGAN edit ({', '.join(grid_edits)})" if grid_edits else "")
            + "; an image-to-image method's "
            "condition maps (made from the inputs) before its outputs, and a method's extra "
            "renderings (e.g. stylised) after them",
        },
    }
    chart = tradeoff.tradeoff_png(report)
    (out_dir / tradeoff.FILE).unlink(missing_ok=True)  # no stale chart when nothing can be drawn
    if chart:
        (out_dir / tradeoff.FILE).write_bytes(chart)
    report["tradeoff"] = (
        {"file": tradeoff.FILE, "caption": tradeoff.CAPTION, "panels": [c["key"] for c in tradeoff.panels(report)]}
        if chart
        else None
    )
    report["wall_seconds"] = time.perf_counter() - start
    write_json(report, out_dir / "report.json")
    write_markdown(report, out_dir / "report.md")
    write_html(report, shown, out_dir / "report.html", tradeoff=chart)
    return report
