"""What a user reads says what it is: a best epoch chosen on training accuracy is not called validation, the
test accuracy says it is the last epoch's, the demo's cost compares the pruned model with the weights it was
pruned from, validation labels are named from what the run recorded, and missing values print as '-'."""

import json

from slimlab.cli import output
from slimlab.config import TrainConfig
from slimlab.prune.config import PruneConfig
from slimlab.tasks.demo import headline
from slimlab.tasks.export import choose_run
from slimlab.tasks.prune import val_labels
from slimlab.tasks.report import table_rows


def test_the_train_line_names_the_split_and_the_epoch(capsys):
    base = {"model": "resnet20", "data": "cifar10", "params": 1, "macs": 1, "wall_s": 1.0, "out": "runs/x"}
    output.train({**base, "best_val_acc": 0.993, "best_on": "training", "test_acc": 0.8961})
    line = capsys.readouterr().out
    assert "best train acc (no validation split) 99.30%" in line and "test 89.61% at the last epoch" in line
    output.train({**base, "best_val_acc": 0.41, "best_on": "validation", "test_acc": 0.3313,
                  "test_acc_at_best_val": 0.4154})
    line = capsys.readouterr().out
    assert "best val 41.00%" in line and "33.13% at the last epoch (41.54% at the best epoch, best.pt)" in line
    output.train({**base, "loss": "rotnet", "best_val_acc": 0.9, "test_acc": 0.8})
    assert "rotation test 80.00%" in capsys.readouterr().out


def test_export_does_not_take_a_training_accuracy_for_a_validation_one(tmp_path):
    runs = []
    for name, val, on, test, macs in (("a", 0.99, "training", 0.80, 2), ("b", 0.90, "validation", 0.85, 1)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(
            {"best_val_acc": val, "best_on": on, "test_acc": test, "macs": macs}))
        runs.append(str(tmp_path / name))
    pick, why = choose_run(runs, "accurate", 0.5)
    assert pick.endswith("b") and "test accuracy" in why


def test_the_demo_cost_is_against_the_weights_pruned():
    s = {"ce": {"test_acc": 0.7744}, "pencil": {"test_acc": 0.9694, "macs": 10.0},
         "thinet": {"test_acc": 0.9610, "macs": 4.7, "original": {"test_acc": 0.9805}}}
    line = headline(s, {}, "symmetric:0.6")
    assert "at -2.0 points against the PENCIL weights it was pruned from (98.05%)" in line  # not -0.8 (96.94%)


def test_validation_labels_follow_the_checkpoints_split():
    assert val_labels(TrainConfig(clean_val=True, noise="symmetric:0.6"), PruneConfig(labels_from="r")) == "clean"
    assert val_labels(TrainConfig(noise="symmetric:0.6"), PruneConfig(labels_from="r")) == "corrected"
    assert val_labels(TrainConfig(noise="symmetric:0.6"), PruneConfig()) == "noisy"
    assert val_labels(TrainConfig(), PruneConfig()) == "given"


def test_report_rows_name_validation_labels_and_survive_missing_values():
    runs = [{"name": "thinet", "noise": {"kind": "symmetric"}, "config": {"labels_from": "runs/pencil"},
             "summary": {"best_val_acc": 0.96, "best_on": "validation", "val_labels": "clean", "test_acc": 0.961,
                         "wall_s": None}},
            {"name": "zoo", "noise": None, "config": {},
             "summary": {"best_val_acc": 0.993, "best_on": "training", "test_acc": 0.896, "wall_s": 12.4}}]
    head, rows = table_rows(runs)
    assert head[6] == "test acc (last epoch)"
    assert rows[0][7] == "96.00%" and rows[1][7] == "-"  # clean labels need no note; a training accuracy is no val

def test_the_demo_table_prints_a_missing_latency_as_a_dash(capsys):
    output.demo({"headline": "", "rows": [("ce", 1e5, 1e6, 0.5, None, 0.2)], "labels": {},
                 "export": {"path": "m.onnx", "from": "runs/x"}, "report": "r.html", "layer_epochs": 0.25})
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ce ")][0]
    assert row.split()[-2:] == ["-", "0.20"]
