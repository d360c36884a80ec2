"""prune_per_layer.py evaluates a model with one layer pruned from that layer's block on: the accuracy must be
exactly what a full evaluation gives, for every layer, visited in order or not, and for a model it cannot cut."""

import copy

import pytest
import torch

from slimlab.data import BatchLoader, Split
from slimlab.engine import evaluate
from slimlab.models import create_model
from slimlab.prune import prune_model


@pytest.fixture(scope="module")
def bench(load_bench):
    return load_bench("prune_per_layer")


def _setup(name: str):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that every block matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    g = torch.Generator().manual_seed(1)
    split = Split(torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8, generator=g),
                  torch.randint(0, 10, (40,), generator=g))
    test = BatchLoader(split, torch.arange(40), 16, mean=(0.5,) * 3, std=(0.25,) * 3)
    return model, test


def test_suffix_accuracy_is_the_full_evaluations_for_every_layer(bench):
    base, test = _setup("resnet20")
    suffix = bench.SuffixEval(base, test)
    names = [f"layer{s}.{i}.conv1" for s in (1, 2, 3) for i in range(3)]
    for name in names[::-2] + names:  # backwards (the kept inputs start again each time), then forward order
        m = copy.deepcopy(base)
        prune_model(m, "weight_sum", 0.5, None, layers=[name], input_size=16)
        with torch.no_grad():
            full = [m(b["image"]) for b in test]
        cut = suffix.logits(m.eval(), name)
        assert cut is not None and all(torch.equal(a, b) for a, b in zip(cut, full, strict=True)), name
        assert suffix.accuracy(m, name) == evaluate(m, test)["acc"]
    assert suffix.k == len(names) - 1  # the kept inputs were used, not a full evaluation each time


def test_a_model_changed_before_the_block_is_evaluated_in_full(bench):
    base, test = _setup("resnet20")
    suffix = bench.SuffixEval(base, test)
    m = copy.deepcopy(base)
    with torch.no_grad():
        m.layer1[0].conv2.weight.mul_(-1)  # a change before layer2.0: the kept inputs would be wrong
    assert suffix.logits(m, "layer2.0.conv1") is None
    assert suffix.accuracy(m, "layer2.0.conv1") == evaluate(m, test)["acc"]
    assert suffix.k == -1  # nothing was kept
