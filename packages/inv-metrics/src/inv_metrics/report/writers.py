"""report.json, report.md and report.html from the report's dictionary (see ``report.build_report``)."""

from __future__ import annotations

import html
import json
import math

from .grid import data_uri, png_bytes


def _fmt(value, key: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if key.startswith("kid") or abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def _cell(values: dict, column: dict) -> str:
    """A metric's cell; one with a std (KID) reads ``mean ± std``."""
    text = _fmt(values.get(column["key"]), column["key"])
    std = values.get(column.get("std_key", ""))
    return text if std is None else f"{text} ± {_fmt(std, column['key'])}"


def table_cells(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and one row of text cells per method (metrics, timing, error)."""
    columns = report["columns"]
    header = ["method"] + [c["label"] for c in columns] + ["s / image", "images / s", "error"]
    rows = []
    for row in report["rows"]:
        values = row["metrics"]
        condition = row.get("input_condition")
        cells = [row["method"] + (f" (from {condition})" if condition else "")] + [_cell(values, c) for c in columns]
        cells += [_fmt(row["seconds_per_image"]), _fmt(row["images_per_second"]), row["error"] or ""]
        rows.append(cells)
    return header, rows


def write_json(report: dict, path) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=2, allow_nan=True, default=str)
        f.write("\n")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(report: dict, path) -> None:
    header, rows = table_cells(report)
    lines = [
        "# Inversion report",
        "",
        *(f"- {k}: {v}" for k, v in report["setup"].items()),
        "",
        "| " + " | ".join(map(_md_cell, header)) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(map(_md_cell, cells)) + " |" for cells in rows]
    iterative = [r for r in report["rows"] if r.get("per_iteration_mse")]
    if iterative:
        most = max(len(r["per_iteration_mse"]) for r in iterative)
        lines += [
            "",
            "MSE after each iteration (iterative methods):",
            "",
            "| method | " + " | ".join(str(t + 1) for t in range(most)) + " |",
            "|" + "---|" * (most + 1),
        ]
        lines += [f"| {r['method']} | " + " | ".join(_fmt(v) for v in r["per_iteration_mse"]) + " |" for r in iterative]
    lines += ["", "Notes:", *(f"- {k}: {v}" for k, v in report["notes"].items())]
    if report["problems"]:
        lines += ["", "Problems:", *(f"- {p}" for p in report["problems"])]
    if report.get("tradeoff"):
        lines += ["", f"![error against seconds per image]({report['tradeoff']['file']})"]
    lines += ["", f"![image grid]({report['grid']['file']})", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


STYLE = """body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1em}
td,th{border:1px solid #999;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
td.error{color:#a00;text-align:left;max-width:40em}img{image-rendering:pixelated;display:block}
.grid td{border:none;text-align:left;vertical-align:middle}img.chart{image-rendering:auto;max-width:100%;height:auto}"""


def write_html(report: dict, grid_rows, path, scale: int = 3, tradeoff: bytes | None = None) -> None:
    """A self-contained page: the table, the notes, the trade-off chart (``tradeoff``: its PNG) and the grid
    rows as embedded PNGs."""
    esc = html.escape
    header, rows = table_cells(report)
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Inversion report</title>",
        f"<style>{STYLE}</style></head><body><h1>Inversion report</h1><ul>",
    ]
    out += [f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in report["setup"].items()]
    out += ["</ul><table id='metrics'><thead><tr>", *(f"<th>{esc(h)}</th>" for h in header), "</tr></thead><tbody>"]
    for cells in rows:
        out.append(
            "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells[:-1]) + f"<td class='error'>{esc(cells[-1])}</td></tr>"
        )
    out.append("</tbody></table><h2>Notes</h2><ul>")
    out += [f"<li>{esc(k)}: {esc(v)}</li>" for k, v in report["notes"].items()]
    out += ["</ul>"] + (
        ["<h2>Problems</h2><ul>", *(f"<li>{esc(p)}</li>" for p in report["problems"]), "</ul>"]
        if report["problems"]
        else []
    )
    if tradeoff:
        out += [
            f"<h2>Error against time</h2><p>{esc(report['tradeoff']['caption'])}</p>",
            f"<img id='tradeoff' class='chart' alt='error against seconds per image' src='{data_uri(tradeoff)}'>",
        ]
    out.append(f"<h2>Images</h2><p>{esc(report['grid']['caption'])}</p><table class='grid'>")
    for label, images in grid_rows:
        k, _, h, w = images.shape
        out.append(
            f"<tr><td>{esc(label)}</td><td><img alt='{esc(label)}' width='{k * w * scale}' "
            f"height='{h * scale}' src='{data_uri(png_bytes(images, nrow=k))}'></td></tr>"
        )
    out.append("</table></body></html>\n")
    with open(path, "w") as f:
        f.write("\n".join(out))
