"""How each command shows its result on a terminal (``--json`` prints the result as it is)."""

from __future__ import annotations

import json
import sys


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def train(s: dict) -> None:
    init = s.get("init") or {}
    if init.get("report"):
        print(f"--init {init['from']}: {init['report']}; classifier {init['head']}")
    best = "best val" if s.get("best_on", "validation") == "validation" else "best train acc (no validation split)"
    what = "rotation test" if s.get("loss") == "rotnet" or s.get("pretext") else "test"
    at_best = s.get("test_acc_at_best_val")
    differs = at_best is not None and at_best != s.get("test_acc")
    also = f" ({_pct(at_best)} at the best epoch, best.pt)" if differs else ""
    print(f"{s.get('model')} on {s.get('data')}: {best} {_pct(s.get('best_val_acc'))}, "
          f"{what} {_pct(s.get('test_acc'))} at the last epoch{also} ({s.get('params', 0) / 1e6:.3f}M params, "
          f"{s.get('macs', 0) / 1e6:.1f}M MACs,"
          f" {s.get('images_per_s', 0):.0f} img/s, {s.get('wall_s', 0):.1f}s) -> {s.get('out')}")
    done, planned = s.get("epochs_done"), s.get("epochs")
    if isinstance(done, int) and isinstance(planned, int) and done < planned:  # --stop-after: not finished
        print(f"stopped after {done} of {planned} epochs (--stop-after): `slimlab train --resume {s.get('out')}` "
              "continues it")


def evaluate(r: dict) -> None:
    print(f"{r['model']} on {r['data']} test: {100 * r['test_acc']:.2f}% ({r['n']} images, "
          f"{r['params'] / 1e6:.3f}M params, {r['macs'] / 1e6:.1f}M MACs)")


def models(r: dict) -> None:
    print(f"{'model':22} {'family':13} {'params':>9} {'MACs':>9} {'input':>5}  description")
    for m in r["models"]:
        print(f"{m['name']:22} {m['family']:13} {m['params'] / 1e6:8.2f}M {m['macs'] / 1e6:8.1f}M "
              f"{m['input_size']:5d}  {m['doc']}")
    print("any torchvision classifier as tv:NAME (e.g. tv:resnet18), any timm model as timm:NAME (e.g. "
          "timm:resnet18), your own constructor as module:pkg.mod:callable")
    if r.get("zoo"):
        print("\ntrained checkpoints (--init zoo:NAME, slimlab prune zoo:NAME, slimlab evaluate zoo:NAME):")
        for z in r["zoo"]:
            print(f"  {z['name']:28} {z['model']:10} test {_pct(z['test_acc'])} ({z['epochs']} epochs)")


def _ms(row: dict, rt: str) -> str:
    """"median ms (p10-p90)" of a profile row's runtime ``rt`` (torch / onnx)."""
    p10, p90 = row.get(f"{rt}_p10_ms"), row.get(f"{rt}_p90_ms")
    spread = f" (p10-p90 {p10:.2f}-{p90:.2f})" if p10 is not None and p90 is not None else ""
    return f"{row[f'{rt}_ms']:.2f} ms{spread}"


def profile(r: dict) -> None:
    if "rows" in r:
        for name, row in r["rows"].items():
            onnx = (f", {_ms(row, 'onnx')} (ONNX Runtime)" if "onnx_ms" in row else "")
            print(f"{name}: {row['params'] / 1e6:.3f}M params, {row['macs'] / 1e6:.2f}M MACs, batch 1: "
                  f"{_ms(row, 'torch')} (PyTorch){onnx}" + ("" if row.get("stable", True) else
                                                            "  [unstable: the spread stayed large]"))
        if r.get("path"):
            print(f"-> {r['path']} (slimlab report --profiles {r['path']} shows it beside the runs)")
        return
    print(f"{r['model']}: {r['params'] / 1e6:.3f}M params, {r['macs'] / 1e6:.2f}M MACs at "
          f"{r['input_size']}x{r['input_size']}")
    for lat in r["latency"]:
        print(f"  PyTorch {lat['device']} batch {lat['batch']:3d}: median {lat['median_ms']:.2f} ms "
              f"(p10 {lat['p10_ms']:.2f}, p90 {lat['p90_ms']:.2f}), {lat['images_per_s']:.0f} img/s, "
              f"{lat['threads']} threads")
    for lat in r.get("onnx", []):
        print(f"  ONNX Runtime cpu batch {lat['batch']:3d}: median {lat['median_ms']:.2f} ms "
              f"(p10 {lat['p10_ms']:.2f}, p90 {lat['p90_ms']:.2f}), {lat['images_per_s']:.0f} img/s, "
              f"{lat['threads']} threads" + ("" if lat.get("stable", True) else "  [unstable]"))


