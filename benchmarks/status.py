"""Where the campaigns stand: every run directory under ``benchmarks/state`` (or the folders given), finished
(its test accuracy), in progress (its last epoch, or the layers a prune has done) or started, as a Markdown table.
Reads files only; trains nothing.

    python benchmarks/status.py                       # all of benchmarks/state
    python benchmarks/status.py benchmarks/state/bench-noisy-v3-e40 --out status.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import md_table  # noqa: E402
from slimlab.config import load_yaml  # noqa: E402
from slimlab.engine.checkpoint import read_weights_only  # noqa: E402


def run_dirs(root: Path) -> list[Path]:
    """Folders holding a run's config.yaml, in path order (a recipe's or a benchmark's, nested or not)."""
    return sorted(p.parent for p in root.rglob("config.yaml"))


def state_of(d: Path) -> tuple[str, str]:
    """(state, test accuracy) of one run directory, from its files alone."""
    if (d / "summary.json").is_file():
        s = json.loads((d / "summary.json").read_text())
        acc = s.get("test_acc")
        return "done", "" if acc is None else f"{100 * acc:.2f}"
    if (d / "prune_state.pt").is_file():
        _, st = read_weights_only(d / "prune_state.pt")
        return f"pruning: {len(st.get('kept', {}))} of {len(st.get('plan', []))} layers", ""
    lines = (d / "metrics.jsonl").read_text().splitlines() if (d / "metrics.jsonl").is_file() else []
    epochs = [json.loads(x) for x in lines if x.strip()]
    if epochs:
        total = load_yaml(d / "config.yaml").get("epochs")
        return f"epoch {epochs[-1].get('epoch')}" + (f" of {total}" if total else ""), ""
    return "started", ""


def status(roots: list[Path]) -> str:
    rows, counts = [], {}
    for root in roots:
        for d in run_dirs(root):
            state, acc = state_of(d)
            rows.append([str(d.relative_to(root.parent)), state, acc])
            kind = {"epoch": "training", "pruning:": "pruning"}.get(state.split(" ")[0], state.split(" ")[0])
            counts[kind] = counts.get(kind, 0) + 1
    head = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no runs"
    return f"{head}\n\n" + md_table(["run", "state", "test acc (%)"], rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("roots", nargs="*", default=[str(Path(__file__).parent / "state")])
    ap.add_argument("--out", default="", help="also write the table there")
    a = ap.parse_args()
    text = status([Path(r) for r in a.roots])
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
