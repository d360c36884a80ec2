"""The README's "Noisy labels in your own loop" examples run as written, on a toy problem, and do what they say."""

from pathlib import Path

import numpy as np
import torch

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[str]:
    section = README.read_text().split("### Noisy labels in your own loop", 1)[1].split("\n## ", 1)[0]
    return [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]


def test_the_noisy_label_examples_run_as_written():
    arrays, loop = _blocks()
    g = torch.Generator().manual_seed(0)
    labels = np.arange(200) % 10
    x = torch.randn(200, 16, generator=g) + torch.nn.functional.one_hot(torch.as_tensor(labels), 16) * 3
    model = torch.nn.Linear(16, 10)
    pred_probs = np.full((200, 10), 0.02)
    pred_probs[np.arange(200), labels] = 0.82  # a model that knows the clean labels
    scope = {"labels": labels, "model": model, "x": x, "y": torch.as_tensor(labels), "pred_probs": pred_probs}
    exec(compile(arrays, "README.md", "exec"), scope)  # noqa: S102  (our own README)
    noisy, mask, ranked = scope["noisy"], scope["mask"], scope["ranked"]
    assert isinstance(noisy, np.ndarray) and (noisy != labels).mean() > 0.25
    assert mask.tolist() == (noisy != labels).tolist()  # every flip found, nothing else
    assert sorted(ranked.tolist()) == np.flatnonzero(noisy != labels).tolist()

    idx = torch.arange(200)
    loader = [(x[i:i + 50], torch.as_tensor(noisy)[i:i + 50], idx[i:i + 50]) for i in range(0, 200, 50)]
    scope.update(loader=loader, epochs=12, opt=torch.optim.SGD(model.parameters(), lr=0.1))
    exec(compile(loop, "README.md", "exec"), scope)  # noqa: S102
    pencil, corrected = scope["pencil"], scope["corrected"]
    assert pencil.stage == 3 and corrected.shape == (200,)
    start = 10.0 * torch.nn.functional.one_hot(torch.as_tensor(noisy), 10).float()  # y~'s initial value
    assert (pencil.y_tilde - start).abs().max() > 0.1  # stage 2 moved the label variables
