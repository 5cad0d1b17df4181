"""Helpers shared by the plots: a lazy pyplot, index and tick checks."""

from __future__ import annotations

import math
import numbers

import numpy as np

#: Names of the three image channels, in their order in the image.
CHANNEL_NAMES = ("DTW similarity", "lagged cross-correlation", "spectral correlation")


def _pyplot():
    """Import matplotlib.pyplot, or fail with the command that installs it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is installed for the tests
        raise ImportError(
            "stvlm.plotting needs matplotlib, which is not installed. Install the optional "
            'extra with `pip install "stvlm[plot]"` (or `pip install matplotlib`).'
        ) from exc
    return plt


def _check_index(index, n, name, what):
    """An int in ``[-n, n)``, returned as a non-negative position; else ValueError."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {index!r}.")
    index = int(index)
    if not -n <= index < n:
        raise ValueError(f"{name}={index} is out of range: there {'is' if n == 1 else 'are'} {n} {what} (0 ... {n - 1}).")
    return index % n


def _tick_positions(n, max_ticks):
    """Evenly stepped tick positions ``0, s, 2s, ...`` with at most ``max_ticks`` of them."""
    step = max(1, math.ceil(n / max_ticks))
    return np.arange(0, n, step)


def _check_sensor_ids(sensor_ids, n, name="sensor_ids"):
    if sensor_ids is None:
        return [str(i) for i in range(n)]
    ids = [str(s) for s in sensor_ids]
    if len(ids) != n:
        raise ValueError(f"{name} has {len(ids)} entries, but there are {n} sensors.")
    return ids
