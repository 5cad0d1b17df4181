"""scikit-learn scorers of the masked metrics, which also take a series without ``y``.

Public through :mod:`stvlm.metrics` (``get_scorer``, ``mae_scorer``, ...).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._masked import masked_mae, masked_mape, masked_rmse


def _windows_of_series(estimator, X):
    """Windows and targets cut from a series ``X``, with the estimator's history/horizon.

    A scorer gets ``y=None`` when model selection runs on a series (e.g.
    ``cross_val_score(model, series, cv=TimeSeriesSplit(...), scoring=...)``): the
    targets are then the steps after each window, as the estimator's ``score`` does.
    """
    from ..data import as_windows

    final = estimator
    while hasattr(final, "steps"):  # a Pipeline: its last step forecasts
        final = final.steps[-1][1]
    history, horizon = getattr(final, "history", None), getattr(final, "horizon", None)
    if np.ndim(X) != 2 or not isinstance(history, numbers.Integral) or not isinstance(horizon, numbers.Integral):
        raise ValueError(
            "y is None, so X must be a series (T, n_sensors) and the estimator must have integer "
            f"history and horizon parameters to cut windows and targets from it; got X with "
            f"{np.ndim(X)} dimensions and {type(final).__name__}(history={history!r}, "
            f"horizon={horizon!r}). Otherwise pass windows X and their targets y."
        )
    w = as_windows(X, history=history, horizon=horizon)
    # stvlm's models take the Windows themselves (with their time of day); others arrays.
    ours = type(final).__module__.startswith("stvlm.")
    return (w if ours else w.X), w.y


def _scorer_base():
    from sklearn.metrics import make_scorer

    return type(make_scorer(masked_mae, greater_is_better=False))


class _MaskedScorer(_scorer_base()):
    """A scikit-learn scorer (from ``make_scorer``) that also takes a series without ``y``."""

    # scikit-learn calls __call__, or _score directly (cross_validate, GridSearchCV);
    # both get y=None on a series.
    def __call__(self, estimator, X, y_true=None, **kwargs):
        if y_true is None:
            X, y_true = _windows_of_series(estimator, X)
        return super().__call__(estimator, X, y_true, **kwargs)

    def _score(self, method_caller, estimator, X, y_true=None, **kwargs):
        if y_true is None:
            X, y_true = _windows_of_series(estimator, X)
        return super()._score(method_caller, estimator, X, y_true, **kwargs)


def _masked_scorer(f, **kwargs):
    from sklearn.metrics import make_scorer

    sc = make_scorer(f, greater_is_better=False, **kwargs)
    sc.__class__ = _MaskedScorer  # same state, make_scorer's construction kept
    return sc


mae_scorer = _masked_scorer(masked_mae)
rmse_scorer = _masked_scorer(masked_rmse)
mape_scorer = _masked_scorer(masked_mape)


_SCORER_FUNCS = {
    "neg_masked_mae": masked_mae,
    "neg_masked_rmse": masked_rmse,
    "neg_masked_mape": masked_mape,
}


def get_scorer(name, **mask_kwargs):
    """Return a scikit-learn scorer of a masked metric, by name.

    The scorers are built with :func:`sklearn.metrics.make_scorer`: they call
    ``estimator.predict(X)`` and score it against ``y`` of any shape
    (``(n_windows, horizon, n_sensors)`` windows included; scikit-learn passes 3-D
    ``y`` through unchanged). Like scikit-learn's ``neg_*`` scorers they return the
    **negated** error, so greater is better. As for every scikit-learn scorer, the
    estimator must be a scikit-learn estimator (derive from ``BaseEstimator``).

    Called with ``y=None`` (model selection on a series, as in
    ``cross_val_score(model, series, cv=TimeSeriesSplit(5), scoring=scorer)``), a
    scorer reads ``X`` as a series ``(T, n_sensors)``, cuts it into windows and
    targets with :func:`stvlm.make_windows` using the ``history`` and ``horizon`` of
    the estimator (of a pipeline's last step), and scores the forecasts of those
    windows, like :meth:`stvlm.STVLMForecaster.score` does.

    Parameters
    ----------
    name : {"neg_masked_mae", "neg_masked_rmse", "neg_masked_mape"}
        The metric.
    **mask_kwargs
        ``null_value`` and/or ``threshold`` for the metric (see :func:`masked_mae`).
        Without them the module-level ``mae_scorer``, ``rmse_scorer`` or
        ``mape_scorer`` (zeros masked) is returned.

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y) -> float``
        Usable as ``scoring=`` in ``cross_val_score``, ``GridSearchCV`` etc.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the known names).
    TypeError
        If a keyword other than ``null_value`` or ``threshold`` is given.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator, RegressorMixin
    >>> from stvlm.metrics import get_scorer
    >>> class Persistence(RegressorMixin, BaseEstimator):
    ...     def fit(self, X, y):
    ...         return self
    ...     def predict(self, X):
    ...         return np.repeat(X[:, -1:], 2, axis=1)
    >>> X = np.ones((5, 3, 4)); y = np.full((5, 2, 4), 3.0)
    >>> get_scorer("neg_masked_mae")(Persistence(), X, y)
    -2.0
    >>> round(get_scorer("neg_masked_mape", threshold=1.0)(Persistence(), X, y), 2)
    -66.67
    """
    if name not in _SCORER_FUNCS:
        raise ValueError(
            f"unknown scorer {name!r}; known scorers: {', '.join(sorted(_SCORER_FUNCS))}."
        )
    unknown = set(mask_kwargs) - {"null_value", "threshold"}
    if unknown:
        raise TypeError(
            f"get_scorer accepts only null_value and threshold as keywords; got {sorted(unknown)}."
        )
    if not mask_kwargs:
        return {"neg_masked_mae": mae_scorer, "neg_masked_rmse": rmse_scorer,
                "neg_masked_mape": mape_scorer}[name]
    return _masked_scorer(_SCORER_FUNCS[name], **mask_kwargs)
