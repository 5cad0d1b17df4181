"""Masked forecast metrics (MAE, RMSE, MAPE) and scikit-learn scorers.

Traffic benchmarks score forecasts only where a true reading exists: a true value
of 0 on PEMS means a missing reading, NaN means missing everywhere, and on SZ-taxi
speeds below a threshold mean "no taxi passed". Every metric here applies the same
masking rule, implemented once in :func:`_mask`:

* an entry is **masked** (left out) when its true value is NaN;
* or, if ``null_value`` is not None, when the true value equals ``null_value``
  exactly (default ``0.0``, the PEMS / BasicTS / STAEformer convention);
* or, if ``threshold`` is not None, when ``|y_true| < threshold`` (covers float
  noise around 0, e.g. SZ-taxi's ``1e-17 ... 1e-7``);
* :func:`masked_mape` also always leaves out true values equal to 0, where a
  percentage error is undefined.

The metrics average over every entry that is left, whatever the array shape, so
``(n_windows, horizon, n_sensors)`` arrays are scored over all windows, horizons
and sensors together. Errors are loud rather than silent:

* ``y_true`` and ``y_pred`` of different shapes raise ``ValueError``;
* a NaN or infinite prediction where the true value is kept raises ``ValueError``
  (a prediction is never silently turned into a NaN score);
* an infinite true value raises ``ValueError`` (use NaN to mark missing values);
* nothing left after masking raises ``ValueError`` ("no valid target values after
  masking"), rather than returning NaN with a warning.
"""

from ._masked import horizon_metrics, masked_mae, masked_mape, masked_mse, masked_rmse, target_mask
from ._scorers import get_scorer, mae_scorer, mape_scorer, rmse_scorer

__all__ = [
    "target_mask",
    "masked_mae",
    "masked_rmse",
    "masked_mse",
    "masked_mape",
    "horizon_metrics",
    "mae_scorer",
    "rmse_scorer",
    "mape_scorer",
    "get_scorer",
]
