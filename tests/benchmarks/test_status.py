"""benchmarks/status.py reads where each run stands from its files alone."""

import json

import torch


def test_status_names_done_training_pruning_and_started_runs(tmp_path, load_bench):
    status = load_bench("status")
    root = tmp_path / "campaign"
    for name in ("done", "training", "pruning", "started"):
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text("# slimlab run 0123456789ab\nepochs: 40\n")
    (root / "done" / "summary.json").write_text(json.dumps({"test_acc": 0.4081}))
    (root / "training" / "metrics.jsonl").write_text("\n".join(json.dumps({"epoch": e}) for e in (1, 2, 3)) + "\n")
    torch.save({"kept": {"a": torch.arange(2)}, "plan": ["a", "b", "c"]}, root / "pruning" / "prune_state.pt")
    text = status.status([root])
    assert text.startswith("1 done, 1 pruning, 1 started, 1 training")
    assert "| campaign/done | done | 40.81 |" in text and "| campaign/training | epoch 3 of 40 |  |" in text
    assert "| campaign/pruning | pruning: 1 of 3 layers |  |" in text
