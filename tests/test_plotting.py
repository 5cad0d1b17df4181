"""stvlm.plotting: every plot renders to a real PNG, shows what it should, rejects bad input.

Rendering uses the Agg backend; each figure is written to ``tmp_path`` and read back.
"""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from stvlm import STVLMForecaster, SpatialToImageTransformer, make_windows  # noqa: E402
from stvlm.baselines import LastValueForecaster  # noqa: E402
from stvlm.plotting import (  # noqa: E402
    CHANNEL_NAMES,
    plot_correlation_image,
    plot_forecast,
    plot_training_history,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 50


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def save_png(fig, path):
    """Write ``fig`` as a PNG and check that it is a real, non-blank image of the figure's size."""
    fig.savefig(path, dpi=DPI)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 2_000  # more than an empty canvas
    pixels = mpimg.imread(path)
    w_in, h_in = fig.get_size_inches()
    assert pixels.shape[:2] == (round(h_in * DPI), round(w_in * DPI))
    assert pixels.shape[2] in (3, 4)
    assert pixels[..., :3].std() > 0.05  # something is drawn
    return pixels


@pytest.fixture(scope="module")
def windows():
    rng = np.random.default_rng(0)
    t = np.arange(120)[:, None]
    series = 100 + 40 * np.sin(2 * np.pi * t / 30 + rng.uniform(0, 6, 6)) + rng.normal(0, 4, (120, 6))
    X, y = make_windows(series, history=12, horizon=4)
    return X, y


@pytest.fixture(scope="module")
def images(windows):
    X, _ = windows
    s2i = SpatialToImageTransformer(image_size=8).fit(X)
    return s2i, s2i.transform(X[:5])


# --------------------------------------------------------------------- correlation image
def test_correlation_image_png_and_layout(images, tmp_path):
    _, out = images
    ids = ["S11", "S12", "S13", "S14", "S15", "S16"]
    fig = plot_correlation_image(out, index=3, sensor_ids=ids, title="window 3")
    pixels = save_png(fig, tmp_path / "corr.png")
    assert pixels.shape[1] > pixels.shape[0]  # three panels side by side
    panels, rest = fig.axes[:3], fig.axes[3:]
    assert len(rest) == 1  # the colour bar
    for c, ax in enumerate(panels):
        assert len(ax.images) == 1
        im = ax.images[0]
        # the compact N x N image (no padding) of window 3, channel c
        np.testing.assert_allclose(im.get_array(), out.channels[3, c])
        assert im.get_clim() == (0.0, 1.0)
        assert ax.get_title() == CHANNEL_NAMES[c]
        assert [t.get_text() for t in ax.get_xticklabels()] == ids
        assert [t.get_text() for t in ax.get_yticklabels()] == ids
        assert list(ax.get_xticks()) == list(range(6))
    colorbar = panels[-1].images[0].colorbar  # one colour bar, valid for all (same limits)
    assert colorbar is not None and colorbar.ax is rest[0]
    assert colorbar.ax.get_ylim() == (0.0, 1.0)
    assert fig.get_suptitle() == "window 3"


def test_correlation_image_inputs_agree(images, windows):
    s2i, out = images
    X, _ = windows
    expected = out.channels[2]
    variants = [
        plot_correlation_image(out, index=2),
        plot_correlation_image(out.channels, index=2),
        plot_correlation_image(out.channels[2]),  # one (3, N, N) image
        plot_correlation_image(X[:5], index=2, transformer=s2i),
        plot_correlation_image(X[2], transformer=s2i),  # one (history, N) window
        plot_correlation_image(out, index=-3),
    ]
    for fig in variants:
        for c in range(3):
            np.testing.assert_allclose(fig.axes[c].images[0].get_array(), expected[c], rtol=1e-6)


def test_correlation_image_default_ids_and_tick_thinning():
    rng = np.random.default_rng(1)
    img = rng.uniform(size=(3, 45, 45))
    fig = plot_correlation_image(img, max_ticks=10)  # every 5th sensor
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == [str(i) for i in range(0, 45, 5)]
    fig = plot_correlation_image(img)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == [str(i) for i in range(0, 45, 3)]


def test_correlation_image_into_given_axes():
    fig, axes = plt.subplots(2, 3)
    out = plot_correlation_image(np.full((3, 4, 4), 0.5), axes=axes[1], channel_names=["a", "b", "c"], cmap="gray")
    assert out is fig
    assert [ax.get_title() for ax in axes[1]] == ["a", "b", "c"]
    assert all(len(ax.images) == 0 for ax in axes[0])
    assert axes[1][0].images[0].get_cmap().name == "gray"


def test_correlation_image_real_pems08_window(tmp_path):
    from stvlm.datasets import load_protocol

    p = load_protocol("pems08-tail")
    X, _ = make_windows(p.fit_series[:600, :20], history=12, horizon=12)
    s2i = SpatialToImageTransformer().fit(X)
    ids = [f"{400 + i}" for i in range(20)]
    fig = plot_correlation_image(X, index=300, transformer=s2i, sensor_ids=ids)
    save_png(fig, tmp_path / "pems08_20.png")
    dtw = fig.axes[0].images[0].get_array()
    assert dtw.shape == (20, 20)
    np.testing.assert_allclose(np.diag(dtw), 1.0)  # DTW distance of a series to itself is 0
    for ax in fig.axes[:3]:
        assert [t.get_text() for t in ax.get_xticklabels()] == ids


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, 4, 4)), "shape"),  # two channels
        (np.zeros((3, 4, 5)), "shape"),  # not square
        (np.zeros((1, 2, 3, 4, 4)), "shape"),  # 5-D
        (np.zeros((4,)), "shape"),
        (np.zeros((5, 12, 4)), "transformer"),  # windows without a transformer
    ],
)
def test_correlation_image_bad_shapes(bad, match):
    with pytest.raises(ValueError, match=match):
        plot_correlation_image(bad)


