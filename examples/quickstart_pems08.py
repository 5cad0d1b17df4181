"""Quickstart: train ST-VLM on the pems08-tail protocol and compare with the references.

Fits on the protocol's fit period (rows [0, 3578) of the PEMS08 tail; its last 20 % of
windows validate), forecasts the 3,567 canonical test windows and prints MAE, RMSE and
MAPE (zeros masked) overall and at horizons 3, 6 and 12, beside the last-value and
historical-average forecasts.

    python examples/quickstart_pems08.py                  # the "cpu" preset, minutes on 2 cores
    python examples/quickstart_pems08.py --preset paper   # pretrained ViLT-B/32 (needs its weights)
    python examples/quickstart_pems08.py --fast           # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from stvlm import STVLMForecaster
from stvlm.baselines import HistoricalAverageForecaster, LastValueForecaster
from stvlm.datasets import load_protocol


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", help="STVLMForecaster preset (cpu or paper)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--fast", action="store_true", help="smoke run: 1 epoch on 300 windows, 200 test windows")
    parser.add_argument("--data-dir", default=None, help="folder with pems08/ (default: ../shared/data or STVLM_DATA_DIR)")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)

    p = load_protocol("pems08-tail", data_dir=args.data_dir)
    fit_series, test_X, test_y = p.fit_series, p.test_X, p.test_y
    overrides = dict(random_state=args.seed, verbose=args.verbose)
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    if args.fast:
        fit_series, test_X, test_y = fit_series[-400:], test_X[:200], test_y[:200]
        overrides.update(max_epochs=1)
    model = STVLMForecaster.from_preset(args.preset, **overrides)

    t0 = time.perf_counter()
    model.fit(fit_series)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    y_pred = model.predict(test_X)
    predict_s = time.perf_counter() - t0

    test_data = p.test_data()[: len(test_X)]  # the test windows with their time of day
    references = {
        "last value": LastValueForecaster(horizon=12).fit(p.fit_series).predict(test_X),
        "historical average": HistoricalAverageForecaster(288, p.first_time_index).fit(p.fit_series).predict(test_data),
    }
    rows = {f"ST-VLM ({args.preset})": y_pred, **references}
    results = {}
    for name, pred in rows.items():
        results[name] = p.evaluate(pred) if len(test_X) == len(p.test_X) else _evaluate(p, test_y, pred)

    print(f"pems08-tail: fit on {fit_series.shape[0]} steps x {fit_series.shape[1]} sensors, "
          f"{len(test_X)} test windows; fit {fit_s:.1f} s ({len(model.loss_history_)} epochs, best {model.best_epoch_}), "
          f"predict {predict_s:.1f} s")
    print(f"{'model':<22} {'MAE':>7} {'RMSE':>7} {'MAPE%':>7} | {'MAE@3':>6} {'MAE@6':>6} {'MAE@12':>6}")
    for name, r in results.items():
        h = r["horizons"]
        print(f"{name:<22} {r['MAE']:7.2f} {r['RMSE']:7.2f} {r['MAPE']:7.2f} | "
              f"{h[3]['MAE']:6.2f} {h[6]['MAE']:6.2f} {h[12]['MAE']:6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(results=results, fit_seconds=fit_s, predict_seconds=predict_s,
                           epochs=len(model.loss_history_), best_epoch=model.best_epoch_,
                           preset=args.preset, seed=args.seed, fast=args.fast), f, indent=2, default=str)
    return results


def _evaluate(p, y_true, y_pred):
    from stvlm.metrics import horizon_metrics

    return horizon_metrics(y_true, y_pred, **p.metric_kwargs)


if __name__ == "__main__":
    main()
