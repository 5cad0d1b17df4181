"""The masked metrics and the one mask rule (see :mod:`stvlm.metrics`)."""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import _as_float_array

__all__ = ["horizon_metrics", "masked_mae", "masked_mape", "masked_rmse", "target_mask"]


def _check_nonneg_number(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be None or a non-negative number; got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be None or a finite number >= 0; got {value!r}.")
    return value


def target_mask(y_true, null_value=0.0, threshold=None):
    """Where a true value counts: the masking rule of every metric and training loss.

    An entry is left out when it is NaN or infinite, equal to ``null_value``, or
    below ``threshold`` in absolute value. Works on numpy arrays and torch tensors
    alike, so the training loss of every model (:mod:`stvlm.training`) masks exactly
    what the metrics mask. (The metrics refuse infinite true values outright.)

    Parameters
    ----------
    y_true : ndarray or torch.Tensor
        True values.
    null_value : float or None, default=0.0
        Value marking a missing reading (exact equality); ``None`` or NaN: none.
    threshold : float or None, default=None
        Values with ``|y_true| < threshold`` are left out.

    Returns
    -------
    keep : bool array or tensor of the shape of ``y_true``

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.metrics import target_mask
    >>> target_mask(np.array([np.nan, 0.0, 1e-9, 3.0]), threshold=1e-6)
    array([False, False, False,  True])
    """
    keep = np.isfinite(y_true) if isinstance(y_true, np.ndarray) else y_true.isfinite()
    if null_value is not None and null_value == null_value:
        keep &= y_true != null_value
    if threshold is not None:
        keep &= abs(y_true) >= threshold
    return keep


def _mask(y_true, y_pred, null_value=0.0, threshold=None, *, exclude_zero=False):
    """Apply the masking rule; return the kept true and predicted values (1-D, float64).

    The single implementation of the masking rule used by every metric of this module
    (see the module docstring for the rule and the errors raised).
    """
    t = _as_float_array(y_true, "y_true")
    p = _as_float_array(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {t.shape} and {p.shape}."
        )
    if t.size == 0:
        raise ValueError("y_true is empty: no valid target values after masking.")
    if null_value is not None:
        if isinstance(null_value, (bool, np.bool_)) or not isinstance(null_value, numbers.Real):
            raise TypeError(f"null_value must be None or a number; got {null_value!r}.")
    threshold = _check_nonneg_number(threshold, "threshold")

    t = t.astype(np.float64, copy=False)
    p = p.astype(np.float64, copy=False)
    if np.isinf(t).any():
        raise ValueError(
            "y_true contains infinite values; mark missing true values with NaN "
            "(always masked) or with null_value."
        )
    keep = target_mask(t, null_value, threshold)
    if exclude_zero:
        keep &= t != 0
    if not keep.any():
        raise ValueError(
            "no valid target values after masking: every entry of y_true is NaN"
            + (f", equal to null_value={null_value!r}" if null_value is not None else "")
            + (f", or below threshold={threshold!r} in absolute value" if threshold is not None else "")
            + (" or zero" if exclude_zero else "")
            + "."
        )
    t = t[keep]
    p = p[keep]
    bad = ~np.isfinite(p)
    if bad.any():
        raise ValueError(
            f"y_pred has {int(bad.sum())} non-finite value(s) (NaN or inf) where y_true is "
            "a valid target; a forecast must be finite wherever it is scored."
        )
    return t, p


def masked_mae(y_true, y_pred, null_value=0.0, threshold=None):
    """Mean absolute error over the entries whose true value is valid.

    Parameters
    ----------
    y_true : array-like of any shape, e.g. (n_windows, horizon, n_sensors)
        True values. NaN entries are always left out.
    y_pred : array-like of the same shape as ``y_true``
        Forecasts. They must be finite wherever ``y_true`` is kept.
    null_value : float or None, default=0.0
        True values equal to this (exact equality) are left out as missing
        readings. ``None`` keeps them.
    threshold : float or None, default=None
        If given, true values with ``|y_true| < threshold`` are left out as well.

    Returns
    -------
    float
        ``mean(|y_pred - y_true|)`` over the kept entries, in the units of the data.

    Raises
    ------
    ValueError
        If the shapes differ, if ``y_pred`` is NaN/inf where ``y_true`` is kept, if
        ``y_true`` has infinite values, or if nothing is left after masking.

    See Also
    --------
    masked_rmse, masked_mape, horizon_metrics

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.metrics import masked_mae
    >>> y_true = np.array([[1.0, 0.0], [np.nan, 4.0]])
    >>> y_pred = np.array([[2.0, 9.0], [5.0, 2.0]])
    >>> masked_mae(y_true, y_pred)   # the 0 and the NaN are left out: (1 + 2) / 2
    1.5
    >>> masked_mae(y_true, y_pred, null_value=None)   # the 0 now counts: (1 + 9 + 2) / 3
    4.0
    """
    t, p = _mask(y_true, y_pred, null_value, threshold)
    return float(np.mean(np.abs(p - t)))


def masked_rmse(y_true, y_pred, null_value=0.0, threshold=None):
    """Root mean squared error over the entries whose true value is valid.

    Parameters
    ----------
    y_true : array-like of any shape, e.g. (n_windows, horizon, n_sensors)
        True values. NaN entries are always left out.
    y_pred : array-like of the same shape as ``y_true``
        Forecasts. They must be finite wherever ``y_true`` is kept.
    null_value : float or None, default=0.0
        True values equal to this (exact equality) are left out. ``None`` keeps them.
    threshold : float or None, default=None
        If given, true values with ``|y_true| < threshold`` are left out as well.

    Returns
    -------
    float
        ``sqrt(mean((y_pred - y_true) ** 2))`` over the kept entries.

    Raises
    ------
    ValueError
        As :func:`masked_mae`.

    See Also
    --------
    masked_mae, masked_mape, horizon_metrics

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.metrics import masked_rmse
    >>> y_true = np.array([3.0, 0.0, 5.0, 1e-9])
    >>> y_pred = np.array([0.0, 7.0, 1.0, 2.0])
    >>> masked_rmse(y_true, y_pred, threshold=1e-6)   # sqrt((9 + 16) / 2)
    3.5355339059327378
    """
    t, p = _mask(y_true, y_pred, null_value, threshold)
    d = p - t
    with np.errstate(over="ignore"):
        rmse = float(np.sqrt(np.mean(d**2)))
    if not np.isfinite(rmse):
        # The squares overflowed (errors beyond ~1e154): the same value, scaled first.
        top = float(np.max(np.abs(d)))
        rmse = top * float(np.sqrt(np.mean((d / top) ** 2))) if np.isfinite(top) else np.inf
    return rmse


def masked_mse(y_true, y_pred, null_value=0.0, threshold=None):
    """Mean squared error over the entries whose true value is valid.

    The long-term forecasting benchmarks (ETT) report it on z-scored values, with
    ``null_value=None`` (a normalised value of 0 is a real reading).

    Parameters
    ----------
    y_true : array-like of any shape, e.g. (n_windows, horizon, n_sensors)
        True values. NaN entries are always left out.
    y_pred : array-like of the same shape as ``y_true``
        Forecasts. They must be finite wherever ``y_true`` is kept.
    null_value : float or None, default=0.0
        True values equal to this (exact equality) are left out. ``None`` keeps them.
    threshold : float or None, default=None
        If given, true values with ``|y_true| < threshold`` are left out as well.

    Returns
    -------
    float
        ``mean((y_pred - y_true) ** 2)`` over the kept entries (``inf`` if the squares
        overflow).

    Raises
    ------
    ValueError
        As :func:`masked_mae`.

    See Also
    --------
    masked_rmse, masked_mae

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.metrics import masked_mse
    >>> masked_mse(np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0]), null_value=None)
    1.6666666666666667
    """
    t, p = _mask(y_true, y_pred, null_value, threshold)
    with np.errstate(over="ignore"):
        return float(np.mean((p - t) ** 2))


def masked_mape(y_true, y_pred, null_value=0.0, threshold=None):
    """Mean absolute percentage error, in percent, over the valid true values.

    Parameters
    ----------
    y_true : array-like of any shape, e.g. (n_windows, horizon, n_sensors)
        True values. NaN entries, and entries equal to 0 (where a percentage error is
        undefined), are always left out.
    y_pred : array-like of the same shape as ``y_true``
        Forecasts. They must be finite wherever ``y_true`` is kept.
    null_value : float or None, default=0.0
        True values equal to this (exact equality) are left out.
    threshold : float or None, default=None
        If given, true values with ``|y_true| < threshold`` are left out as well. On
        SZ-taxi MAPE is taken over true speeds of at least 1 km/h: ``threshold=1.0``.

    Returns
    -------
    float
        ``100 * mean(|y_pred - y_true| / |y_true|)`` over the kept entries, e.g.
        ``15.62`` for 15.62 % (not ``0.1562``).

    Raises
    ------
    ValueError
        As :func:`masked_mae`.

    See Also
    --------
    masked_mae, masked_rmse, horizon_metrics

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.metrics import masked_mape
    >>> y_true = np.array([10.0, 0.0, 20.0, 0.5])
    >>> y_pred = np.array([11.0, 3.0, 15.0, 1.0])
    >>> masked_mape(y_true, y_pred)   # (10 % + 25 % + 100 %) / 3
    45.0
    >>> masked_mape(y_true, y_pred, threshold=1.0)   # 0.5 left out too
    17.5
    """
    t, p = _mask(y_true, y_pred, null_value, threshold, exclude_zero=True)
    return float(np.mean(np.abs(p - t) / np.abs(t)) * 100.0)


def horizon_metrics(
    y_true,
    y_pred,
    horizons=(3, 6, 12),
    *,
    null_value=0.0,
    threshold=None,
    mape_threshold=None,
):
    """MAE, RMSE and MAPE over all horizons and at selected forecast steps.

    Parameters
    ----------
    y_true : array-like of shape (n_windows, horizon, ...)
        True values; axis 1 is the forecast step.
    y_pred : array-like of the same shape as ``y_true``
        Forecasts.
    horizons : iterable of int, default=(3, 6, 12)
        Forecast steps to report on their own, 1-based: horizon 3 is
        ``y[:, 2]`` (15 minutes ahead on 5-minute PEMS data). Each must lie in
        ``1 ... y_true.shape[1]``. An empty tuple reports the overall figures only.
    null_value : float or None, default=0.0
        Passed to every metric (see :func:`masked_mae`).
    threshold : float or None, default=None
        Passed to :func:`masked_mae` and :func:`masked_rmse`, and to
        :func:`masked_mape` unless ``mape_threshold`` is given.
    mape_threshold : float or None, default=None
        Threshold of :func:`masked_mape` only; ``None`` uses ``threshold``.
        SZ-taxi uses ``threshold=1e-6, mape_threshold=1.0``.

    Returns
    -------
    dict
        ``{"MAE": float, "RMSE": float, "MAPE": float, "horizons": {h: {"MAE": ...,
        "RMSE": ..., "MAPE": ...}, ...}}``: the overall figures over every window,
        step and sensor, and the figures at each requested step (keys are the ints of
        ``horizons``). MAPE is in percent.

    Raises
    ------
    ValueError
        If the arrays are not at least 2-D, if a horizon is out of range, or as
        :func:`masked_mae` (also when one requested step has no valid target).

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.metrics import horizon_metrics
    >>> y_true = np.full((4, 3, 2), 10.0)
    >>> y_pred = y_true + np.array([1.0, 2.0, 3.0])[None, :, None]
    >>> res = horizon_metrics(y_true, y_pred, horizons=(1, 3))
    >>> res["MAE"], res["horizons"][1]["MAE"], res["horizons"][3]["MAPE"]
    (2.0, 1.0, 30.0)
    """
    t = _as_float_array(y_true, "y_true")
    p = _as_float_array(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {t.shape} and {p.shape}."
        )
    if t.ndim < 2:
        raise ValueError(
            "horizon_metrics needs arrays of shape (n_windows, horizon, ...) with the "
            f"forecast step on axis 1; got shape {t.shape}."
        )
    H = t.shape[1]
    if isinstance(horizons, numbers.Integral):
        horizons = (horizons,)
    steps = []
    for h in horizons:
        if isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral):
            raise TypeError(f"horizons must be integers (1-based steps); got {h!r}.")
        if not 1 <= h <= H:
            raise ValueError(
                f"horizon {h} is out of range: the arrays have {H} forecast steps, so "
                f"horizons must lie in 1 ... {H} (1-based)."
            )
        steps.append(int(h))
    if mape_threshold is None:
        mape_threshold = threshold

    def _three(a, b):
        return {
            "MAE": masked_mae(a, b, null_value=null_value, threshold=threshold),
            "RMSE": masked_rmse(a, b, null_value=null_value, threshold=threshold),
            "MAPE": masked_mape(a, b, null_value=null_value, threshold=mape_threshold),
        }

    out = _three(t, p)
    out["horizons"] = {h: _three(t[:, h - 1], p[:, h - 1]) for h in steps}
    return out
