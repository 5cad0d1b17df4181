"""The linear autoregression that ``output="ar"`` adds under a network's forecast.

One set of coefficients, shared by every sensor: each horizon step's change from the
window's last value as a linear function of the window's other values, measured from that
last value. Fitted in closed form (least squares) on the training windows before the
network trains, so the untrained network (its output layer at zero) forecasts this linear
autoregression, and the network learns what it misses. With few windows the linear part is
what transfers to unseen days (docs/results.md, "Few-shot, session 21").
"""

from __future__ import annotations

import numpy as np

from .metrics import target_mask

__all__ = ["ar_forecast", "ar_weight", "fit_ar", "fits_in_memory"]

#: Windows per chunk of the normal equations: bounded temporaries on large data.
_CHUNK_VALUES = 1 << 22
#: Smallest relative drop of the validation loss for which output="change" adds the weighted
#: autoregression to its network: the weight is fitted on the windows it is scored on, so a
#: smaller gain is within what that choice buys by itself (docs/results.md, "Session 24").
MIN_GAIN = 0.01
#: Largest normal equations (horizon x (history - 1)^2 values) that output="change" fits for its
#: weighted autoregression on its own: 128 MB in float64 (history 512, horizon 720 would take 1.5 GB).
_FALLBACK_GRAM_VALUES = 1 << 24


def fit_ar(windows, null_value=0.0, threshold=None, ridge=1e-6):
    """Least-squares coefficients of the linear autoregression of ``output="ar"``.

    ``y[t + h] - x[-1] ~ sum_k coef[k, h] * (x[k] - x[-1])`` over every training window and
    sensor, one least-squares problem per horizon step; targets that the loss masks
    (:func:`stvlm.metrics.target_mask`) are left out, inputs are imputed as the networks
    see them. The differences make the fit free of the data's offset and scale, so the
    coefficients serve z-scored windows as they are.

    Parameters
    ----------
    windows : stvlm.Windows
        Training windows with targets.
    null_value, threshold : float or None
        The target mask of the loss.
    ridge : float, default=1e-6
        Tikhonov term, relative to the mean diagonal of each step's normal equations:
        keeps a constant or very short series solvable (coefficients near 0, the last value).

    Returns
    -------
    coef : ndarray of shape (history - 1, horizon), float64

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import as_windows
    >>> from stvlm._autoregression import fit_ar
    >>> series = np.cumsum(np.random.default_rng(0).normal(size=(300, 4)), axis=0) + 100
    >>> coef = fit_ar(as_windows(series, history=6, horizon=2))
    >>> coef.shape, bool(np.abs(coef).max() < 0.3)  # a random walk: the last value
    ((5, 2), True)
    """
    horizon = windows.horizon
    k = windows.history - 1
    gram = np.zeros((horizon, k, k))
    moment = np.zeros((k, horizon))
    for diff, last, y, keep in _chunks(windows, null_value, threshold):
        change = np.where(keep, y - last, 0.0)  # (n, horizon, N)
        moment += np.einsum("nks,nhs->kh", diff, change)
        for h in range(horizon):
            kept = diff * keep[:, h, None, :]
            gram[h] += np.tensordot(kept, diff, axes=([0, 2], [0, 2]))
    coef = np.zeros((k, horizon))
    for h in range(horizon):
        scale = np.trace(gram[h]) / k if k else 0.0
        if k == 0 or scale <= 0:
            continue  # nothing to regress on: the last value
        a = gram[h] + ridge * scale * np.eye(k)
        coef[:, h] = np.linalg.solve(a, moment[:, h])
    return coef


