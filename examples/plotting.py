"""Plots: ST-VLM's correlation images of a PEMS08 window, a forecast and training curves.

Fits a SpatialToImageTransformer on the pems08-tail fit period, draws the three channels
of one test window's correlation image (the paper's Figure 4) for the first 30 sensors
and for all 170, trains a small forecaster briefly, and draws one sensor's forecast
against the truth and the training curves. The figures are written as PNG files.

    python examples/plotting.py                 # the "cpu" preset, 3 epochs on 1,500 rows (minutes on 2 cores)
    python examples/plotting.py --rows 0 --max-epochs 12   # the whole fit period, as the quickstart
    python examples/plotting.py --out figs --window 100 --sensor 42
    python examples/plotting.py --fast          # a smoke run: tiny model, 1 epoch, 300 rows

Needs matplotlib: pip install "stvlm[plot]".
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stvlm import STVLMForecaster, SpatialToImageTransformer, make_windows  # noqa: E402
from stvlm.baselines import LastValueForecaster  # noqa: E402
from stvlm.datasets import load_protocol  # noqa: E402
from stvlm.plotting import plot_correlation_image, plot_forecast, plot_training_history  # noqa: E402

# A tiny random ViLT for --fast: 36 image patches (192 / 32) hold all 170 sensors.
FAST_BACKBONE = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=4,
    intermediate_size=64,
    patch_size=32,
    image_size=192,
    vocab_size=1000,
)


def clock(slot, minutes_per_step=5):
    minutes = int(slot) * minutes_per_step
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def save(fig, path):
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"saved {path}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="plots", help="folder for the PNG files (default: ./plots)")
    parser.add_argument("--window", type=int, default=None,
                        help="test window to draw (default: the first whose history starts at 08:00)")
    parser.add_argument("--sensor", type=int, default=None,
                        help="sensor of the forecast plot (default: the busiest one)")
    parser.add_argument("--subset", type=int, default=30, help="sensors in the zoomed image (default: 30)")
    parser.add_argument("--preset", default="cpu", help="STVLMForecaster preset (cpu or paper)")
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1500,
                        help="train on the last ROWS rows of the fit period (0: all 3,578; default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="smoke run: tiny model, 1 epoch on the last 300 rows")
    parser.add_argument("--data-dir", default=None, help="folder with pems08/ (default: ../shared/data or STVLM_DATA_DIR)")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    p = load_protocol("pems08-tail", data_dir=args.data_dir)
    rows = 300 if args.fast else args.rows
    if rows < 0:
        parser.error("--rows must be >= 0")
    fit_series = p.fit_series[-rows:] if rows > 0 else p.fit_series
    n_sensors = fit_series.shape[1]
    ids = list(range(n_sensors))  # PEMS08's sensors are numbered 0 ... 169 in its road graph

    # The window: by default the morning rush hour, when the sensors' series differ most.
    tod = p.time_of_day(p.test_rows)
    w = args.window if args.window is not None else int(np.flatnonzero(tod == 96)[0])
    if not 0 <= w < len(p.test_X):
        parser.error(f"--window must be in 0 ... {len(p.test_X) - 1}")
    span = f"{clock(tod[w])}-{clock(tod[w] + p.history - 1)}"

    # 1. Correlation images: the DTW scale is learned on the fit period's windows.
    X_fit, _ = make_windows(fit_series, p.history, p.horizon)
    s2i = SpatialToImageTransformer(verbose=args.verbose).fit(X_fit)
    images = s2i.transform(p.test_X[w : w + 1])
    k = min(args.subset, n_sensors)
    # Pixel (i, j) depends only on sensors i and j (and the shared scale), so the zoom is
    # the top-left corner of the full image.
    save(plot_correlation_image(images.channels[0, :, :k, :k], sensor_ids=ids[:k],
                                title=f"PEMS08 test window {w} ({span}), sensors 0-{k - 1}"),
         out / f"correlation_window{w}_{k}_sensors.png")
    save(plot_correlation_image(images, sensor_ids=ids,
                                title=f"PEMS08 test window {w} ({span}), all {n_sensors} sensors"),
         out / f"correlation_window{w}_all_sensors.png")

    # 2. A forecaster, trained briefly.
    if args.fast:
        model = STVLMForecaster(backbone=FAST_BACKBONE, max_epochs=1, encoder_hidden=16, decoder_hidden=16,
                                random_state=args.seed, verbose=args.verbose)
    else:
        model = STVLMForecaster.from_preset(args.preset, max_epochs=args.max_epochs, random_state=args.seed,
                                            verbose=args.verbose)
    t0 = time.perf_counter()
    model.fit(fit_series)
    print(f"trained on {fit_series.shape[0]} steps x {n_sensors} sensors: {len(model.loss_history_)} epochs "
          f"in {time.perf_counter() - t0:.1f} s, best epoch {model.best_epoch_}")

    # 3. One sensor's forecast of the window, beside the last-value reference.
    sensor = args.sensor if args.sensor is not None else int(np.argmax(p.fit_series.mean(axis=0)))
    if not 0 <= sensor < n_sensors:
        parser.error(f"--sensor must be in 0 ... {n_sensors - 1}")
    X, y = p.test_X[w : w + 1], p.test_y[w : w + 1]
    forecasts = {
        f"ST-VLM ({'fast' if args.fast else args.preset})": model.predict(X),
        "last value": LastValueForecaster(horizon=p.horizon).fit(X).predict(X),
    }
    for name, pred in forecasts.items():
        print(f"{name}: MAE of window {w}, sensor {sensor}: {np.abs(pred[0, :, sensor] - y[0, :, sensor]).mean():.2f}")
    ax = plot_forecast(y, forecasts, sensor=sensor, history=X, sensor_ids=ids, ylabel="flow (vehicles / 5 min)",
                       title=f"PEMS08 sensor {sensor}, test window {w} (history {span})")
    save(ax.figure, out / f"forecast_window{w}_sensor{sensor}.png")

    # 4. Training curves.
    ax = plot_training_history(model)
    ax.set_title("training history")
    save(ax.figure, out / "training_history.png")
    print(f"4 figures in {out.resolve()}")


if __name__ == "__main__":
    main()
