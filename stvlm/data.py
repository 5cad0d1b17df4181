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

import datetime as _dt
import math
import numbers

import numpy as np

from ._validation import _as_float_array, check_positive_int, check_series, check_windows, impute_nonfinite

__all__ = ["Windows", "as_windows", "chronological_split", "rows_needed", "slots_of_rows", "split_sizes"]

_NS_PER_DAY = 86_400 * 10**9


class Windows:
    """Windows of a series, their targets and the time of each window.

    Made by :func:`as_windows` from whatever a user passes; can also be built directly
    to give windows a time of day (e.g. for :class:`~stvlm.baselines.STIDForecaster`).
    Every estimator of stvlm takes it in ``fit``, ``predict`` and ``score``.

    Parameters
    ----------
    X : array-like of shape (n_windows, history, n_sensors)
        The windows (NaN/inf allowed: imputed in the inputs, masked in the targets).
    y : array-like of shape (n_windows, horizon, n_sensors), optional
        Their targets.
    time_of_day : array-like of int, shape (n_windows,), optional
        Slot ``0 ... steps_per_day - 1`` of each window's last history step.
    day_of_week : array-like of int, shape (n_windows,), optional
        Day (0 = Monday ... 6 = Sunday) of each window's last history step.
    steps_per_day : int, optional
        Slots per day; required with ``time_of_day``.
    timestamps : array-like of datetime64, shape (n_windows,), optional
        Date and time of each window's last history step, when known.
    consecutive : bool, default=False
        Whether the windows are all windows (stride 1) of one series, in order: a
        validation split then leaves a gap (see :func:`chronological_split`).
    channels : ndarray of shape (n_windows, 3, n_sensors, n_sensors), optional
        Correlation images already computed (from :class:`~stvlm.CorrelationImages`).

    Attributes
    ----------
    n_windows, history, n_sensors : int
        Shape of ``X``.
    horizon : int or None
        Steps of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import Windows
    >>> w = Windows(np.zeros((4, 12, 3)), time_of_day=[0, 1, 2, 3], steps_per_day=288)
    >>> w.n_windows, w.history, w.n_sensors, w.time_of_day.tolist()
    (4, 12, 3, [0, 1, 2, 3])
    >>> w[1:3].time_of_day.tolist()
    [1, 2]
    """

    def __init__(
        self,
        X,
        y=None,
        *,
        time_of_day=None,
        day_of_week=None,
        steps_per_day=None,
        timestamps=None,
        consecutive=False,
        channels=None,
    ):
        X = check_windows(X, min_history=1, dtype=np.float64)
        n = X.shape[0]
        if y is not None:
            y = check_targets(y, X)
        if steps_per_day is not None:
            steps_per_day = check_positive_int(steps_per_day, "steps_per_day")
        if time_of_day is not None:
            if steps_per_day is None:
                raise ValueError("time_of_day needs steps_per_day (slots per day) to be read.")
            time_of_day = _check_ints(time_of_day, n, "time_of_day", steps_per_day)
        if day_of_week is not None:
            day_of_week = _check_ints(day_of_week, n, "day_of_week", 7)
        if timestamps is not None:
            timestamps = np.asarray(timestamps, dtype="datetime64[ns]")
            if timestamps.shape != (n,):
                raise ValueError(f"timestamps must have shape ({n},), one per window; got {timestamps.shape}.")
        if channels is not None and (channels.shape[0] != n or channels.shape[2:] != (X.shape[2],) * 2):
            raise ValueError(f"channels {channels.shape} do not match windows {X.shape}.")
        self.X = X
        self.y = y
        self.time_of_day = time_of_day
        self.day_of_week = day_of_week
        self.steps_per_day = steps_per_day
        self.timestamps = timestamps
        self.consecutive = bool(consecutive)
        self.channels = channels
        self._filled = None

    n_windows = property(lambda self: self.X.shape[0])
    history = property(lambda self: self.X.shape[1])
    n_sensors = property(lambda self: self.X.shape[2])
    horizon = property(lambda self: None if self.y is None else self.y.shape[1])

    def __len__(self):
        return self.X.shape[0]

    def __repr__(self):
        time = "none" if self.time_of_day is None else f"{self.steps_per_day} slots/day"
        return (
            f"Windows(n_windows={len(self)}, history={self.history}, n_sensors={self.n_sensors}, "
            f"horizon={self.horizon}, time={time})"
        )

    def filled(self):
        """``X`` with NaN/inf imputed along time (forward, then backward fill), made once.

        Returns
        -------
        ndarray of shape (n_windows, history, n_sensors), float64
        """
        if self._filled is None:
            self._filled = impute_nonfinite(np.ascontiguousarray(self.X, dtype=np.float64))
        return self._filled

    def __getitem__(self, index):
        """The windows of ``index`` (a slice or an index array), everything else along."""
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        keep = isinstance(index, slice) and index.step in (None, 1)

        def take(a):
            return None if a is None else a[index]

        out = Windows.__new__(Windows)
        out.__dict__.update(
            X=self.X[index], y=take(self.y), time_of_day=take(self.time_of_day),
            day_of_week=take(self.day_of_week), steps_per_day=self.steps_per_day,
            timestamps=take(self.timestamps), consecutive=self.consecutive and keep,
            channels=take(self.channels), _filled=take(self._filled),
        )
        return out


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
    from .images import CorrelationImages

    if isinstance(X, Windows):
        out = X
        if y is not None:
            if X.y is not None:
                raise ValueError("y was given twice: the Windows already hold targets.")
            out = X[:]
            out.y = check_targets(y, X.X)
    elif isinstance(X, CorrelationImages):
        if y is None and X.targets is not None and X.from_series:
            _check_images_agree(X, history, horizon)
        out = Windows(
            X.windows, X.targets if y is None else y,
            time_of_day=X.time_of_day, day_of_week=X.day_of_week, steps_per_day=X.steps_per_day,
            timestamps=X.timestamps, consecutive=X.from_series, channels=X.channels,
        )
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
    from .windows import make_windows

    Xw, yw = make_windows(series, history, horizon)
    n = Xw.shape[0]
    origin = np.arange(n) + history - 1  # row of each window's last history step
    clock = _row_clock(index, T, steps_per_day, start)
    spd, tod, dow, stamps = (None,) * 4 if clock is None else clock
    tod, dow, stamps = (None if a is None else a[origin] for a in (tod, dow, stamps))
    return Windows(Xw, yw, time_of_day=tod, day_of_week=dow, steps_per_day=spd, timestamps=stamps, consecutive=True)


