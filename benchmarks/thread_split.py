"""Two one-thread training processes against one two-thread process, on this machine's cores (how the campaigns'
queues run: benchmarks/queues.sh). Each measurement is ``--seconds`` of ResNet-20 training steps (batch 128,
random images, bf16 autocast where the CPU has it, channels-last, SGD), after 3 warm-up steps:

- one process on 2 threads;
- one process on 1 thread;
- two 1-thread processes at once (images/s summed).

Run it on a quiet machine (no other training job). Writes benchmarks/results/thread_split.{json,md}.

    python benchmarks/thread_split.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import machine, machine_line, md_table, write  # noqa: E402


def worker(threads: int, seconds: float, model: str) -> float:
    """Images per second of training steps in this process."""
    import torch

    from slimlab.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = create_model(model).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(128, 3, 32, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,))
    amp = torch.autocast("cpu", dtype=torch.bfloat16)

    def step() -> None:
        with amp:
            loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        step()
        n += 1
    return n * 128 / (time.perf_counter() - t)


def spawn(threads: int, seconds: float, model: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--worker", str(threads), "--seconds", str(seconds),
                             "--model", model], stdout=subprocess.PIPE, text=True)


def rate(procs: list[subprocess.Popen]) -> list[float]:
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(worker(a.worker, a.seconds, a.model))
        return
    two = rate([spawn(2, a.seconds, a.model)])[0]
    one = rate([spawn(1, a.seconds, a.model)])[0]
    pair = rate([spawn(1, a.seconds, a.model), spawn(1, a.seconds, a.model)])
    data = {"args": vars(a), "two_threads": two, "one_thread": one, "pair": pair, "gain": sum(pair) / two - 1,
            "machine": machine()}
    write("thread_split", data, table(data))


def table(d: dict) -> str:
    """The measurements, with no published figure (a property of this machine) and the claim's verdict."""
    two, one, pair, gain, a = d["two_threads"], d["one_thread"], d["pair"], d["gain"], d["args"]
    rows = [["one process, 2 threads", f"{two:.0f}"], ["one process, 1 thread", f"{one:.0f}"],
            ["two 1-thread processes at once", f"{pair[0]:.0f} + {pair[1]:.0f} = {sum(pair):.0f}"]]
    return (f"# Two one-thread jobs against one two-thread job\n\n{a['model']}, batch 128, training steps for "
            f"{a['seconds']:g} s each (bf16 autocast, channels-last). {machine_line(d.get('machine'))}\n\n"
            + md_table(["setting", "images/s"], rows)
            + "\n\nNo published figure applies: this is a property of this machine's cores, not a paper's claim.\n\n"
            + "Claim (how the campaigns run, benchmarks/queues.sh): two one-thread processes train more images/s "
            + f"than one two-thread process: **{'holds' if gain > 0 else 'does not hold'}** ({100 * gain:+.0f}%). "
            + ("Run independent jobs side by side, one thread each." if gain > 0.05 else
               "Run jobs one after the other on all threads.") + "\n")

if __name__ == "__main__":
    main()
