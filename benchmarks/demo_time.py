"""How long `slimlab demo` takes on this machine, from nothing, and what it shows (issue 22).

Runs ``slimlab demo`` into a fresh directory as a user would (a new process, the command line), times the
whole command, and records its headline, its table and the gap between CE and PENCIL. The limit for the
main job is 120 s on 2 cores; the demo is a product, so this is a benchmark, not a timed test.

    python benchmarks/demo_time.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine, md_table, write  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "slimlab", "demo", "--out", str(out), "--json"], capture_output=True,
                           text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"slimlab demo failed:\n{r.stderr[-2000:]}")
        res = json.loads(r.stdout[r.stdout.index("{\n"):])  # training progress lines come before the JSON
    rows = [[n, f"{p / 1e6:.3f}M", f"{m / 1e6:.1f}M", f"{100 * a:.2f}", f"{t or 0:.2f}", f"{o or 0:.2f}"]
            for n, p, m, a, t, o in res["rows"]]
    acc = {n: a for n, _, _, a, _, _ in res["rows"]}
    gap = 100 * (acc["pencil"] - acc["ce"])
    m = machine()
    table = (f"# slimlab demo, timed\n\nCPU: {m['cpu']}, {m['threads']} threads; bf16 autocast where the CPU has it "
             f"(training), fp32 inference. `slimlab demo` from a fresh directory: **{wall:.0f} s** wall "
             f"(limit 120 s).\n\n{res['headline']}\n\n"
             + md_table(["model", "params", "MACs", "test acc, last epoch (%)", "PyTorch ms (b1, 1 thread)",
                      "ONNX Runtime ms (b1, 1 thread)"], rows)
             + f"\n\nPENCIL - CE: {gap:+.1f} points. Claim 'the demo shows PENCIL at least 10 points over CE': "
             f"**{'holds' if gap >= 10 else 'does not hold'}**. Claim 'the demo finishes in under 120 s': "
             f"**{'holds' if wall < 120 else 'does not hold'}** ({wall:.0f} s). No published figure applies (our "
             f"own goals, issue 22). Exported: {res['export'].get('from')} ({res['export'].get('why', '')}).\n")
    write("demo_time", {"wall_s": wall, "result": res, "pencil_minus_ce": gap}, table)


if __name__ == "__main__":
    main()
