"""One sensor's history, true future and forecasts."""

from __future__ import annotations


import numpy as np

from ._common import _check_index, _check_sensor_ids, _pyplot


# ------------------------------------------------------------------ forecast
def _as_windows(a, name):
    """``(n, steps, N)`` float array from a 3-D array or a single 2-D window."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_windows, steps, n_sensors) or (steps, n_sensors); got {np.shape(a)}."
        )
    return arr


def plot_forecast(
    y_true,
    y_pred,
    sensor=0,
    *,
    history=None,
    window=0,
    sensor_ids=None,
    null_value=0.0,
    ylabel="value",
    title=None,
    ax=None,
):
    """Plot one sensor's forecast against the truth (and its history) for one window.

    The x axis counts steps from the last observed one: the history occupies steps
    ``-history+1 ... 0`` and the forecast horizon steps ``1 ... horizon`` (shaded).

    Parameters
    ----------
    y_true : array-like of shape (n_windows, horizon, n_sensors) or (horizon, n_sensors)
        True future values, e.g. the ``y`` of :func:`stvlm.make_windows`.
    y_pred : array-like of the shape of ``y_true``, or dict of str to such arrays
        The forecast, e.g. ``model.predict(X)``. A dict draws several forecasts, one
        line each, labelled by its keys (e.g. ``{"ST-VLM": ..., "last value": ...}``).
    sensor : int, default=0
        Column of the sensor to draw.
    history : array-like of shape (n_windows, history, n_sensors) or (history, n_sensors), optional
        The input windows ``X``; drawn before the horizon when given.
    window : int, default=0
        Which window to draw (negative values count from the end).
    sensor_ids : sequence of length n_sensors, optional
        Sensor labels; the title names ``sensor_ids[sensor]`` (default: ``sensor``).
    null_value : float or None, default=0.0
        True (and history) values equal to this are missing readings, drawn as gaps,
        as the metrics mask them. ``None`` draws every value; NaN is always a gap.
    ylabel : str, default="value"
        Label of the y axis (e.g. ``"flow (vehicles / 5 min)"``).
    title : str, optional
        Axes title; default ``"sensor <id>, window <window>"``.
    ax : matplotlib Axes, optional
        Draw into this; by default a new figure is made.

    Returns
    -------
    ax : matplotlib.axes.Axes
        Its lines are, in order: ``"history"`` (when given), ``"truth"``, then one
        per forecast; the legend shows them.

    Raises
    ------
    ValueError
        If the shapes of ``y_true``, ``y_pred`` and ``history`` do not match, or
        ``sensor`` / ``window`` is out of range.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from stvlm import make_windows
    >>> from stvlm.baselines import LastValueForecaster
    >>> from stvlm.plotting import plot_forecast
    >>> series = 100 + 20 * np.sin(np.arange(60.0) / 4)[:, None] * np.ones((1, 3))
    >>> X, y = make_windows(series, history=12, horizon=6)
    >>> y_last = LastValueForecaster(horizon=6).fit(X).predict(X)
    >>> ax = plot_forecast(y, {"last value": y_last, "truth + 1": y + 1}, sensor=2,
    ...                    history=X, window=5, ylabel="flow")
    >>> [line.get_label() for line in ax.get_lines()]
    ['history', 'truth', 'last value', 'truth + 1']
    >>> ax.get_lines()[1].get_xdata().tolist()
    [1, 2, 3, 4, 5, 6]
    >>> ax.get_title(), ax.get_ylabel()
    ('sensor 2, window 5', 'flow')
    >>> plt.close(ax.figure)
    """
    truth = _as_windows(y_true, "y_true")
    preds = y_pred if isinstance(y_pred, dict) else {"forecast": y_pred}
    if not preds:
        raise ValueError("y_pred is an empty dict; give at least one forecast.")
    preds = {str(k): _as_windows(v, f"y_pred[{k!r}]" if isinstance(y_pred, dict) else "y_pred") for k, v in preds.items()}
    for name, p in preds.items():
        if p.shape != truth.shape:
            raise ValueError(
                f"the forecast {name!r} has shape {p.shape}, but y_true has {truth.shape}; they must match."
            )
    n, horizon, n_sensors = truth.shape
    past = None
    if history is not None:
        past = _as_windows(history, "history")
        if past.shape[0] != n or past.shape[2] != n_sensors:
            raise ValueError(
                f"history has shape {past.shape}, but y_true has {truth.shape}: expected "
                f"({n}, history, {n_sensors})."
            )
    w = _check_index(window, n, "window", "windows")
    s = _check_index(sensor, n_sensors, "sensor", "sensors")
    ids = _check_sensor_ids(sensor_ids, n_sensors)

    def gaps(v):
        v = v.copy()
        if null_value is not None:
            v[v == null_value] = np.nan
        return v

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    steps = np.arange(1, horizon + 1)
    if past is not None:
        k = past.shape[1]
        ax.plot(np.arange(-k + 1, 1), gaps(past[w, :, s]), color="0.45", marker=".", label="history")
    ax.plot(steps, gaps(truth[w, :, s]), color="black", marker="o", markersize=4, label="truth")
    for i, (name, p) in enumerate(preds.items()):
        ax.plot(steps, p[w, :, s], color=f"C{i}", marker="s", markersize=3.5, linestyle="--", label=name)
    ax.axvspan(0.5, horizon + 0.5, color="C0", alpha=0.07, linewidth=0)
    ax.set_xlabel("step (0 = last observed)")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else f"sensor {ids[s]}, window {w}")
    ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    return ax
