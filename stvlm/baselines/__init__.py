"""Reference forecasts that every reported figure is compared with.

All follow the estimator interface of :class:`~stvlm.STVLMForecaster`: ``fit`` on a
series (or windows with targets), ``predict`` windows ``(n, history, N) -> (n, horizon, N)``.
The models that read the clock (:class:`HistoricalAverageForecaster`,
:class:`STIDForecaster`) get it through the data, as every model does: a DataFrame
series with a DatetimeIndex, a bare series with ``first_time_index``, or
:class:`stvlm.Windows` that carry each window's time of day; ``predict(X)`` takes
nothing else. :class:`SeasonalNaiveForecaster` needs windows at least a season long.

The trained ones share :mod:`stvlm.training`'s loop and :mod:`stvlm.data`'s split with
:class:`~stvlm.STVLMForecaster` through :class:`stvlm._base.BaseWindowForecaster`;
nothing here depends on the ST-VLM model itself.
"""

from ._dlinear import DLinearForecaster
from ._lstm import LSTMForecaster
from ._patchtst import PatchTSTForecaster
from ._simple import HistoricalAverageForecaster, LastValueForecaster, SeasonalNaiveForecaster
from ._stid import STIDForecaster

__all__ = [
    "DLinearForecaster",
    "HistoricalAverageForecaster",
    "LSTMForecaster",
    "LastValueForecaster",
    "PatchTSTForecaster",
    "STIDForecaster",
    "SeasonalNaiveForecaster",
]
