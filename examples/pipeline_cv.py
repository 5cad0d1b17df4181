"""A scikit-learn pipeline, cross-validation and a small grid search on pems08-tail.

``make_pipeline(SpatialToImageTransformer(), STVLMForecaster())`` is fitted on the
protocol's fit period (rows [0, 3578) of the PEMS08 tail, 170 sensors), a *series*:
the transformer cuts each training fold into windows of 12 steps and their 12-step
targets, computes the correlation images, and the forecaster trains on both.

1. ``cross_validate`` with ``TimeSeriesSplit`` on the series, scored with stvlm's
   masked MAE and RMSE scorers. The samples are time steps and windows are cut inside
   each fold, so ``gap=0`` does not leak: no test window shares a step with a training
   window (on windows from ``make_windows`` the gap would be history + horizon - 1).
2. ``GridSearchCV`` over a forecaster parameter (the LoRA rank) and a transformer
   parameter (the images' dtype), with no ``scoring`` argument: the pipeline's
   ``score`` is the negative masked MAE.

    python examples/pipeline_cv.py          # the "cpu" preset, 2 epochs per fit: about 6 minutes on 2 cores
    python examples/pipeline_cv.py --fast   # a smoke run: 240 steps of 40 sensors, 1 epoch, tiny backbone
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_validate
from sklearn.pipeline import make_pipeline

from stvlm import SpatialToImageTransformer, STVLMForecaster
from stvlm.datasets import load_protocol
from stvlm.metrics import get_scorer

HISTORY, HORIZON = 12, 12

# A ViLT small enough for a smoke run: one layer of width 32 on 64-pixel images with
# 32-pixel patches (an image must hold every sensor: --fast uses 40 of them).
TINY_BACKBONE = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=4,
    intermediate_size=64,
    patch_size=32,
    image_size=64,
    max_position_embeddings=40,
    vocab_size=1000,
)


def make_model(args, **overrides):
    """The pipeline: the image step, then the forecaster (same history and horizon)."""
    params = dict(history=HISTORY, horizon=HORIZON, random_state=args.seed, verbose=0)
    if args.fast:
        params.update(
            backbone=TINY_BACKBONE,
            encoder_hidden=16,
            decoder_hidden=16,
            max_epochs=1,
            batch_size=16,
            learning_rate=5e-3,
        )
        forecaster = STVLMForecaster(**params, **overrides)
    else:
        params.update(max_epochs=args.max_epochs)
        forecaster = STVLMForecaster.from_preset("cpu", **params, **overrides)
    return make_pipeline(SpatialToImageTransformer(history=HISTORY, horizon=HORIZON, n_jobs=-1), forecaster)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--fast", action="store_true", help="smoke run: 240 rows, 40 sensors, 1 epoch, tiny backbone, 2 splits"
    )
    parser.add_argument("--rows", type=int, default=None, help="use the last ROWS rows of the fit period")
    parser.add_argument("--sensors", type=int, default=None, help="use the first SENSORS sensors (default all)")
    parser.add_argument("--splits", type=int, default=None, help="TimeSeriesSplit folds (default 3, --fast 2)")
    parser.add_argument("--max-epochs", type=int, default=2, help="epochs per fit without --fast (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="folder with pems08/ (default: ../shared/data or STVLM_DATA_DIR)")
    args = parser.parse_args(argv)

    p = load_protocol("pems08-tail", data_dir=args.data_dir)
    rows = args.rows or (240 if args.fast else len(p.fit_series))
    sensors = args.sensors or (40 if args.fast else p.fit_series.shape[1])
    splits = args.splits or (2 if args.fast else 3)
    series = p.fit_series[-rows:, :sensors]
    print(f"pems08-tail fit period: {series.shape[0]} steps x {series.shape[1]} sensors "
          f"(history {HISTORY}, horizon {HORIZON}), TimeSeriesSplit({splits}) on the series, gap 0")

    # 1. Cross-validation of the pipeline on the series, with stvlm's scorers.
    cv = TimeSeriesSplit(n_splits=splits)
    t0 = time.perf_counter()
    res = cross_validate(
        make_model(args),
        series,
        cv=cv,
        scoring={"MAE": get_scorer("neg_masked_mae"), "RMSE": get_scorer("neg_masked_rmse")},
    )
    print(f"cross-validation ({time.perf_counter() - t0:.1f} s):")
    for k, (train, test) in enumerate(cv.split(series)):
        print(f"  fold {k}: train rows {train[0]}-{train[-1]}, test rows {test[0]}-{test[-1]} "
              f"({len(test) - HISTORY - HORIZON + 1} windows): "
              f"MAE {-res['test_MAE'][k]:.2f}, RMSE {-res['test_RMSE'][k]:.2f}")
    print(f"  mean: MAE {-np.mean(res['test_MAE']):.2f}, RMSE {-np.mean(res['test_RMSE']):.2f}")

    # 2. A small grid over a forecaster and a transformer parameter; no scoring argument.
    grid = {
        "stvlmforecaster__lora_r": [2, 4] if args.fast else [4, 8],
        "spatialtoimagetransformer__dtype": ["float32", "float16"],
    }
    grid_rows = series if args.fast else series[-min(rows, 1200):]
    t0 = time.perf_counter()
    search = GridSearchCV(make_model(args), grid, cv=TimeSeriesSplit(n_splits=2)).fit(grid_rows)
    print(f"grid search on the last {len(grid_rows)} steps ({time.perf_counter() - t0:.1f} s), "
          "score = negative masked MAE:")
    for params, mean, folds in zip(
        search.cv_results_["params"],
        search.cv_results_["mean_test_score"],
        zip(*(search.cv_results_[f"split{k}_test_score"] for k in range(2))),
    ):
        shown = ", ".join(f"{k.split('__')[1]}={v}" for k, v in params.items())
        print(f"  {shown}: fold scores {', '.join(f'{s:.2f}' for s in folds)}; mean {mean:.2f}")
    print(f"best: {search.best_params_}")
    if args.fast:
        print("(--fast is a smoke run: one epoch of a tiny backbone, so the scores say nothing about the method)")
    return res, search


if __name__ == "__main__":
    main()
