"""What the sktime faces of stvlm's window forecasters share (not public).

:class:`WindowSktimeForecaster` is a :class:`sktime.forecasting.base.BaseForecaster`
around one scikit-learn window forecaster (a subclass of
:class:`stvlm._base.BaseWindowForecaster`, named by ``_engine``): ``fit`` trains the
engine on the series ``y`` for ``horizon = max(fh)``, ``predict`` feeds it the last
``history`` rows seen, ``update`` stores new rows without retraining. A public face
(:mod:`stvlm.sktime`) only declares the engine, its constructor (the engine's
parameters but ``horizon``), its dependencies and its test parameters.

Importing this module needs sktime; ``import stvlm`` does not.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster

from .data import last_window, rows_needed, split_sizes

__all__ = ["WindowSktimeForecaster"]


def store_params(obj, params):
    """Set the constructor's arguments (``locals()`` of an ``__init__``) as attributes.

    Parameters
    ----------
    obj : WindowSktimeForecaster
        The forecaster being constructed.
    params : dict
        ``locals()`` at the start of its ``__init__``.

    Examples
    --------
    >>> class Box:
    ...     def __init__(self, a=1, b=2):
    ...         store_params(self, locals())
    >>> vars(Box(b=3))
    {'a': 1, 'b': 3}
    """
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(obj, name, value)


class WindowSktimeForecaster(BaseForecaster):
    """Base of the sktime faces of stvlm's window forecasters; not public.

    Subclasses set ``_engine`` (the scikit-learn estimator class wrapped) and define an
    ``__init__`` with every parameter of the engine but ``horizon``, same names and
    defaults, that calls :func:`store_params` and then ``super().__init__()``.

    Examples
    --------
    >>> from stvlm import STVLMForecaster
    >>> from stvlm.sktime import STVLMSktimeForecaster
    >>> STVLMSktimeForecaster._engine is STVLMForecaster
    True
    >>> STVLMSktimeForecaster._engine_params()[:3]
    ('history', 'backbone', 'fusion')
    """

    #: The wrapped scikit-learn estimator class (set by subclasses).
    _engine = None

    _tags = {
        # packaging info
        # --------------
        "authors": ["stvlm developers"],
        "maintainers": ["stvlm developers"],
        # the engines import these lazily, in fit/predict (subclasses add their own)
        "python_dependencies": ["torch", "transformers"],
        # estimator type
        # --------------
        # one model over all variables; a univariate y is a network of one sensor
        "capability:multivariate": True,
        "y_inner_mtype": "pd.DataFrame",
        "X_inner_mtype": "pd.DataFrame",
        # X is accepted and ignored
        "capability:exogenous": False,
        # the network is built for horizon = max(fh), so fh is needed in fit
        "requires-fh-in-fit": True,
        # forecasts start after the cutoff; sktime refuses in-sample fh itself
        "capability:insample": False,
        "capability:pred_int": False,
        "capability:pred_int:insample": False,
        # NaN are masked in the loss and filled along time in the inputs
        "capability:missing_values": True,
        # _update keeps the last window current (no retraining)
        "capability:update": True,
        # stochastic training, deterministic (on the CPU) given random_state
        "property:randomness": "derandomized",
        "capability:random_state": True,
        "fit_is_empty": False,
    }

    # The forecaster keeps the rows it needs in self._cur_y (see _fit/_update), so
    # sktime's own copy of all data in self._y/self._X is off by default (sktime 1.3's
    # default, adopted early: no double storage, no FutureWarning about the change).
    # set_config(remember_data=True) still turns it on.
    _config = {"remember_data": False}
    # BaseForecaster.__init__ defines _y/_X only when remember_data is on at
    # construction; keep them defined for a later set_config(remember_data=True).
    _y = None
    _X = None

    # ------------------------------------------------------------------ engine
    @classmethod
    def _engine_params(cls):
        """Every engine parameter but horizon (which fh sets in fit), in the engine's order."""
        return tuple(p for p in inspect.signature(cls._engine.__init__).parameters if p not in ("self", "horizon"))

    @classmethod
    def _from_preset(cls, name, overrides):
        """A forecaster with the engine's preset ``name`` (its checks and errors), ``overrides`` applied."""
        preset = cls._engine.from_preset(name).get_params(deep=False)
        return cls(**{**{p: preset[p] for p in cls._engine_params()}, **overrides})

    def _make_engine(self, horizon):
        """The scikit-learn engine with this forecaster's parameters."""
        params = {name: getattr(self, name) for name in self._engine_params()}
        return self._engine(horizon=horizon, **params)

    @staticmethod
    def _steps(fh, cutoff):
        """Relative steps (1-based, ints) of ``fh`` from ``cutoff``."""
        return np.asarray(fh.to_relative(cutoff).to_numpy(), dtype=np.int64)

    # ------------------------------------------------------------------ fit
    def _fit(self, y, X=None, fh=None):
        """Train the engine on ``y`` for ``horizon = max(fh)`` steps.

        Parameters
        ----------
        y : pd.DataFrame of shape (T, n_variables)
        X : ignored
        fh : ForecastingHorizon
            Out-of-sample steps; their maximum is the engine's horizon.

        Returns
        -------
        self
        """
        steps = self._steps(fh, self.cutoff)
        if steps.min() < 1:
            # sktime refuses in-sample fh before _fit (capability:insample is
            # False); this guards direct calls.
            raise NotImplementedError(
                f"{type(self).__name__} can not perform in-sample prediction: fh must only "
                f"hold steps after the cutoff; got relative steps {steps.tolist()}."
            )
        horizon = int(steps.max())
        engine = self._make_engine(horizon)
        history, horizon = engine._check_params()
        n_rows = len(y)
        if n_rows < history + horizon:
            raise ValueError(
                f"{type(self).__name__} needs at least history + horizon = {history + horizon} "
                f"rows of y for one training window (history={history}, horizon={horizon}, the "
                f"largest step of fh); got {n_rows}. Give a longer series, a shorter fh or a "
                "smaller history."
            )
        try:  # the engine's split rule, on the windows this series gives
            split_sizes(n_rows - history - horizon + 1, self.validation_fraction, history + horizon - 1)
        except ValueError:
            needed = rows_needed(history, horizon, self.validation_fraction)
            raise ValueError(
                f"{type(self).__name__} needs at least {needed} rows of y to hold out "
                f"validation_fraction={self.validation_fraction} of the windows (history="
                f"{history}, horizon={horizon}, and a gap of {history + horizon - 1} windows "
                f"between training and validation windows); got {n_rows}. Give a longer "
                "series, or set validation_fraction=0 to train on all windows."
            ) from None
        # The frame itself, so that a DatetimeIndex dates the windows (stvlm.as_windows).
        engine.fit(pd.DataFrame(y.to_numpy(dtype=np.float64, na_value=np.nan), index=y.index, columns=y.columns))
        self.forecaster_ = engine
        self.horizon_ = horizon
        # Rows seen so far, kept current by _update; predict reads its tail. (sktime's
        # own self._y is not used: it is not stored under remember_data=False.)
        self._cur_y = y
        return self

    # ------------------------------------------------------------------ predict
    def _predict(self, fh, X=None):
        """Forecast from the last ``history`` rows seen.

        Parameters
        ----------
        fh : ForecastingHorizon
            Out-of-sample steps, at most ``horizon_`` after the cutoff.
        X : ignored

        Returns
        -------
        y_pred : pd.DataFrame
            Index ``fh.to_absolute_index(cutoff)``, the columns of ``y``.
        """
        steps = self._steps(fh, self.cutoff)
        if steps.min() < 1 or steps.max() > self.horizon_:
            raise ValueError(
                f"{type(self).__name__} was fitted to forecast steps 1 to {self.horizon_} "
                f"after the cutoff; fh asks for relative steps {steps.tolist()}. Refit with "
                "the forecasting horizon you need."
            )
        y = self._cur_y
        tail = y.iloc[-self.history :]
        frame = pd.DataFrame(tail.to_numpy(dtype=np.float64, na_value=np.nan), index=tail.index)
        window = last_window(frame, self.history)  # dated by a DatetimeIndex, if y has one
        forecast = self.forecaster_.predict(window)[0]  # (horizon, n_variables)
        return pd.DataFrame(
            forecast[steps - 1],
            index=fh.to_absolute_index(self.cutoff),
            columns=y.columns,
        )

    # ------------------------------------------------------------------ update
    def _update(self, y, X=None, update_params=True):
        """Store the new rows; the network is not retrained.

        The cutoff is moved by sktime; the next ``predict`` forecasts from the new
        last ``history`` rows. ``update_params`` is accepted but does not retrain
        (see Notes of the public classes).

        Parameters
        ----------
        y : pd.DataFrame
            New rows (rows at an index seen before replace the old ones).
        X : ignored
        update_params : bool, default=True
            Ignored.

        Returns
        -------
        self
        """
        from sktime.datatypes import update_data

        self._cur_y = update_data(self._cur_y, y)
        return self
