"""``slimlab report RUN [RUN ...]``: one self-contained HTML page (plots embedded) or Markdown.

Sections: a table of every run; training curves; accuracy against MACs and against latency; the
noise transition matrix injected next to the one PENCIL learned; the most suspicious images with
given and corrected labels; channels kept per layer of pruned models. The HTML page has no scripts
and no external resources: every image is an embedded PNG.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slimlab.config import TrainConfig, from_dict, load_yaml, read_json_object
from slimlab.engine import load_checkpoint
from slimlab.errors import SlimlabError
from slimlab.io import atomic_write_bytes, atomic_write_text, figure_png, pyplot, read_jsonl
from slimlab.losses import keeps_label_variables
from slimlab.tasks.common import prepare_data


def _load_run(path: str | Path) -> dict:
    d = Path(path)
    if d.is_file():
        d = d.parent
    if not (d / "summary.json").is_file():
        raise SlimlabError(f"not a finished run directory (no summary.json): {d}")
    run = {"dir": d, "name": d.name, "summary": _numbers_only(read_json_object(d / "summary.json"))}
    run["metrics"] = [m for m in read_jsonl(d / "metrics.jsonl") if isinstance(m, dict) and _is_num(m.get("epoch"))]
    run["config"] = _config_of(d)
    for key, fname in (("noise", "noise.json"), ("issues", "label_issues.json")):
        f = d / fname
        run[key] = read_json_object(f) if f.is_file() else None
    for key, fname in (("issues_png", "label_issues.png"), ("channels_png", "channels.png")):
        run[key] = d / fname if (d / fname).is_file() else None
    return run




def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


# summary fields the report computes with: a value of another type (a string, a list) is shown as missing
_NUMERIC = ("test_acc", "best_val_acc", "params", "macs", "wall_s")


def _numbers_only(s: dict) -> dict:
    return {k: (v if k not in _NUMERIC or _is_num(v) else None) for k, v in s.items()}


def _config_of(d: Path) -> dict:
    """The run's config.yaml as a mapping ({} when absent or unreadable: the report only reads labels from it)."""
    try:
        return load_yaml(d / "config.yaml") if (d / "config.yaml").is_file() else {}
    except SlimlabError:
        return {}


def curves_png(runs: list[dict]) -> bytes | None:
    runs = [r for r in runs if r["metrics"]]
    if not runs:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    for r in runs:
        loss = [(m["epoch"], m["train_loss"]) for m in r["metrics"] if _is_num(m.get("train_loss"))]
        if loss:
            ax[0].plot(*zip(*loss), label=_plain(r["name"]))
        pts = [(m["epoch"], 100 * m["val_acc"]) for m in r["metrics"] if _is_num(m.get("val_acc"))]
        if pts:
            ax[1].plot(*zip(*pts), label=_plain(r["name"]))
    ax[0].set(xlabel="epoch", ylabel="training loss")
    ax[1].set(xlabel="epoch", ylabel="validation accuracy (%)")
    if ax[1].lines:
        ax[1].legend(fontsize=7)
    else:  # runs trained without a validation split
        ax[1].text(0.5, 0.5, "no validation split", ha="center", va="center", transform=ax[1].transAxes)
    fig.tight_layout()
    return figure_png(fig)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (lower or equal cost and higher or equal accuracy, one
    strictly), sorted by cost: the accuracy-cost Pareto front."""
    front = [i for i, (c, a) in enumerate(points)
             if not any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for c2, a2 in points)]
    return sorted(front, key=lambda i: points[i][0])


def _lat(r: dict) -> tuple[float | None, str]:
    """A run's batch-1 latency and which runtime measured it (ONNX Runtime, the deployment path, first)."""
    lat = r["summary"].get("latency_ms") or {}
    if lat.get("onnx_b1"):
        return lat["onnx_b1"], "ONNX Runtime"
    return lat.get("torch_b1"), "PyTorch"


