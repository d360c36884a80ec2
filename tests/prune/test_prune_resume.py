"""A layer-by-layer prune killed mid-way continues from its progress file with the same result as a prune never
stopped: the same kept channels, the same weights to the bit (ThiNet's sampling generator, the fine-tuning's own
state and the channels-last layout it leaves all restored)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from slimlab.errors import SlimlabError
from slimlab.models import create_model
from slimlab.prune import Calibration, prune_model

LAYERS = ["layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.1.conv1"]


class Steps:
    """Fine-tuning between layers with state: the number of calls so far seeds its batches (as the real one's
    passes over the data seed their shuffles); it leaves the model channels-last, as the engine does."""

    def __init__(self, stop_at: int | None = None):
        self.calls, self.stop_at = 0, stop_at

    def __call__(self, model):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        g = torch.Generator().manual_seed(100 + self.calls)
        model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        for _ in range(2):
            x, y = torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        model.eval()

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = state["calls"]


def _fresh(base):
    m = create_model("resnet20").eval()
    m.load_state_dict(base.state_dict())
    return m


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    base = create_model("resnet20").eval()
    calib = Calibration(torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    whole = _fresh(base)
    info = prune_model(whole, "thinet", 0.5, calib, layers=LAYERS, between_layers=Steps(), per_image=4)
    return base, calib, whole, info


@pytest.mark.parametrize("stop_at", [1, 3])
def test_a_prune_killed_after_some_layers_resumes_to_the_same_model(tmp_path, setup, stop_at):
    base, calib, whole, info = setup
    state = tmp_path / "prune_state.pt"
    with pytest.raises(KeyboardInterrupt):  # killed while fine-tuning after layer `stop_at`
        prune_model(_fresh(base), "thinet", 0.5, calib, layers=LAYERS, between_layers=Steps(stop_at), per_image=4,
                    state_file=state)
    assert state.is_file() == (stop_at > 1)  # the layers before it were saved, each after its fine-tuning
    resumed = _fresh(base)
    got = prune_model(resumed, "thinet", 0.5, calib, layers=LAYERS, between_layers=Steps(), per_image=4,
                      state_file=state)
    assert got["channels"] == info["channels"]
    want = whole.state_dict()
    for k, v in resumed.state_dict().items():
        assert v.shape == want[k].shape and torch.equal(v, want[k]), k


def test_without_restoring_the_generator_the_selection_would_differ(tmp_path, setup):
    """The test above could not pass by luck: ThiNet's sampled positions depend on the generator's state, so a
    prune that replays the first layers but starts the generator afresh ends elsewhere."""
    base, calib, whole, _ = setup
    state = tmp_path / "prune_state.pt"
    with pytest.raises(KeyboardInterrupt):
        prune_model(_fresh(base), "thinet", 0.5, calib, layers=LAYERS, between_layers=Steps(3), per_image=4,
                    state_file=state)
    st = torch.load(state, weights_only=True)
    st["generator"] = torch.Generator().manual_seed(0).get_state()
    torch.save(st, state)
    resumed = _fresh(base)
    prune_model(resumed, "thinet", 0.5, calib, layers=LAYERS, between_layers=Steps(), per_image=4, state_file=state)
    assert any(not torch.equal(v, whole.state_dict()[k]) for k, v in resumed.state_dict().items())


def test_a_progress_file_of_another_plan_is_refused(tmp_path, setup):
    base, calib, _, _ = setup
    state = tmp_path / "prune_state.pt"
    with pytest.raises(KeyboardInterrupt):
        prune_model(_fresh(base), "weight_sum", 0.5, None, layers=LAYERS, between_layers=Steps(2), state_file=state)
    with pytest.raises(SlimlabError, match="another pruning plan"):
        prune_model(_fresh(base), "weight_sum", 0.25, None, layers=LAYERS, state_file=state)
    with pytest.raises(SlimlabError, match="another pruning plan"):
        prune_model(_fresh(base), "weight_sum", 0.5, None, layers=LAYERS[1:], state_file=state)


def test_the_layout_fine_tuning_left_is_given_back():
    from slimlab.prune.pruner import _same_layout

    saved = create_model("resnet20").to(memory_format=torch.channels_last).state_dict()
    m = create_model("resnet20")
    _same_layout(m, saved)
    w = m.layer1[0].conv1.weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    _same_layout(m, create_model("resnet20").state_dict())
    assert m.layer1[0].conv1.weight.is_contiguous()


def test_a_damaged_or_foreign_progress_file_is_one_line(tmp_path, setup):
    base, calib, _, _ = setup
    state = tmp_path / "prune_state.pt"
    with pytest.raises(KeyboardInterrupt):
        prune_model(_fresh(base), "weight_sum", 0.5, None, layers=LAYERS, between_layers=Steps(3), state_file=state,
                    state_key={"run_id": "a"})
    with pytest.raises(SlimlabError, match="another run.*run_id: 'a' in the file, 'b' now"):
        prune_model(_fresh(base), "weight_sum", 0.5, None, layers=LAYERS, state_file=state, state_key={"run_id": "b"})
    st = torch.load(state, weights_only=True)
    kept = st["kept"]["layer1.0.conv1"]
    st["kept"]["layer1.0.conv1"] = torch.arange(3)  # not the count the weights were saved with
    torch.save(st, state)
    with pytest.raises(SlimlabError, match="is damaged.*start over with --overwrite$"):
        prune_model(_fresh(base), "weight_sum", 0.5, None, layers=LAYERS, state_file=state, state_key={"run_id": "a"})
    st["kept"]["layer1.0.conv1"] = kept
    del st["generator"]
    torch.save(st, state)
    with pytest.raises(SlimlabError, match="is damaged \\(KeyError"):
        prune_model(_fresh(base), "weight_sum", 0.5, None, layers=LAYERS, state_file=state, state_key={"run_id": "a"})
    torch.save([1, 2], state)
    with pytest.raises(SlimlabError, match="not a slimlab pruning progress file"):
        prune_model(_fresh(base), "weight_sum", 0.5, None, layers=LAYERS, state_file=state)
