"""One training loop for every trained model of stvlm.

:class:`TrainingLoop` fits a torch module on batches of windows: Adam,
``ReduceLROnPlateau`` on the validation loss (the training loss without validation) or a
cosine decay over the epoch cap, early stopping with the best weights restored, Ctrl-C
keeping the best weights, a tqdm bar, one record per epoch and optional user callbacks.
Its loss, :func:`masked_mae_loss`, masks targets with :func:`stvlm.metrics.target_mask`,
the rule of every metric, so a model trains on exactly the values it is scored on.

An estimator plugs in by handing the loop two *batch sources* (training and
validation) and a *forward* function: ``source(idx)`` returns the inputs and targets
of the windows ``idx``, ``forward(inputs)`` the forecast in the units of the data.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import distributed
from ._progress import progress
from ._weight_average import WeightAverage, check_ema_decay
from ._losses import LOSSES, _check_loss, masked_mae_loss, masked_mse_loss  # noqa: F401 (public here)

__all__ = ["LOSSES", "LR_SCHEDULES", "TrainingLoop", "TrainingResult", "masked_mae_loss", "masked_mse_loss", "predict_in_batches"]

#: Learning-rate schedules of :class:`TrainingLoop`.
LR_SCHEDULES = ("plateau", "cosine", "exponential")


def _check_lr_schedule(value):
    if value not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {value!r}.")


#: Training whose last epoch's loss exceeds the first's by this factor is said to diverge.
DIVERGENCE_FACTOR = 10.0


@dataclass
class TrainingResult:
    """What :meth:`TrainingLoop.fit` reports.

    Attributes
    ----------
    loss_history : list of dict
        Per epoch: ``epoch`` (1-based), ``train_loss``, ``val_loss`` (NaN without
        validation), ``lr`` and ``seconds``.
    best_epoch : int
        Epoch whose weights were restored (0: the initial weights, or none finished).
    best_loss : float
        Its monitored loss (validation, else training).
    interrupted : bool
        Whether Ctrl-C stopped training.
    stopped_by_callback : bool
        Whether a callback stopped training.

    Examples
    --------
    >>> from stvlm.training import TrainingResult
    >>> r = TrainingResult()
    >>> r.best_epoch, r.best_loss, r.loss_history
    (0, inf, [])
    """

    loss_history: list = field(default_factory=list)
    best_epoch: int = 0
    best_loss: float = math.inf
    interrupted: bool = False
    stopped_by_callback: bool = False


class TrainingLoop:
    """Adam, a learning-rate schedule, early stopping and best weights, for any module.

    Parameters
    ----------
    forward : callable
        ``forward(inputs) -> torch.Tensor``: the forecast of a batch in data units.
    max_epochs, batch_size, patience, lr_patience : int
        Epoch cap, windows per step, early-stopping and plateau patience.
    learning_rate, lr_factor : float
        Adam's learning rate and the plateau factor.
    weight_decay : float, default=0.0
        Adam's weight decay.
    null_value, threshold : float or None
        Masks of the loss (:func:`masked_mae_loss`).
    loss : {"mae", "mse"}, default="mae"
        What is minimised and monitored: masked MAE (:func:`masked_mae_loss`) or masked
        MSE (:func:`masked_mse_loss`, for models scored by MSE).
    callbacks : sequence of callable, optional
        Each is called after every epoch as ``callback(owner, record)``; a truthy
        return stops training (the best weights are still restored).
    verbose : int, default=0
        ``> 0`` shows a tqdm bar over epochs.
    desc : str, default="fit"
        Label of the bar.
    micro_batch_size : int or None, default=None
        Run each batch in pieces of at most this many windows, their gradients added up
        to the batch's (the same step, less activation memory); ``None``: whole batches.
    lr_schedule : {"plateau", "cosine", "exponential"}, default="plateau"
        ``"plateau"``: ``ReduceLROnPlateau`` (``lr_patience``, ``lr_factor``) on the
        monitored loss. ``"cosine"``: epoch ``e`` (from 1) trains at
        ``learning_rate * (1 + cos(pi * (e - 1) / max_epochs)) / 2``, reaching near zero at
        the cap whatever the losses do — for a fixed epoch budget that a plateau would
        not decay within (``lr_patience`` and ``lr_factor`` are then unused).
        ``"exponential"``: epoch ``e`` trains at ``learning_rate * lr_factor ** (e - 1)``
        (the long-term forecasting papers' ``lradj="type1"`` with ``lr_factor=0.5``).
    validate_initial : bool, default=False
        Score the initial weights on the validation windows first, as "epoch 0": when
        no epoch beats them, they are what is kept (``best_epoch == 0``). For models
        whose untrained forecast is meaningful (``output="change"`` repeats the last
        value), so that training never ends worse than where it started.
    min_steps_per_epoch : int or None, default=None
        An epoch takes at least this many optimizer steps: a training set of fewer
        batches is passed over several times per epoch (each pass in a new random
        order), as Keras' ``steps_per_epoch``. Validation, patience and the schedule
        then count comparable amounts of training whatever the data's size — a
        few-shot fit of 3 batches would otherwise stop at ``max_epochs`` after 30 steps,
        its rate already decayed. ``None``: one pass per epoch.
    ema_decay : float in [0, 1) or None, default=None
        ``average = ema_decay * average + (1 - ema_decay) * weights`` after each step, from the initial
        weights, is validated and kept at the best epoch (no validation: the epoch of least training
        loss) while training goes on from the raw weights; no epoch counts towards ``patience`` before
        the initial weights hold at most half of it (69 steps at 0.99). ``None``: no average.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from stvlm.training import TrainingLoop
    >>> _ = torch.manual_seed(0)
    >>> x = torch.linspace(0, 1, 64)[:, None]
    >>> y = 3 * x + 1
    >>> net = torch.nn.Linear(1, 1)
    >>> loop = TrainingLoop(lambda inputs: net(*inputs), max_epochs=200, batch_size=16,
    ...                     learning_rate=0.05, patience=20, lr_patience=10, lr_factor=0.5)
    >>> result = loop.fit(net, lambda idx: ((x[idx],), y[idx]), 64, rng=np.random.default_rng(0))
    >>> bool(result.best_loss < 0.05), len(result.loss_history) <= 200
    (True, True)
    """

    def __init__(
        self,
        forward,
        *,
        max_epochs,
        batch_size,
        learning_rate,
        patience,
        lr_patience,
        lr_factor,
        weight_decay=0.0,
        null_value=0.0,
        threshold=None,
        callbacks=None,
        verbose=0,
        desc="fit",
        micro_batch_size=None,
        lr_schedule="plateau",
        validate_initial=False,
        loss="mae",
        min_steps_per_epoch=None,
        ema_decay=None,
    ):
        _check_lr_schedule(lr_schedule)
        self.ema_decay = check_ema_decay(ema_decay)
        _check_loss(loss)
        self.loss = loss
        self.forward = forward
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor
        self.weight_decay = weight_decay
        self.null_value = null_value
        self.threshold = threshold
        self.callbacks = list(callbacks or ())
        self.verbose = verbose
        self.desc = desc
        self.micro_batch_size = micro_batch_size
        self.validate_initial = validate_initial
        self.lr_schedule = lr_schedule
        self.min_steps_per_epoch = min_steps_per_epoch

    # ------------------------------------------------------------------ steps
    def batch_loss(self, source, idx):
        """Masked loss (MAE or MSE) of windows ``idx`` of a batch source, and its count."""
        inputs, y = source(idx)
        pred = self.forward(inputs)
        fn = masked_mse_loss if self.loss == "mse" else masked_mae_loss
        return fn(pred.float(), y, self.null_value, self.threshold)

    def epoch_batches(self, n, rng):
        """The batches of one epoch: windows in a random order, cut in ``batch_size``;
        as many passes (each reshuffled) as fill ``min_steps_per_epoch`` batches."""
        per_pass = -(-n // self.batch_size)
        passes = 1 if not self.min_steps_per_epoch or not per_pass else -(-self.min_steps_per_epoch // per_pass)
        batches = []
        for _ in range(passes):
            order = rng.permutation(n)
            batches += [order[s : s + self.batch_size] for s in range(0, n, self.batch_size)]
        return batches

    def train_epoch(self, module, optimizer, source, n, rng):
        """One epoch over ``n`` training windows in a random order; the mean loss.

        One pass, or several when ``min_steps_per_epoch`` asks for more batches; each
        pass is batched on its own, so no batch mixes two passes.
        """
        module.train()
        batches = self.epoch_batches(n, rng)
        if distributed.world_size() > 1 or (self.micro_batch_size and self.micro_batch_size < self.batch_size):
            return self._train_epoch_shared(module, optimizer, source, batches)
        total, count = 0.0, 0
        for batch in batches:
            loss, n_valid = self.batch_loss(source, batch)
            if n_valid == 0:
                continue
            value = float(loss.detach())
            if not math.isfinite(value):
                raise _NonFiniteLoss("training", value)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._step(optimizer)
            total += value * n_valid
            count += n_valid
        return total / count if count else math.nan

    def _step(self, optimizer):
        optimizer.step()
        if getattr(self, "_average", None) is not None:
            self._average.update()

    def _train_epoch_shared(self, module, optimizer, source, batches):
        """:meth:`train_epoch` in pieces: shares of each batch over processes, micro-batches.

        Each process takes its share of every batch (every ``world_size``-th window) and
        runs it in micro-batches of at most ``micro_batch_size`` windows. Each piece's
        loss is weighted by the targets it kept; the gradients are summed over pieces and
        processes and divided by the batch's kept targets, so a step is the step of the
        whole batch at once, on one process.
        """
        rank, world = distributed.rank(), distributed.world_size()
        micro = self.micro_batch_size or self.batch_size
        params = [p for p in module.parameters() if p.requires_grad]
        total, count = 0.0, 0
        for batch in batches:
            share = batch[rank::world]
            optimizer.zero_grad(set_to_none=True)
            local_sum, local_n = 0.0, 0
            for m in range(0, len(share), micro):
                loss, n_valid = self.batch_loss(source, share[m : m + micro])
                if n_valid:
                    local_sum += float(loss.detach()) * n_valid
                    local_n += n_valid
                    (loss * n_valid).backward()
            batch_n, batch_sum = distributed.all_reduce_sum([local_n, local_sum]) if world > 1 else (local_n, local_sum)
            if batch_n == 0:
                continue
            value = batch_sum / batch_n
            if not math.isfinite(value):
                raise _NonFiniteLoss("training", value)
            distributed.sum_gradients(params)
            for p in params:
                if p.grad is not None:
                    p.grad /= batch_n
            self._step(optimizer)
            total += batch_sum
            count += batch_n
        return total / count if count else math.nan

    def evaluate(self, module, source, n):
        """Mean masked loss over ``n`` windows, without gradients (shared out over processes)."""
        import torch

        module.eval()
        rank, world = distributed.rank(), distributed.world_size()
        micro = self.micro_batch_size or self.batch_size
        total, count = 0.0, 0
        with torch.no_grad():
            for b, s in enumerate(range(0, n, self.batch_size)):
                if b % world != rank:
                    continue
                for m in range(s, min(n, s + self.batch_size), micro):
                    loss, n_valid = self.batch_loss(source, np.arange(m, min(n, s + self.batch_size, m + micro)))
                    if n_valid:
                        value = float(loss)
                        if world == 1 and not math.isfinite(value):
                            raise _NonFiniteLoss("validation", value)
                        total += value * n_valid
                        count += n_valid
        if world > 1:
            total, count = distributed.all_reduce_sum([total, count])
            if count and not math.isfinite(total / count):
                raise _NonFiniteLoss("validation", total / count)
        return total / count if count else math.nan

    def _scheduled_lr(self, epoch):
        if self.lr_schedule == "exponential":
            return self.learning_rate * self.lr_factor ** (epoch - 1)
        return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / self.max_epochs))

    # ------------------------------------------------------------------ loop
    def fit(self, module, train, n_train, val=None, n_val=0, *, rng, owner=None):
        """Train ``module`` in place; restore the best weights.

        Parameters
        ----------
        module : torch.nn.Module
            Its parameters with ``requires_grad`` are trained.
        train : callable
            Batch source: ``train(idx) -> (inputs, y)``.
        n_train : int
            Training windows.
        val : callable, optional
            Validation batch source.
        n_val : int, default=0
            Validation windows.
        rng : numpy.random.Generator
            Shuffles the batches.
        owner : object, optional
            Passed to the callbacks (the estimator).

        Returns
        -------
        TrainingResult
        """
        import torch

        params = [p for p in module.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.lr_factor, patience=self.lr_patience
        )
        trainable = {n for n, p in module.named_parameters() if p.requires_grad}
        # Buffers that training writes (a memory of patches) belong to the best epoch too.
        trainable |= {n for n, _ in module.named_buffers()}
        distributed.broadcast_parameters(module)  # several processes: all start from rank 0's weights
        self._average = WeightAverage(params, self.ema_decay) if self.ema_decay else None
        averaged = self._average.swapped_in if self._average is not None else contextlib.nullcontext
        best_state = _snapshot(module, trainable)
        result = TrainingResult()
        bad_epochs = 0
        bar = progress(self.max_epochs, self.verbose if distributed.is_main_process() else 0, self.desc)
        try:
            if self.validate_initial and n_val:
                initial = self.evaluate(module, val, n_val)
                if math.isfinite(initial):
                    result.best_loss = initial
            for epoch in range(1, self.max_epochs + 1):
                t0 = time.perf_counter()
                if self.lr_schedule != "plateau":
                    for group in optimizer.param_groups:
                        group["lr"] = self._scheduled_lr(epoch)
                train_loss = self.train_epoch(module, optimizer, train, n_train, rng)
                with averaged():  # validation and the kept weights see the average, training the raw ones
                    val_loss = self.evaluate(module, val, n_val) if n_val else math.nan
                    monitor = val_loss if n_val else train_loss
                    if monitor < result.best_loss:
                        best_state = _snapshot(module, trainable)
                lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trained at
                if self.lr_schedule == "plateau":
                    scheduler.step(monitor)
                record = dict(epoch=epoch, train_loss=train_loss, val_loss=val_loss, lr=lr, seconds=time.perf_counter() - t0)
                result.loss_history.append(record)
                if monitor < result.best_loss:
                    result.best_loss, result.best_epoch, bad_epochs = monitor, epoch, 0
                elif self._average is None or self._average.settled:  # see WeightAverage.settle_share
                    bad_epochs += 1
                bar.update(1)
                bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}")
                stop = any([bool(cb(owner, dict(record))) for cb in self.callbacks])
                if distributed.world_size() > 1:  # one process asking to stop stops them all
                    stop = distributed.all_reduce_sum([float(stop)])[0] > 0
                if stop:
                    result.stopped_by_callback = True
                    break
                if bad_epochs >= self.patience:
                    break
        except _NonFiniteLoss as exc:
            raise ValueError(
                f"the {exc.part} loss became {exc.value} in epoch {len(result.loss_history) + 1}: the "
                "network's numbers overflowed. Lower learning_rate (it is "
                f"{self.learning_rate}), or check the data for extreme values; nothing was fitted."
            ) from None
        except KeyboardInterrupt:
            if not result.loss_history:
                # Nothing trained yet: a model with its initial weights is not a fitted model.
                raise
            result.interrupted = True
            warnings.warn(
                f"training interrupted after {len(result.loss_history)} epochs; keeping the best "
                f"weights so far (epoch {result.best_epoch}).",
                UserWarning,
                stacklevel=4,
            )
        finally:
            bar.close()
        module.load_state_dict(best_state, strict=False)
        module.eval()
        _warn_if_diverged(result)
        return result


class _NonFiniteLoss(Exception):
    def __init__(self, part, value):
        super().__init__(part, value)
        self.part, self.value = part, value


def _warn_if_diverged(result):
    """Warn when training ended far worse than it started (a learning rate too large)."""
    losses = [r["train_loss"] for r in result.loss_history if math.isfinite(r["train_loss"])]
    if len(losses) >= 2 and losses[-1] > DIVERGENCE_FACTOR * losses[0]:
        warnings.warn(
            f"training diverged: the training loss grew from {losses[0]:.4g} (epoch 1) to "
            f"{losses[-1]:.4g} (epoch {len(losses)}). The best epoch's weights are kept, but a "
            "smaller learning_rate will likely fit far better.",
            UserWarning,
            stacklevel=5,
        )


def predict_in_batches(forward, inputs, n, batch_size, out_shape):
    """Forecasts of ``n`` windows in batches, in data units, as float64.

    Parameters
    ----------
    forward : callable
        ``forward(inputs(idx)) -> torch.Tensor`` of shape ``(len(idx),) + out_shape``.
    inputs : callable
        ``inputs(idx)``: the model inputs of windows ``idx``.
    n, batch_size : int
    out_shape : tuple of int
        Shape of one forecast.

    Returns
    -------
    ndarray of shape (n,) + out_shape

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from stvlm.training import predict_in_batches
    >>> x = torch.arange(5.0)[:, None]
    >>> predict_in_batches(lambda t: 2 * t, lambda idx: x[idx], 5, 2, (1,)).ravel()
    array([0., 2., 4., 6., 8.])
    """
    import torch

    out = np.empty((n,) + tuple(out_shape), dtype=np.float64)
    step = max(1, int(batch_size))
    with torch.no_grad():
        for s in range(0, n, step):
            idx = np.arange(s, min(n, s + step))
            out[idx] = forward(inputs(idx)).double().cpu().numpy()
    return out


def _snapshot(module, names):
    return {k: v.detach().clone() for k, v in module.state_dict().items() if k in names}