def tradeoff_png(runs: list[dict], exported: str | None = None) -> bytes | None:
    """Accuracy against MACs and against batch-1 latency (with its p10-p90 bar), the Pareto front of each as a
    line, the exported model as a star."""
    pts = [r for r in runs if r["summary"].get("macs") and r["summary"].get("test_acc") is not None]
    if not pts:
        return None
    plt = pyplot()
    with_lat = [r for r in pts if _lat(r)[0]]
    fig, axes = plt.subplots(1, 2 if with_lat else 1, figsize=(11 if with_lat else 5.5, 4.0), squeeze=False)
    panels = [(axes[0][0], pts, lambda r: r["summary"]["macs"] / 1e6, "MACs (M)")]
    if with_lat:
        runtime = _lat(with_lat[0])[1]
        panels.append((axes[0][1], with_lat, lambda r: _lat(r)[0], f"latency, batch 1, {runtime} (ms)"))
    for ax, rs, cost, xlabel in panels:
        xy = [(cost(r), 100 * r["summary"]["test_acc"]) for r in rs]
        for r, (x, y) in zip(rs, xy):
            star = exported is not None and str(Path(r["dir"]).resolve()) == exported
            ax.scatter([x], [y], marker="*" if star else "o", s=160 if star else 36, zorder=3,
                       color="#d62728" if star else "#3b6fb6")
            lat = r["summary"].get("latency_ms") or {}
            if "ms" in xlabel and lat.get("onnx_p10") is not None and _lat(r)[1] == "ONNX Runtime":
                ax.plot([lat["onnx_p10"], lat["onnx_p90"]], [y, y], color="#3b6fb6", lw=1)
            ax.annotate(_plain(r["name"]) + (" (exported)" if star else ""), (x, y), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
        front = pareto(xy)
        ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "--", color="#888", lw=1, label="Pareto front")
        ax.set(xlabel=xlabel, ylabel="test accuracy (%)")
        ax.legend(fontsize=8, loc="lower right")
    axes[0][0].set_title("accuracy against MACs")
    if with_lat:
        axes[0][1].set_title("accuracy against latency (median, p10-p90 bar)")
    fig.tight_layout()
    return figure_png(fig)


def learned_transition(run: dict) -> np.ndarray | None:
    """PENCIL's view of the noise: T[i, j] = fraction of samples it labels i that carry given label j."""
    last = run["dir"] / "last.pt"
    if not last.is_file():
        return None
    ck = load_checkpoint(last)
    yt = ck.get("objective", {}).get("y_tilde")
    if yt is None or run["noise"] is None:
        return None
    cfg = from_dict(TrainConfig, dict(ck["config"]), "checkpoint config")
    p = prepare_data(cfg)
    idx = p.train_idx
    corrected, given = yt.argmax(1)[idx], p.targets[idx]
    k = p.ds.num_classes
    counts = np.zeros((k, k))
    np.add.at(counts, (corrected.numpy(), given.numpy()), 1)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def transition_png(run: dict) -> bytes | None:
    if run["noise"] is None:
        return None
    try:
        injected = np.array(run["noise"].get("transition"), dtype=float)
    except (TypeError, ValueError):
        return None
    if injected.ndim != 2 or injected.shape[0] != injected.shape[1] or not np.isfinite(injected).all():
        return None
    learned = learned_transition(run)
    plt = pyplot()
    mats = [("injected: P(given label | true class)", injected)]
    if learned is not None:
        mats.append(("PENCIL: P(given label | corrected label)", learned))
    fig, axes = plt.subplots(1, len(mats), figsize=(5.6 * len(mats), 5.0), squeeze=False)
    for ax, (title, t) in zip(axes[0], mats):
        im = ax.imshow(t, vmin=0, vmax=1, cmap="viridis")
        ax.set(title=title, xlabel="given label", ylabel="class")
        ax.title.set_fontsize(10)
        for (i, j), v in np.ndenumerate(t):
            if t.shape[0] <= 12:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8 if t.shape[0] <= 10 else 7,
                        color="w" if v < 0.5 else "k")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    return figure_png(fig)


