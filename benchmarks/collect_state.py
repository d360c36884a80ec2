"""Bring the campaigns' progress from the worktrees they ran in back into this checkout, before a session ends.

Copies what ``git status`` shows new or changed under ``benchmarks/`` in each worktree (results tables and JSON,
run directories), but not lock files, temporary files of atomic writes, or the results README (kept here by hand).
Checkpoints are copied only where a later step needs them: every file of a run in progress (``--resume`` continues
it), and of finished runs only those another step loads (the noisy campaign's CE rows' ``best.pt`` and ``last.pt``:
forward correction's estimate, and the noisy-then-clean arm's start; the detector preset's seed-0 ``ce_all`` and
``pencil`` rows, both checkpoints; RotNet's pretext ``last.pt``, where its probes start; the pruning cells'
checkpoints, which their fine-tuning and latency read).

    python benchmarks/collect_state.py /work/wt3 /work/wt4          # lists what it would copy
    python benchmarks/collect_state.py /work/wt3 /work/wt4 --do
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DETECTOR_ROWS = ("symmetric0.4-ce_all-s0", "symmetric0.4-pencil-s0")  # label_detectors' cifar10k-memorise preset


def needed(path: Path) -> bool:
    """Whether a checkpoint ``path`` (a .pt file in a run directory) is worth committing."""
    run = path.parent
    if not (run / "summary.json").is_file():
        return True  # a run in progress: all of it
    if "bench-noisy" in str(run):  # CE rows: forward's estimate (best) and noisy-then-clean's start (last);
        return ("-ce-s" in run.name or run.name in DETECTOR_ROWS) and path.name in ("best.pt", "last.pt")
    if "bench-rotnet" in str(run):  # every probe and few-label run starts from the pretext's last epoch
        return run.name == "rotnet" and path.name == "last.pt"
    return "prune_whole" in str(run)


def changed(worktree: Path) -> list[str]:
    """Paths under benchmarks/ that git sees as new or modified in ``worktree``."""
    out = subprocess.run(["git", "-C", str(worktree), "status", "--porcelain", "--untracked-files=all", "benchmarks"],
                         capture_output=True, text=True, check=True).stdout
    return [line[3:] for line in out.splitlines() if line[:2] in ("??", " M", "M ", "A ", "AM", "MM")]


def plan(worktree: Path) -> list[tuple[str, bool]]:
    """(path, copied?) for every changed file of ``worktree``."""
    out = []
    for rel in changed(worktree):
        src = worktree / rel
        skip = (not src.is_file() or src.name == ".slimlab.lock" or src.name.endswith(".slimlab-tmp")
                or rel == "benchmarks/results/README.md" or (src.suffix == ".pt" and not needed(src)))
        out.append((rel, not skip))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("worktrees", nargs="+")
    ap.add_argument("--dest", default=str(ROOT))
    ap.add_argument("--do", action="store_true", help="copy (else only list)")
    a = ap.parse_args()
    for wt in map(Path, a.worktrees):
        for rel, copy in plan(wt):
            print(("copy " if copy else "skip ") + f"{wt.name}: {rel}")
            if copy and a.do:
                dst = Path(a.dest) / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(wt / rel, dst)


if __name__ == "__main__":
    main()
