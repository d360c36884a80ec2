"""Mean absolute error (Ghosh et al., AAAI 2017): ||p - e_y||_1 = 2 (1 - p_y), symmetric hence noise-tolerant."""

import torch


def mae_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p_y = logits.softmax(1).gather(1, target[:, None]).squeeze(1)
    return (2 * (1 - p_y)).mean()
