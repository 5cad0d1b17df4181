"""Reference forecasts: seasonal naive, STID-like MLP, LSTM seq2seq (last value and
historical average are pinned by tests/test_datasets.py and tests/test_metrics.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from stvlm import Windows, make_windows
from stvlm.baselines import (
    HistoricalAverageForecaster,
    LastValueForecaster,
    LSTMForecaster,
    SeasonalNaiveForecaster,
    STIDForecaster,
)
from stvlm.datasets import load_protocol
from stvlm.metrics import masked_mae

SPD = 24  # slots per day of the synthetic series


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def daily_series(T=24 * 30, N=4, noise=0.5, seed=0):
    """A daily profile that differs by sensor and jumps at fixed hours, plus noise."""
    rng = np.random.default_rng(seed)
    slot = np.arange(T) % SPD
    base = np.where((slot >= 7) & (slot < 10), 60.0, np.where((slot >= 16) & (slot < 19), 50.0, 20.0))
    scale = np.linspace(1.0, 2.0, N)
    return base[:, None] * scale[None, :] + noise * rng.standard_normal((T, N))


# ---------------------------------------------------------------------- seasonal naive
def test_seasonal_naive_is_the_value_one_season_earlier():
    rng = np.random.default_rng(1)
    series = rng.normal(size=(80, 3))
    X, _ = make_windows(series, history=10, horizon=4)
    pred = SeasonalNaiveForecaster(season=7, horizon=4).fit(series).predict(X)
    for i in range(X.shape[0]):
        t = i + 9  # last history row of window i
        for h in range(1, 5):
            np.testing.assert_array_equal(pred[i, h - 1], series[t + h - 7])


def test_seasonal_naive_exact_on_periodic_series():
    series = daily_series(noise=0.0)
    X, y = make_windows(series, history=SPD, horizon=6)
    pred = SeasonalNaiveForecaster(season=SPD, horizon=6).fit(series).predict(X)
    np.testing.assert_array_equal(pred, y)


def test_seasonal_naive_on_pems08_matches_the_series():
    p = load_protocol("pems08-tail")
    pred = SeasonalNaiveForecaster(288, 12).fit(p.fit_series).predict(p.test_windows(288))
    full = p.series()
    rows = p.test_rows[:, None] + 12 + np.arange(12)[None, :] - 288  # target row - one day
    np.testing.assert_array_equal(pred, full[rows])
    assert p.evaluate(pred)["MAE"] > p.evaluate(np.repeat(p.test_X[:, -1:], 12, axis=1))["MAE"]


def test_seasonal_naive_repeats_the_last_season_beyond_one_season():
    X = np.arange(10.0)[None, :, None] * np.array([1.0, -1.0])  # one window, 2 sensors
    pred = SeasonalNaiveForecaster(season=4, horizon=9).fit(X).predict(X)
    # history steps 6, 7, 8, 9 are the last season: step h repeats step 6 + (h - 1) % 4
    np.testing.assert_array_equal(pred[0, :, 0], [6, 7, 8, 9, 6, 7, 8, 9, 6])
    np.testing.assert_array_equal(pred[0, :, 1], -pred[0, :, 0])


def test_seasonal_naive_nan_at_the_lag_is_filled_from_the_window():
    X = np.tile(np.arange(8.0)[None, :, None], (2, 1, 2))
    X[0, 4, 1] = np.nan  # the lagged value of step 1, sensor 1, window 0
    pred = SeasonalNaiveForecaster(season=4, horizon=2).fit(X).predict(X)
    assert np.isfinite(pred).all()
    assert pred[0, 0, 1] == 3.0  # forward-filled from the step before
    assert pred[0, 0, 0] == 4.0 and pred[1, 0, 1] == 4.0


@pytest.mark.parametrize(
    "params, X, match",
    [
        (dict(season=0), np.zeros((1, 8, 2)), "season must be >= 1"),
    ],
)
def test_seasonal_naive_bad_params(params, X, match):
    with pytest.raises(ValueError, match=match):
        SeasonalNaiveForecaster(**params).fit(X)


def test_seasonal_naive_bad_input():
    model = SeasonalNaiveForecaster(season=6, horizon=2).fit(np.zeros((1, 6, 3)))
    with pytest.raises(ValueError, match="history >= 6"):
        model.predict(np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match="2 sensors; fitted with 3"):
        model.predict(np.zeros((1, 6, 2)))
    with pytest.raises(ValueError, match="3-D windows"):
        model.predict(np.zeros((6, 3)))
    with pytest.raises(NotFittedError):
        SeasonalNaiveForecaster().predict(np.zeros((1, 288, 3)))


# ---------------------------------------------------------------------- STID
def stid(**kw):
    # The raw weights: 40 epochs of 14 steps are too few for the default moving average
    # (0.99 a step) to catch up with them (measured: MAE 0.63 against 0.58; 0.52 after 80
    # epochs), and these tests are about what the network can learn.
    params = dict(history=6, horizon=3, steps_per_day=SPD, max_epochs=40, patience=40, batch_size=32,
                  learning_rate=5e-3, embed_dim=16, node_dim=8, tod_dim=8, num_layers=2, dropout=0.0,
                  ema_decay=None, random_state=0)
    params.update(kw)
    return STIDForecaster(**params)


@pytest.fixture(scope="module")
def daily():
    series = daily_series()
    fit, test = series[: 24 * 24], series[24 * 24 :]
    X, y = make_windows(test, history=6, horizon=3)
    tod = (24 * 24 + np.arange(X.shape[0])) % SPD  # slot of each window's first step
    return fit, X, y, tod


def dated(X, tod_first):
    """Windows that carry their time: the slot of each window's last history step."""
    return Windows(X, time_of_day=(np.asarray(tod_first) + X.shape[1] - 1) % SPD, steps_per_day=SPD)


