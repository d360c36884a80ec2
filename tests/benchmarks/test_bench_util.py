"""Benchmarks' shared helpers: a cached run is reused only when it was run with the options asked for, and the
whole-network pruning protocol's cells and verdicts follow their definitions."""

import pytest


def test_a_cached_run_of_other_options_is_refused(tmp_path, load_bench):
    util = load_bench("_util")
    kw = dict(data="digits", model="convnet", model_kwargs={"width": 8}, epochs=1, train_subset=120, image_size=16)
    first = util.cached_train(tmp_path / "r", **kw)
    assert util.cached_train(tmp_path / "r", **kw)["test_acc"] == first["test_acc"]  # read back, not retrained
    with pytest.raises(SystemExit, match="lr = 0.1.*asks 0.05"):
        util.cached_train(tmp_path / "r", **dict(kw, lr=0.05))
    with pytest.raises(SystemExit, match="epochs"):
        util.cached_train(tmp_path / "r", **dict(kw, epochs=2))


def test_a_cached_run_killed_in_its_first_epoch_or_before_its_summary_is_finished(tmp_path, load_bench):
    util = load_bench("_util")
    kw = dict(data="digits", model="convnet", model_kwargs={"width": 8}, epochs=1, train_subset=120, image_size=16)
    first = util.cached_train(tmp_path / "r", **kw)
    (tmp_path / "r" / "summary.json").unlink()  # killed after its last checkpoint
    assert util.cached_train(tmp_path / "r", **kw)["test_acc"] == first["test_acc"]
    for f in ("summary.json", "last.pt", "best.pt", "metrics.jsonl"):  # killed in its first epoch: config.yaml only
        (tmp_path / "r" / f).unlink()
    assert util.cached_train(tmp_path / "r", **kw)["test_acc"] == first["test_acc"]  # started again (one seed)


