"""The report's image grid: a row of inputs, then per method a row of reconstructions and a row of edits."""

from __future__ import annotations

import base64
import io

import torch


def grid_rows(inputs: torch.Tensor, results, count: int) -> list[tuple[str, torch.Tensor]]:
    """``[(label, images [k, C, R, R])]``; methods that failed or returned no edit are left out."""
    k = min(count, len(inputs))
    rows = [("inputs", inputs[:k])]
    for r in results:
        if r.reconstructions is None:
            continue
        rows.append((f"{r.name}: reconstruction", r.reconstructions[:k]))
        if r.edits is not None and len(r.edits) >= k:
            rows.append((f"{r.name}: edit", r.edits[:k]))
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


def save_grid(rows: list[tuple[str, torch.Tensor]], path) -> None:
    """Every row stacked into one PNG: ``len(rows) * R`` px high, ``k * R`` px wide."""
    k = len(rows[0][1])
    with open(path, "wb") as f:
        f.write(png_bytes(torch.cat([images for _, images in rows]), nrow=k))
