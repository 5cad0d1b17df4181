"""stvlm: ST-VLM spatial-temporal forecasting for scikit-learn and sktime users.

The data path reads in one direction: a series is cut into windows with their
timestamps (:func:`as_windows`, the front door; :func:`make_windows` for bare arrays),
each window becomes a three-channel correlation image
(:class:`SpatialToImageTransformer`), and the forecaster turns windows and images into
tokens for a vision-language backbone (:class:`STVLMForecaster`). Its sibling
:class:`TimeVLMForecaster` forecasts ordinary multivariate series with Time-VLM.
"""

from .data import Windows, as_windows
from .forecaster import STVLMForecaster
from .images import CorrelationImages, SpatialToImageTransformer
from .timevlm import TimeVLMForecaster
from .kernels import dtw_matrix, lagged_xcorr_matrix, spectral_corr_matrix
from .windows import make_windows

__version__ = "0.1.0.dev0"

__all__ = [
    "CorrelationImages",
    "Windows",
    "as_windows",
    "STVLMForecaster",
    "SpatialToImageTransformer",
    "TimeVLMForecaster",
    "dtw_matrix",
    "lagged_xcorr_matrix",
    "make_windows",
    "spectral_corr_matrix",
]
