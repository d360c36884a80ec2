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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.io import atomic_write_bytes

Size = int | tuple[int, int]


def export_onnx(model: nn.Module, path: str | Path, input_size: Size = 32, opset: int = 17, check: bool = True,
                atol: float = 1e-4, rtol: float = 1e-4, in_chans: int | None = None) -> dict:
    """Export ``model`` to ONNX at ``path``; with ``check``, the file appears only once it matches PyTorch.
    ``input_size``: a side or (height, width); ``in_chans``: the first conv's input channels unless given. The
    model is exported on the CPU in eval mode and given back on its device and in its mode."""
    with _on_cpu_in_eval(model):
        x = _example(model, input_size, in_chans, 2)
        _one_tensor(model, x)
        return _export_onnx(model, Path(path), x, opset, check, atol, rtol)


def _export_onnx(model: nn.Module, path: Path, x: torch.Tensor, opset: int, check: bool, atol: float,
                 rtol: float) -> dict:
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
            out["max_abs_diff"] = check_onnx(model, tmp, tuple(x.shape[-2:]), atol, name=path, rtol=rtol,
                                             in_chans=x.shape[1])
        atomic_write_bytes(path, tmp.read_bytes())
    return out


@contextmanager
def _on_cpu_in_eval(model: nn.Module) -> Iterator[None]:
    """``model`` on the CPU in eval mode for the export, then back where and as it was."""
    p = next(model.parameters(), None)
    device, was = (p.device if p is not None else torch.device("cpu")), model.training
    model.cpu().eval()
    try:
        yield
    finally:
        model.to(device).train(was)


def _example(model: nn.Module, size: Size, in_chans: int | None, batch: int,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """A random input batch: ``size`` a side or (height, width); channels those of the first conv unless given."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if in_chans is None:
        first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        in_chans = first.in_channels if first is not None else 3
    return torch.randn(batch, in_chans, h, w, generator=generator)


def _one_tensor(model: nn.Module, x: torch.Tensor) -> None:
    """Refuse, in one line, a model whose forward does not return one tensor (the file has one output)."""
    from slimlab.engine.fit import refuse_non_tensor

    with torch.no_grad():
        out = model(x)
    refuse_non_tensor(out, f"export needs a model whose forward returns one tensor (the logits); "
                           f"{type(model).__name__}")


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


def check_onnx(model: nn.Module, path: str | Path, input_size: Size, atol: float = 1e-4, trials: int = 3,
               name: str | Path | None = None, rtol: float = 1e-4, in_chans: int | None = None) -> float:
    """Max |ONNX Runtime - PyTorch| over random inputs (batches 1 and 5); raises above ``atol + rtol * scale``,
    ``scale`` the largest |PyTorch output| seen."""
    sess = _session(path)
    g = torch.Generator().manual_seed(0)
    worst = scale = 0.0
    for t in range(trials):
        x = _example(model, input_size, in_chans, 1 if t == 0 else 5, g)
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


def export_torchscript(model: nn.Module, path: str | Path, input_size: Size = 32, atol: float = 1e-4,
                       in_chans: int | None = None) -> dict:
    """Trace ``model`` to TorchScript at ``path`` (checked against the model), on the CPU in eval mode; the model
    is given back on its device and in its mode."""
    with _on_cpu_in_eval(model):
        x = _example(model, input_size, in_chans, 2)
        _one_tensor(model, x)
        return _export_torchscript(model, Path(path), x, atol)


def _export_torchscript(model: nn.Module, path: Path, x: torch.Tensor, atol: float) -> dict:
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
