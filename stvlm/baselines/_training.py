"""What the neural baselines share: input checks, the chronological split, z-scoring,
and a training loop with the same loss and schedule as :class:`~stvlm.STVLMForecaster`.

A subclass builds its ``torch.nn.Module`` in ``_build_module(n_sensors)``; the module
maps scaled windows ``(B, history, N)`` (and time-of-day slots ``(B,)`` when the model
uses them) to scaled forecasts ``(B, horizon, N)``.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import _as_float_array, check_positive_int, check_series, check_windows, impute_nonfinite
from ..windows import make_windows


class _NeuralWindowForecaster(BaseEstimator):
    """Base of the torch baselines; not public."""

    #: Whether the module takes the time-of-day slot of each window.
    _uses_time_of_day = False

    # ------------------------------------------------------------------ checks
    def _check_common(self):
        from ..forecaster import _check_real

        check_positive_int(self.history, "history")
        check_positive_int(self.horizon, "horizon")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.max_epochs, "max_epochs")
        check_positive_int(self.patience, "patience")
        check_positive_int(self.lr_patience, "lr_patience")
        _check_real(self.learning_rate, "learning_rate", low=0, low_open=True)
        _check_real(self.weight_decay, "weight_decay", low=0)
        _check_real(self.lr_factor, "lr_factor", low=0, high=1, low_open=True, high_open=True)
        _check_real(self.validation_fraction, "validation_fraction", low=0, high=1, high_open=True)
        if self.null_value is not None:
            _check_real(self.null_value, "null_value")
        if self._uses_time_of_day:
            check_positive_int(self.steps_per_day, "steps_per_day")
            if not isinstance(self.first_time_index, (int, np.integer)) or isinstance(self.first_time_index, bool):
                raise TypeError(f"first_time_index must be an int; got {self.first_time_index!r}.")

    def _check_tod(self, time_of_day, n):
        if not self._uses_time_of_day:
            return None
        if time_of_day is None:
            raise ValueError(
                f"{type(self).__name__} needs the time-of-day slot of each window's first history "
                "step: pass time_of_day (array of n_windows ints in [0, steps_per_day)), e.g. "
                "Protocol.time_of_day(Protocol.test_rows) for a benchmark protocol."
            )
        tod = np.asarray(time_of_day)
        if tod.ndim != 1 or tod.shape[0] != n:
            raise ValueError(f"time_of_day must have shape ({n},), one slot per window; got {tod.shape}.")
        if not np.issubdtype(tod.dtype, np.integer):
            if not np.issubdtype(tod.dtype, np.floating) or not np.all(tod == np.round(tod)):
                raise TypeError(f"time_of_day must hold integers; got dtype {tod.dtype}.")
        tod = tod.astype(np.int64)
        if tod.size and (tod.min() < 0 or tod.max() >= self.steps_per_day):
            raise ValueError(
                f"time_of_day must lie in [0, {self.steps_per_day}); got values in [{tod.min()}, {tod.max()}]."
            )
        return tod

    # ------------------------------------------------------------------ data
    def _split(self, X, y, time_of_day):
        from ..forecaster import _check_sensors_have_data, _check_targets, _split_sizes

        history, horizon = self.history, self.horizon
        X = _as_float_array(X, "X")
        if X.ndim == 2 and y is None:
            series = check_series(X)
            _check_sensors_have_data(series)
            if series.shape[0] < history + horizon:
                raise ValueError(
                    f"the series has {series.shape[0]} steps; history + horizon = "
                    f"{history + horizon} are needed for one training window."
                )
            if time_of_day is not None:
                raise ValueError(
                    "time_of_day is for windows; for a series the slots follow from first_time_index."
                )
            Xw, yw = make_windows(series, history, horizon)
            tod = None
            if self._uses_time_of_day:
                tod = (self.first_time_index + np.arange(Xw.shape[0])) % self.steps_per_day
            gap = history + horizon - 1  # validation windows share no row with training ones
        else:
            if X.ndim == 2:
                check_series(X)
                raise ValueError(
                    "X is 2-D, so it is read as a series (T, n_sensors) and y must be None; "
                    "to pass y, give windows X of shape (n_windows, history, n_sensors)."
                )
            if y is None:
                raise ValueError(
                    "y is required with windows X (n_windows, history, n_sensors); pass a "
                    "series (T, n_sensors) instead to have windows cut for you."
                )
            Xw = check_windows(X, min_history=1, dtype=np.float64)
            if Xw.shape[1] != history:
                raise ValueError(f"X has windows of {Xw.shape[1]} steps but history={history}.")
            yw = _check_targets(y, Xw, horizon)
            _check_sensors_have_data(Xw.reshape(-1, Xw.shape[2]))
            tod = self._check_tod(time_of_day, Xw.shape[0])
            gap = 0
        n = Xw.shape[0]
        n_train, n_val = _split_sizes(n, self.validation_fraction, gap)

        def part(sl):
            return Xw[sl], yw[sl], None if tod is None else tod[sl]

        train = part(slice(0, n_train))
        val = part(slice(n - n_val, n)) if n_val else None
        return train, val

    def _tensors(self, X, tod, device):
        import torch

        x = (impute_nonfinite(X) - self.mean_) / self.std_
        x = torch.as_tensor(x, dtype=torch.float32, device=device)
        t = None if tod is None else torch.as_tensor(tod, dtype=torch.long, device=device)
        return x, t

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, time_of_day=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (T, n_sensors) or (n_windows, history, n_sensors)
            A series, from which windows are cut (``y`` must be None; the last
            ``validation_fraction`` of windows, after a gap of ``history + horizon - 1``
            windows, validate), or windows with targets ``y`` (the last
            ``validation_fraction`` validate, no gap).
        y : array-like of shape (n_windows, horizon, n_sensors), optional
            Targets of windows ``X``.
        time_of_day : array-like of int, shape (n_windows,), optional
            For windows and a model that uses time of day: slot of each window's first
            history step. For a series the slots follow from ``first_time_index``.

        Returns
        -------
        self
        """
        import torch

        from ..forecaster import _snapshot
        from ..images import _progress, _resolve_device

        self._check_common()
        self._check_params()
        device = _resolve_device(self.device)
        device = torch.device("cpu") if device == "cpu" else torch.device(device)
        (Xt, yt, tt), val = self._split(X, y, time_of_day)
        values = Xt[np.isfinite(Xt)]
        self.mean_ = float(values.mean())
        std = float(values.std())
        self.std_ = std if std > 0 else 1.0
        self.n_features_in_ = Xt.shape[2]

        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.module_ = self._build_module(self.n_features_in_).to(device)
        net = self.module_

        batch_size = self.batch_size
        if batch_size > len(Xt):
            warnings.warn(
                f"batch_size={batch_size} is larger than the {len(Xt)} training windows; "
                f"using batches of {len(Xt)}.",
                UserWarning,
                stacklevel=2,
            )
            batch_size = len(Xt)
        x_train, t_train = self._tensors(Xt, tt, device)
        y_train = torch.as_tensor(yt, dtype=torch.float32, device=device)
        if val is not None:
            x_val, t_val = self._tensors(val[0], val[2], device)
            y_val = torch.as_tensor(val[1], dtype=torch.float32, device=device)

        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.lr_factor, patience=self.lr_patience
        )
        names = set(net.state_dict())
        best_state = _snapshot(net, names)
        best_loss, best_epoch, bad_epochs = math.inf, 0, 0
        self.history_ = []
        bar = _progress(self.max_epochs, self.verbose, f"{type(self).__name__} fit")
        try:
            for epoch in range(1, self.max_epochs + 1):
                t0 = time.perf_counter()
                net.train()
                order = torch.as_tensor(rng.permutation(len(Xt)), device=device)
                total, count = 0.0, 0
                for s in range(0, len(order), batch_size):
                    idx = order[s : s + batch_size]
                    pred = net(x_train[idx], None if t_train is None else t_train[idx])
                    loss, n_valid = self._loss(pred, y_train[idx])
                    if n_valid == 0:
                        continue
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * n_valid
                    count += n_valid
                train_loss = total / count if count else math.nan
                val_loss = math.nan
                if val is not None:
                    val_loss = self._eval_loss(x_val, t_val, y_val, batch_size)
                monitor = val_loss if val is not None else train_loss
                scheduler.step(monitor)
                self.history_.append(
                    dict(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                         lr=optimizer.param_groups[0]["lr"], seconds=time.perf_counter() - t0)
                )
                if monitor < best_loss:
                    best_loss, best_epoch, bad_epochs = monitor, epoch, 0
                    best_state = _snapshot(net, names)
                else:
                    bad_epochs += 1
                bar.update(1)
                if bad_epochs >= self.patience:
                    break
        finally:
            bar.close()
        net.load_state_dict(best_state)
        net.eval()
        self.best_epoch_ = best_epoch
        return self

    def _loss(self, pred_scaled, y):
        """Masked MAE in original units, as STVLMForecaster trains."""
        from ..forecaster import _masked_mae_loss

        return _masked_mae_loss(pred_scaled * self.std_ + self.mean_, y, self.null_value)

    def _eval_loss(self, x, t, y, batch_size):
        import torch

        self.module_.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for s in range(0, x.shape[0], batch_size):
                sl = slice(s, s + batch_size)
                loss, n_valid = self._loss(self.module_(x[sl], None if t is None else t[sl]), y[sl])
                if n_valid:
                    total += float(loss) * n_valid
                    count += n_valid
        return total / count if count else math.nan

    # ------------------------------------------------------------------ predict
    def _predict(self, X, time_of_day):
        import torch

        check_is_fitted(self, "module_")
        X = check_windows(X, min_history=1, dtype=np.float64)
        if X.shape[2] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[2]} sensors; fitted with {self.n_features_in_}.")
        if X.shape[1] != self.history:
            raise ValueError(f"X has windows of {X.shape[1]} steps but history={self.history}.")
        tod = self._check_tod(time_of_day, X.shape[0])
        device = next(self.module_.parameters()).device
        out = np.empty((X.shape[0], self.horizon, X.shape[2]), dtype=np.float64)
        step = 256
        with torch.no_grad():
            for s in range(0, X.shape[0], step):
                x, t = self._tensors(X[s : s + step], None if tod is None else tod[s : s + step], device)
                out[s : s + step] = self.module_(x, t).double().cpu().numpy()
        return out * self.std_ + self.mean_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
