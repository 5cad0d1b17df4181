"""Which benchmark fits output="change"'s fallback changes, read from their own curves.

Since session 23 a trained model with ``output="change"`` keeps the linear
autoregression (:func:`stvlm._autoregression.fit_ar`) when it scores better on the fit's
validation windows than the last value and every trained epoch. For each protocol and
setting this script fits that autoregression on the setting's training windows, scores
it and the last value on its validation windows (the split every model uses), and
compares them with the best validation loss in each stored learning curve
(``benchmarks/results/<protocol>-curves/``). A row whose curve beats the autoregression
is the fit the fallback leaves alone; the others must be rerun. No test window is read.

    python benchmarks/ar_fallback_check.py [--protocols pems08-tail,sz-taxi]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


from stvlm._autoregression import ar_weight, fit_ar
from stvlm._benchmark_models import _fit_rows
from stvlm.data import as_windows, chronological_split
from stvlm.datasets import load_protocol

RESULTS = Path(__file__).parent / "results"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocols", default="pems08-tail,sz-taxi")
    args = ap.parse_args(argv)
    print("| protocol | setting | model, seed | best trained epoch's validation MAE | last value | "
          "autoregression | kept |")
    print("|---|---|---|---|---|---|---|")
    for name in args.protocols.split(","):
        p = load_protocol(name)
        curves = sorted((RESULTS / f"{name}-curves").glob("*_cpu_*_seed*.json"))
        settings = sorted({c.stem.split("_cpu_")[1].rsplit("_seed", 1)[0] for c in curves})
        for setting in settings:
            rows = _fit_rows(p, setting)  # an ablation's name: the full fit period
            windows = as_windows(rows, history=p.history, horizon=p.horizon)
            train, val = chronological_split(windows, 0.2)
            coef = fit_ar(train, p.null_value, p.threshold)
            _, ar, naive = ar_weight(val, coef, None, p.null_value, p.threshold, weight=1.0)  # all of it, none
            for c in curves:
                model, rest = c.stem.split("_cpu_")
                if rest.rsplit("_seed", 1)[0] != setting:
                    continue
                best = min(r["val_loss"] for r in json.loads(c.read_text()))
                kept = "autoregression" if ar < min(best, naive) else ("network" if best < naive else "last value")
                print(f"| {name} | {setting} | {model}, {rest.rsplit('_seed', 1)[1]} | {best:.3f} | {naive:.3f} | "
                      f"{ar:.3f} | {kept} |", flush=True)


if __name__ == "__main__":
    main()