def prune(s: dict) -> None:
    o, p = s["original"], s["pruned"]
    ft = s.get("finetuned", {}).get("test_acc")
    lat = s.get("latency_speedup", {})
    print(f"{s['model']} {s['method']} keep ratio {s['ratio']:.3f}: "
          f"params {o['params'] / 1e6:.3f}M -> {p['params'] / 1e6:.3f}M,"
          f" MACs {o['macs'] / 1e6:.1f}M -> {p['macs'] / 1e6:.1f}M ({s['macs_reduction']:.2f}x fewer)")
    bn = (f" ({100 * p['test_acc_before_bn']:.2f}% before BatchNorm re-estimation on {p['bn_images']} images)"
          if "test_acc_before_bn" in p else "")
    print(f"  test accuracy: original {100 * o['test_acc']:.2f}%, pruned {100 * p['test_acc']:.2f}%{bn}"
          + (f", fine-tuned {100 * ft:.2f}%" if ft is not None else "")
          + (f"; CPU latency speed-up {lat.get('batch1', 0):.2f}x (batch 1), {lat.get('batch64', 0):.2f}x (batch 64)"
             if lat else "") + f"; pruning took {s['prune_s']:.1f}s -> {s['out']}")
    if p.get("warning"):
        print(f"slimlab: warning: {p['warning']}", file=sys.stderr)


def labels(r: dict) -> None:
    line = (f"{r['flagged']} of {r['train_samples']} training labels flagged ({100 * r['flagged_fraction']:.1f}%, "
            f"source: {r['source']})")
    if "precision" in r:
        line += (f"; against the {r['true_flips']} injected flips: precision {100 * r['precision']:.1f}%, "
                 f"recall {100 * r['recall']:.1f}%; corrected labels {100 * r['corrected_accuracy']:.1f}% right "
                 f"vs given {100 * r['given_accuracy']:.1f}%")
    print(line + f" -> {r['csv']}")
    if r.get("warning"):
        print(f"slimlab: warning: {r['warning']}", file=sys.stderr)


def scale(r: dict) -> None:
    if "chosen" in r:
        c = r["chosen"]
        print(f"chosen alpha={c['alpha']:g}, beta={c['beta']:g}, gamma={c['gamma']:g} of {len(r['rows']) - 1} "
              "candidates (search.md, search.png in the output directory)")
        return
    kw = ", ".join(f"{k}={v:.4g}" for k, v in r["model_kwargs"].items())
    print(f"{r['base']} scaled by phi={r['phi']:g} (alpha={r['alpha']:g}, beta={r['beta']:g}, gamma={r['gamma']:g}):"
          f" {kw}, resolution {r['resolution']}; {r['params'] / 1e6:.2f}M params, {r['macs'] / 1e6:.1f}M MACs "
          f"({r['macs_ratio']:.2f}x the base; alpha*beta^2*gamma^2 = {r['nominal_ratio']:.2f}x nominal)")


def export(r: dict) -> None:
    if r.get("why"):
        print(f"exporting {r['from']}: {r['why']}")
    print(f"wrote {r['path']} ({r['bytes'] / 1e6:.2f} MB); outputs match PyTorch within {r['max_abs_diff']:.1e}")


def report(r: dict) -> None:
    print(f"wrote {r['path']}")


def _opt_ms(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def demo(r: dict) -> None:
    if r.get("headline"):
        print(f"\n{r['headline']}")
    print(f"\n{'model':12} {'params':>8} {'MACs':>8} {'test acc':>9} {'torch ms':>9} {'ONNX ms':>8}")
    for name, params, macs, acc, t, o in r["rows"]:
        print(f"{name:12} {params / 1e6:7.3f}M {macs / 1e6:7.1f}M {100 * acc:8.2f}% {_opt_ms(t):>9} {_opt_ms(o):>8}")
    print("(test acc: each run's last epoch; the pruned models start from PENCIL's best-validation weights. "
          "Latency: batch 1, 1 thread, the median of timed blocks, the models interleaved; p10-p90 in the report)")
    lab = r["labels"]
    if "precision" in lab:
        print(f"label issues: PENCIL flagged {lab['flagged']} labels, precision {100 * lab['precision']:.1f}%, "
              f"recall {100 * lab['recall']:.1f}% against the injected flips")
    print(f"exported {r['export']['path']} (from {r['export']['from']}: {r['export'].get('why', 'chosen')})")
    print(f"report: {r['report']}")
    if r.get("layer_epochs") is not None:
        print(f"(to fit in two minutes the demo fine-tunes {r['layer_epochs']:g} epoch after each pruned layer; "
              "ThiNet's procedure, and slimlab prune's default, use about 1)")


def run(r: dict) -> None:
    if "valid_steps" in r:
        print(f"{r['name']}: {len(r['valid_steps'])} steps valid ({', '.join(r['valid_steps'])})")
        return
    for name, res in r["steps"].items():
        print(f"{name}: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()))


SHOW = {"train": train, "pretrain": train, "probe": train, "evaluate": evaluate, "models": models,
        "profile": profile, "prune": prune, "labels": labels, "scale": scale, "export": export, "report": report,
        "demo": demo, "run": run}


def show(cmd: str, result: dict) -> None:
    if result.get("rank", 0):
        return
    SHOW.get(cmd, lambda r: print(json.dumps(r, indent=2, default=str)))(result)
