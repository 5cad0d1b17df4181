"""Cutting a series into supervised windows: series -> (history, horizon) pairs."""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int, check_series


def make_windows(series, history: int = 12, horizon: int = 12, stride: int = 1):
    """Cut a multivariate series into history/horizon window pairs.

    Parameters
    ----------
    series : array-like of shape (T, n_sensors)
        The series, one column per sensor. A 3-D ``(T, n_sensors, n_features)`` array
        of the PEMS format must be reduced to one feature first (e.g. ``data[..., 0]``).
    history : int, default=12
        Steps given to the model.
    horizon : int, default=12
        Steps to forecast.
    stride : int, default=1
        Steps between the starts of two consecutive windows.

    Returns
    -------
    X : ndarray of shape (n_windows, history, n_sensors)
        ``X[i] = series[i*stride : i*stride + history]``.
    y : ndarray of shape (n_windows, horizon, n_sensors)
        ``y[i] = series[i*stride + history : i*stride + history + horizon]``.

    Raises
    ------
    ValueError
        If the series is shorter than ``history + horizon``.

    Notes
    -----
    The windows are copies, not views, so editing them never changes the series.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import make_windows
    >>> series = np.arange(20.0).reshape(10, 2)
    >>> X, y = make_windows(series, history=3, horizon=2)
    >>> X.shape, y.shape
    ((6, 3, 2), (6, 2, 2))
    >>> X[1, :, 0], y[1, :, 0]
    (array([2., 4., 6.]), array([ 8., 10.]))
    """
    history = check_positive_int(history, "history")
    horizon = check_positive_int(horizon, "horizon")
    stride = check_positive_int(stride, "stride")
    arr = check_series(series, name="series")
    T = arr.shape[0]
    if T < history + horizon:
        raise ValueError(
            f"series has {T} time steps; history + horizon = {history + horizon} are needed "
            "for a single window."
        )
    starts = np.arange(0, T - history - horizon + 1, stride)
    win = np.lib.stride_tricks.sliding_window_view(arr, history + horizon, axis=0)[starts]
    # sliding_window_view puts the window axis last: (n, N, history + horizon).
    win = np.ascontiguousarray(win.transpose(0, 2, 1))
    return win[:, :history].copy(), win[:, history:].copy()