def _plain(text: str) -> str:
    """A run or class name as plain text for matplotlib: '$' would start mathtext (and fail on 'a$b')."""
    return str(text).replace("$", r"\$")


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _fmt(v, kind: str) -> str:
    if v is None or (kind in ("pct", "M", "ms") and not _is_num(v)):
        return "-"
    if kind == "pct":
        return f"{100 * v:.2f}%"
    if kind == "M":
        return f"{v / 1e6:.3f}M"
    if kind == "ms":
        return f"{v:.2f}"
    return str(v)


def _ms_spread(lat: dict, key: str) -> str:
    med, p10, p90 = lat.get(f"{key}_b1"), lat.get(f"{key}_p10"), lat.get(f"{key}_p90")
    if med is None:
        return "-"
    return f"{med:.2f} ({p10:.2f}-{p90:.2f})" if p10 is not None and p90 is not None else f"{med:.2f}"


def _val_labels(r: dict) -> str:
    """Which labels a run's validation accuracy was scored on, when they are not the true ones."""
    s, cfg = r["summary"], r.get("config") or {}
    if s.get("val_labels"):  # recorded by the run itself (prune: fine-tuning validates as its checkpoint did)
        return {"corrected": " (corrected labels)", "noisy": " (noisy labels)"}.get(s["val_labels"], "")
    if s.get("best_val_acc") is None or s.get("best_val_acc", 0) < 0 or cfg.get("clean_val"):
        return ""
    if cfg.get("labels_from"):
        return " (corrected labels)"
    return " (noisy labels)" if r["noise"] is not None or cfg.get("noise") else ""


