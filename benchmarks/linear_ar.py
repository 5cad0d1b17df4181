"""The linear autoregression of ``output="ar"`` alone, on validation windows only.

For each part of the pems08-tail fit period (few-shot 5 / 10 / 20 %, full) it fits the
shared linear map (:func:`stvlm._autoregression.fit_ar`: least squares; and, for
comparison, least absolute deviations by iteratively reweighted least squares) on the
part's training windows, and prints its MAE and the last value's on the part's own
validation windows and on the full fit period's validation windows (docs/results.md,
"Session 21: a linear autoregression under the network"). No test window is read.

    python benchmarks/linear_ar.py
"""

from __future__ import annotations

import numpy as np

from stvlm._autoregression import fit_ar
from stvlm.benchmark import _fit_rows
from stvlm.data import as_windows, chronological_split
from stvlm.datasets import load_protocol
from stvlm.metrics import masked_mae, target_mask

SETTINGS = ("few-shot-0.05", "few-shot-0.1", "few-shot-0.2", "full")


def forecast(windows, coef):
    x = windows.filled()
    last = x[:, -1:, :]
    return last + np.einsum("bkn,kh->bhn", x[:, :-1, :] - last, coef)


def fit_lad(windows, iterations=30):
    """The same map fitted to the absolute error (IRLS from the least-squares start)."""
    x, y = windows.filled(), windows.y
    last = x[:, -1:, :]
    a = (x[:, :-1, :] - last).transpose(0, 2, 1).reshape(-1, x.shape[1] - 1)
    coef = fit_ar(windows)
    for h in range(y.shape[1]):
        b = (y[:, h, :] - last[:, 0, :]).reshape(-1)
        keep = target_mask(y[:, h, :].reshape(-1))
        ah, bh = a[keep], b[keep]
        w = coef[:, h]
        for _ in range(iterations):
            r = np.abs(bh - ah @ w)
            weight = 1.0 / np.maximum(r, 1e-3 * np.median(r) + 1e-9)
            aw = ah * weight[:, None]
            w = np.linalg.solve(ah.T @ aw + 1e-9 * np.eye(ah.shape[1]), aw.T @ bh)
        coef[:, h] = w
    return coef


def main():
    p = load_protocol("pems08-tail")
    _, later = chronological_split(as_windows(p.fit_series, history=p.history, horizon=p.horizon), 0.2)
    naive_later = masked_mae(later.y, np.repeat(later.filled()[:, -1:], p.horizon, axis=1))
    print(f"last value on the full period's validation windows: {naive_later:.2f}")
    print("| part | fit | own validation MAE (last value) | full period's validation MAE |")
    print("|---|---|---|---|")
    for setting in SETTINGS:
        train, val = chronological_split(as_windows(_fit_rows(p, setting), history=p.history, horizon=p.horizon), 0.2)
        naive = masked_mae(val.y, np.repeat(val.filled()[:, -1:], p.horizon, axis=1))
        for name, coef in (("least squares", fit_ar(train)), ("least absolute deviations", fit_lad(train))):
            own = masked_mae(val.y, forecast(val, coef))
            print(f"| {setting} | {name} | {own:.2f} ({naive:.2f}) | {masked_mae(later.y, forecast(later, coef)):.2f} |")


if __name__ == "__main__":
    main()
