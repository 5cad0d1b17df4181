"""Reference forecasts that every reported figure is compared with.

All follow the estimator interface of :class:`~stvlm.STVLMForecaster`: ``fit`` on a
series (or windows with targets), ``predict`` windows ``(n, history, N) -> (n, horizon, N)``.
The models that read the clock (:class:`HistoricalAverageForecaster`,
:class:`STIDForecaster`) also take each window's time-of-day slot in ``predict``;
:class:`SeasonalNaiveForecaster` needs windows at least a season long.
"""

from ._lstm import LSTMForecaster
from ._simple import HistoricalAverageForecaster, LastValueForecaster, SeasonalNaiveForecaster
from ._stid import STIDForecaster

__all__ = [
    "HistoricalAverageForecaster",
    "LSTMForecaster",
    "LastValueForecaster",
    "STIDForecaster",
    "SeasonalNaiveForecaster",
]
