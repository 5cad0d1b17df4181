"""Plots of correlation images, forecasts and training curves (matplotlib).

Three functions, each drawing one kind of figure:

- :func:`plot_correlation_image`: the three channels of one window's correlation
  image side by side, with a shared colour bar and sensor ids on the axes (the
  paper's Figure 4);
- :func:`plot_forecast`: one sensor's history, its true future and one or more
  forecasts over the horizon;
- :func:`plot_training_history`: training and validation loss per epoch, the
  learning rate on a log-scaled twin axis, and the restored best epoch.

matplotlib is an optional dependency (``pip install "stvlm[plot]"``); it is imported
only when a function is called, so ``import stvlm.plotting`` always works.
"""

from ._common import CHANNEL_NAMES
from ._forecast import plot_forecast
from ._history import plot_training_history
from ._image import plot_correlation_image

__all__ = ["CHANNEL_NAMES", "plot_correlation_image", "plot_forecast", "plot_training_history"]