def _chunks(windows, null_value, threshold):
    """``(diff, last, y, keep)`` of the windows, a bounded chunk at a time, in float64:
    the inputs' differences to the last (imputed) input ``(n, history - 1, N)``, that last
    input ``(n, 1, N)``, the targets and the loss's mask of them."""
    step = max(1, _CHUNK_VALUES // max(1, (windows.history + windows.horizon) * windows.n_sensors))
    for start in range(0, len(windows), step):
        idx = np.arange(start, min(start + step, len(windows)))
        x = np.asarray(windows.filled_batch(idx), dtype=np.float64)
        y = np.asarray(windows.y[idx], dtype=np.float64)
        last = x[:, -1:, :]
        yield x[:, :-1, :] - last, last, y, target_mask(y, null_value, threshold)


def ar_forecast(x, coef):
    """The linear autoregression's forecast of windows ``x`` (torch, ``(B, history, N)``):
    ``(B, horizon, N)``, in the units of ``x``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from stvlm._autoregression import ar_forecast
    >>> x = torch.tensor([[[1.0], [3.0]]])  # one window, two steps, one sensor
    >>> ar_forecast(x, np.array([[0.5, -1.0]]))[0, :, 0]  # 3 + 0.5 * (1 - 3), 3 - 1 * (1 - 3)
    tensor([2., 5.])
    """
    import torch

    last = x[:, -1:, :]
    c = torch.as_tensor(coef, dtype=x.dtype, device=x.device)
    return last + torch.einsum("bkn,kh->bhn", x[:, :-1, :] - last, c)


def fits_in_memory(history, horizon):
    """Whether ``output="change"`` adds the weighted autoregression at this size
    (its normal equations hold ``horizon * (history - 1) ** 2`` values).

    Examples
    --------
    >>> from stvlm._autoregression import fits_in_memory
    >>> fits_in_memory(12, 12), fits_in_memory(512, 720)
    (True, False)
    """
    return history >= 2 and horizon * (history - 1) ** 2 <= _FALLBACK_GRAM_VALUES


def ar_weight(windows, coef, forecast=None, null_value=0.0, threshold=None, loss="mae", weight=None):
    """The weight ``w`` in [0, 1] of the autoregression's change from the last value that,
    added to a forecast, ``forecast + w * (ar - last)``, gives the lowest loss on ``windows``.

    The loss is the training loop's, in data units, over every kept target: with the masked
    MAE the weight is a weighted median (least absolute deviations in one variable), with
    the MSE a least-squares ratio; either is clipped to [0, 1] (exact for a convex loss).

    Parameters
    ----------
    windows : stvlm.Windows
        Windows with targets (their inputs imputed as the networks see them).
    coef : ndarray of shape (history - 1, horizon)
        From :func:`fit_ar`.
    forecast : ndarray of shape (n_windows, horizon, n_sensors) or None
        A forecast of ``windows`` in data units; None: each window's last value.
    null_value, threshold : float or None
        The target mask of the loss.
    loss : {"mae", "mse"}, default="mae"
    weight : float or None, default=None
        A weight to score instead of fitting one.

    Returns
    -------
    (weight, loss_with, loss_without) : tuple of float, or None if no target is kept

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import as_windows
    >>> from stvlm._autoregression import ar_weight
    >>> series = np.arange(40.0).reshape(20, 2) + 1  # each sensor rises by 2 a step
    >>> w = as_windows(series, history=3, horizon=2)
    >>> trend = np.array([[0.0, 0.0], [-1.0, -2.0]])  # the trend continued: exact
    >>> ar_weight(w, trend)  # on the last value: all of it
    (1.0, 0.0, 3.0)
    >>> ar_weight(w, trend, forecast=w.y)  # on an exact forecast: none of it
    (0.0, 0.0, 0.0)
    >>> ar_weight(w, trend, weight=0.5)  # half of it: 1 and 2 behind
    (0.5, 1.5, 3.0)
    """
    residual, direction, start = [], [], 0
    for diff, last, y, keep in _chunks(windows, null_value, threshold):
        base = last if forecast is None else np.asarray(forecast[start:start + len(y)], dtype=np.float64)
        start += len(y)
        change = np.broadcast_to(np.einsum("nks,kh->nhs", diff, coef), y.shape)
        residual.append((y - base)[keep])
        direction.append(change[keep])
    r, d = np.concatenate(residual), np.concatenate(direction)
    if not r.size:
        return None
    if weight is None and loss == "mse":
        dd = float(d @ d)
        weight = float(np.clip(float(r @ d) / dd if dd > 0 else 0.0, 0.0, 1.0))
    elif weight is None:
        weight = float(np.clip(_weighted_median(r, d), 0.0, 1.0))

    def score(error):
        return float(np.mean(error**2 if loss == "mse" else np.abs(error)))

    return weight, score(r - weight * d), score(r)


def _weighted_median(r, d):
    """argmin over w of sum |r - w * d| = sum |d| * |r / d - w|: the |d|-weighted median of r / d."""
    ok = d != 0
    if not ok.any():
        return 0.0
    ratio, weight = r[ok] / d[ok], np.abs(d[ok])
    order = np.argsort(ratio, kind="stable")
    cum = np.cumsum(weight[order])
    return float(ratio[order][np.searchsorted(cum, cum[-1] / 2)])
