"""The data front door: what a user passes -> windows, targets and window timestamps.

Every estimator, the sktime wrapper, the transformer and the scorers read their input
through :func:`as_windows`, and hold out validation windows with
:func:`chronological_split`. A series ``(T, N)`` (numpy, or a pandas DataFrame whose
DatetimeIndex dates the rows), windows with targets, a :class:`Windows` or the
transformer's :class:`~stvlm.CorrelationImages` all become one :class:`Windows`.

**The time of a window** is the time of its last history step: the moment the forecast
is made (sktime's cutoff). It is known from a DatetimeIndex, or from ``steps_per_day``
and the ``start`` of the series; otherwise it is ``None``.
"""

from __future__ import annotations

import numpy as np

from .._validation import _as_float_array, check_series, check_windows
from ._clock import _datetime_index, _row_clock, last_window, slots_of_rows
from ._split import chronological_split, rows_needed, split_sizes
from ._windows import LARGE, Windows, check_targets

__all__ = [
    "Windows",
    "as_windows",
    "chronological_split",
    "last_window",
    "rows_needed",
    "slots_of_rows",
    "split_sizes",
]


def as_windows(
    X,
    y=None,
    *,
    history,
    horizon,
    steps_per_day=None,
    start=None,
    require_targets=True,
    any_history=False,
    name="X",
):
    """Turn what a user passes into :class:`Windows`: the one front door for data.

    Parameters
    ----------
    X : array-like of shape (T, n_sensors), pandas.DataFrame, array-like of shape \
(n_windows, history, n_sensors), Windows or CorrelationImages
        A series (``y`` must be None: every window with a full target is cut, stride
        1), a DataFrame series (its DatetimeIndex, if any, dates the rows), windows
        with targets ``y``, or windows already made.
    y : array-like of shape (n_windows, horizon, n_sensors), optional
        Targets of windows ``X``.
    history, horizon : int
        Steps per window and per target.
    steps_per_day : int, optional
        Time-of-day slots. With a DatetimeIndex the slots are read from the clock at
        this resolution (default: the index's own step); without one, from ``start``.
    start : int or datetime-like, optional
        For a bare series: the slot (int) or the date and time of its first row. With
        ``steps_per_day``, a slot gives the time of day of every window, a date and time
        the day of week too.
    require_targets : bool, default=True
        Whether windows without targets are an error (``fit``); ``predict`` passes
        False.
    any_history : bool, default=False
        Accept windows of any length (``history`` then only cuts a series), as the
        transformer does.
    name : str, default="X"
        Name of ``X`` in error messages.

    Returns
    -------
    Windows
        ``time_of_day``/``day_of_week`` of each window's last history step when known,
        else ``None``.

    Raises
    ------
    ValueError
        For a series too short for one window, windows without targets (when
        required), a 2-D ``X`` with ``y``, or windows whose length is not ``history``.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from stvlm import as_windows
    >>> series = pd.DataFrame(np.arange(60.0).reshape(30, 2),
    ...                       index=pd.date_range("2024-01-01 23:00", periods=30, freq="15min"))
    >>> w = as_windows(series, history=4, horizon=2)
    >>> w.X.shape, w.y.shape, w.steps_per_day
    ((25, 4, 2), (25, 2, 2), 96)
    >>> w.time_of_day[:3].tolist(), w.day_of_week[:3].tolist()   # 23:45, 00:00, 00:15
    ([95, 0, 1], [0, 1, 1])
    >>> as_windows(series.to_numpy(), history=4, horizon=2).time_of_day is None
    True
    """
    if isinstance(X, Windows):
        out = X
        if y is not None:
            if X.y is not None:
                raise ValueError("y was given twice: the Windows already hold targets.")
            out = X[:]
            out.y = check_targets(y, X.X)
    elif hasattr(X, "to_windows"):  # CorrelationImages (data does not import images)
        if y is None and X.targets is not None and X.from_series:
            _check_images_agree(X, history, horizon)
        out = X.to_windows(y)
    else:
        out = _from_arrays(X, y, history, horizon, steps_per_day, start, name)
    if out.history != history and not any_history:
        raise ValueError(f"{name} has windows of {out.history} steps, but history={history}.")
    if out.y is None and require_targets:
        raise ValueError(
            f"y is required with windows {name} (n_windows, history, n_sensors); pass a "
            "series (T, n_sensors) instead to have windows cut for you."
        )
    if out.y is not None and out.horizon != horizon:
        raise ValueError(f"y has {out.horizon} steps per window, but horizon={horizon}.")
    return out


def _from_arrays(X, y, history, horizon, steps_per_day, start, name):
    index = _datetime_index(X)
    arr = _as_float_array(X, name)
    if arr.ndim == 1:
        raise ValueError(
            f"{name} is 1-D with shape {arr.shape}; expected a series (T, n_sensors) or windows "
            "(n_windows, history, n_sensors). Reshape your data: for a single sensor use X.reshape(-1, 1)."
        )
    if arr.ndim != 2:
        return Windows(check_windows(arr, min_history=1, name=name, dtype=np.float64), y)
    series = check_series(arr, name=name)
    if y is not None:
        raise ValueError(
            f"{name} is 2-D, so it is read as a series (T, n_sensors) and y must be None; "
            f"to pass y, give windows {name} of shape (n_windows, history, n_sensors)."
        )
    T = series.shape[0]
    if T < history + horizon:
        raise ValueError(
            f"{name} is a series of n_samples = {T} time steps, too short to cut one window: history + horizon = "
            f"{history} + {horizon} = {history + horizon} steps are needed."
        )
    from ..windows import make_windows

    n = T - history - horizon + 1
    origin = np.arange(n) + history - 1  # row of each window's last history step
    clock = _row_clock(index, T, steps_per_day, start)
    spd, tod, dow, stamps = (None,) * 4 if clock is None else clock
    tod, dow, stamps = (None if a is None else a[origin] for a in (tod, dow, stamps))
    if n * (history + horizon) * series.shape[1] <= LARGE:
        Xw, yw = make_windows(series, history, horizon)
        return Windows(Xw, yw, time_of_day=tod, day_of_week=dow, steps_per_day=spd, timestamps=stamps, consecutive=True)
    # Large: read-only views of one private copy of the series (a PEMS07-size series is 200 MB,
    # a copy of its windows and targets 4.8 GB).
    from numpy.lib.stride_tricks import sliding_window_view

    own = np.array(series, dtype=np.float64, order="C")
    Xw = sliding_window_view(own[: n + history - 1], history, axis=0).transpose(0, 2, 1)
    yw = sliding_window_view(own[history:], horizon, axis=0).transpose(0, 2, 1)
    return Windows._of_views(Xw, yw, time_of_day=tod, day_of_week=dow, steps_per_day=spd, timestamps=stamps,
                             consecutive=True)


def _check_images_agree(images, history, horizon):
    """Images cut from a series by the transformer must match the forecaster's windows."""
    k, h = images.windows.shape[1], images.targets.shape[1]
    if (k, h) != (history, horizon):
        raise ValueError(
            f"the images were cut from a series by SpatialToImageTransformer(history={k}, horizon={h}), "
            f"but the forecaster has history={history}, horizon={horizon}: give both steps the same "
            f"history and horizon, e.g. make_pipeline(SpatialToImageTransformer(history={history}, "
            f"horizon={horizon}), STVLMForecaster(history={history}, horizon={horizon}))."
        )