def test_correlation_image_bad_arguments(images, windows):
    s2i, out = images
    X, _ = windows
    with pytest.raises(ValueError, match=r"index=5 is out of range.*5 images"):
        plot_correlation_image(out, index=5)
    with pytest.raises(ValueError, match="out of range"):
        plot_correlation_image(out.channels, index=-6)
    with pytest.raises(ValueError, match="out of range"):
        plot_correlation_image(X[:3], index=3, transformer=s2i)
    with pytest.raises(ValueError, match="integer"):
        plot_correlation_image(out, index=1.0)
    with pytest.raises(ValueError, match="sensor_ids has 5 entries"):
        plot_correlation_image(out, sensor_ids=range(5))
    with pytest.raises(ValueError, match="channel_names"):
        plot_correlation_image(out, channel_names=("a", "b"))
    with pytest.raises(ValueError, match="max_ticks"):
        plot_correlation_image(out, max_ticks=0)
    with pytest.raises(ValueError, match="3 matplotlib Axes"):
        plot_correlation_image(out, axes=plt.subplots(1, 2)[1])
    with pytest.raises(ValueError, match="windows"):
        plot_correlation_image(np.zeros((2, 3, 12, 6)), transformer=s2i)


# --------------------------------------------------------------------- forecast
def test_forecast_png_lines_and_labels(windows, tmp_path):
    X, y = windows
    pred = y + 3.0
    ax = plot_forecast(y, pred, sensor=4, history=X, window=7, ylabel="flow")
    save_png(ax.figure, tmp_path / "forecast.png")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["history", "truth", "forecast"]
    np.testing.assert_array_equal(lines[0].get_xdata(), np.arange(-11, 1))
    np.testing.assert_allclose(lines[0].get_ydata(), X[7, :, 4])
    np.testing.assert_array_equal(lines[1].get_xdata(), np.arange(1, 5))
    np.testing.assert_allclose(lines[1].get_ydata(), y[7, :, 4])
    np.testing.assert_allclose(lines[2].get_ydata(), y[7, :, 4] + 3.0)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["history", "truth", "forecast"]
    assert ax.get_xlabel() and ax.get_ylabel() == "flow"
    assert ax.get_title() == "sensor 4, window 7"


def test_forecast_several_models_without_history(windows):
    X, y = windows
    last = LastValueForecaster(horizon=4).fit(X).predict(X)
    ax = plot_forecast(y, {"ST-VLM": y * 0.9, "last value": last}, sensor=-1, window=-1, sensor_ids=list("abcdef"))
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["truth", "ST-VLM", "last value"]
    np.testing.assert_allclose(lines[2].get_ydata(), np.full(4, X[-1, -1, 5]))
    assert ax.get_title() == f"sensor f, window {len(y) - 1}"
    # a single window (horizon, N) works too
    ax = plot_forecast(y[0], y[0] + 1, history=X[0], sensor=1)
    assert len(ax.get_lines()) == 3


def test_forecast_missing_truth_is_a_gap():
    y = np.arange(1.0, 7.0).reshape(1, 6, 1)
    y[0, 2, 0] = 0.0
    y[0, 4, 0] = np.nan
    truth = plot_forecast(y, np.ones_like(y)).get_lines()[0]
    assert np.isnan(truth.get_ydata()).tolist() == [False, False, True, False, True, False]
    truth = plot_forecast(y, np.ones_like(y), null_value=None).get_lines()[0]
    assert truth.get_ydata()[2] == 0.0


