"""Time-VLM on ETTh1: fit on the training months, validate on Informer's validation
months, forecast the test windows and compare with DLinear and the seasonal repeat.

The long-term protocol (docs/datasets.md): ETTh1 z-scored per variable with its training
statistics; the model reads 512 hours and forecasts the next 96; MSE and MAE on z-scored
values over every test window, variable and step.

    python examples/timevlm_etth1.py            # "cpu" preset, horizon 96: ~6 min on 2 cores
    python examples/timevlm_etth1.py --fast     # smoke run: 1 epoch, a slice of the data (seconds)
    python examples/timevlm_etth1.py --save DIR # also save the fitted model (TimeVLMForecaster.load)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from stvlm import TimeVLMForecaster
from stvlm.baselines import DLinearForecaster, SeasonalNaiveForecaster
from stvlm.datasets import load_protocol
from stvlm.datasets._ett import describe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="smoke run: 1 epoch on a slice of the data")
    parser.add_argument("--horizon", type=int, default=96, choices=(96, 192, 336, 720))
    parser.add_argument("--save", default=None, help="folder to save the fitted Time-VLM model in")
    args = parser.parse_args(argv)

    history = 96 if args.fast else 512
    p = load_protocol("etth1", history=history, horizon=args.horizon)
    train = p.fit_series[: p.n_train_rows]  # the 12 training months
    val = p.val_series  # Informer's 4 validation months (with the history before them)
    test_X, test_y = p.test_X, p.test_y
    if args.fast:
        train, val, test_X, test_y = train[-1500:], val[:600], test_X[:64], test_y[:64]
    epochs = dict(max_epochs=1) if args.fast else {}

    models = {
        "Time-VLM (cpu preset)": TimeVLMForecaster.from_preset(
            "cpu", history=history, horizon=args.horizon, description=describe("etth1"), random_state=0,
            verbose=0, **epochs),
        "DLinear": DLinearForecaster(history=history, horizon=args.horizon, random_state=0, **epochs),
    }
    print(f"ETTh1, {history} hours in, {args.horizon} out: {len(train)} training rows, "
          f"{len(test_X)} test windows")
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(train, validation_data=val)
        fit_s = time.perf_counter() - t0
        pred = model.predict(test_X)
        print(f"{name:<24} MSE {np.mean((pred - test_y) ** 2):.3f}  MAE {np.mean(np.abs(pred - test_y)):.3f}  "
              f"fit {fit_s:.0f} s, best epoch {model.best_epoch_}")
    seasonal = SeasonalNaiveForecaster(season=24, horizon=args.horizon).fit(train)
    long_windows = p.test_windows(24)[: len(test_X)]  # a day more of history, for the repeat
    pred = seasonal.predict(long_windows)
    print(f"{'Seasonal repeat (1 day)':<24} MSE {np.mean((pred - test_y) ** 2):.3f}  "
          f"MAE {np.mean(np.abs(pred - test_y)):.3f}")
    if args.save:
        models["Time-VLM (cpu preset)"].save(args.save)
        again = TimeVLMForecaster.load(args.save)
        assert np.array_equal(again.predict(test_X[:4]), models["Time-VLM (cpu preset)"].predict(test_X[:4]))
        print(f"saved to {args.save} and loaded back: the same forecasts")


if __name__ == "__main__":
    main()
