"""A diagnosis for a next step, not library code: the trained network's forecast plus one
weight times the linear autoregression's change from the last value,
``net + alpha * (ar - last)``, with ``alpha`` fitted on the fit's own validation windows
(least absolute deviations in one variable: a weighted median) and scored on the full fit
period's validation windows. No test window is read.

The network is fitted as the benchmark fits it, with ``output="change"``'s own use of the
autoregression turned off (so that ``net`` is the network). ``alpha = 0`` is the network,
``alpha = 1`` with an untrained network is session 23's fallback. Session 24 built this
into the library (``BaseWindowForecaster._ar_blend``) for trained networks.

    python benchmarks/ar_blend_check.py --model stvlm --settings few-shot-0.1 --seeds 0,1,2

Writes one JSON line per fit to ``--out`` (default ``benchmarks/results/ar-blend-check.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

import stvlm._base
from stvlm._autoregression import fit_ar
from stvlm._benchmark_models import _fit_kwargs, _fit_rows
from stvlm.benchmark import _make_model, _start
from stvlm.data import as_windows, chronological_split
from stvlm.datasets import load_protocol
from stvlm.metrics import target_mask


def weighted_median_alpha(residual, direction):
    """argmin over alpha of sum |residual - alpha * direction|."""
    ok = np.abs(direction) > 0
    ratio, weight = residual[ok] / direction[ok], np.abs(direction[ok])
    order = np.argsort(ratio)
    cum = np.cumsum(weight[order])
    return float(ratio[order][np.searchsorted(cum, cum[-1] / 2)])


def one(model, setting, seed, p):
    stvlm._base.fits_in_memory = lambda history, horizon: False  # the network itself
    rows = _fit_rows(p, setting)
    est = _make_model(model, "cpu", setting, seed, p, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(rows, **_fit_kwargs(model, p))

    def windows(series):
        w = as_windows(series, history=est.history, horizon=est.horizon, steps_per_day=p.steps_per_day, start=_start(p))
        return chronological_split(w, est.validation_fraction)

    train, own = windows(rows)
    _, later = windows(p.fit_series)
    coef = fit_ar(train, p.null_value, p.threshold)

    def pieces(val):
        net = est.predict(val)
        x = val.filled()
        last = x[:, -1:, :]
        change = np.einsum("bkn,kh->bhn", x[:, :-1, :] - last, coef)
        keep = target_mask(val.y, p.null_value, p.threshold)
        return net[keep], np.broadcast_to(change, net.shape)[keep], (last + change)[keep], val.y[keep]

    def mae(f, y):
        return float(np.abs(f - y).mean())

    net, change, ar, y = pieces(own)
    alpha = weighted_median_alpha(y - net, change)
    net2, change2, ar2, y2 = pieces(later)
    return dict(protocol=p.name, model=model, setting=setting, seed=seed, best_epoch=est.best_epoch_,
                alpha=round(alpha, 4),
                own=dict(net=mae(net, y), ar=mae(ar, y), blend=mae(net + alpha * change, y)),
                later=dict(net=mae(net2, y2), ar=mae(ar2, y2), blend=mae(net2 + alpha * change2, y2)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="stvlm")
    ap.add_argument("--settings", default="few-shot-0.1")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ar-blend-check.jsonl"))
    args = ap.parse_args(argv)
    p = load_protocol("pems08-tail")
    for setting in args.settings.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            row = one(args.model, setting, seed, p)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{setting} {args.model} seed {seed}: alpha {row['alpha']:.3f}; full period's validation: network "
                  f"{row['later']['net']:.3f}, autoregression {row['later']['ar']:.3f}, blend {row['later']['blend']:.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