@pytest.fixture(scope="module")
def stid_fitted(daily):
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        return stid().fit(daily[0])


def test_stid_learns_the_daily_profile(daily, stid_fitted):
    fit, X, y, tod = daily
    pred = stid_fitted.predict(dated(X, tod))
    assert pred.shape == y.shape
    mae = masked_mae(y, pred)
    last = masked_mae(y, LastValueForecaster(horizon=3).fit(fit).predict(X))
    ha = masked_mae(y, HistoricalAverageForecaster(SPD, 0, 6, 3).fit(fit).predict(dated(X, tod)))
    # The profile jumps at fixed hours: knowing the clock beats repeating the last value,
    # and the window itself adds to the average profile.
    assert mae < 0.5 * last
    assert mae < 1.5 * ha
    assert stid_fitted.best_epoch_ >= 1 and len(stid_fitted.loss_history_) >= stid_fitted.best_epoch_


def test_stid_uses_the_time_of_day(daily, stid_fitted):
    _, X, y, tod = daily
    right = masked_mae(y, stid_fitted.predict(dated(X, tod)))
    wrong = masked_mae(y, stid_fitted.predict(dated(X, (tod + SPD // 2) % SPD)))
    assert wrong > 2 * right


def test_stid_without_time_of_day_is_worse(daily, stid_fitted):
    fit, X, y, tod = daily
    blind = stid(tod_dim=0).fit(fit)
    assert blind.module_.tod_emb is None
    assert masked_mae(y, blind.predict(X)) > 1.2 * masked_mae(y, stid_fitted.predict(dated(X, tod)))


def test_stid_windows_need_time_of_day(daily):
    fit, X, y, tod = daily
    Xf, yf = make_windows(fit, 6, 3)
    with pytest.raises(ValueError, match="reads the time of day of each window"):
        stid(max_epochs=1).fit(Xf, yf)
    model = stid(max_epochs=1).fit(dated(Xf, np.arange(len(Xf)) % SPD), yf)
    with pytest.raises(ValueError, match="reads the time of day of each window"):
        model.predict(X)
    with pytest.raises(ValueError, match="24 slots per day, but STIDForecaster has steps_per_day=48"):
        stid(max_epochs=1, steps_per_day=48).fit(dated(Xf, np.arange(len(Xf)) % SPD), yf)
    with pytest.raises(ValueError, match=r"\[0, 24\)"):
        Windows(X, time_of_day=tod + SPD, steps_per_day=SPD)


def test_stid_time_of_day_argument_is_deprecated_and_means_the_first_step(daily, stid_fitted):
    fit, X, y, tod = daily
    with pytest.warns(FutureWarning, match="time_of_day argument of STIDForecaster.predict is deprecated"):
        old = stid_fitted.predict(X, tod)
    np.testing.assert_array_equal(old, stid_fitted.predict(dated(X, tod)))
    Xf, yf = make_windows(fit, 6, 3)
    with pytest.warns(FutureWarning, match="fit is deprecated"):
        a = stid(max_epochs=1).fit(Xf, yf, time_of_day=np.arange(len(Xf)) % SPD)
    b = stid(max_epochs=1).fit(dated(Xf, np.arange(len(Xf)) % SPD), yf)
    np.testing.assert_array_equal(a.predict(dated(X, tod)), b.predict(dated(X, tod)))
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match=r"shape \(%d,\)" % len(X)):
        stid_fitted.predict(X, tod[:-1])
    with pytest.warns(FutureWarning), pytest.raises(TypeError, match="integers"):
        stid_fitted.predict(X, tod + 0.5)
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="for windows"):
        stid(max_epochs=1).fit(fit, time_of_day=np.zeros(10, dtype=int))


def test_stid_reads_the_clock_of_a_dataframe(daily):
    # A DataFrame with a DatetimeIndex dates the windows itself: the same model as a
    # bare array with first_time_index, whatever first_time_index says.
    import pandas as pd

    fit, X, _, tod = daily
    start = pd.Timestamp("2024-01-01 05:00")  # slot 5 of 24
    frame = pd.DataFrame(fit, index=pd.date_range(start, periods=len(fit), freq="h"))
    a = stid(max_epochs=2, first_time_index=5).fit(fit).predict(dated(X, tod))
    b = stid(max_epochs=2, first_time_index=17).fit(frame).predict(dated(X, tod))
    np.testing.assert_array_equal(a, b)


def test_stid_same_seed_same_forecast(daily):
    fit, X, _, tod = daily
    a = stid(max_epochs=2).fit(fit).predict(dated(X, tod))
    b = stid(max_epochs=2).fit(fit).predict(dated(X, tod))
    c = stid(max_epochs=2, random_state=1).fit(fit).predict(dated(X, tod))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_stid_pickles_and_clones(daily, stid_fitted):
    _, X, _, tod = daily
    again = pickle.loads(pickle.dumps(stid_fitted))
    np.testing.assert_array_equal(again.predict(dated(X, tod)), stid_fitted.predict(dated(X, tod)))
    assert clone(stid_fitted).get_params() == stid_fitted.get_params()


@pytest.mark.parametrize(
    "params, err, match",
    [
        (dict(embed_dim=0), ValueError, "embed_dim must be >= 1"),
        (dict(node_dim=-1), ValueError, "node_dim must be >= 0"),
        (dict(dropout=1.0), ValueError, "dropout must be <"),
        (dict(learning_rate=0.0), ValueError, "learning_rate must be >"),
        (dict(steps_per_day=0), ValueError, "steps_per_day must be >= 1"),
        (dict(first_time_index=1.5), TypeError, "first_time_index"),
        (dict(validation_fraction=1.0), ValueError, "validation_fraction"),
    ],
)
def test_stid_bad_params(params, err, match):
    with pytest.raises(err, match=match):
        stid(**params).fit(daily_series(T=200))


def test_stid_bad_input():
    series = daily_series(T=200)
    with pytest.raises(ValueError, match="y is required"):
        stid().fit(make_windows(series, 6, 3)[0])
    with pytest.raises(ValueError, match="need at least one|too few|steps"):
        stid().fit(series[:5])
    dead = series.copy()
    dead[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"sensors \[1\]"):
        stid().fit(dead)
    model = stid(max_epochs=1).fit(series)
    with pytest.raises(ValueError, match="fitted with 4 sensors"):
        model.predict(dated(np.zeros((2, 6, 3)), [0, 1]))
    with pytest.raises(ValueError, match="history=6"):
        model.predict(dated(np.zeros((2, 5, 4)), [0, 1]))
    with pytest.raises(NotFittedError):
        stid().predict(dated(np.zeros((2, 6, 4)), [0, 1]))


def test_missing_targets_are_left_out_of_the_loss():
    # Zeros are missing readings (null_value=0): a model trained with them masked
    # forecasts the level of the real readings, one trained on them does not.
    rng = np.random.default_rng(0)
    series = 100 + rng.normal(0, 1, (400, 3))
    series[rng.random(series.shape) < 0.6] = 0.0  # MAE fits a median: unmasked, it is 0
    X = np.full((5, 6, 3), 100.0)
    tod = np.zeros(5, dtype=int)
    masked = stid(max_epochs=20, validation_fraction=0).fit(series).predict(dated(X, tod))
    plain = stid(max_epochs=20, validation_fraction=0, null_value=None).fit(series).predict(dated(X, tod))
    assert abs(masked.mean() - 100) < 5
    assert plain.mean() < 60


def test_nan_inputs_are_imputed_and_nan_targets_masked(daily):
    fit, X, _, tod = daily
    fit = fit.copy()
    fit[10:20, 2] = np.nan
    model = stid(max_epochs=2).fit(fit)
    assert all(np.isfinite(h["train_loss"]) for h in model.loss_history_)
    Xn = X.copy()
    Xn[:, 2:4, 0] = np.nan
    assert np.isfinite(model.predict(dated(Xn, tod))).all()


# ---------------------------------------------------------------------- LSTM
@pytest.fixture(scope="module")
def waves():
    rng = np.random.default_rng(0)
    t = np.arange(700)[:, None]
    series = 50 + 20 * np.sin(2 * np.pi * t / 20 + rng.uniform(0, 6, 3)) + rng.normal(0, 0.5, (700, 3))
    X, y = make_windows(series[500:], history=10, horizon=5)
    return series[:500], X, y


def lstm(**kw):
    params = dict(history=10, horizon=5, hidden_size=16, max_epochs=30, patience=30, learning_rate=1e-2,
                  batch_size=16, random_state=0)
    params.update(kw)
    return LSTMForecaster(**params)


def test_lstm_learns_a_sine(waves):
    fit, X, y = waves
    model = lstm().fit(fit)
    pred = model.predict(X)
    assert pred.shape == y.shape
    # Repeating the last value of a sine is far off over 5 steps; the LSTM follows the wave.
    assert masked_mae(y, pred) < 0.5 * masked_mae(y, LastValueForecaster(horizon=5).fit(fit).predict(X))


def test_lstm_windows_and_targets(waves):
    fit, X, y = waves
    Xf, yf = make_windows(fit, 10, 5)
    model = lstm(max_epochs=2).fit(Xf, yf)
    assert model.predict(X).shape == y.shape
    a = lstm(max_epochs=2).fit(Xf, yf).predict(X)
    np.testing.assert_array_equal(model.predict(X), a)
    with pytest.raises(ValueError, match="history=10"):
        lstm().fit(Xf[:, :8], yf)
    with pytest.raises(ValueError, match="horizon=5"):
        lstm().fit(Xf, yf[:, :4])


@pytest.mark.parametrize(
    "params, err, match",
    [
        (dict(hidden_size=0), ValueError, "hidden_size must be >= 1"),
        (dict(num_layers=1.5), TypeError, "num_layers"),
        (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
        (dict(weight_decay=-1.0), ValueError, "weight_decay must be >="),
    ],
)
def test_lstm_bad_params(params, err, match, waves):
    with pytest.raises(err, match=match):
        lstm(**params).fit(waves[0])


def test_batch_size_larger_than_data_is_clipped_with_a_warning(waves):
    with pytest.warns(UserWarning, match="using batches of"):
        lstm(batch_size=10_000, max_epochs=1).fit(waves[0][:100])


def test_historical_average_reads_time_from_the_data():
    series = np.tile(np.arange(4.0), 3)[:, None]  # a day of 4 steps, 3 days: value = slot
    ha = HistoricalAverageForecaster(steps_per_day=4, history=2, horizon=2).fit(series)
    X = np.stack([series[:2], series[1:3]])  # end at slots 1 and 2
    np.testing.assert_array_equal(ha.predict(Windows(X, time_of_day=[1, 2], steps_per_day=4))[:, :, 0],
                                  [[2.0, 3.0], [3.0, 0.0]])
    with pytest.warns(FutureWarning, match="deprecated"):
        old = ha.predict(X, time_of_day=[0, 1])  # the old argument: the first step's slot
    np.testing.assert_array_equal(old[:, :, 0], [[2.0, 3.0], [3.0, 0.0]])
    with pytest.raises(ValueError, match="reads the time of day"):
        ha.predict(X)
    # A DataFrame dates its own rows: starting at slot 2 shifts the profile.
    import pandas as pd

    frame = pd.DataFrame(series, index=pd.date_range("2024-01-01 12:00", periods=12, freq="6h"))
    np.testing.assert_array_equal(
        HistoricalAverageForecaster(steps_per_day=4, history=2, horizon=2).fit(frame).profile_[:, 0],
        [2.0, 3.0, 0.0, 1.0],
    )
