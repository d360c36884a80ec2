"""PENCIL: probabilistic end-to-end noise correction (Yi & Wu, CVPR 2019, arXiv 1903.07788).

Each training sample i owns a label variable y~_i (initialised to K * onehot(noisy label)), with
y_d = softmax(y~). Three stages:

1. backbone learning: plain CE on the noisy labels;
2. end-to-end correction (Eq. 9): L = L_c + alpha * L_o + beta * L_e, with
   L_c = KL(f || y_d) (Eq. 6, the prediction f first), L_o = CE(y_d, noisy label) (Eq. 7, the
   compatibility loss), L_e = entropy of f (Eq. 8); after every step y~ <- y~ - lambda dL/dy~;
3. fine-tuning with L_c alone against the learned, fixed y_d.

Normalisation follows the official code, the scale its defaults (alpha = 0.4, beta = 0.1,
lambda = 600) were tuned for: L_c and L_e are averaged over the batch *and* the classes.

The compatibility term L_o comes in two forms (``compat``):
- ``official`` (default): the official code's ``CrossEntropyLoss(y_d, y)``, i.e. -log softmax(y_d)[y],
  log-softmax applied to a probability vector. It pulls y~ back toward the noisy label far more
  weakly than the paper's form (2x at y_d = (0.5, 0.5), 10x at uniform), and it is the form the
  published hyper-parameters and results come from.
- ``paper``: Eq. 7 as written, -log y_d[y].

λ (``lam``) moves each y~_i once per epoch of stage 2. ``lam_rule="distance"`` scales it by
130 / (stage-2 epochs), so that a shorter stage 2 moves y~ the same total distance as the official
130 epochs (for the same gradients); ``fixed`` (default) uses λ as given.

One defect of the official code is not copied: its stage-3 schedule divides with ``//`` so the
learning rate becomes 0 (we use lr2 / 10 and lr2 / 100). Learning rate: ``lr`` in stages 1-2, then
``lr2`` for the first third of stage 3, ``lr2 / 10`` and ``lr2 / 100`` for the next two thirds.

Under DDP every rank updates the rows of its own samples, scaled by 1/world so the step equals the
single-process one, then all ranks exchange the updated rows: each sample's y~ changes once per
step and all ranks hold the same y~.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from slimlab.engine.distributed import all_gather_cat
from slimlab.engine.objective import Objective
from slimlab.engine.optim import pencil_lr
from slimlab.losses.reduction import class_indices, class_labels

COMPAT = ("official", "paper")
OFFICIAL_STAGE2_EPOCHS = 130  # the official schedule: stage 2 from epoch 70 to 200


def pencil_loss(logits: torch.Tensor, y_tilde: torch.Tensor, noisy_labels: torch.Tensor, alpha: float = 0.4,
                beta: float = 0.1, compat: str = "official") -> torch.Tensor:
    """Stage-2 loss of a batch, differentiable in ``logits`` and ``y_tilde`` (both [B, K])."""
    noisy_labels = class_labels(logits, noisy_labels)
    if y_tilde.shape != logits.shape:
        raise ValueError(f"y_tilde must have the logits' shape {tuple(logits.shape)}, got {tuple(y_tilde.shape)}")
    logf = logits.log_softmax(1)
    f = logf.exp()
    log_yd = y_tilde.log_softmax(1)
    l_c = (f * (logf - log_yd)).mean()
    if compat == "official":  # CrossEntropyLoss on the probabilities y_d, as the official code computes it
        l_o = F.cross_entropy(log_yd.exp(), noisy_labels)
    else:  # Eq. 7: -log y_d[y]
        l_o = F.nll_loss(log_yd, noisy_labels)
    l_e = -(f * logf).mean()
    return l_c + alpha * l_o + beta * l_e


def pencil_lc(logits: torch.Tensor, y_d: torch.Tensor) -> torch.Tensor:
    """Stage-3 loss: KL(f || y_d) with y_d fixed, averaged over batch and classes."""
    logf = logits.log_softmax(1)
    return (logf.exp() * (logf - y_d.clamp_min(1e-12).log())).mean()


class PencilObjective(Objective):
    """PENCIL as an objective: stage changes by epoch, y~ updated after every stage-2 step."""

    name = "pencil"

    def __init__(self, noisy_targets: torch.Tensor | np.ndarray, num_classes: int, epochs: int, alpha: float = 0.4,
                 beta: float = 0.1, lam: float = 600.0, k_init: float = 10.0, stage1: int | None = None,
                 stage2: int | None = None, lr: float | None = None, lr2: float | None = None,
                 compat: str = "official", lam_rule: str = "fixed"):
        super().__init__()
        if compat not in COMPAT:
            raise ValueError(f"compat must be one of {', '.join(COMPAT)}, got {compat!r}")
        if lam_rule not in ("fixed", "distance"):
            raise ValueError(f"lam_rule must be fixed or distance, got {lam_rule!r}")
        self.alpha, self.beta, self.num_classes, self.compat = alpha, beta, num_classes, compat
        self.epochs = epochs
        # official: stages end at 70 and 200 of 320 epochs; scaled to --epochs
        self.stage1 = stage1 if stage1 is not None else round(epochs * 70 / 320)
        self.stage2 = stage2 if stage2 is not None else round(epochs * 200 / 320)
        if not 0 <= self.stage1 <= self.stage2 <= epochs:
            raise ValueError(f"PENCIL stages must satisfy 0 <= stage1 <= stage2 <= epochs, got "
                             f"{self.stage1}, {self.stage2}, {epochs}")
        self.lr, self.lr2 = lr, lr2
        stage2_len = max(1, self.stage2 - self.stage1)
        self.lam = lam * OFFICIAL_STAGE2_EPOCHS / stage2_len if lam_rule == "distance" else lam
        self.y_tilde = k_init * F.one_hot(class_indices(noisy_targets, num_classes), num_classes).float()
        self.stage = 1
        self._leaf: torch.Tensor | None = None

    def to(self, device: torch.device) -> PencilObjective:
        self.y_tilde = self.y_tilde.to(device)
        return self

    def stage_of(self, epoch: int) -> int:
        return 1 if epoch < self.stage1 else (2 if epoch < self.stage2 else 3)

    def on_epoch_start(self, epoch: int) -> None:
        self.stage = self.stage_of(epoch)

    def lr_at(self, epoch: float) -> float | None:
        if self.lr is None:
            return None
        if self.lr2 is None:
            return self.lr
        return pencil_lr(epoch, self.lr, self.epochs, self.stage2, self.lr2)

    @property
    def y_d(self) -> torch.Tensor:
        return self.y_tilde.softmax(1)

    def loss(self, logits: torch.Tensor, batch: dict, epoch: int) -> torch.Tensor:
        """The batch's loss at ``epoch``, whose stage decides it (``on_epoch_start`` need not be called). y~ follows
        the logits to their device (a loop that never calls ``to`` would otherwise fail only at stage 2)."""
        idx, target = batch["index"], class_labels(logits, batch["target"])
        self.stage = self.stage_of(int(epoch))
        if self.y_tilde.device != logits.device:
            self.to(logits.device)
        if self.stage == 1:
            self._leaf = None
            return F.cross_entropy(logits, target)
        if self.stage == 2:
            self._leaf = self.y_tilde[idx].clone().requires_grad_(True)
            return pencil_loss(logits, self._leaf, target, self.alpha, self.beta, self.compat)
        self._leaf = None
        return pencil_lc(logits, self.y_d[idx])

    @torch.no_grad()
    def after_step(self, batch: dict, grad_scale: float = 1.0) -> None:
        """y~ <- y~ - lambda dL/dy~ for the batch's samples (stage 2). Under an fp16 GradScaler the gradient is
        scaled: pass ``grad_scale=scaler.get_scale()``."""
        if self._leaf is None or self._leaf.grad is None:
            return
        idx = batch["index"]
        new = self._leaf - self.lam * self._leaf.grad / (self.world * grad_scale)
        if self.world > 1:
            idx, new = all_gather_cat(idx, self.dist), all_gather_cat(new.contiguous(), self.dist)
        self.y_tilde[idx] = new
        self._leaf = None

    def state_dict(self) -> dict:
        return {"y_tilde": self.y_tilde.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        if "y_tilde" in state:
            self.y_tilde = state["y_tilde"].to(self.y_tilde.device)
