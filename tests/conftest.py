import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SLIMLAB_CACHE", "off")
torch.set_num_threads(min(2, os.cpu_count() or 1))

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg"


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None,
            fresh_process: bool = False):
    """``slimlab ARGS`` -> a CompletedProcess (text mode). In this process by default (a new Python process costs
    ~3 s of imports, and the suite calls the CLI ~90 times), with the working directory, environment, sys.path,
    imported modules, allowed modules and torch's threads restored afterwards; an exception that escapes
    ``main`` becomes exit 1 with its traceback on stderr, as in a process. ``fresh_process=True`` (or
    SLIMLAB_TEST_SUBPROCESS=1) runs ``python -m slimlab`` for what only a new process shows."""
    if fresh_process or os.environ.get("SLIMLAB_TEST_SUBPROCESS"):
        e = {**os.environ, **(env or {})}
        return subprocess.run([sys.executable, "-m", "slimlab", *args], capture_output=True, text=True, cwd=cwd,
                              timeout=timeout, env=e)
    return _run_in_process(list(args), cwd, env or {})


def _run_in_process(argv: list[str], cwd: Path | None, env: dict):
    import contextlib
    import io
    import traceback

    from slimlab.cli.main import main
    from slimlab.models import registry

    saved = (os.getcwd(), dict(os.environ), list(sys.path), set(sys.modules), set(registry._ALLOWED),
             torch.get_num_threads())
    out, err = io.StringIO(), io.StringIO()
    try:
        if cwd is not None:
            os.chdir(cwd)
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as e:  # argparse: --help, usage errors
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
            except Exception:
                traceback.print_exc()
                rc = 1
    finally:
        os.chdir(saved[0])
        os.environ.clear()
        os.environ.update(saved[1])
        sys.path[:] = saved[2]
        installed = (sys.prefix, sys.base_prefix, str(ROOT / "src"))
        for name in set(sys.modules) - saved[3]:
            f = getattr(sys.modules[name], "__file__", None) or ""
            if f and not f.startswith(installed):  # a user's module: the next call imports it afresh, as a process
                del sys.modules[name]  # would (installed packages stay: some cannot be imported twice)
        registry._ALLOWED.clear()
        registry._ALLOWED.update(saved[4])
        torch.set_num_threads(saved[5])
    return subprocess.CompletedProcess(["slimlab", *argv], rc, out.getvalue(), err.getvalue())


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    """A tiny image-folder tree: 3 classes, colour and grayscale PNGs of two sizes."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    root = tmp_path / "tiny"
    for split, n in (("train", 12), ("test", 4)):
        for ci, cls in enumerate(("cat", "dog", "emu")):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                size = 20 if i % 2 else 24
                arr = (torch.rand(size, size, 3, generator=g) * 80 + ci * 80).to(torch.uint8).numpy()
                im = Image.fromarray(arr)
                if i % 3 == 0:
                    im = im.convert("L")
                im.save(d / f"{i:03d}.png")
    return root


class ListLoader:
    """A loader over fixed batches (dicts of "image", "target", "index"): what ``engine.fit`` needs of one."""

    def __init__(self, batches: list[dict]):
        self.batches = batches

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def load_bench_script(name: str):
    """benchmarks/NAME.py as a module (the scripts are not a package; benchmarks/ goes on the path for _util)."""
    import importlib.util

    bench = ROOT / "benchmarks"
    if str(bench) not in sys.path:
        sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load_bench():
    """``load_bench("noisy_cifar")``: the script benchmarks/noisy_cifar.py as a module."""
    return load_bench_script