def _round(v) -> int | None:
    return round(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def table_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = ["run", "model", "data", "loss / method", "params", "MACs", "test acc (last epoch)", "best val acc",
            "ONNX Runtime ms, b1 (p10-p90)", "PyTorch ms, b1 (p10-p90)", "time (s)"]
    rows = []
    for r in runs:
        s = r["summary"]
        lat = s.get("latency_ms") or {}
        val = (_fmt(s.get("best_val_acc"), "pct") if (s.get("best_val_acc") or 0) >= 0
               and s.get("best_on", "validation") == "validation" else "-")
        rows.append([r["name"], _fmt(s.get("model"), ""), _fmt(str(s.get("data", "")).split("/")[-1], ""),
                     _fmt(s.get("method") or s.get("loss"), ""), _fmt(s.get("params"), "M"), _fmt(s.get("macs"), "M"),
                     _fmt(s.get("test_acc"), "pct"), val + _val_labels(r), _ms_spread(lat, "onnx"),
                     _ms_spread(lat, "torch"), _fmt(_round(s.get("wall_s")), "")])
    return head, rows


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2733}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #dde3ea}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #dde3ea;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f6f9}img{max-width:100%;display:block;margin:.6em 0}
.note{color:#5b6875;font-size:.85em}.lead{font-size:1.05em;background:#eef4fb;padding:.5em .8em}"""


def _figures(runs: list[dict], exported: str | None = None) -> list[tuple[str, str, bytes | None]]:
    """(section title, slug, PNG) of every figure of the report."""
    figures: list[tuple[str, str, bytes | None]] = [
        ("Training curves", "curves", curves_png(runs)),
        ("Accuracy against MACs and latency: the Pareto front", "tradeoff", tradeoff_png(runs, exported)),
    ]
    learned = [r for r in runs if r["noise"] is not None and keeps_label_variables(r["summary"].get("loss", ""))]
    for r in runs:
        if r in learned:
            figures.append((f"Noise transition: injected vs learned by PENCIL ({r['name']})", f"transition-{r['name']}",
                            transition_png(r)))
        elif r["noise"] is not None and not learned:
            figures.append((f"Injected noise transition ({r['name']})", f"transition-{r['name']}", transition_png(r)))
    for r in runs:
        if r["issues_png"]:
            iss = r["issues"] or {}
            figures.append((f"Most suspicious labels ({r['name']}; precision "
                            f"{_fmt(iss.get('precision'), 'pct')}, recall {_fmt(iss.get('recall'), 'pct')})",
                            f"issues-{r['name']}", r["issues_png"].read_bytes()))
    plans: dict[str, list[dict]] = {}  # one chart per distinct pruned architecture
    for r in runs:
        if r["channels_png"]:
            plans.setdefault(json.dumps(r["summary"].get("channels"), sort_keys=True), []).append(r)
    for group in plans.values():
        names = ", ".join(r["name"] for r in group)
        same = " (the same channels)" if len(group) > 1 else ""
        figures.append((f"Channels kept per layer ({names}){same}", f"channels-{group[0]['name']}",
                        group[0]["channels_png"].read_bytes()))
    return figures


# what marks a file as a slimlab report: only such a file (and its figures) is replaced
MARK_HTML = '<meta name="generator" content="slimlab report">'
MARK_MD = "<!-- slimlab report -->"


def _ours(out: Path) -> bool:
    try:
        with open(out, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return MARK_HTML in head or head.startswith(MARK_MD)


def _check_out(out: Path, figure_names: list[str]) -> None:
    """Refuse to replace a file slimlab did not write: ``out`` unless it is a slimlab report, and a figure's name
    beside it unless ``out`` is one (its figures are then its own)."""
    if out.is_symlink() or out.is_dir():
        raise SlimlabError(f"report: {out} is a link or a folder; choose another --out")
    ours = out.exists() and _ours(out)
    if out.exists() and not ours:
        raise SlimlabError(f"report: {out} exists and is not a slimlab report: choose another --out")
    taken = [n for n in figure_names if (out.parent / n).exists() or (out.parent / n).is_symlink()]
    if taken and not ours:
        raise SlimlabError(f"report: {out.parent / taken[0]} exists and is not this report's: choose another --out")


def _markdown(out: Path, title: str, head: list[str], rows: list[list[str]], figures, lead: str = "") -> None:
    lines = [MARK_MD, f"# {_md_text(title)}", ""] + ([_md_text(lead), ""] if lead else [])
    lines += ["| " + " | ".join(_md_text(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_text(c) for c in row) + " |" for row in rows]
    for sec, slug, png in figures:
        if png:
            name = f"{out.stem}-{_slug(slug)}.png"
            atomic_write_bytes(out.parent / name, png)
            lines += ["", f"## {_md_text(sec)}", "", f"![{_md_text(sec)}]({name})"]
    atomic_write_text(out, "\n".join(lines) + "\n")


def _md_text(text: str) -> str:
    """Markdown text that cannot carry raw HTML or break a table: <, >, & escaped as entities, | escaped."""
    return html.escape(str(text), quote=False).replace("|", "\\|")


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80]


def _html(title: str, head: list[str], rows: list[list[str]], figures, lead: str = "") -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    if lead:
        body.append(f'<p class="lead" id="exported">{html.escape(lead)}</p>')
    body += ['<p class="note">Accuracies on the clean test split; MACs are multiply-adds per image; latency is the '
             "median CPU time at batch 1 over timed blocks, with p10-p90 (runs profiled together are timed "
             "interleaved, on 1 thread unless profile --threads said otherwise); ONNX Runtime is the deployment path. "
             "Validation accuracy is scored on the labels named beside it.</p>", "<h2>Runs</h2><table><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    body += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows]
    body.append("</table>")
    for sec, _, png in figures:
        if png:
            body.append(f"<h2>{html.escape(sec)}</h2>{_img(png, sec)}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{MARK_HTML}<title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")


def merge_profiles(runs: list[dict], profiles: list[str | Path]) -> None:
    """Latencies measured by ``slimlab profile --runs`` (its profile.json files, or directories holding one) into
    the loaded runs' summaries, in memory: profiling never writes into the runs it measures."""
    by_dir = {str(Path(r["dir"]).resolve()): r for r in runs}
    for prof in profiles:
        f = Path(prof) / "profile.json" if Path(prof).is_dir() else Path(prof)
        if not f.is_file():
            raise SlimlabError(f"report: no profile.json at {prof}")
        try:
            rows = json.loads(f.read_text())
        except (ValueError, UnicodeDecodeError):
            raise SlimlabError(f"report: {f} is not valid JSON") from None
        for path, row in (rows.items() if isinstance(rows, dict) else []):
            run = by_dir.get(str(Path(row.get("run", path) if isinstance(row, dict) else path).resolve()))
            if run is not None and isinstance(row, dict):
                keys = (("torch_b1", "torch_ms"), ("onnx_b1", "onnx_ms"), ("torch_p10", "torch_p10_ms"),
                        ("torch_p90", "torch_p90_ms"), ("onnx_p10", "onnx_p10_ms"), ("onnx_p90", "onnx_p90_ms"))
                run["summary"]["latency_ms"] = {k: row[v] for k, v in keys if isinstance(row.get(v), (int, float))}


def exported_record(spec: str | Path) -> dict:
    """What ``slimlab export`` recorded (``model.onnx.json`` beside the file), from that file or its directory."""
    p = Path(spec)
    if p.is_dir():
        found = sorted(p.glob("*.json"))
        found = [f for f in found if f.name.endswith((".onnx.json", ".ts.pt.json"))]
        if not found:
            raise SlimlabError(f"report: no export record (*.onnx.json) in {p}")
        p = found[0]
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        raise SlimlabError(f"report: cannot read the export record {p}") from None
    if not isinstance(rec, dict) or rec.get("written_by") != "slimlab export" or not isinstance(rec.get("from"), str):
        raise SlimlabError(f"report: {p} is not an export record written by slimlab export")
    return rec


def build_report(run_dirs: list[str | Path], out: str | Path, fmt: str = "html", title: str = "slimlab report",
                 profiles: list[str | Path] | None = None, exported: str | Path | None = None) -> Path:
    """Write the report for ``run_dirs`` to ``out`` (``.html`` or ``.md``); return its path."""
    if not run_dirs:
        raise SlimlabError("report: give at least one run directory")
    if fmt not in ("html", "md"):
        raise SlimlabError(f"unknown report format '{fmt}' (html, md)")
    runs = [_load_run(r) for r in run_dirs]
    merge_profiles(runs, profiles or [])
    out = Path(out)
    lead, star = "", None
    if exported:
        rec = exported_record(exported)
        src = Path(rec["from"])
        star = str((src.parent if src.is_file() else src).resolve())
        why = rec.get("why") or "named by the user"
        lead = f"Exported {Path(star).name} as {Path(str(rec.get('path', ''))).name}: {why}."
    figures = _figures(runs, star)
    head, rows = table_rows(runs)
    _check_out(out, [f"{out.stem}-{_slug(slug)}.png" for _, slug, png in figures if png] if fmt == "md" else [])
    if fmt == "md":
        _markdown(out, title, head, rows, figures, lead)
    else:
        atomic_write_text(out, _html(title, head, rows, figures, lead))
    return out


@dataclass
class ReportConfig:
    POSITIONAL = ("runs",)
    CHOICES = {"format": ("html", "md")}

    runs: list = field(default_factory=list)  # run directories
    out: str = ""  # the report file, or a directory (default: report.html / report.md)
    format: str = "html"  # html | md
    title: str = "slimlab report"
    profiles: list = field(default_factory=list)  # profile.json files (slimlab profile --runs) with the latencies
    exported: str = ""  # the export's record (model.onnx.json) or its directory: the report names the model and why


Config = ReportConfig


def run(cfg: ReportConfig) -> dict:
    """``slimlab report``: runs compared in one HTML or Markdown page (accuracy, size, latency, curves)."""
    name = "report.md" if cfg.format == "md" else "report.html"
    out = Path(cfg.out or name)
    if out.is_dir() or not out.suffix:
        out = out / name
    return {"path": str(build_report(cfg.runs, out, cfg.format, cfg.title, cfg.profiles, cfg.exported or None))}