def slots_of_rows(X, steps_per_day, start=None):
    """Time-of-day slot of every row of a series, or None when its time is unknown.

    Parameters
    ----------
    X : array-like of shape (T, n_sensors) or pandas.DataFrame
        A series; a DataFrame's DatetimeIndex dates the rows.
    steps_per_day : int
        Slots per day.
    start : int or datetime-like, optional
        Slot (or date and time) of the first row of a bare series.

    Returns
    -------
    ndarray of int, shape (T,), or None

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.data import slots_of_rows
    >>> slots_of_rows(np.zeros((5, 2)), steps_per_day=4, start=2).tolist()
    [2, 3, 0, 1, 2]
    """
    T = len(X)
    clock = _row_clock(_datetime_index(X), T, steps_per_day, start)
    return None if clock is None else clock[1]


def _datetime_index(X):
    import sys

    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(X, (pd.DataFrame, pd.Series)):
        return None
    index = X.index
    if isinstance(index, pd.PeriodIndex):
        index = index.to_timestamp()
    return index if isinstance(index, pd.DatetimeIndex) else None


def _row_clock(index, T, steps_per_day, start):
    """``(steps_per_day, slot, day_of_week, timestamps)`` of each row (each may be None),
    or None when nothing is known."""
    if index is not None:
        if len(index) < 2 or index.hasnans:
            return None
        stamps = index.tz_localize(None) if index.tz is not None else index  # local wall time
        stamps = np.asarray(stamps, dtype="datetime64[ns]")
        ns = stamps.astype(np.int64)
        diffs = np.diff(ns)
        if (diffs <= 0).any():
            raise ValueError("the DatetimeIndex must increase strictly: the rows of a series are ordered time steps.")
        if steps_per_day is None:
            values, counts = np.unique(diffs, return_counts=True)
            step = int(values[np.argmax(counts)])
            # A step that does not divide a day (weekly, monthly, odd seconds) has no
            # time-of-day slots; the day of week still holds.
            steps_per_day = _NS_PER_DAY // step if _NS_PER_DAY % step == 0 else None
        of_day = np.mod(ns, _NS_PER_DAY)
        slot = None if steps_per_day is None else ((of_day * steps_per_day) // _NS_PER_DAY).astype(np.int64)
        # Days since 1970-01-01 (a Thursday, weekday 3).
        dow = (np.floor_divide(ns, _NS_PER_DAY) + 3) % 7
        spd = None if steps_per_day is None else int(steps_per_day)
        return spd, slot, dow.astype(np.int64), stamps
    if steps_per_day is None:
        if start is not None:
            raise ValueError("start needs steps_per_day (slots per day) to date the rows.")
        return None
    spd = check_positive_int(steps_per_day, "steps_per_day")
    if start is None:
        return None
    if isinstance(start, numbers.Integral) and not isinstance(start, (bool, np.bool_)):
        slot = (int(start) + np.arange(T)) % spd
        return spd, slot.astype(np.int64), None, None
    t0 = _as_datetime64(start)
    if _NS_PER_DAY % spd:
        raise ValueError(f"steps_per_day={spd} does not divide a day into whole nanoseconds.")
    ns = t0.astype(np.int64) + np.arange(T, dtype=np.int64) * (_NS_PER_DAY // spd)
    slot = (np.mod(ns, _NS_PER_DAY) * spd) // _NS_PER_DAY
    dow = (np.floor_divide(ns, _NS_PER_DAY) + 3) % 7
    return spd, slot.astype(np.int64), dow.astype(np.int64), ns.astype("datetime64[ns]")


def _as_datetime64(start):
    if isinstance(start, (str, _dt.datetime, _dt.date, np.datetime64)) or hasattr(start, "to_datetime64"):
        try:
            value = start.to_datetime64() if hasattr(start, "to_datetime64") else np.datetime64(start)
            return np.datetime64(value, "ns")
        except ValueError as exc:
            raise ValueError(f"start {start!r} is not a date and time: {exc}") from exc
    raise TypeError(f"start must be an int (slot of the first row) or a date and time; got {start!r}.")


def _check_ints(values, n, name, bound):
    a = np.asarray(values)
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one value per window; got {a.shape}.")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.floating) or not np.all(a == np.round(a)):
            raise TypeError(f"{name} must hold integers; got dtype {a.dtype}.")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= bound):
        raise ValueError(f"{name} must lie in [0, {bound}); got values in [{a.min()}, {a.max()}].")
    return a


# ---------------------------------------------------------------------- checks
def check_targets(y, X):
    """Targets ``(n, horizon, N)`` matching windows ``X`` ``(n, history, N)``; float64."""
    y = check_windows(y, name="y", min_history=1, dtype=np.float64)
    if y.shape[0] != X.shape[0] or y.shape[2] != X.shape[2]:
        raise ValueError(f"y has shape {y.shape}, but X has {X.shape}: expected ({X.shape[0]}, horizon, {X.shape[2]}).")
    return y


def check_sensors_have_data(windows):
    """Refuse training windows in which a sensor never has a finite value."""
    values = windows.X.reshape(-1, windows.n_sensors)
    dead = np.flatnonzero(~np.isfinite(values).any(axis=0))
    if dead.size:
        shown = dead[:10].tolist()
        raise ValueError(
            f"sensors {shown}{' ...' if dead.size > 10 else ''} have no finite value in the training data "
            "(all NaN/inf): there is nothing to learn or forecast for them. Drop these columns first."
        )


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


# ---------------------------------------------------------------------- the split rule
def split_sizes(n, validation_fraction, gap):
    """Training and validation window counts of a chronological split with a gap.

    The last ``floor(n * validation_fraction)`` windows validate; the ``gap`` windows
    before them are dropped (when any validate), the rest train.

    Parameters
    ----------
    n : int
        Windows.
    validation_fraction : float
        Share held out, in ``[0, 1)``.
    gap : int
        Windows dropped between the parts.

    Returns
    -------
    n_train, n_val : int

    Raises
    ------
    ValueError
        If no training window is left.

    Examples
    --------
    >>> from stvlm.data import split_sizes
    >>> split_sizes(100, 0.2, gap=23)
    (57, 20)
    """
    n_val = int(math.floor(n * validation_fraction))
    n_train = n - n_val - (gap if n_val else 0)
    if n_val and n_train < 1:
        raise ValueError(
            f"only {n} windows: too few to hold out validation_fraction="
            f"{validation_fraction} (plus a gap of {gap} windows between the parts). "
            "Give a longer series or set validation_fraction=0."
        )
    return n_train, n_val


def chronological_split(windows, validation_fraction):
    """Split :class:`Windows` into training and validation parts, in time order.

    Consecutive windows of one series (``windows.consecutive``) leave a gap of
    ``history + horizon - 1`` windows between the parts, so no validation window
    shares a step with a training window. Windows given as they are split without a
    gap: whether they are consecutive is unknown.

    Parameters
    ----------
    windows : Windows
    validation_fraction : float
        Share of the windows held out (the last ones); ``0`` holds out none.

    Returns
    -------
    train : Windows
    val : Windows or None

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.data import as_windows, chronological_split
    >>> w = as_windows(np.zeros((124, 2)), history=12, horizon=12)
    >>> train, val = chronological_split(w, 0.2)
    >>> len(w), len(train), len(val)
    (101, 58, 20)
    """
    gap = windows.history + windows.y.shape[1] - 1 if windows.consecutive else 0
    n = len(windows)
    n_train, n_val = split_sizes(n, validation_fraction, gap)
    return windows[:n_train], (windows[n - n_val :] if n_val else None)


def rows_needed(history, horizon, validation_fraction):
    """Fewest rows of a series from which on :func:`chronological_split` succeeds.

    Parameters
    ----------
    history, horizon : int
    validation_fraction : float

    Returns
    -------
    int

    Examples
    --------
    >>> from stvlm.data import rows_needed
    >>> rows_needed(12, 12, 0.0), rows_needed(12, 12, 0.2)
    (24, 52)
    """
    gap = history + horizon - 1
    n = 1
    if validation_fraction > 0:
        # Smallest n with one held-out window and one training window after the gap;
        # from there on n - floor(n * f) only grows.
        n = max(n, int(math.ceil(1 / validation_fraction)))
        while n - int(math.floor(n * validation_fraction)) - gap < 1:
            n += 1
    return n + history + horizon - 1
