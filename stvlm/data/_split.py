"""The one chronological split rule of training and validation windows."""

from __future__ import annotations

import math

__all__ = ["chronological_split", "rows_needed", "split_sizes"]


def split_sizes(n, validation_fraction, gap):
    """Training and validation window counts of a chronological split with a gap.

    The last ``floor(n * validation_fraction)`` windows validate; the ``gap`` windows
    before them are dropped (when any validate), the rest train.

    Parameters
    ----------
    n : int
        Windows.
    validation_fraction : float
        Share held out, in ``[0, 1)``.
    gap : int
        Windows dropped between the parts.

    Returns
    -------
    n_train, n_val : int

    Raises
    ------
    ValueError
        If no training window is left.

    Examples
    --------
    >>> from stvlm.data import split_sizes
    >>> split_sizes(100, 0.2, gap=23)
    (57, 20)
    """
    n_val = int(math.floor(n * validation_fraction))
    n_train = n - n_val - (gap if n_val else 0)
    if n_val and n_train < 1:
        raise ValueError(
            f"only {n} windows: too few to hold out validation_fraction="
            f"{validation_fraction} (plus a gap of {gap} windows between the parts). "
            "Give a longer series or set validation_fraction=0."
        )
    return n_train, n_val


def chronological_split(windows, validation_fraction):
    """Split :class:`Windows` into training and validation parts, in time order.

    Consecutive windows of one series (``windows.consecutive``) leave a gap of
    ``history + horizon - 1`` windows between the parts, so no validation window
    shares a step with a training window. Windows given as they are split without a
    gap: whether they are consecutive is unknown.

    Parameters
    ----------
    windows : Windows
    validation_fraction : float
        Share of the windows held out (the last ones); ``0`` holds out none.

    Returns
    -------
    train : Windows
    val : Windows or None

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.data import as_windows, chronological_split
    >>> w = as_windows(np.zeros((124, 2)), history=12, horizon=12)
    >>> train, val = chronological_split(w, 0.2)
    >>> len(w), len(train), len(val)
    (101, 58, 20)
    """
    gap = windows.history + windows.y.shape[1] - 1 if windows.consecutive else 0
    n = len(windows)
    n_train, n_val = split_sizes(n, validation_fraction, gap)
    return windows[:n_train], (windows[n - n_val :] if n_val else None)


def rows_needed(history, horizon, validation_fraction):
    """Fewest rows of a series from which on :func:`chronological_split` succeeds.

    Parameters
    ----------
    history, horizon : int
    validation_fraction : float

    Returns
    -------
    int

    Examples
    --------
    >>> from stvlm.data import rows_needed
    >>> rows_needed(12, 12, 0.0), rows_needed(12, 12, 0.2)
    (24, 52)
    """
    gap = history + horizon - 1
    n = 1
    if validation_fraction > 0:
        # Smallest n with one held-out window and one training window after the gap;
        # from there on n - floor(n * f) only grows.
        n = max(n, int(math.ceil(1 / validation_fraction)))
        while n - int(math.floor(n * validation_fraction)) - gap < 1:
            n += 1
    return n + history + horizon - 1
