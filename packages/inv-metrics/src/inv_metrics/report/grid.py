"""The report's image grid: a row of inputs, then per method a row of reconstructions and a row per edit
(SeFa's, then the grid-only edits such as the demo's InterFaceGAN boundary), each labelled on its left; an image-to-image method's condition maps come before its outputs, and a
method's showcase rows (``Method.showcase``, e.g. stylised renderings) after them."""

from __future__ import annotations

import base64
import io

import torch


def grid_rows(inputs: torch.Tensor, results, count: int) -> list[tuple[str, torch.Tensor]]:
    """``[(label, images [k, C, R, R])]``; methods that failed are left out, and rows of fewer than ``k``
    images (no edit) or of another shape."""
    k = min(count, len(inputs))
    rows = [("inputs", inputs[:k])]

    def add(label, images):
        if images is not None and len(images) >= k and tuple(images.shape[1:]) == tuple(inputs.shape[1:]):
            rows.append((label, images[:k]))

    for r in results:
        if r.reconstructions is None:
            continue
        if r.condition is not None:
            add(f"{r.name}: input ({r.condition})", r.inputs)
        add(f"{r.name}: {'output' if r.condition is not None else 'reconstruction'}", r.reconstructions)
        add(f"{r.name}: edit", r.edits)
        for label, images in r.grid_edits.items():
            add(f"{r.name}: {label}", images)
        for label, images in r.showcase.items():
            add(label if label.startswith(r.name) else f"{r.name}: {label}", images)
    return rows


def png_bytes(images: torch.Tensor, nrow: int) -> bytes:
    """One PNG of ``images`` tiled ``nrow`` a row (sg2_core's uint8 conversion and tiling)."""
    from PIL import Image

    from sg2_core.images import make_grid

    array = make_grid(images.detach().cpu().float().clamp(-1, 1), nrow=nrow).permute(1, 2, 0).numpy()
    image = Image.fromarray(array[:, :, 0], "L") if array.shape[2] == 1 else Image.fromarray(array, "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _label_font(row_height: int):
    from PIL import ImageFont

    size = max(10, min(48, row_height // 3))
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable bundled font
    except TypeError:
        return ImageFont.load_default()


def save_grid(rows: list[tuple[str, torch.Tensor]], path) -> int:
    """Every row stacked into one PNG, each with its label on the left: ``len(rows) * R`` px high,
    ``label width + k * R`` px wide. Returns the label column's width."""
    from PIL import Image, ImageDraw

    k = len(rows[0][1])
    images = Image.open(io.BytesIO(png_bytes(torch.cat([images for _, images in rows]), nrow=k)))
    row_height = rows[0][1].shape[-2]
    font = _label_font(row_height)
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    width = 8 + max(int(measure.textlength(label, font=font)) for label, _ in rows)
    canvas = Image.new(images.mode, (width + images.width, images.height), 255 if images.mode == "L" else (255,) * 3)
    canvas.paste(images, (width, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (label, _) in enumerate(rows):
        draw.text(
            (4, i * row_height + row_height // 2),
            label,
            fill=0 if images.mode == "L" else (0, 0, 0),
            font=font,
            anchor="lm",
        )
    canvas.save(path, format="PNG")
    return width
