"""What every trained window forecaster shares, as scikit-learn's ``_BaseRidge`` serves
its ridge estimators: input through the data front door, the chronological split,
z-scoring, the training loop, batched prediction and the masked-MAE score.

A model subclasses :class:`BaseWindowForecaster` and fills in a few hooks: its own
parameter checks, the torch module, the inputs of a batch and the forward pass.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ._autoregression import MIN_GAIN, ar_forecast, ar_weight, fit_ar, fits_in_memory
from ._device import own_rng, torch_device
from ._validation import _as_float_array, check_positive_int, check_real, check_seed
from .data import as_windows, chronological_split
from .data._windows import check_sensors_have_data, check_value_range, constant_mae, finite_mean_std
from .metrics import masked_mae
from ._weight_average import check_ema_decay
from .training import _check_loss, _check_lr_schedule

# torch draws initial weights and dropout masks from its global generators, which every
# thread shares; fits hold this lock from seeding to the last epoch, so that a fit's
# result depends on its random_state alone, also in GridSearchCV(n_jobs=2) on threads.
_SEEDED = threading.RLock()


class BaseWindowForecaster(RegressorMixin, BaseEstimator):
    """Base of the trained forecasters of windows ``(n, history, N) -> (n, horizon, N)``.

    Not public. Subclasses set ``_module_attr`` (the fitted module's attribute name)
    and implement ``_build_module``; the other hooks have defaults.
    """

    #: Name of the fitted torch module's attribute.
    _module_attr = "module_"
    #: What ``output`` may be for this model ("ar": models whose loop and tests cover it).
    _outputs = ("level", "change")

    # ------------------------------------------------------------------ hooks
    def _check_model_params(self):
        """Checks of the parameters only this model has."""

    def _clock(self):
        """Keywords of :func:`stvlm.as_windows` that date a bare series (none by default)."""
        return {}

    def _setup(self, train, device):
        """Learn what the module needs from the training windows, before it is built."""

    def _build_module(self, n_sensors):
        raise NotImplementedError

    def _prepare(self, windows, device):
        """Precompute per-window data once per fit (e.g. images)."""

    def _check_predict_data(self, windows):
        """Refuse windows this fitted model cannot forecast."""

    def _inputs(self, windows, idx, device):
        """Module inputs of windows ``idx``: the z-scored windows by default."""
        import torch

        x = (windows.filled_batch(idx) - self.mean_) / self.std_
        return (torch.as_tensor(x, dtype=torch.float32, device=device),)

    def _forward(self, module, inputs, device):
        """Scaled forecast of a batch."""
        return module(*inputs)

    def _output_layer(self, module):
        """The module's last linear layer, zeroed with ``output="change"`` (None: leave it)."""
        return None

    def _micro_batch_size(self, batch_size):
        """Windows per piece of a batch (``None``: whole batches); see TrainingLoop."""
        return None

    def _batch(self, windows, idx, device):
        """Inputs and targets (data units) of windows ``idx``."""
        import torch

        y = torch.as_tensor(np.asarray(windows.y[idx], dtype=np.float32), device=device)
        return self._inputs(windows, idx, device), y

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        history = check_positive_int(self.history, "history")
        horizon = check_positive_int(self.horizon, "horizon")
        for name in ("batch_size", "max_epochs", "patience", "lr_patience"):
            check_positive_int(getattr(self, name), name)
        check_real(self.learning_rate, "learning_rate", low=0, low_open=True)
        check_real(getattr(self, "weight_decay", 0.0), "weight_decay", low=0)
        if getattr(self, "min_steps_per_epoch", None) is not None:
            check_positive_int(self.min_steps_per_epoch, "min_steps_per_epoch")
        check_real(self.lr_factor, "lr_factor", low=0, high=1, low_open=True, high_open=True)
        _check_lr_schedule(self.lr_schedule)  # before any work, not only when the loop starts
        _check_loss(getattr(self, "loss", "mae"))
        check_ema_decay(getattr(self, "ema_decay", None))
        check_real(self.validation_fraction, "validation_fraction", low=0, high=1, high_open=True)
        if self.null_value is not None:
            check_real(self.null_value, "null_value")
        if self.threshold is not None:
            check_real(self.threshold, "threshold", low=0)
        if self._output() not in self._outputs:
            known = " or ".join(repr(o) for o in self._outputs)
            raise ValueError(f"output must be {known}; got {self.output!r}.")
        if self.callbacks is not None and not all(callable(cb) for cb in self.callbacks):
            raise TypeError(f"callbacks must be None or a list of callables; got {self.callbacks!r}.")
        self._check_model_params()
        return history, horizon

    def _output(self):
        return getattr(self, "output", "level")

    def _scaled_forecast(self, module, inputs, device):
        """The module's forecast in z-scored units: a level, or with ``output="change"``
        the change from each window's last (imputed) value, added back here; with
        ``output="ar"`` what the linear autoregression ``ar_coef_`` misses, added to it."""
        out = self._forward(module, inputs, device)
        coef = getattr(self, "ar_coef_", None)  # output="ar", or "change" that added it after training
        if coef is not None:
            weight = getattr(self, "ar_weight_", None)  # None: saved before session 24, all of it
            out = out.float() + ar_forecast(inputs[0].float(), coef if weight is None else coef * weight)
        elif self._output() == "change":
            out = out.float() + inputs[0][:, -1:, :].float()  # float32: bf16 would round the level
        return out

    def _front_door(self, X, y=None, require_targets=True):
        return as_windows(
            X, y, history=self.history, horizon=self.horizon, require_targets=require_targets, **self._clock()
        )

    def _validation_windows(self, data, n_sensors):
        """The windows of ``fit``'s ``validation_data``."""
        import pandas as pd

        from .data import Windows

        pair = isinstance(data, tuple) and len(data) == 2
        dated = isinstance(data[0] if pair else data, (pd.DataFrame, Windows))
        if self._clock() and not dated:
            raise ValueError(
                "validation_data is not dated, but this model reads the time of day and would date it as "
                "the start of X; pass a DataFrame with a DatetimeIndex or stvlm.Windows."
            )
        val = self._front_door(*data) if pair else self._front_door(data)
        if val.n_sensors != n_sensors:
            raise ValueError(
                f"validation_data has {val.n_sensors} sensors; X has {n_sensors}: they must be the same series."
            )
        return val

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, validation_data=None):
        """Train the model.

        Parameters
        ----------
        X : array-like of shape (T, n_sensors), DataFrame, (n_windows, history, n_sensors), Windows or CorrelationImages
            A series, from which windows are cut (``y`` must be None; a DataFrame's
            DatetimeIndex dates the windows), whose last ``validation_fraction`` of
            windows (after a gap of ``history + horizon - 1`` windows, so no row is
            shared) validates; or windows with targets ``y`` (the last
            ``validation_fraction`` validate, no gap); or
            :class:`~stvlm.Windows`. NaN/inf are masked in the loss and imputed
            (forward/backward fill) in the inputs.
        y : array-like of shape (n_windows, horizon, n_sensors), optional
            Targets of windows ``X``.
        validation_data : series, Windows or (windows, targets), optional
            Held-out data to validate on instead of the last ``validation_fraction`` of
            ``X`` (which then all trains): e.g. a benchmark's own validation period. A
            series is cut into windows as ``X`` is; for a model that reads the time of
            day, give it dated (a DataFrame with a DatetimeIndex, or
            :class:`~stvlm.Windows`).

        Returns
        -------
        self
        """
        self._check_params()
        device = torch_device(self.device)
        data = self._front_door(X, y)
        check_sensors_have_data(data)
        check_value_range(data)
        if validation_data is None:
            train, val = chronological_split(data, self.validation_fraction)
        else:
            train, val = data, self._validation_windows(validation_data, data.n_sensors)

        # z-score from the training part only (one mean and std over all sensors).
        self.mean_, std = finite_mean_std(train.X)
        self.std_ = std if std > 0 else 1.0
        self.n_features_in_ = train.n_sensors
        # output="ar": the linear part, fitted on the training windows before the network.
        self.ar_coef_ = fit_ar(train, self.null_value, self.threshold) if self._output() == "ar" else None
        self.ar_weight_ = None if self.ar_coef_ is None else 1.0

        seed = check_seed(self.random_state)
        with _SEEDED, own_rng(device):
            self._fit_seeded(seed, train, val, device)
        return self

    def _fit_seeded(self, seed, train, val, device):
        import torch

        from .training import TrainingLoop

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self._setup(train, device)
        module = self._build_module(self.n_features_in_).to(device)
        if self._output() in ("change", "ar"):
            # The untrained model then repeats the last value (with "ar": forecasts the linear
            # autoregression): training starts from that forecast instead of from noise
            # (what matters with little data).
            layer = self._output_layer(module)
            if layer is not None:
                with torch.no_grad():
                    layer.weight.zero_()
                    if layer.bias is not None:
                        layer.bias.zero_()
        setattr(self, self._module_attr, module)

        batch_size = self.batch_size
        if batch_size > len(train):
            warnings.warn(
                f"batch_size={batch_size} is larger than the {len(train)} training windows; "
                f"using batches of {len(train)}.",
                UserWarning,
                stacklevel=3,
            )
            batch_size = len(train)
        for part in (train, val):
            if part is not None:
                self._prepare(part, device)

        def forward(inputs):
            return self._scaled_forecast(module, inputs, device).float() * self.std_ + self.mean_

        # With output="change" ("ar") the untrained model is the naive (linear) forecast:
        # score it first.
        validate_initial = self._output() in ("change", "ar")

        def source(windows):
            return None if windows is None else (lambda idx: self._batch(windows, idx, device))

        loop = TrainingLoop(
            forward,
            max_epochs=self.max_epochs,
            batch_size=batch_size,
            learning_rate=self.learning_rate,
            weight_decay=getattr(self, "weight_decay", 0.0),
            patience=self.patience,
            lr_patience=self.lr_patience,
            lr_factor=self.lr_factor,
            lr_schedule=self.lr_schedule,
            null_value=self.null_value,
            threshold=self.threshold,
            callbacks=self.callbacks,
            verbose=self.verbose,
            desc=f"{type(self).__name__} fit",
            micro_batch_size=self._micro_batch_size(batch_size),
            validate_initial=validate_initial,
            loss=getattr(self, "loss", "mae"),
            min_steps_per_epoch=getattr(self, "min_steps_per_epoch", None),
            ema_decay=getattr(self, "ema_decay", None),
        )
        result = loop.fit(
            module, source(train), len(train), source(val), 0 if val is None else len(val), rng=rng, owner=self
        )
        self.loss_history_ = result.loss_history
        self.best_epoch_ = result.best_epoch
        self.best_score_ = -result.best_loss if np.isfinite(result.best_loss) else float("nan")
        self.interrupted_ = result.interrupted
        blend = self._ar_blend(module, train, val)
        if blend is not None:
            warnings.warn(
                f"the linear autoregression of output=\"ar\" (ar_coef_, least squares on the training windows), "
                f"added to {'the last value (output layer zeroed)' if blend[3] else 'the network'} with weight ar_weight_="
                f"{blend[0]:.3g}, lowered the validation loss from {blend[2]:.4g} to {blend[1]:.4g}: the model "
                "forecasts that sum. With little data, the linear part is what transfers best.",
                UserWarning,
                stacklevel=3,
            )
        elif validate_initial and result.best_epoch == 0 and result.loss_history and val is not None:
            forecast = ("forecast the linear autoregression (ar_coef_)" if self._output() == "ar"
                        else "repeat each window's last value")
            warnings.warn(
                f"no epoch beat the untrained model on the validation windows (MAE {result.best_loss:.4g}): "
                f"the model keeps its initial weights, which {forecast}. With so "
                "little data, or data whose validation part differs from its training part, that is "
                "the best forecast training found.",
                UserWarning,
                stacklevel=3,
            )
        self._warn_if_worse_than_the_mean(result.best_loss, train if val is None else val)  # training's own

    def _ar_blend(self, module, train, val):
        """With ``output="change"``: add the linear autoregression of ``output="ar"`` after
        training where that lowers the validation loss by ``MIN_GAIN`` (1 %) or more.

        Fitted on the training windows; a trained network (best epoch > 0) gets it with a
        weight in [0, 1] fitted on the validation windows (``ar_weight``), the alternative
        is all of it on the last value (output layer zeroed); the lower scoring is kept
        (docs/results.md, "Session 24"). Returns ``(weight, with, without, zeroed)`` or None.
        """
        import torch

        layer = self._output_layer(module)
        if (self._output() != "change" or "ar" not in self._outputs or layer is None or val is None
                or not len(val) or not fits_in_memory(train.history, train.horizon)):
            return None
        coef = fit_ar(train, self.null_value, self.threshold)
        mask = dict(null_value=self.null_value, threshold=self.threshold, loss=getattr(self, "loss", "mae"))
        whole = ar_weight(val, coef, None, weight=1.0, **mask)  # on the last value, the untrained model
        if whole is None:
            return None
        # a weight fitted on the last value shrank it where that did not carry to later windows
        on_network = ar_weight(val, coef, self._forecast(module, val), **mask) if self.best_epoch_ else whole
        zeroed = not self.best_epoch_ or whole[1] < on_network[1]
        (weight, with_ar), without = (whole if zeroed else on_network)[:2], on_network[2]
        if not with_ar <= (1 - MIN_GAIN) * without:
            return None
        if zeroed:
            with torch.no_grad():
                layer.weight.zero_()
                if layer.bias is not None:
                    layer.bias.zero_()
            self.best_epoch_ = 0
        self.ar_coef_, self.ar_weight_ = coef, weight
        self.best_score_ = -with_ar
        return weight, with_ar, without, zeroed

    def _warn_if_worse_than_the_mean(self, best_loss, windows):
        """Training that ends far behind a constant forecast has failed: say so."""
        # in the loss's own units: an MSE is compared with the constant forecast's MSE
        constant = constant_mae(windows.y, self.mean_, self.null_value, self.threshold, getattr(self, "loss", "mae"))
        if constant is None:  # no valid target to compare on
            return
        if np.isfinite(best_loss) and best_loss > 2 * constant:
            warnings.warn(
                "training failed to learn: the best monitored loss "
                f"({best_loss:.4g}) is more than twice that of forecasting the training mean everywhere "
                f"({constant:.4g}). Lower learning_rate (it is {self.learning_rate}).",
                UserWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------------ predict
    def _predict_data(self, X):
        check_is_fitted(self, self._module_attr)
        if not hasattr(X, "n_windows") and not hasattr(X, "channels"):
            ndim = getattr(_as_float_array(X, "X"), "ndim", None)
            if ndim == 2:
                raise ValueError(
                    f"predict takes windows (n_windows, history, n_sensors); got a 2-D array {np.shape(X)}. "
                    "Cut windows with stvlm.make_windows, or forecast after the end of a series "
                    "with model.predict(series[-history:][None])."
                )
            if ndim == 1:
                raise ValueError(
                    f"X is 1-D with shape {np.shape(X)}; expected windows (n_windows, history, n_sensors)."
                )
        data = self._front_door(X, require_targets=False)
        if data.n_sensors != self.n_features_in_:
            raise ValueError(
                f"X has {data.n_sensors} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                f"features as input (one per sensor: it was fitted with {self.n_features_in_} sensors)."
            )
        self._check_predict_data(data)
        return data

    def predict(self, X):
        """Forecast the next ``horizon`` steps of each window.

        Parameters
        ----------
        X : array-like of shape (n_windows, history, n_sensors), Windows or CorrelationImages
            Windows (NaN/inf imputed along time). A 2-D series is refused: pass its
            last ``history`` steps as one window, ``series[None, -history:]``, to
            forecast after its end.

        Returns
        -------
        y_pred : ndarray of shape (n_windows, horizon, n_sensors)
            Forecasts in the units of the data.
        """
        data = self._predict_data(X)  # checks that the model is fitted
        return self._forecast(getattr(self, self._module_attr), data)

    def _forecast(self, module, data):
        """Forecasts of checked (prepared) windows in the units of the data."""
        from .training import predict_in_batches

        device = next(module.parameters()).device
        module.eval()
        out = predict_in_batches(
            lambda inputs: self._scaled_forecast(module, inputs, device),
            lambda idx: self._inputs(data, idx, device),
            len(data),
            self._micro_batch_size(self.batch_size) or self.batch_size,  # bounded activations at large N
            (self.horizon, self.n_features_in_),
        )
        return out * self.std_ + self.mean_

    def score(self, X, y=None, sample_weight=None):
        """Negative masked MAE (higher is better), so that model selection needs no scorer.

        Parameters
        ----------
        X : array-like of shape (T, n_sensors), (n_windows, history, n_sensors), Windows or CorrelationImages
            A series (windows and targets are cut from it; ``y`` must be None), or
            windows with targets ``y``, or windows that carry their targets.
        y : array-like of shape (n_windows, horizon, n_sensors), optional
        sample_weight : None
            Not supported; must be None.

        Returns
        -------
        score : float
            ``-masked_mae(y, predict(X), null_value=self.null_value, threshold=self.threshold)``.
        """
        if sample_weight is not None:
            raise ValueError(f"sample_weight is not supported by {type(self).__name__}.score.")
        check_is_fitted(self, self._module_attr)
        data = self._front_door(X, y)
        return -masked_mae(data.y, self.predict(data), null_value=self.null_value, threshold=self.threshold)

    # ------------------------------------------------------------------ names
    @property
    def history_(self):
        """Deprecated name of :attr:`loss_history_`."""
        warnings.warn(
            "history_ was renamed loss_history_ (history_ will be removed in stvlm 0.3).",
            FutureWarning,
            stacklevel=2,
        )
        return self.loss_history_

    def __dir__(self):
        # Tools that list fitted attributes by name (sktime's get_fitted_params reads every
        # public name ending in "_") would otherwise read the deprecated alias and warn.
        return [name for name in super().__dir__() if name != "history_"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # a series (T, N)
        tags.input_tags.three_d_array = True  # windows (n, history, N)
        tags.input_tags.allow_nan = True
        tags.target_tags.required = False  # y is cut from the series when X is 2-D
        tags.target_tags.multi_output = True
        tags.non_deterministic = self.random_state is None
        return tags

    def __getstate__(self):
        state = self.__dict__.copy()
        module = state.get(self._module_attr)
        if module is not None and next(module.parameters()).device.type != "cpu":
            import copy

            # A pickle must load on machines without the training GPU.
            state[self._module_attr] = copy.deepcopy(module).cpu()
        return state

