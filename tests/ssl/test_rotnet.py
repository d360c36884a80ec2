import json

import torch

from conftest import run_cli
from slimlab.models import create_model
from slimlab.ssl import Probe, rotate_batch


def test_four_rotations_of_an_asymmetric_tensor_by_hand():
    t = torch.tensor([[1, 2], [3, 4]]).view(1, 1, 2, 2)
    rot, labels = rotate_batch(t)
    assert rot[0, 0].tolist() == [[1, 2], [3, 4]]
    assert rot[1, 0].tolist() == [[2, 4], [1, 3]]  # 90 degrees counter-clockwise
    assert rot[2, 0].tolist() == [[4, 3], [2, 1]]
    assert rot[3, 0].tolist() == [[3, 1], [4, 2]]
    assert labels.tolist() == [0, 1, 2, 3]


def test_batch_layout_and_labels():
    x = torch.randn(3, 2, 5, 5)
    rot, labels = rotate_batch(x)
    assert rot.shape == (12, 2, 5, 5)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for k in range(4):
        for i in range(3):
            assert torch.equal(rot[k * 3 + i], torch.rot90(x[i], k, dims=(-2, -1)))


def test_nin_feature_shapes_per_block():
    m = create_model("nin4", 4).eval()
    x = torch.randn(2, 3, 32, 32)
    shapes = [tuple(m.forward_block(x, b).shape) for b in (1, 2, 3, 4)]
    assert shapes == [(2, 96, 16, 16), (2, 192, 8, 8), (2, 192, 8, 8), (2, 192, 8, 8)]


def test_frozen_trunk_gets_no_gradient_and_keeps_bn_statistics():
    for head in ("linear", "mlp", "conv"):
        p = Probe(10, "nin3", {"width_mult": 0.25}, 4, block=2, head=head)
        stats = {k: v.clone() for k, v in p.trunk.state_dict().items()}
        p.train()
        opt = torch.optim.SGD([q for q in p.parameters() if q.requires_grad], lr=0.1)
        loss = torch.nn.functional.cross_entropy(p(torch.randn(8, 3, 32, 32)), torch.arange(8))
        loss.backward()
        opt.step()
        assert all(q.grad is None for q in p.trunk.parameters()), head
        assert all(torch.equal(v, stats[k]) for k, v in p.trunk.state_dict().items()), head
        assert all(q.grad is not None for q in p.head.parameters() if q.requires_grad), head


def test_tiny_pretext_run_learns_above_chance_and_probe_runs(tmp_path):
    rot = tmp_path / "rot"
    r = run_cli("pretrain", "--method", "rotnet", "--data", "fake", "--model", "convnet", "--model-kwargs",
                "{width: 16}", "--epochs", "6", "--batch-size", "32", "--lr", "0.05", "--schedule", "cosine",
                "--out", str(rot))
    assert r.returncode == 0, r.stderr
    s = json.loads((rot / "summary.json").read_text())
    assert s["num_classes"] == 10 and s["best_val_acc"] > 0.4  # rotation accuracy; chance is 0.25
    ck = torch.load(rot / "best.pt", weights_only=True)
    assert ck["num_classes"] == 4  # a 4-way rotation head
    r = run_cli("probe", str(rot / "best.pt"), "--head", "linear", "--epochs", "2", "--out",
                str(tmp_path / "probe"))
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", str(tmp_path / "probe" / "best.pt"))
    assert r.returncode == 0, r.stderr
    # fine-tuning from the RotNet trunk: every tensor but the 4-way head is copied
    r = run_cli("train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 16}", "--init",
                str(rot / "best.pt"), "--labels-per-class", "5", "--epochs", "1", "--out", str(tmp_path / "ft"))
    assert r.returncode == 0, r.stderr
    meta = torch.load(tmp_path / "ft" / "best.pt", weights_only=True)["init"]
    assert meta["tensors_copied"] == meta["tensors_total"] - 2
    assert meta["head"] == "fresh (a pretext model's rotation head)"  # said "copied (same classes)"
    # RotNet features as the start of PENCIL training on noisy labels
    r = run_cli("train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 16}", "--init",
                str(rot / "best.pt"), "--noise", "symmetric:0.4", "--loss", "pencil", "--loss-kwargs",
                "{stage1: 0, stage2: 1}", "--epochs", "2", "--out", str(tmp_path / "pencil"))
    assert r.returncode == 0, r.stderr
    ck = torch.load(tmp_path / "pencil" / "last.pt", weights_only=True)
    assert ck["init"]["tensors_copied"] == ck["init"]["tensors_total"] - 2
    assert ck["objective"]["y_tilde"].shape[1] == 10


def test_probe_refuses_a_trunk_that_does_not_fit_and_a_block_the_trunk_lacks():
    import pytest

    from slimlab.errors import SlimlabError

    p = Probe(10, "nin3", {"width_mult": 0.25}, 4, block=2)
    right = create_model("nin3", 4, width_mult=0.25).state_dict()
    assert p.load_trunk(right) == len(right)
    assert all(torch.equal(v, right[k]) for k, v in p.trunk.state_dict().items())
    no_head = {k: v for k, v in right.items() if not k.startswith("fc.")}  # the pretext head is not needed
    assert p.load_trunk(no_head) == len(no_head)
    with pytest.raises(SlimlabError, match="does not fit the trunk"):
        p.load_trunk(create_model("nin3", 4, width_mult=0.5).state_dict())
    with pytest.raises(SlimlabError, match="blocks 1 to 3"):
        Probe(10, "nin3", {"width_mult": 0.25}, 4, block=4)
