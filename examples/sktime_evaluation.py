"""Evaluate ST-VLM with sktime: rolling-origin evaluation and a benchmark against naive.

Takes the pems08-tail fit period (rows [0, 3578): 2016-08-07 03:40 to 2016-08-19 13:45,
so no test target of the protocol is touched) as a ``pd.DataFrame`` with one column per
sensor and a 5-minute ``DatetimeIndex``, keeps its last days and a few sensors, then

1. ``sktime.forecasting.model_evaluation.evaluate`` of ``STVLMSktimeForecaster``
   (the ``"cpu"`` preset) with an ``ExpandingWindowSplitter`` and a
   ``SlidingWindowSplitter`` (the next 12 steps from each cutoff, refitted per fold);
2. a ``ForecastingBenchmark`` of ``STVLMSktimeForecaster`` against sktime's
   ``NaiveForecaster(strategy="last")`` on the same folds,

and prints the per-fold scores and the benchmark table (MAE and RMSE over all sensors
and the 12 steps; sktime's metrics do not mask the rare zero readings).

    python examples/sktime_evaluation.py             # 8 sensors, 3 days, "cpu" preset: ~5 min on 2 cores
    python examples/sktime_evaluation.py --threads 1 # the same, on a machine shared with other jobs
    python examples/sktime_evaluation.py --fast      # smoke run: tiny backbone, 1 epoch (seconds)
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings

import numpy as np
import pandas as pd
from sktime.benchmarking.forecasting import ForecastingBenchmark
from sktime.forecasting.model_evaluation import evaluate
from sktime.forecasting.naive import NaiveForecaster
from sktime.performance_metrics.forecasting import MeanAbsoluteError, MeanSquaredError
from sktime.split import ExpandingWindowSplitter, SlidingWindowSplitter

from stvlm.datasets import load_protocol
from stvlm.sktime import STVLMSktimeForecaster

# A ViLT small enough to train in a fraction of a second (random weights, no download).
TINY_BACKBONE = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=16,
    patch_size=8,
    vocab_size=500,
)
STEPS_PER_HOUR = 12  # 5-minute data


@contextlib.contextmanager
def no_remember_data_notice():
    """Hide sktime 1.2's FutureWarning about ``remember_data``, raised for every forecaster
    it constructs (here: each clone of ``NaiveForecaster``). A warnings filter does not hold:
    sktime's own helpers re-enable FutureWarnings, so this filters at display time."""
    show = warnings.showwarning

    def showwarning(message, category, *args, **kwargs):
        if not (issubclass(category, FutureWarning) and "remember_data" in str(message)):
            show(message, category, *args, **kwargs)

    warnings.showwarning = showwarning
    try:
        yield
    finally:
        warnings.showwarning = show


def load_frame(n_sensors, n_rows, data_dir=None):
    """The last ``n_rows`` of the pems08-tail fit period, ``n_sensors`` spread over the network."""
    p = load_protocol("pems08-tail", data_dir=data_dir)
    series = p.fit_series  # (3578, 170): rows [0, 3578) of the PEMS08 tail, flow
    index = pd.date_range(p.start_time, periods=series.shape[0], freq="5min")
    sensors = np.linspace(0, series.shape[1] - 1, n_sensors).round().astype(int)
    y = pd.DataFrame(series[:, sensors], index=index, columns=[f"sensor_{s}" for s in sensors])
    return y.iloc[-n_rows:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="smoke run: tiny backbone, 4 sensors, 1 epoch")
    parser.add_argument("--sensors", type=int, default=None, help="number of sensors (default 8; 4 with --fast)")
    parser.add_argument("--days", type=float, default=None, help="days of data (default 3; 1 with --fast)")
    parser.add_argument("--max-epochs", type=int, default=None, help="override the preset's max_epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's own; 1 with --fast, where ops are too small to split)",
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder with pems08/ (default: STVLM_DATA_DIR or ../shared/data)"
    )
    args = parser.parse_args(argv)

    import torch

    threads = args.threads if args.threads is not None else (1 if args.fast else None)
    if threads is not None:
        torch.set_num_threads(threads)

    horizon = 12
    fh = list(range(1, horizon + 1))
    day = 24 * STEPS_PER_HOUR
    if args.fast:
        n_sensors, days = args.sensors or 4, args.days or 1
        forecaster = STVLMSktimeForecaster(
            history=12,
            backbone=TINY_BACKBONE,
            max_epochs=args.max_epochs or 1,
            batch_size=32,
            encoder_hidden=8,
            decoder_hidden=8,
            validation_fraction=0,
            device="cpu",
            random_state=args.seed,
            verbose=0,
        )
        step = 2 * STEPS_PER_HOUR  # folds 2 hours apart
    else:
        n_sensors, days = args.sensors or 8, args.days or 3
        overrides = dict(random_state=args.seed, verbose=0)
        if args.max_epochs is not None:
            overrides["max_epochs"] = args.max_epochs
        forecaster = STVLMSktimeForecaster.from_preset("cpu", **overrides)
        step = 12 * STEPS_PER_HOUR  # folds 12 hours apart
    y = load_frame(n_sensors, int(round(days * day)), data_dir=args.data_dir)

    # Two folds: the first training window ends 12 steps + one fold step before the end.
    window = len(y) - horizon - step
    expanding = ExpandingWindowSplitter(fh=fh, initial_window=window, step_length=step)
    sliding = SlidingWindowSplitter(fh=fh, window_length=window, step_length=step)
    scoring = [MeanAbsoluteError(), MeanSquaredError(square_root=True)]

    print(
        f"pems08-tail fit period: {y.shape[1]} sensors x {len(y)} steps "
        f"({y.index[0]} to {y.index[-1]}, 5-minute steps); forecasting the next {horizon} steps"
    )
    print(f"forecaster: {forecaster!r}")
    t_start = time.perf_counter()
    with no_remember_data_notice():
        for name, cv in [("ExpandingWindowSplitter", expanding), ("SlidingWindowSplitter", sliding)]:
            t0 = time.perf_counter()
            scores = evaluate(forecaster, cv=cv, y=y, scoring=scoring, strategy="refit")
            print(f"\nevaluate, {name} ({cv.get_n_splits(y)} folds, {time.perf_counter() - t0:.1f} s):")
            table = pd.DataFrame(
                {
                    "cutoff": scores["cutoff"].astype(str),
                    "train rows": scores["len_train_window"],
                    "MAE": scores["test_MeanAbsoluteError"],
                    "RMSE": scores["test_MeanSquaredError"],
                    "fit s": scores["fit_time"],
                }
            )
            print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))

        benchmark = ForecastingBenchmark()
        benchmark.add_estimator(forecaster, estimator_id="STVLMSktimeForecaster")
        benchmark.add_estimator(NaiveForecaster(strategy="last"), estimator_id="NaiveForecaster(last)")
        benchmark.add_task((y,), sliding, scoring, task_id="pems08-tail/sliding")
        t0 = time.perf_counter()
        results = benchmark.run()

    print(f"\nForecastingBenchmark ({time.perf_counter() - t0:.1f} s), mean over {sliding.get_n_splits(y)} folds:")
    columns = {
        "model_id": "model",
        "MeanAbsoluteError_mean": "MAE",
        "MeanSquaredError_mean": "RMSE",
        "fit_time_mean": "fit s",
        "pred_time_mean": "predict s",
    }
    table = results[list(columns)].rename(columns=columns)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\ndone in {time.perf_counter() - t_start:.1f} s")
    return results


if __name__ == "__main__":
    main()
