"""What the neural baselines add to :class:`stvlm._base.BaseWindowForecaster`: the
time of day as an input, and the deprecated ``time_of_day`` arguments of ``fit`` and
``predict``.

A subclass builds its ``torch.nn.Module`` in ``_build_module(n_sensors)``; the module
maps scaled windows ``(B, history, N)`` and the time-of-day slot of each window's last
history step ``(B,)`` (or ``None`` when the model does not use it) to scaled forecasts
``(B, horizon, N)``. Training, splitting and scaling are the shared ones, as for
:class:`~stvlm.STVLMForecaster`.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._base import BaseWindowForecaster
from .._validation import check_positive_int
from ..data import Windows, as_windows
from ..data._windows import _check_ints


class _NeuralWindowForecaster(BaseWindowForecaster):
    """Base of the torch baselines; not public."""

    _module_attr = "module_"

    @property
    def _uses_time_of_day(self):
        return False

    @property
    def _uses_day_of_week(self):
        return False

    def _check_model_params(self):
        if self._uses_time_of_day or self._uses_day_of_week:
            check_positive_int(self.steps_per_day, "steps_per_day")
            start = self.first_time_index
            if isinstance(start, (bool, np.bool_)) or not (
                isinstance(start, (int, np.integer, str, np.datetime64)) or hasattr(start, "isoformat")
            ):
                raise TypeError(f"first_time_index must be an int or a date and time; got {start!r}.")

    def _clock(self):
        if not (self._uses_time_of_day or self._uses_day_of_week):
            return {}
        start = self.first_time_index
        return dict(steps_per_day=self.steps_per_day, start=int(start) if isinstance(start, (int, np.integer)) else start)

    def _setup(self, train, device):
        _check_time(self, train)  # the validation windows come from the same data

    def _check_predict_data(self, windows):
        _check_time(self, windows)

    def _inputs(self, windows, idx, device):
        import torch

        (x,) = super()._inputs(windows, idx, device)
        tod = dow = None
        if self._uses_time_of_day:
            tod = torch.as_tensor(windows.time_of_day[idx], dtype=torch.long, device=device)
        if self._uses_day_of_week:
            dow = torch.as_tensor(windows.day_of_week[idx], dtype=torch.long, device=device)
        return x, tod, dow


def _check_time(model, windows):
    """Windows must carry the time of day (and weekday) a model reads, in its own slots."""
    if getattr(model, "_uses_day_of_week", False) and windows.day_of_week is None:
        raise ValueError(
            f"{type(model).__name__} reads the day of week of each window (dow_dim > 0), and these windows "
            "carry none: fit a DataFrame with a DatetimeIndex or give a date and time as first_time_index, "
            "and forecast stvlm.Windows(X, time_of_day=..., day_of_week=..., steps_per_day=...) or "
            "Protocol.test_data()."
        )
    if not model._uses_time_of_day:
        return
    if windows.time_of_day is None:
        raise ValueError(
            f"{type(model).__name__} reads the time of day of each window, and these windows carry none: "
            "pass stvlm.Windows(X, time_of_day=..., steps_per_day=...) (the slot of each window's last "
            "history step), a DataFrame series with a DatetimeIndex, or Protocol.test_data() of a "
            "benchmark protocol."
        )
    if windows.steps_per_day != model.steps_per_day:
        raise ValueError(
            f"the windows carry the time of day in {windows.steps_per_day} slots per day, but "
            f"{type(model).__name__} has steps_per_day={model.steps_per_day}."
        )


def _windows_with_time(model, X, y, time_of_day, method):
    """Windows dated by the deprecated ``time_of_day`` argument (first history step)."""
    warnings.warn(
        f"the time_of_day argument of {type(model).__name__}.{method} is deprecated and will be removed in "
        "stvlm 0.3: time reaches a model through the data. Pass stvlm.Windows(X, time_of_day=..., "
        "steps_per_day=...) with the slot of each window's *last* history step instead.",
        FutureWarning,
        stacklevel=3,
    )
    if np.ndim(X) == 2 and not hasattr(X, "n_windows"):
        raise ValueError("time_of_day is for windows; for a series the slots follow from first_time_index.")
    spd = check_positive_int(model.steps_per_day, "steps_per_day")
    w = as_windows(X, y, history=model.history, horizon=model.horizon, require_targets=method == "fit")
    tod = _check_ints(time_of_day, len(w), "time_of_day", spd)
    return Windows(w.X, w.y, time_of_day=(tod + model.history - 1) % spd, steps_per_day=spd)
