"""A moving average of a module's trained weights, for :class:`stvlm.training.TrainingLoop`.

After every optimiser step ``average = decay * average + (1 - decay) * weights``, starting
from the initial weights. The loop scores the averaged weights on validation and keeps
them at the best epoch, while training goes on from the raw weights. Why: a few-shot
validation curve jumps by several MAE from epoch to epoch, and choosing an epoch on it
picks noise; the average smooths the weights before one is chosen (docs/results.md,
"A moving average of the weights").
"""

from __future__ import annotations

import contextlib
import numbers


def check_ema_decay(value):
    """``None`` (no average) or a real number in ``[0, 1)``; the value, else ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(
            f"ema_decay must be None (no moving average of the weights) or a number in [0, 1) "
            f"(the weight of the old average at each step, e.g. 0.99); got {value!r}."
        )
    return float(value)


class WeightAverage:
    """The exponential moving average of ``params`` (tensors that the optimiser updates).

    ``settle_share``: while the initial weights still hold more than this share of the
    average (``decay ** steps``; at 0.99 the first 69 steps), the average is not *settled*
    and the loop does not count its epochs towards early stopping; ``None``: settled from
    the start. Why: an average still made mostly of the initial weights scores about what
    they score, so a few-shot fit of a few steps an epoch ran out of patience before its
    average had moved (docs/results.md, "Session 17: early stopping waits for the average").
    """

    settle_share = 0.5

    def __init__(self, params, decay):
        import torch

        self.params = list(params)
        self.decay = float(decay)
        self.steps = 0
        with torch.no_grad():
            self.average = [p.detach().clone() for p in self.params]

    @property
    def settled(self):
        return self.settle_share is None or self.decay**self.steps <= self.settle_share

    def update(self):
        """Fold the current weights in (after an optimiser step)."""
        import torch

        self.steps += 1
        with torch.no_grad():
            for a, p in zip(self.average, self.params):
                a.mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)

    @contextlib.contextmanager
    def swapped_in(self):
        """The averaged weights in the module for the block; the raw ones back after it."""
        import torch

        with torch.no_grad():
            raw = [p.detach().clone() for p in self.params]
            for p, a in zip(self.params, self.average):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, r in zip(self.params, raw):
                    p.copy_(r)
