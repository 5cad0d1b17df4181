"""The time of each row of a series: from a DatetimeIndex, or from slots per day and a start."""

from __future__ import annotations

import datetime as _dt
import numbers

import numpy as np

from .._validation import _as_float_array, check_positive_int, check_series
from ._windows import Windows

__all__ = ["last_window", "slots_of_rows"]

_NS_PER_DAY = 86_400 * 10**9


def last_window(X, history, *, steps_per_day=None, start=None):
    """The last ``history`` rows of a series as one window, with its time: the input
    that forecasts past the end of the series.

    Parameters
    ----------
    X : array-like of shape (T, n_sensors) or pandas.DataFrame
        A series (a DataFrame's DatetimeIndex dates the window).
    history : int
        Steps of the window.
    steps_per_day : int, optional
        Time-of-day slots (see :func:`as_windows`).
    start : int or datetime-like, optional
        Slot or date and time of the series' first row, for a bare series.

    Returns
    -------
    Windows
        One window, ``X[-history:]``, without targets.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.data import last_window
    >>> w = last_window(np.arange(20.0).reshape(10, 2), 3, steps_per_day=4, start=0)
    >>> w.X[0, :, 0], w.time_of_day   # rows 7, 8, 9; row 9 is slot 1
    (array([14., 16., 18.]), array([1]))
    """
    history = check_positive_int(history, "history")
    series = check_series(_as_float_array(X, "X"))
    T = series.shape[0]
    if T < history:
        raise ValueError(f"the series has {T} steps; the last window needs history={history}.")
    clock = _row_clock(_datetime_index(X), T, steps_per_day, start)
    spd, tod, dow, stamps = (None,) * 4 if clock is None else clock
    tod, dow, stamps = (None if a is None else a[-1:] for a in (tod, dow, stamps))
    return Windows(series[None, -history:], time_of_day=tod, day_of_week=dow, steps_per_day=spd, timestamps=stamps)


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
        spd = None if steps_per_day is None else int(steps_per_day)
        return (spd, *_slot_and_weekday(ns, spd), stamps)
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
    return (spd, *_slot_and_weekday(ns, spd), ns.astype("datetime64[ns]"))


def _slot_and_weekday(ns, steps_per_day):
    """Time-of-day slot (None without ``steps_per_day``) and weekday of nanosecond times."""
    slot = None
    if steps_per_day is not None:
        slot = ((np.mod(ns, _NS_PER_DAY) * steps_per_day) // _NS_PER_DAY).astype(np.int64)
    # Days since 1970-01-01, a Thursday (weekday 3).
    return slot, ((np.floor_divide(ns, _NS_PER_DAY) + 3) % 7).astype(np.int64)


def _as_datetime64(start):
    if isinstance(start, (str, _dt.datetime, _dt.date, np.datetime64)) or hasattr(start, "to_datetime64"):
        try:
            value = start.to_datetime64() if hasattr(start, "to_datetime64") else np.datetime64(start)
            value = np.datetime64(value, "ns")
        except ValueError as exc:
            raise ValueError(f"start {start!r} is not a date and time: {exc}") from exc
        # numpy reads "" and "NaT" as not-a-time, whose arithmetic gives garbage slots
        if np.isnat(value):
            raise ValueError(f"start {start!r} is not a date and time (it reads as NaT).")
        return value
    raise TypeError(f"start must be an int (slot of the first row) or a date and time; got {start!r}.")
