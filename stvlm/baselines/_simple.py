"""Forecasts with nothing (or one average) to learn: last value, historical average,
seasonal naive."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import _as_float_array, check_positive_int, check_series, check_windows, impute_nonfinite
from ..data import Windows, as_windows, slots_of_rows
from ..data._windows import check_sensors_have_data
from ..metrics import masked_mae
from ._neural import _windows_with_time

__all__ = ["HistoricalAverageForecaster", "LastValueForecaster", "SeasonalNaiveForecaster"]


class _SimpleWindowForecaster(RegressorMixin, BaseEstimator):
    """Tags and ``score`` of the forecasts with nothing to train; not public."""

    def score(self, X, y=None, sample_weight=None):
        """Negative masked MAE (zeros and NaN targets left out), as the trained models score.

        Parameters
        ----------
        X : Windows or array-like of shape (n_windows, history, N), or a series (T, N)
            Windows with targets ``y`` (or :class:`stvlm.Windows` holding them); a
            series only for a model with a ``history`` parameter.
        y : array-like of shape (n_windows, horizon, N), optional
        sample_weight : None

        Returns
        -------
        float
        """
        if sample_weight is not None:
            raise ValueError(f"sample_weight is not supported by {type(self).__name__}.score.")
        history = getattr(self, "history", None)
        clock = {}
        if getattr(self, "_uses_time_of_day", False):
            clock = dict(steps_per_day=self.steps_per_day, start=int(self.first_time_index))
        w = as_windows(X, y, history=history or 1, horizon=self.horizon, any_history=history is None, **clock)
        return -masked_mae(w.y, self.predict(w))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # a series (T, N)
        tags.input_tags.three_d_array = True  # windows (n, history, N)
        tags.input_tags.allow_nan = True  # imputed in inputs, masked in targets
        tags.target_tags.required = False
        tags.target_tags.multi_output = True
        return tags


class LastValueForecaster(_SimpleWindowForecaster):
    """Repeat each sensor's last observed value over the horizon.

    A NaN/inf last step takes the last finite value before it (the windows are filled
    along time, as every model of stvlm fills them: :meth:`stvlm.Windows.filled`).

    Parameters
    ----------
    horizon : int, default=12
        Steps to forecast.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.baselines import LastValueForecaster
    >>> X = np.arange(24.0).reshape(1, 12, 2)
    >>> LastValueForecaster(horizon=3).fit(X).predict(X)[0]
    array([[22., 23.],
           [22., 23.],
           [22., 23.]])
    """

    def __init__(self, horizon=12):
        self.horizon = horizon

    def fit(self, X, y=None):
        """Record the sensor count; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (T, N) or (n_windows, history, N)
        y : ignored

        Returns
        -------
        self
        """
        check_positive_int(self.horizon, "horizon")
        self.n_features_in_ = _n_sensors(X)
        return self

    def predict(self, X):
        """Forecast windows ``X`` of shape (n_windows, history, N).

        Parameters
        ----------
        X : array-like of shape (n_windows, history, N) or Windows

        Returns
        -------
        ndarray of shape (n_windows, horizon, N)
        """
        check_is_fitted(self, "n_features_in_")
        X = _predict_windows(self, X).filled()  # the NaN rule of every model: fill along time
        return np.repeat(X[:, -1:, :], self.horizon, axis=1)


class HistoricalAverageForecaster(_SimpleWindowForecaster):
    """Forecast each step by the sensor's mean at that time of day in the training series.

    Time reaches the model through the data: the training series is dated by its
    DatetimeIndex (a DataFrame) or by ``first_time_index``, and the windows given to
    :meth:`predict` by :class:`stvlm.Windows` (``time_of_day`` = slot of each window's
    last history step).

    Parameters
    ----------
    steps_per_day : int, default=288
        Steps in a day (288 for 5-minute data).
    first_time_index : int, default=0
        Time-of-day slot of the first row of a bare training series.
    history : int, default=12
        Steps in each window given to :meth:`predict`.
    horizon : int, default=12
        Steps to forecast.

    Attributes
    ----------
    profile_ : ndarray of shape (steps_per_day, N)
        Mean of each slot and sensor over the training series (zeros included; a slot
        never seen takes the sensor's overall mean).

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.baselines import HistoricalAverageForecaster
    >>> series = np.tile(np.arange(4.0), 3)[:, None]           # a day of 4 steps, 3 days
    >>> ha = HistoricalAverageForecaster(steps_per_day=4, history=2, horizon=2).fit(series)
    >>> from stvlm import Windows
    >>> X = Windows(series[None, :2], time_of_day=[1], steps_per_day=4)  # ends at slot 1
    >>> ha.predict(X)[0, :, 0]  # slots 2 and 3
    array([2., 3.])
    """

    _uses_time_of_day = True

    def __init__(self, steps_per_day=288, first_time_index=0, history=12, horizon=12):
        self.steps_per_day = steps_per_day
        self.first_time_index = first_time_index
        self.history = history
        self.horizon = horizon

    def fit(self, X, y=None):
        """Average the series by time-of-day slot.

        Parameters
        ----------
        X : array-like of shape (T, N) or DataFrame
            The training series (a DataFrame's DatetimeIndex gives the slots).
        y : ignored

        Returns
        -------
        self
        """
        spd = check_positive_int(self.steps_per_day, "steps_per_day")
        check_positive_int(self.history, "history")
        check_positive_int(self.horizon, "horizon")
        if not isinstance(self.first_time_index, (int, np.integer)) or isinstance(self.first_time_index, bool):
            raise TypeError(f"first_time_index must be an int; got {self.first_time_index!r}.")
        series = check_series(X)
        check_sensors_have_data(Windows(series[None]))
        slots = slots_of_rows(X, spd, int(self.first_time_index))
        if slots is None:
            raise ValueError("the series' rows carry no time of day: give a DatetimeIndex of at least two rows.")
        sums = np.zeros((spd, series.shape[1]))
        counts = np.zeros((spd, series.shape[1]))
        ok = np.isfinite(series)
        np.add.at(sums, slots, np.where(ok, series, 0.0))
        np.add.at(counts, slots, ok)
        overall = np.nanmean(np.where(ok, series, np.nan), axis=0)
        self.profile_ = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
        self.n_features_in_ = series.shape[1]
        return self

    def predict(self, X, time_of_day=None):
        """Forecast windows by the training profile at the slots that follow them.

        Parameters
        ----------
        X : Windows or array-like of shape (n_windows, history, N)
            Windows that carry their time of day (:class:`stvlm.Windows`).
        time_of_day : array-like of int, shape (n_windows,), optional
            Deprecated: slot of each window's *first* history step, for bare windows.

        Returns
        -------
        ndarray of shape (n_windows, horizon, N)
        """
        from ._neural import _check_time

        check_is_fitted(self, "profile_")
        if time_of_day is not None:
            X = _windows_with_time(self, X, None, time_of_day, "predict")
        w = _predict_windows(self, X, history=self.history)
        _check_time(self, w)
        steps = (w.time_of_day[:, None] + 1 + np.arange(self.horizon)) % self.steps_per_day
        return self.profile_[steps]


class SeasonalNaiveForecaster(_SimpleWindowForecaster):
    """Forecast each step by the value one season (by default one day) before it.

    Step ``h`` after a window's last history step ``t`` is forecast by the observed
    value at ``t + h - season``; beyond one season (``horizon > season``, e.g. 96 hours
    ahead with a 24-hour season) the last observed season repeats, step ``h`` taking
    the value at ``t + h - k * season`` with ``k = ceil(h / season)``. Those values lie
    inside the window, so windows must hold at least ``season`` steps of history: cut
    them long, e.g.
    ``make_windows(series, history=288, horizon=12)`` or, for a benchmark protocol,
    :meth:`stvlm.datasets.Protocol.test_windows` ``(288)``.

    Parameters
    ----------
    season : int, default=288
        Steps in a season (288 five-minute steps = one day).
    horizon : int, default=12
        Steps to forecast (any number: the last season repeats).

    Attributes
    ----------
    n_features_in_ : int
        Sensors seen in ``fit``.

    Notes
    -----
    A NaN/inf at the lagged step is replaced by the last finite value before it in the
    window (forward fill, then backward fill), so the forecast is finite whenever the
    sensor has a finite value in the window.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import make_windows
    >>> from stvlm.baselines import SeasonalNaiveForecaster
    >>> series = np.tile(np.arange(4.0), 5)[:, None]            # a season of 4 steps
    >>> X, y = make_windows(series, history=4, horizon=2)
    >>> model = SeasonalNaiveForecaster(season=4, horizon=2).fit(series)
    >>> bool((model.predict(X) == y).all())
    True
    """

    def __init__(self, season=288, horizon=12):
        self.season = season
        self.horizon = horizon

    def fit(self, X, y=None):
        """Check the parameters and record the sensor count; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (T, N) or (n_windows, history, N)
        y : ignored

        Returns
        -------
        self
        """
        check_positive_int(self.season, "season")
        check_positive_int(self.horizon, "horizon")
        self.n_features_in_ = _n_sensors(X)
        return self

    def predict(self, X):
        """Forecast windows ``X`` of shape (n_windows, history >= season, N).

        Parameters
        ----------
        X : array-like of shape (n_windows, history, N) or Windows

        Returns
        -------
        ndarray of shape (n_windows, horizon, N)

        Raises
        ------
        ValueError
            If the windows are shorter than ``season`` or have another sensor count.
        """
        check_is_fitted(self, "n_features_in_")
        arr = X.X if isinstance(X, Windows) else _as_float_array(X, "X")
        # Check the shape on one step: long windows are often a strided view that a full
        # contiguous copy would multiply in memory.
        check_windows(arr[:, :1] if arr.ndim == 3 else arr, min_history=1)
        if arr.shape[2] != self.n_features_in_:
            raise ValueError(f"X has {arr.shape[2]} sensors; fitted with {self.n_features_in_}.")
        k = arr.shape[1]
        if k < self.season:
            raise ValueError(
                f"windows have {k} steps of history but season={self.season}: the value one "
                f"season before each forecast step must be in the window. Cut windows with "
                f"history >= {self.season} (make_windows(series, history={self.season}, ...) or "
                f"Protocol.test_windows({self.season}))."
            )
        start = k - self.season
        steps = start + np.arange(self.horizon) % self.season  # the last season, repeated
        out = np.array(arr[:, steps], dtype=np.float64)
        bad = ~np.isfinite(out).all(axis=(1, 2))
        if bad.any():
            fixed = impute_nonfinite(np.array(arr[bad], dtype=np.float64))
            out[bad] = fixed[:, steps]
        return out


def _n_sensors(X):
    """Sensors of a series or of windows given to ``fit``."""
    if isinstance(X, Windows):
        return X.n_sensors
    arr = _as_float_array(X, "X")
    return check_series(arr).shape[1] if arr.ndim == 2 else check_windows(arr, min_history=1).shape[2]


def _predict_windows(model, X, history=None):
    """Windows given to ``predict``, through the data front door; sensors checked."""
    if not isinstance(X, Windows) and not hasattr(X, "channels"):
        X = check_windows(X, min_history=1, dtype=np.float64)  # a 2-D X is refused, not cut
    w = as_windows(
        X, history=history or 1, horizon=model.horizon, require_targets=False, any_history=history is None
    )
    if w.n_sensors != model.n_features_in_:
        raise ValueError(f"X has {w.n_sensors} sensors; fitted with {model.n_features_in_}.")
    return w
