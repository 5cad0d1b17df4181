"""``Windows``: windows, their targets and their time, as every model takes them."""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_int, check_windows, impute_nonfinite

__all__ = ["MAX_ABS_VALUE", "Windows", "check_sensors_have_data", "check_targets", "check_value_range"]

#: Largest magnitude a trained model accepts in its data. The networks compute in
#: float32 (largest value 3.4e38), and the loss scales forecasts back to data units.
MAX_ABS_VALUE = 1e30
#: Windows of more values than this (512 MB of float64) are "large": cut from a series they
#: are views of it, imputed per batch, and summarised chunk by chunk, so that fitting on a
#: PEMS07-size series never holds a copy of all its windows.
LARGE = 1 << 26


class Windows:
    """Windows of a series, their targets and the time of each window.

    Made by :func:`as_windows` from whatever a user passes; can also be built directly
    to give windows a time of day (e.g. for :class:`~stvlm.baselines.STIDForecaster`).
    Every estimator of stvlm takes it in ``fit``, ``predict`` and ``score``.

    Windows cut from a large series (more than ``LARGE`` = 2^26 window values, e.g.
    PEMS04 or PEMS07) are read-only views of one private copy of the series, not copies
    (a PEMS07 series is 200 MB, a copy of its windows and targets 4.8 GB); estimators then
    impute them per batch (:meth:`filled_batch`) and summarise them chunk by chunk.

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

    def filled_batch(self, idx):
        """``filled()[idx]`` without imputing every window: for batches of large data.

        Small data (up to ``LARGE`` values) are imputed once and indexed; larger ones
        window by window, per batch, so that no imputed copy of all windows is held.

        Parameters
        ----------
        idx : array-like of int
            Windows of the batch.

        Returns
        -------
        ndarray of shape (len(idx), history, n_sensors), float64
        """
        if self._filled is not None or self.X.size <= LARGE:
            return self.filled()[idx]
        return impute_nonfinite(np.array(self.X[idx], dtype=np.float64))

    @classmethod
    def _of_views(cls, X, y, **fields):
        """Windows over views of one checked series (no copy; read-only)."""
        out = cls.__new__(cls)
        X.setflags(write=False)
        y.setflags(write=False)
        n, spd = X.shape[0], fields.get("steps_per_day")
        if spd is not None:
            spd = fields["steps_per_day"] = check_positive_int(spd, "steps_per_day")
        if fields.get("time_of_day") is not None:
            fields["time_of_day"] = _check_ints(fields["time_of_day"], n, "time_of_day", spd)
        if fields.get("day_of_week") is not None:
            fields["day_of_week"] = _check_ints(fields["day_of_week"], n, "day_of_week", 7)
        out.__dict__.update(X=X, y=y, channels=None, _filled=None, **fields)
        return out

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


def _chunks(a, values=1 << 24):
    """Slices of ``a`` along its first axis, about ``values`` values each: bounded temporaries."""
    step = max(1, values // max(1, int(np.prod(a.shape[1:]))))
    return (a[s : s + step] for s in range(0, a.shape[0], step))


def check_sensors_have_data(windows):
    """Refuse training windows in which a sensor never has a finite value."""
    seen = np.zeros(windows.n_sensors, dtype=bool)
    for part in _chunks(windows.X):
        seen |= np.isfinite(part).any(axis=(0, 1))
    dead = np.flatnonzero(~seen)
    if dead.size:
        shown = dead[:10].tolist()
        raise ValueError(
            f"sensors {shown}{' ...' if dead.size > 10 else ''} have no finite value in the training data "
            "(all NaN/inf): there is nothing to learn or forecast for them. Drop these columns first."
        )


def check_value_range(windows):
    """Refuse windows or targets beyond ``MAX_ABS_VALUE``, which float32 training cannot hold."""
    for name, a in (("X", windows.X), ("y", windows.y)):
        if a is None:
            continue
        top = 0.0
        for part in _chunks(a):
            finite = np.abs(part[np.isfinite(part)])
            top = max(top, float(finite.max()) if finite.size else 0.0)
        if top > MAX_ABS_VALUE:
            raise ValueError(
                f"{name} holds values up to {top:.3g} in magnitude; stvlm's models train in float32 "
                f"and accept data within +-{MAX_ABS_VALUE:g}. Rescale the data first (e.g. to other units)."
            )


def finite_mean_std(X):
    """Mean and (population) std of the finite values of ``X``.

    Large windows (views of a series) are summarised chunk by chunk, in two passes, with
    no full-size temporary; smaller ones exactly as numpy does over all values at once.
    """
    if X.size <= LARGE:
        values = X[np.isfinite(X)]
        return float(values.mean()), float(values.std())
    total, count = 0.0, 0
    for part in _chunks(X):
        finite = part[np.isfinite(part)]
        total += float(finite.sum())
        count += finite.size
    mean = total / count
    sq = sum(float(((p[np.isfinite(p)] - mean) ** 2).sum()) for p in _chunks(X))
    return mean, (sq / count) ** 0.5


def constant_mae(y, value, null_value, threshold, loss="mae"):
    """Masked MAE (or with ``loss="mse"`` MSE) of forecasting ``value`` everywhere, chunk by
    chunk; None if no target is kept."""
    from ..metrics import target_mask

    total, count = 0.0, 0
    for part in _chunks(y):
        keep = target_mask(part, null_value, threshold)
        error = np.abs(part[keep] - value)
        total += float((error**2 if loss == "mse" else error).sum())
        count += int(keep.sum())
    return total / count if count else None