def test_forecast_bad_input(windows):
    X, y = windows
    with pytest.raises(ValueError, match="shape"):
        plot_forecast(y, y[:, :3])
    with pytest.raises(ValueError, match="'b'.*shape"):
        plot_forecast(y, {"a": y, "b": y[:-1]})
    with pytest.raises(ValueError, match="empty"):
        plot_forecast(y, {})
    with pytest.raises(ValueError, match="history has shape"):
        plot_forecast(y, y, history=X[:, :, :3])
    with pytest.raises(ValueError, match="history has shape"):
        plot_forecast(y, y, history=X[:-1])
    with pytest.raises(ValueError, match=r"sensor=6 is out of range"):
        plot_forecast(y, y, sensor=6)
    with pytest.raises(ValueError, match=r"window=-\d+ is out of range"):
        plot_forecast(y, y, window=-len(y) - 1)
    with pytest.raises(ValueError, match="y_true must have shape"):
        plot_forecast(y[0, :, 0], y[0, :, 0])
    with pytest.raises(ValueError, match="sensor_ids"):
        plot_forecast(y, y, sensor_ids=["a"])


# --------------------------------------------------------------------- training history
HISTORY = [
    dict(epoch=e, train_loss=40.0 / e, val_loss=35.0 / e + 0.5 * e, lr=1e-3 * 0.5 ** (e // 4), seconds=1.0)
    for e in range(1, 10)
]


def test_history_png_lines_and_lr_axis(tmp_path):
    ax = plot_training_history(HISTORY, best_epoch=4)
    save_png(ax.figure, tmp_path / "history.png")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["train loss", "validation loss", "best epoch (4)"]
    np.testing.assert_allclose(lines[0].get_ydata(), [r["train_loss"] for r in HISTORY])
    np.testing.assert_allclose(lines[1].get_ydata(), [r["val_loss"] for r in HISTORY])
    assert list(lines[2].get_xdata()) == [4, 4]  # a vertical marker
    lr_ax = ax.figure.axes[-1]
    assert lr_ax is not ax and lr_ax.get_yscale() == "log"
    assert lr_ax.get_lines()[0].get_label() == "learning rate"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "train loss",
        "validation loss",
        "best epoch (4)",
        "learning rate",
    ]
    assert ax.get_xlabel() == "epoch" and "loss" in ax.get_ylabel()


def test_history_variants():
    import pandas as pd

    no_val = [dict(r, val_loss=float("nan")) for r in HISTORY]
    ax = plot_training_history(no_val, lr=False, log_loss=True)
    assert [line.get_label() for line in ax.get_lines()] == ["train loss"]
    assert len(ax.figure.axes) == 1 and ax.get_yscale() == "log"
    ax = plot_training_history(pd.DataFrame(HISTORY))
    assert len(ax.get_lines()) == 2
    ax = plot_training_history([{"train_loss": 3.0}, {"train_loss": 2.0}])  # epochs default to 1, 2
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2]
    _, given = plt.subplots()
    assert plot_training_history(HISTORY, ax=given) is given


@pytest.fixture
def one_torch_thread():
    """A tiny network trains fastest on one thread (and far faster on a busy machine)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_history_of_a_fitted_model_marks_best_epoch(tmp_path, one_torch_thread):
    t = np.arange(120)[:, None]
    series = 100 + 30 * np.sin(2 * np.pi * t / 24 + np.arange(3)) + np.random.default_rng(0).normal(0, 3, (120, 3))
    tiny = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                image_size=8, patch_size=8, vocab_size=200)
    model = STVLMForecaster(horizon=3, backbone=tiny, max_epochs=3, encoder_hidden=8, decoder_hidden=8,
                            random_state=0, verbose=0).fit(series)
    ax = plot_training_history(model)
    save_png(ax.figure, tmp_path / "fitted.png")
    marker = ax.get_lines()[-1]
    assert marker.get_label() == f"best epoch ({model.best_epoch_})"
    assert list(marker.get_xdata()) == [model.best_epoch_] * 2
    assert len(ax.get_lines()[0].get_xdata()) == len(model.loss_history_)


def test_history_bad_input():
    with pytest.raises(NotFittedError, match="fit"):
        plot_training_history(STVLMForecaster())
    with pytest.raises(ValueError, match="empty"):
        plot_training_history([])
    with pytest.raises(ValueError, match="train_loss"):
        plot_training_history([{"epoch": 1, "val_loss": 2.0}])
    with pytest.raises(ValueError, match="expected a fitted STVLMForecaster"):
        plot_training_history(3.0)


# --------------------------------------------------------------------- optional dependency
def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install \"stvlm\[plot\]\""):
        plot_correlation_image(np.zeros((3, 2, 2)))
    with pytest.raises(ImportError, match=r"stvlm\[plot\]"):
        plot_training_history(HISTORY)


def test_import_does_not_load_matplotlib():
    code = "import sys, stvlm, stvlm.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