def test_a_cached_prune_killed_between_layers_continues_there(tmp_path, load_bench, monkeypatch):
    from slimlab import api
    from slimlab.config import TrainConfig
    from slimlab.prune.config import PruneConfig
    from slimlab.tasks import prune as P

    util = load_bench("_util")
    api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, epochs=1, train_subset=120,
                          image_size=16, progress="none", out=str(tmp_path / "t")))
    cfg = PruneConfig(checkpoint=str(tmp_path / "t"), method="weight_sum", keep_ratio=0.5, ft_per_layer=2,
                      finetune_epochs=0, latency=False, progress="none", out=str(tmp_path / "p"))
    calls, real = [0], P.LayerFinetune.__call__

    def dies_at_the_second(self, model):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        real(self, model)

    monkeypatch.setattr(P.LayerFinetune, "__call__", dies_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        util.cached_prune(cfg)
    with pytest.raises(SystemExit, match=r"other options \(keep_ratio\)"):
        util.cached_prune(PruneConfig(**{**vars(cfg), "keep_ratio": 0.25}))
    calls[0] = -100
    done = util.cached_prune(cfg)
    assert calls[0] + 100 == len(done["channels"]) - 1  # the first layer was kept, not pruned again
    whole = api.prune(PruneConfig(**{**vars(cfg), "out": str(tmp_path / "whole")}))
    assert whole["test_acc"] == done["test_acc"] and whole["channels"] == done["channels"]
    calls[0] = -100
    assert util.cached_prune(cfg) == done and calls[0] == -100  # finished: read back


def test_whole_network_cells_put_uniform_first_and_verdicts_follow_the_seeds(load_bench):
    import argparse

    pw = load_bench("prune_whole")
    a = argparse.Namespace(methods="thinet,weight_sum", seeds="0,1", allocations="uniform,global,sensitivity",
                           alloc_methods="thinet,apoz", alloc_seeds="0")
    cells = pw.cells_wanted(a)
    for m, alloc, _ in cells:  # every other allocation comes after its criterion's seed-0 uniform cell
        if alloc != "uniform":
            assert cells.index((m, "uniform", 0)) < cells.index((m, alloc, 0))
    assert len(cells) == len(set(cells)) == 4 + 1 + 4

    def cell(method, seed, acc):
        return {"method": method, "allocation": "uniform", "seed": seed, "final_acc": acc, "base_acc": 0.90,
                "macs": 1.0, "macs_base": 2.0}

    def verdict(t, w):
        groups = {("thinet", "uniform"): [cell("thinet", i, x) for i, x in enumerate(t)],
                  ("weight_sum", "uniform"): [cell("weight_sum", i, x) for i, x in enumerate(w)]}
        return pw.verdicts(groups, "resnet56")

    assert "holds: every ThiNet seed" in verdict([0.895, 0.894], [0.890, 0.891])
    assert "does not hold: weight sum" in verdict([0.880, 0.881], [0.890, 0.891])
    assert "ranges overlap, so neither is shown better (ThiNet's mean is above weight sum's)" in verdict(
        [0.889, 0.893], [0.890, 0.891])
    assert "not shown yet: fewer than two seeds" in verdict([0.895, 0.894], [0.890])
    assert "(here 2.00x): holds on every seed; 90.00 -> 89.50, 89.40, lost 0.50, 0.60 (mean 0.55)" in verdict(
        [0.895, 0.894], [0.8, 0.8])
    assert "holds on 1 of 2 seeds; 90.00 -> 89.50, 89.00, lost 0.50, 1.00 (mean 0.75)" in verdict([0.895, 0.89], [0.8])
    assert "does not hold on any seed; 90.00 -> 88.00, 88.00, lost 2.00, 2.00 (mean 2.00, 1.20 over" in verdict(
        [0.88, 0.88], [0.8, 0.8])
    budget = {"cells": {"a": {"ft_epochs_equiv": 9.8, "allocation": "uniform"},
                        "b": {"ft_epochs_equiv": 9.8, "allocation": "uniform"}}}
    assert pw._budget(budget) == "9.8 epochs of images per row, equal for every row"
    budget["cells"]["b"]["ft_epochs_equiv"] = 8
    assert pw._budget(budget).startswith("NOT EQUAL between rows: 8, 9.8")


def test_whole_network_table_names_the_cpu_and_threads_of_cells_that_differ(load_bench):
    pw = load_bench("prune_whole")
    same = {"cells": {"a": {"machine": {"cpu_model": "X", "threads": 2}}, "b": {"machine": {"cpu_model": "X",
                                                                                          "threads": 2}}}}
    assert pw._threads_note(same) == ""
    mixed = {"cells": {"a": {"machine": {"cpu_model": "AMD EPYC", "threads": 2}},
                       "b": {"machine": {"cpu_model": "AMD EPYC", "threads": 1}},
                       "c": {"machine": {"cpu_model": "Intel Xeon", "threads": 1}}, "d": {}}}
    assert pw._threads_note(mixed) == (" Cells by CPU and training threads: AMD EPYC, 1: b; AMD EPYC, 2: a; "
                                       "Intel Xeon, 1: c; not recorded: d.")
    # a run summary's own record (slimlab train writes summary["machine"]) reads the same way
    from _util import machines_note

    assert machines_note({"r": {"model": "Intel Xeon", "threads": 1}, "s": {"model": "AMD EPYC", "threads": 1}}) \
        == " Cells by CPU and training threads: AMD EPYC, 1: s; Intel Xeon, 1: r."
    assert machines_note({"r": {"model": "Intel Xeon", "threads": 1}}) == ""  # the table's machine line says it
    assert machines_note({"r": {}, "s": {}}).startswith(" No cell recorded its CPU: the line above names the machine "
                                                         "that wrote this table")


def test_a_claimed_cell_is_held_by_one_holder_at_a_time_and_freed_after(tmp_path, load_bench):
    util = load_bench("_util")
    cell = tmp_path / "runs" / "a-cell"
    with util.claimed(cell) as first:
        with util.claimed(cell) as second, util.claimed(tmp_path / "runs" / "b-cell") as other:
            assert (first, second, other) == (True, False, True)  # flock: per open file, so a second holder too
    with util.claimed(cell) as again:
        assert again
    assert not cell.exists()  # the run directory is left to slimlab (an existing one would need --overwrite)


def test_two_processes_of_whole_network_pruning_share_the_cells(tmp_path, load_bench, monkeypatch):
    """A cell another process holds is skipped and left to it (and the latency and table with it); the cells this
    process runs are merged into the results file as they finish, never overwriting the other process's."""
    import argparse

    pw = load_bench("prune_whole")
    util = load_bench("_util")
    monkeypatch.setattr(pw, "WORK", tmp_path / "work")
    monkeypatch.setattr(pw, "save", lambda path, data, net: path.write_text(__import__("json").dumps(data)))
    ran = []

    def run_cell(net, method, alloc, seed, a, cells):
        if (method, alloc) == ("thinet", "global"):
            assert "thinet-uniform-s0" in cells  # it meets the uniform cell's MACs
        # the other process finishes its cell meanwhile: its result must survive this process's save
        other = pw.read(path, protocol)
        other["cells"]["weight_sum-uniform-s0"] = {"final_acc": 0.5}
        path.write_text(__import__("json").dumps(other))
        ran.append(pw.cell_name(method, alloc, seed))
        return {"final_acc": 0.9, "pruned_acc_no_bn": None}

    monkeypatch.setattr(pw, "run_cell", run_cell)
    a = argparse.Namespace(net="resnet56", methods="thinet,weight_sum", seeds="0", allocations="uniform,global",
                           alloc_methods="thinet", alloc_seeds="0", target_macs=0.5, ft_layer_epochs=0.2,
                           ft_epochs=8, ft_lr=0.01, train_subset=0)
    protocol = {"p": 1}
    path = tmp_path / "prune_whole_resnet56.json"
    with util.claimed(pw.work_dir("resnet56", a) / "weight_sum-uniform-s0"):  # held by "the other process"
        elsewhere = pw.run_cells(a, path, protocol)
    assert ran == ["thinet-uniform-s0", "thinet-global-s0"]
    assert elsewhere == []  # the held cell finished meanwhile
    assert set(pw.read(path, protocol)["cells"]) == {"thinet-uniform-s0", "weight_sum-uniform-s0", "thinet-global-s0"}
    path.unlink()
    ran.clear()
    monkeypatch.setattr(pw, "run_cell", lambda *x: ran.append(x[1:4]) or {"final_acc": 0.9})
    with util.claimed(pw.work_dir("resnet56", a) / "thinet-uniform-s0"):
        assert pw.run_cells(a, path, protocol) == ["thinet-uniform-s0", "thinet-global-s0"]  # global waits for it
    assert ran == [("weight_sum", "uniform", 0)]


def test_a_table_read_back_names_the_machine_its_runs_recorded(load_bench):
    """A finished run's summary names its CPU; a benchmark rewriting its table from such runs on another machine
    keeps that CPU (rotnet_cifar.json once said "AMD EPYC" for a campaign trained on an Intel Xeon)."""
    u = load_bench("_util")
    rec = {"machine": {"model": "Intel(R) Xeon(R) Processor", "threads": 1, "train_precision": "bf16 autocast",
                       "torch": "2.14.1"}}
    m = u.run_machine(rec)
    assert m["cpu_model"] == "Intel(R) Xeon(R) Processor" and m["bf16"] is True
    assert u.machine_line(m) == ("CPU: Intel(R) Xeon(R) Processor, 1 thread, training under bf16 autocast, "
                                 "evaluation in fp32.")
    assert u.run_machine({}) is None and u.run_machine({"machine": {"threads": 2}}) is None


def test_a_header_names_the_machine_most_cells_trained_on_and_a_read_back_keeps_it(tmp_path, load_bench):
    """prune_whole and noisy_cifar headers named whatever machine last rewrote them (an AMD EPYC read-back once
    relabelled Intel cells): the header is the CPU most cells recorded; runs that recorded none keep the last one."""
    u, nc = load_bench("_util"), load_bench("noisy_cifar")
    xeon = {"cpu_model": "Xeon", "threads": 1, "date": "2026-12-03 10:00"}
    later = dict(xeon, date="2026-12-04 09:00")
    epyc = {"cpu_model": "EPYC", "threads": 2, "date": "2026-12-05 09:00"}
    assert u.usual_machine([xeon, epyc, later, {}]) == later
    assert u.usual_machine([{}, None]) is None
    run = {"machine": {"model": "EPYC", "threads": 2, "train_precision": "fp32"}}
    assert nc._usual({("symmetric:0.4", "ce"): [run, {"machine": {}}]}, tmp_path / "none.json")["cpu_model"] == "EPYC"
    previous = tmp_path / "noisy_cifar.json"
    previous.write_text('{"machine": {"cpu_model": "Xeon", "threads": 1}}')
    assert nc._usual({("symmetric:0.4", "ce"): [{"machine": {}}]}, previous)["cpu_model"] == "Xeon"
    assert nc._usual({("symmetric:0.4", "ce"): [{"machine": {}}]}, tmp_path / "none.json") is None
