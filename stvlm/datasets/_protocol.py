"""The benchmark protocol object: what a model may fit on, the test windows, the masks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..metrics import horizon_metrics

__all__ = ["Protocol"]


# ---------------------------------------------------------------------------- Protocol
@dataclass(frozen=True, eq=False, repr=False)
class Protocol:
    """A benchmark protocol: what a model may fit on, the test windows, the scoring.

    Built by :func:`load_protocol`. Rows are numbered along the protocol's series:
    row 0 is ``fit_series[0]``, and test window ``i`` has its history at rows
    ``test_start + i ... test_start + i + history - 1`` and its target at the next
    ``horizon`` rows.

    Attributes
    ----------
    name : str
        ``"pems08-tail"``, ``"sz-taxi"``, ``"pems03"`` ... ``"pems08"``, ``"etth1"``,
        ``"etth2"``, or a user's name (:func:`make_protocol`).
    fit_series : ndarray of shape (T_fit, N), float64
        Every row a model may fit on (training and early stopping). It ends right
        before the first test target, so no fitted row is a test target.
    test_X : ndarray of shape (n_test, history, N)
        Histories of the test windows.
    test_y : ndarray of shape (n_test, horizon, N)
        Targets of the test windows.
    mean, std : float
        Mean and (population) standard deviation over all values of the training
        part, ``train_series``; scale with these.
    steps_per_day : int
        288 for 5-minute PEMS data, 96 for 15-minute SZ-taxi data, 24 for hourly ETT.
    first_time_index : int
        Time-of-day slot (``0 ... steps_per_day - 1``) of row 0.
    start_time : str
        Date and time of row 0 (ISO 8601, local time of the sensors).
    test_start : int
        Row of the first test history (``test_X[0, 0]``).
    n_train_rows : int
        ``train_series`` is ``fit_series[:n_train_rows]``.
    val_series : ndarray of shape (T_val, N) or None
        The part of ``fit_series`` the protocol sets aside for validation / early
        stopping (its last rows), or ``None`` where the protocol leaves that choice to
        the user (``pems08-tail``: split ``fit_series`` chronologically yourself).
    null_value : float or None
        True values equal to this are left out of every metric.
    threshold : float or None
        True values with ``|v| < threshold`` are left out of MAE and RMSE.
    mape_threshold : float or None
        True values with ``|v| < mape_threshold`` are left out of MAPE.
    history, horizon : int
        Window lengths (12 and 12; ETT: 96 or 512 in, 96/192/336/720 out).
    description : str
        One line on the protocol.
    metrics : tuple of str
        What :meth:`evaluate` reports: ``("MAE", "RMSE", "MAPE")`` (traffic, in the
        units of the data) or ``("MSE", "MAE")`` (the long-term ETT protocols, on
        z-scored values).
    report_horizons : tuple of int
        Forecast steps :meth:`evaluate` also reports on their own.
    few_shot : {"rows", "windows"}
        How :meth:`few_shot_series` takes a fraction of the training part: ``"rows"``,
        its first ``floor(f * n_train_rows)`` rows (the traffic protocols);
        ``"windows"``, the rows of the first fraction of its training windows as
        Time-LLM / Time-VLM count them, ``floor((n_train_rows - history) * f) + history``.
    variable_mean, variable_std : ndarray of shape (N,) or None
        Where the protocol's series are z-scored per variable (ETT), the training
        statistics used, in the units of the data: ``raw = value * std + mean``.
    channels : tuple of str or None
        Names of the variables (ETT), if known.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.datasets import load_protocol
    >>> p = load_protocol("pems08-tail")   # the embedded copy (or $STVLM_DATA_DIR)
    >>> p.fit_series.shape, p.test_X.shape
    ((3578, 170), (3567, 12, 170))
    >>> last_value = np.repeat(p.test_X[:, -1:], 12, axis=1)
    >>> round(p.evaluate(last_value)["MAE"], 2)
    25.28
    """

    name: str
    fit_series: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    mean: float
    std: float
    steps_per_day: int
    first_time_index: int
    start_time: str
    test_start: int
    n_train_rows: int
    val_series: np.ndarray | None = None
    null_value: float | None = 0.0
    threshold: float | None = None
    mape_threshold: float | None = None
    history: int = 12
    horizon: int = 12
    description: str = field(default="")
    metrics: tuple = ("MAE", "RMSE", "MAPE")
    report_horizons: tuple = (3, 6, 12)
    few_shot: str = "rows"
    variable_mean: np.ndarray | None = None
    variable_std: np.ndarray | None = None
    channels: tuple | None = None

    def __repr__(self):
        val = None if self.val_series is None else self.val_series.shape
        return (
            f"Protocol(name={self.name!r}, fit_series={self.fit_series.shape}, "
            f"val_series={val}, test_X={self.test_X.shape}, test_y={self.test_y.shape}, "
            f"mean={self.mean:.4g}, std={self.std:.4g}, steps_per_day={self.steps_per_day})"
        )

    @property
    def train_series(self) -> np.ndarray:
        """The training part, ``fit_series[:n_train_rows]``; ``mean``/``std`` are its."""
        return self.fit_series[: self.n_train_rows]

    @property
    def metric_kwargs(self) -> dict:
        """Masks of the protocol, as keywords of :func:`stvlm.metrics.horizon_metrics`."""
        return {
            "null_value": self.null_value,
            "threshold": self.threshold,
            "mape_threshold": self.mape_threshold,
        }

    @property
    def test_rows(self) -> np.ndarray:
        """Row of each test window's first history step, shape ``(n_test,)``."""
        return self.test_start + np.arange(self.test_X.shape[0])

    def time_of_day(self, rows) -> np.ndarray:
        """Time-of-day slot ``0 ... steps_per_day - 1`` of the given rows.

        Parameters
        ----------
        rows : int or array-like of int
            Rows of the protocol's series (row 0 = ``fit_series[0]``).

        Returns
        -------
        ndarray of int
            ``(first_time_index + rows) % steps_per_day``.
        """
        return (self.first_time_index + np.asarray(rows, dtype=np.int64)) % self.steps_per_day

    def test_data(self):
        """The test windows with their targets and the time of each window.

        Returns
        -------
        stvlm.Windows
            ``X = test_X``, ``y = test_y``, and each window's time of day (and day of
            week, date and time, from ``start_time``) at its last history step, so that
            models reading the clock get it through the data.

        Examples
        --------
        >>> from stvlm.datasets import load_protocol
        >>> w = load_protocol("pems08-tail").test_data()
        >>> w.X.shape, w.steps_per_day, int(w.time_of_day[0]), str(w.timestamps[0])[:16]
        ((3567, 12, 170), 288, 165, '2016-08-19T13:45')
        """
        from ..data import Windows
        from ..data._clock import _row_clock

        origin = self.test_rows + self.history - 1
        slots = self.time_of_day(origin)
        dow = stamps = None
        if self.start_time:  # the rows' dates, as the front door reads them
            _, _, dow, stamps = _row_clock(None, int(origin[-1]) + 1, self.steps_per_day, self.start_time)
            dow, stamps = dow[origin], stamps[origin]
        return Windows(
            self.test_X, self.test_y, time_of_day=slots, day_of_week=dow, steps_per_day=self.steps_per_day,
            timestamps=stamps,
        )

    def series(self) -> np.ndarray:
        """The protocol's whole series: the fit period, then every test row.

        Returns
        -------
        ndarray of shape (T, N)
            Row ``r`` is row ``r`` of the protocol (``fit_series`` followed by the
            test targets), so ``series()[test_start + i : test_start + i + history]``
            is ``test_X[i]``.
        """
        tail = np.concatenate([self.test_y[:, 0], self.test_y[-1, 1:]], axis=0)
        return np.concatenate([self.fit_series, tail], axis=0)

    def test_windows(self, history) -> np.ndarray:
        """Histories of the test windows, ``history`` steps long instead of ``self.history``.

        Window ``i`` ends where ``test_X[i]`` ends, so it forecasts the same target
        ``test_y[i]``; it starts earlier (``history > self.history``) or later. For
        models that read further back, e.g. a seasonal naive forecast one day back.
        Every row it reads precedes the window's first target.

        Parameters
        ----------
        history : int
            Steps per window; at most ``test_start + self.history``.

        Returns
        -------
        ndarray of shape (n_test, history, N)
            A read-only view on one copy of the series (no memory per window).

        Examples
        --------
        >>> from stvlm.datasets import load_protocol
        >>> p = load_protocol("pems08-tail")
        >>> X = p.test_windows(288)
        >>> X.shape, bool((X[:, -12:] == p.test_X).all())
        ((3567, 288, 170), True)
        """
        from numpy.lib.stride_tricks import sliding_window_view

        history = int(history)
        first = self.test_start + self.history - history
        if history < 1 or first < 0:
            raise ValueError(
                f"history must be in [1, {self.test_start + self.history}] for protocol {self.name!r} "
                f"(the series starts {self.test_start + self.history} rows before the first target); got {history}."
            )
        rows = self.series()[first : first + self.test_X.shape[0] + history - 1]
        return sliding_window_view(rows, history, axis=0).transpose(0, 2, 1)

    def few_shot_series(self, fraction) -> np.ndarray:
        """The rows a few-shot setting may fit on: the start of the training part.

        Parameters
        ----------
        fraction : float
            In ``(0, 1]``; counted as :attr:`few_shot` says.

        Returns
        -------
        ndarray of shape (T_few, N)
            The first rows of ``fit_series``.

        Raises
        ------
        ValueError
            If ``fraction`` is not in ``(0, 1]``.

        Examples
        --------
        >>> from stvlm.datasets import load_protocol
        >>> load_protocol("pems08-tail").few_shot_series(0.2).shape
        (715, 170)
        """
        import math

        try:
            f = float(fraction)
        except (TypeError, ValueError):
            f = float("nan")
        if not 0 < f <= 1:
            raise ValueError(f"fraction must be in (0, 1]; got {fraction!r}.")
        if self.few_shot == "windows":
            rows = int(math.floor((self.n_train_rows - self.history) * f)) + self.history
        else:
            rows = int(math.floor(f * self.n_train_rows))
        return self.fit_series[:rows]

    def evaluate(self, y_pred, horizons=None) -> dict:
        """Score a forecast of the test windows with the protocol's masks.

        Parameters
        ----------
        y_pred : array-like of shape (n_test, horizon, N)
            Forecast of ``test_y``, in the units of the data (not scaled).
        horizons : iterable of int, default=None
            Forecast steps (1-based) to report on their own; ``None`` takes
            :attr:`report_horizons`.

        Returns
        -------
        dict
            For the traffic protocols as :func:`stvlm.metrics.horizon_metrics`:
            ``{"MAE", "RMSE", "MAPE", "horizons": {3: {...}, 6: {...}, 12: {...}}}``,
            MAPE in percent. For the long-term protocols ``{"MSE", "MAE", "horizons"}``.

        Raises
        ------
        ValueError
            If ``y_pred`` does not have the shape of ``test_y``, or holds NaN/inf
            where a target is scored.
        """
        y_pred = np.asarray(y_pred)
        if y_pred.shape != self.test_y.shape:
            raise ValueError(
                f"y_pred must have the shape of test_y {self.test_y.shape} for protocol "
                f"{self.name!r}; got {y_pred.shape}."
            )
        if horizons is None:
            horizons = self.report_horizons
        if "MSE" not in self.metrics:
            return horizon_metrics(self.test_y, y_pred, horizons, **self.metric_kwargs)
        from ..metrics import masked_mae, masked_mse

        kw = dict(null_value=self.null_value, threshold=self.threshold)

        def two(t, p):
            return {"MSE": masked_mse(t, p, **kw), "MAE": masked_mae(t, p, **kw)}

        out = two(self.test_y, y_pred)
        out["horizons"] = {int(h): two(self.test_y[:, h - 1], y_pred[:, h - 1]) for h in horizons}
        return out
