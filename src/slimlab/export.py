"""Export to ONNX (checked with ONNX Runtime) and TorchScript, and ONNX Runtime latency.

``export_onnx`` writes a model with a dynamic batch dimension and verifies that ONNX Runtime's outputs
are within ``atol + rtol * max|output|`` (1e-4 each) of PyTorch's on random inputs; a larger gap raises
(a relative part, since a randomly initialised timm EfficientNet's logits reach ~230 and float32 rounding
alone differs by ~1e-2 there). Pruned and scaled models
export like any other: they are plain dense modules.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.io import atomic_write_bytes


def export_onnx(model: nn.Module, path: str | Path, input_size: int = 32, opset: int = 17, check: bool = True,
                atol: float = 1e-4, rtol: float = 1e-4) -> dict:
    """Export ``model`` to ONNX at ``path``; with ``check``, the file appears only once it matches PyTorch."""
    model = model.cpu().eval()
    x = torch.randn(2, 3, input_size, input_size)
    path = Path(path)
    # written and checked in a private folder, then put in place atomically (an exclusive, fsynced temporary file
    # beside ``path``): a failed check never replaces a good file, and no name beside it is ever followed
    with tempfile.TemporaryDirectory(prefix="slimlab-onnx-") as d:
        tmp = Path(d) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset)
        _mark_onnx(tmp)
        out = {"path": str(path), "bytes": tmp.stat().st_size}
        if check:
            out["max_abs_diff"] = check_onnx(model, tmp, input_size, atol, name=path, rtol=rtol)
        atomic_write_bytes(path, tmp.read_bytes())
    return out


MARKER = "slimlab"  # an ONNX metadata key / a TorchScript extra file: this file was written by slimlab export


def written_by_slimlab(path: str | Path) -> bool:
    """Whether ``path`` is an export slimlab wrote (it carries slimlab's marker); only such a file may be replaced
    without ``--overwrite``."""
    import zipfile

    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                return any(n.endswith(f"extra/{MARKER}.json") for n in z.namelist())
        import onnx

        m = onnx.load_model(str(path), load_external_data=False)
        return any(p.key == MARKER for p in m.metadata_props)
    except Exception:  # not an ONNX file, a broken archive, unreadable: not ours
        return False


def _mark_onnx(path: Path) -> None:
    import onnx

    m = onnx.load_model(str(path), load_external_data=False)
    entry = m.metadata_props.add()
    entry.key, entry.value = MARKER, "export"
    onnx.save_model(m, str(path))


def _session(path: str | Path, threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _finite(out, who: str, path) -> None:
    """A parity check must fail on NaN or inf: ``max(0.0, nan)`` is 0.0, so it would otherwise pass."""
    if not np.isfinite(np.asarray(out)).all():
        raise SlimlabError(f"export of {path}: the {who} outputs hold NaN or inf (the model's weights are not finite)")


def check_onnx(model: nn.Module, path: str | Path, input_size: int, atol: float = 1e-4, trials: int = 3,
               name: str | Path | None = None, rtol: float = 1e-4) -> float:
    """Max |ONNX Runtime - PyTorch| over random inputs (batches 1 and 5); raises above ``atol + rtol * scale``,
    ``scale`` the largest |PyTorch output| seen."""
    sess = _session(path)
    g = torch.Generator().manual_seed(0)
    worst = scale = 0.0
    for t in range(trials):
        x = torch.randn(1 if t == 0 else 5, 3, input_size, input_size, generator=g)
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(None, {"image": x.numpy()})[0]
        _finite(ref, "PyTorch", name or path)
        _finite(got, "ONNX Runtime", name or path)
        worst, scale = max(worst, float(np.abs(ref - got).max())), max(scale, float(np.abs(ref).max()))
    if worst > atol + rtol * scale:
        raise SlimlabError(f"ONNX export of {name or path} differs from PyTorch by {worst:.2e} (> {atol} + {rtol} x "
                           f"the largest output {scale:.3g})")
    return worst


def export_torchscript(model: nn.Module, path: str | Path, input_size: int = 32, atol: float = 1e-4) -> dict:
    model = model.cpu().eval()
    x = torch.randn(2, 3, input_size, input_size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x)
        ref, got = model(x), traced(x)
        _finite(ref.numpy(), "PyTorch", path)
        _finite(got.numpy(), "TorchScript", path)
        diff = float((got - ref).abs().max())
    if not diff <= atol:
        raise SlimlabError(f"TorchScript trace differs from the model by {diff:.2e}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.jit.save(traced, buf, _extra_files={f"{MARKER}.json": b'{"written_by": "slimlab export"}'})
    atomic_write_bytes(path, buf.getvalue())
    return {"path": str(path), "bytes": path.stat().st_size, "max_abs_diff": diff}


def onnx_latency(model: nn.Module, input_size: int = 32, batch: int = 1, warmup: int = 5, iters: int = 20,
                 threads: int | None = None, min_time_s: float = 0.5) -> dict:
    """ONNX Runtime (CPU) latency of ``model`` exported on the fly: median, p10 and p90 in ms over timed blocks
    (:func:`slimlab.profile.latency.timed`), with ``stable`` false if the spread stayed large."""
    from slimlab.profile.latency import timed

    with tempfile.TemporaryDirectory() as tmp:
        run = onnx_runners({"m": (model, input_size)}, tmp, batch, threads)["m"]
        r = timed(run, warmup=warmup, min_blocks=iters, min_s=min_time_s)
        del run  # the session goes before its file
    return {"batch": batch, **r, "iters": r["blocks"], "images_per_s": batch * 1000 / r["median_ms"],
            "threads": threads or torch.get_num_threads(), "runtime": "onnxruntime"}


def onnx_runners(models: dict[str, tuple[nn.Module, int]], folder: str | Path, batch: int = 1,
                 threads: int | None = None) -> dict:
    """One ONNX Runtime session per model (exported into ``folder``), as zero-argument callables that run it
    on a fixed random batch: for :func:`slimlab.profile.latency.timed_many`. Drop them to free the sessions."""
    runners = {}
    for name, (model, size) in models.items():
        p = Path(folder) / f"m{len(runners)}.onnx"
        export_onnx(model, p, size, check=False)
        sess = _session(p, threads)
        x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
        runners[name] = lambda sess=sess, x=x: sess.run(None, {"image": x})
    return runners


measure_onnx_latency = onnx_latency
