"""ThiNet's schedule: fine-tuning after each pruned layer is the layerwise default, and it changes what the
next layers select (their statistics come from the recovered model, not the damaged one)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slimlab.models import create_model
from slimlab.prune import Calibration, prune_model
from slimlab.prune.config import PruneConfig
from slimlab.prune.thinet import ThiNet, samples_per_image
from slimlab.tasks.prune import layer_steps


class Recording(ThiNet):
    """ThiNet that remembers what it kept, layer by layer."""

    def __init__(self):
        super().__init__()
        self.kept: dict[str, list[int]] = {}

    def select(self, layer, keep, stats, generator):
        sel = super().select(layer, keep, stats, generator)
        self.kept[layer.name] = sel.kept.tolist()
        return sel


def _sgd_steps(model, steps: int = 5) -> None:
    g = torch.Generator().manual_seed(7)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(steps):
        x, y = torch.randn(32, 3, 32, 32, generator=g), torch.randint(0, 10, (32,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()


def test_finetuning_between_layers_changes_later_selections():
    torch.manual_seed(0)
    base = create_model("resnet20").eval()
    calib = Calibration(torch.randn(20, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    layers = ["layer1.0.conv1", "layer1.1.conv1", "layer1.2.conv1"]
    picks = {}
    for ft in (False, True):
        m = create_model("resnet20").eval()
        m.load_state_dict(base.state_dict())
        crit = Recording()
        prune_model(m, crit, 0.5, calib, layers=layers, between_layers=_sgd_steps if ft else None)
        picks[ft] = crit.kept
    assert picks[False][layers[0]] == picks[True][layers[0]]  # the first layer sees the same model
    assert any(picks[False][n] != picks[True][n] for n in layers[1:])  # later ones see the fine-tuned model


def test_layer_budget_defaults_to_one_epoch_and_steps_override():
    assert PruneConfig().ft_layer_epochs == 1.0 and PruneConfig().ft_layer_lr == 0.001  # ThiNet's values
    assert layer_steps(PruneConfig(), 40) == 40
    assert layer_steps(PruneConfig(ft_layer_epochs=0.25), 40) == 10
    assert layer_steps(PruneConfig(ft_layer_epochs=0.25, ft_per_layer=7), 40) == 7
    assert layer_steps(PruneConfig(ft_layer_epochs=0.0), 40) == 0
    assert layer_steps(PruneConfig(mode="oneshot"), 40) == 0


def test_calibration_samples_scale_with_the_weights_fitted():
    # 100 images x 10 per image = 1,000 samples fit 64 weights at >= 10 each; 256 weights need 26 per image
    assert samples_per_image(10, 10.0, 64, 100) == 10
    assert samples_per_image(10, 10.0, 256, 100) == 26
    assert samples_per_image(10, 0.0, 256, 100) == 10  # off: the paper's fixed 10 per image


def test_layer_budget_over_one_epoch_runs_several_passes():
    """--ft-layer-epochs 2.5 on a 4-batch loader: 10 steps, reshuffled at each pass (it used to stop at one pass)."""
    from slimlab.tasks.prune import LimitedLoader

    class Loader:
        def __init__(self):
            self.epoch = 0

        def set_epoch(self, e):
            self.epoch = e

        def __len__(self):
            return 4

        def __iter__(self):
            for i in range(4):
                yield (self.epoch, i)

    steps = layer_steps(PruneConfig(ft_layer_epochs=2.5), 4)
    limited = LimitedLoader(Loader(), steps)
    got = list(limited)
    assert steps == 10 and len(limited) == 10 and len(got) == 10
    assert len({e for e, _ in got}) == 3  # three passes, each with its own shuffle seed


def test_refine_with_tpami_is_refused_and_one_process_keeps_its_selection():
    import pytest

    from slimlab.errors import SlimlabError
    from slimlab.prune.criterion import Selection
    from slimlab.prune.pruner import check_options, same_on_every_rank

    with pytest.raises(SlimlabError, match="use one or the other"):
        check_options(0.5, "layerwise", "tpami", "current", refine=True)
    sel = Selection(torch.tensor([0, 2]), torch.tensor([1.0, 0.5]))
    assert same_on_every_rank(sel) is sel  # no process group: nothing to agree on
