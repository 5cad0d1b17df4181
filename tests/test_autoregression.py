"""``output="ar"``: a linear autoregression, fitted by least squares on the training
windows, under the network's forecast (ST-VLM, STID-like, LSTM)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stvlm import STVLMForecaster, Windows, as_windows, make_windows
from stvlm import _autoregression
from stvlm._autoregression import ar_forecast, fit_ar
from stvlm.baselines import DLinearForecaster, LSTMForecaster, STIDForecaster
from stvlm.data import chronological_split

# These tests are about the autoregression, output="change"'s weighted use of it included
# (tests/conftest.py turns that off elsewhere).
pytestmark = pytest.mark.usefixtures("ar_weighted")

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
            image_size=16, patch_size=8, vocab_size=500)
SPD = 48


def series(T=480, N=4, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    return 100 + 50 * np.sin(2 * np.pi * t / SPD + rng.uniform(0, 1, N)) + rng.normal(0, 3, (T, N))


def momentum_series(T=3000, N=3, phi=0.5, seed=0):
    """Each sensor's steps follow an AR(1): ``x[t] - x[t-1] = phi (x[t-1] - x[t-2]) + noise``,
    so the next change from the last value is ``-phi (x[t-1] - x[t])``."""
    rng = np.random.default_rng(seed)
    steps = np.zeros((T, N))
    noise = rng.normal(size=(T, N))
    for t in range(1, T):
        steps[t] = phi * steps[t - 1] + noise[t]
    return 100 + np.cumsum(steps, axis=0)


def oracle(windows, null_value=0.0):
    """Per horizon step, ``np.linalg.lstsq`` on the explicit design matrix of the kept targets."""
    x, y = windows.filled(), windows.y
    last = x[:, -1:, :]
    design = (x[:, :-1, :] - last).transpose(0, 2, 1).reshape(-1, x.shape[1] - 1)
    coef = []
    for h in range(y.shape[1]):
        target = (y[:, h, :] - last[:, 0, :]).reshape(-1)
        keep = np.isfinite(y[:, h, :]).reshape(-1) & (y[:, h, :].reshape(-1) != null_value)
        coef.append(np.linalg.lstsq(design[keep], target[keep], rcond=None)[0])
    return np.stack(coef, axis=1)


# ---------------------------------------------------------------------- the fit
def test_fit_ar_is_the_least_squares_fit_of_the_kept_targets():
    w = as_windows(series(), history=8, horizon=3)
    y = w.y.copy()
    y[::7, 1, 2] = 0.0  # missing readings (null_value) in the truth are left out
    y[::11, 0, 0] = np.nan
    w = Windows(w.X, y)
    np.testing.assert_allclose(fit_ar(w, ridge=0.0), oracle(w), rtol=1e-7, atol=1e-9)
    # the readings left out matter: zeros kept as targets (no null value) give other coefficients
    assert not np.allclose(fit_ar(w, null_value=None, ridge=0.0), oracle(w), atol=1e-4)


def test_fit_ar_in_chunks_equals_at_once(monkeypatch):
    w = as_windows(series(), history=8, horizon=3)
    whole = fit_ar(w)
    monkeypatch.setattr(_autoregression, "_CHUNK_VALUES", 100)  # one window a chunk
    np.testing.assert_allclose(fit_ar(w), whole, rtol=1e-10)


def test_fit_ar_recovers_a_known_rule():
    coef = fit_ar(as_windows(momentum_series(), history=6, horizon=2))
    assert coef.shape == (5, 2)
    assert coef[-1, 0] == pytest.approx(-0.5, abs=0.05)  # -phi on x[t-1] - x[t]
    assert np.abs(coef[:-1, 0]).max() < 0.05
    assert coef[-1, 1] == pytest.approx(-0.75, abs=0.08)  # two steps: -(phi + phi^2)


def test_fit_ar_degenerate_windows_give_the_last_value():
    const = as_windows(np.full((100, 2), 7.0), history=5, horizon=2)
    np.testing.assert_array_equal(fit_ar(const), np.zeros((4, 2)))
    one = as_windows(series(), history=1, horizon=3)
    coef = fit_ar(one)
    assert coef.shape == (0, 3)
    x = torch.tensor(one.X[:4])
    np.testing.assert_array_equal(ar_forecast(x, coef).numpy(), np.repeat(one.X[:4], 3, axis=1))


# ---------------------------------------------------------------------- the models
@pytest.mark.parametrize("make", [
    lambda **kw: STVLMForecaster(history=12, horizon=6, backbone=TINY, max_epochs=1, batch_size=32, random_state=0,
                                 verbose=0, calendar=None, **kw),
    lambda **kw: STIDForecaster(history=12, horizon=6, steps_per_day=SPD, max_epochs=1, random_state=0, **kw),
    lambda **kw: LSTMForecaster(history=12, horizon=6, hidden_size=8, max_epochs=1, random_state=0, **kw),
], ids=["stvlm", "stid", "lstm"])
def test_untrained_ar_model_forecasts_the_autoregression(make):
    """Before training moves the weights, output="ar" forecasts the linear autoregression of
    the training windows (the zeroed output layer), in data units."""
    s = series()
    X, _ = make_windows(s[300:], 12, 6)
    X = Windows(X, time_of_day=(300 + np.arange(len(X)) + 11) % SPD, steps_per_day=SPD)
    with pytest.warns(UserWarning, match="forecast the linear autoregression"):
        frozen = make(output="ar", learning_rate=1e-12).fit(s[:300])
    train, _ = chronological_split(as_windows(s[:300], history=12, horizon=6), frozen.validation_fraction)
    np.testing.assert_allclose(frozen.ar_coef_, fit_ar(train))
    x = X.X
    expected = x[:, -1:, :] + np.einsum("bkn,kh->bhn", x[:, :-1, :] - x[:, -1:, :], frozen.ar_coef_)
    np.testing.assert_allclose(frozen.predict(X), expected, rtol=1e-4, atol=1e-3)
    assert np.abs(expected - x[:, -1:, :]).mean() > 0.5  # not the last value
    # output="change" untrained repeats the last value, which the autoregression beats on the
    # validation windows here: it adds the same autoregression, weighted
    with pytest.warns(UserWarning, match="linear autoregression .* lowered the validation loss"):
        change = make(output="change", learning_rate=1e-12).fit(s[:300])
    np.testing.assert_allclose(change.ar_coef_, frozen.ar_coef_)
    assert 0.5 < change.ar_weight_ <= 1 and frozen.ar_weight_ == 1.0
    last = x[:, -1:, :]
    np.testing.assert_allclose(change.predict(X), last + change.ar_weight_ * (expected - last), rtol=1e-4, atol=1e-3)


def test_ar_output_trains_below_the_autoregression():
    s = momentum_series(T=1400, N=3) + 20 * np.sin(2 * np.pi * np.arange(1400) / SPD)[:, None]
    X, y = make_windows(s[1100:], 12, 6)
    model = STIDForecaster(history=12, horizon=6, steps_per_day=SPD, max_epochs=20, output="ar",
                           random_state=0).fit(s[:1100])
    times = Windows(X, time_of_day=(1100 + np.arange(len(X)) + 11) % SPD, steps_per_day=SPD)
    linear = X[:, -1:, :] + np.einsum("bkn,kh->bhn", X[:, :-1, :] - X[:, -1:, :], model.ar_coef_)
    naive = np.abs(np.repeat(X[:, -1:, :], 6, axis=1) - y).mean()
    assert np.abs(linear - y).mean() < naive  # the linear part alone beats the last value here
    assert model.best_epoch_ > 0
    assert np.abs(model.predict(times) - y).mean() < np.abs(linear - y).mean()


def test_models_without_the_ar_output_refuse_it():
    with pytest.raises(ValueError, match="output must be 'level' or 'change'; got 'ar'"):
        DLinearForecaster(history=12, horizon=3, output="ar").fit(series())
    with pytest.raises(ValueError, match="output must be 'level' or 'change' or 'ar'"):
        STIDForecaster(history=12, horizon=3, steps_per_day=SPD, output="AR").fit(series())


def test_save_and_load_keep_the_autoregression(tmp_path):
    s = series()
    model = STVLMForecaster(history=12, horizon=6, backbone=TINY, max_epochs=1, batch_size=32, random_state=0,
                            verbose=0, calendar=None, output="ar").fit(s[:300])
    X, _ = make_windows(s[300:], 12, 6)
    d = model.save(tmp_path / "ar")
    config = json.loads((d / "stvlm_config.json").read_text())
    assert config["format_version"] == 5 and len(config["fitted"]["ar_coef_"]) == 11
    assert config["fitted"]["ar_weight_"] == 1.0
    again = STVLMForecaster.load(d)
    np.testing.assert_array_equal(again.ar_coef_, model.ar_coef_)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    # an edited file whose coefficients do not fit the windows, or that lacks them, is refused
    for edit, message in ((lambda c: c["fitted"].update(ar_coef_=[[0.0] * 6] * 10), "shape"),
                          (lambda c: c["fitted"].update(ar_coef_=None), "disagree"),
                          (lambda c: c["fitted"].update(ar_weight_=0.5), "disagree"),
                          (lambda c: c["fitted"].update(ar_weight_=1.5), r"a number in \[0, 1\]")):
        bad = json.loads(json.dumps(config))
        edit(bad)
        (d / "stvlm_config.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=message):
            STVLMForecaster.load(d)


# ---------------------------------------------------------------------- output="change" adds it, weighted
def _best_weight(base, change, y, loss="mae"):
    """The weight in [0, 1] of ``change`` added to ``base`` with the lowest loss, by search."""
    grid = np.linspace(0, 1, 20001)
    error = base[None] + grid[:, None] * change[None] - y[None]
    scores = (error**2 if loss == "mse" else np.abs(error)).mean(axis=1)
    return grid[np.argmin(scores)], scores.min(), scores[0]


@pytest.mark.parametrize("loss", ["mae", "mse"])
def test_ar_weight_minimises_the_masked_loss(loss):
    w = as_windows(series(), history=8, horizon=3)
    y = w.y.copy()
    y[::5, 2, 1] = 0.0  # masked (null_value)
    y[::9, 0, 3] = np.nan
    w = Windows(w.X, y)
    coef = fit_ar(w)
    x = w.filled()
    last = np.broadcast_to(x[:, -1:, :], y.shape)
    change = np.broadcast_to(np.einsum("bkn,kh->bhn", x[:, :-1, :] - x[:, -1:, :], coef), y.shape)
    keep = np.isfinite(y) & (y != 0.0)
    rng = np.random.default_rng(1)
    forecast = last + 0.3 * change + rng.normal(0, 2, y.shape)  # a network that has part of it
    for base in (None, forecast):
        b = last if base is None else base
        weight, with_it, without = _autoregression.ar_weight(w, coef, base, loss=loss)
        best, best_score, zero_score = _best_weight(b[keep], change[keep], y[keep], loss)
        assert weight == pytest.approx(best, abs=1e-4)
        assert with_it == pytest.approx(best_score, rel=1e-6) and without == pytest.approx(zero_score, rel=1e-12)
        assert 0 < weight < 1 if base is forecast else 0 < weight <= 1  # the rest of the change
    # a weight given is scored, not fitted: the whole autoregression's masked error
    error = np.abs(last + change - y)[keep]
    scored = _autoregression.ar_weight(w, coef, weight=1.0, loss=loss)
    assert scored[:2] == (1.0, pytest.approx((error**2 if loss == "mse" else error).mean(), rel=1e-12))
    # the best weight outside [0, 1] is clipped: a forecast that already overshoots by the change
    assert _autoregression.ar_weight(w, coef, last + 2 * change, loss=loss)[0] == 0.0
    assert _autoregression.ar_weight(w, coef, last - 2 * change, loss=loss)[0] == 1.0
    assert _autoregression.ar_weight(Windows(w.X, np.zeros_like(y)), coef) is None  # nothing kept


@pytest.mark.parametrize("make", [
    lambda: STIDForecaster(history=12, horizon=4, steps_per_day=SPD, max_epochs=2, learning_rate=1e-9,
                           random_state=0),
    lambda: LSTMForecaster(history=12, horizon=4, hidden_size=8, max_epochs=2, learning_rate=1e-9, random_state=0),
    lambda: STVLMForecaster(history=12, horizon=4, backbone=TINY, max_epochs=1, learning_rate=1e-9, batch_size=32,
                            calendar=None, random_state=0, verbose=0),
])
def test_untrained_change_takes_the_whole_autoregression_when_it_validates_better(make):
    # Momentum: the autoregression forecasts far better than the last value, and a network
    # that barely moves (learning_rate=1e-9) beats neither: no weight is fitted on the last value.
    s = momentum_series(T=700, N=3, phi=0.8)
    train, val = chronological_split(as_windows(s, history=12, horizon=4), 0.2)
    coef = fit_ar(train)
    with pytest.warns(UserWarning, match=r"added to the last value \(output layer zeroed\) with weight ar_weight_=1"):
        model = make().fit(s)
    np.testing.assert_allclose(model.ar_coef_, coef, rtol=1e-10)
    assert model.ar_weight_ == 1.0 and model.best_epoch_ == 0
    x = val.filled()
    ar = x[:, -1:, :] + np.einsum("bkn,kh->bhn", x[:, :-1, :] - x[:, -1:, :], coef)
    assert model.best_score_ == pytest.approx(-np.abs(ar - val.y)[val.y != 0].mean(), rel=1e-12)
    assert -model.best_score_ < 0.99 * min(r["val_loss"] for r in model.loss_history_)
    X, _ = make_windows(s[-200:], 12, 4)
    if isinstance(model, STIDForecaster):
        X = Windows(X, time_of_day=np.arange(len(X)) % SPD, steps_per_day=SPD)
    expected = ar_forecast(torch.as_tensor(np.asarray(X.X if hasattr(X, "X") else X)), coef).numpy()
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("make", [
    lambda: STIDForecaster(history=12, horizon=4, steps_per_day=SPD, max_epochs=3, random_state=0),
    lambda: LSTMForecaster(history=12, horizon=4, hidden_size=8, max_epochs=3, random_state=0),
    lambda: STVLMForecaster(history=12, horizon=4, backbone=TINY, max_epochs=3, batch_size=32, calendar=None,
                            random_state=0, verbose=0),
])
def test_a_trained_change_network_gets_the_autoregression_weighted(make, monkeypatch):
    s = series(T=500)
    train, val = chronological_split(as_windows(s, history=12, horizon=4, steps_per_day=SPD, start=0), 0.2)
    X, _ = make_windows(s[-100:], 12, 4)
    X = Windows(X, time_of_day=(400 + np.arange(len(X)) + 11) % SPD, steps_per_day=SPD)
    with monkeypatch.context() as off:  # the network alone, as the other tests see it
        off.setattr("stvlm._base.fits_in_memory", lambda history, horizon: False)
        network = make().fit(s)
    with pytest.warns(UserWarning, match="added to the network with weight"):
        model = make().fit(s)
    assert model.best_epoch_ == network.best_epoch_ > 0
    coef = fit_ar(train)
    x = val.filled()
    change = np.einsum("bkn,kh->bhn", x[:, :-1, :] - x[:, -1:, :], coef)
    weight, score, alone = _best_weight(network.predict(val).ravel(), change.ravel(), val.y.ravel())
    assert 0 < model.ar_weight_ < 1 and model.ar_weight_ == pytest.approx(weight, abs=2e-4)
    assert -model.best_score_ == pytest.approx(score, rel=1e-4) and score <= 0.99 * alone
    xt = torch.as_tensor(X.X)
    ar_change = (ar_forecast(xt, coef) - xt[:, -1:, :]).numpy()
    np.testing.assert_allclose(model.predict(X), network.predict(X) + model.ar_weight_ * ar_change,
                               rtol=1e-5, atol=1e-3)


def test_change_keeps_the_network_unless_the_autoregression_gains_one_percent(monkeypatch):
    s = series(T=700)  # a daily profile, which STID-like's time of day learns

    weights_asked = []

    def fit(on_network, on_last=(1.0, np.inf, np.inf)):
        def weight(windows, coef, forecast, weight=None, **kw):
            weights_asked.append(weight)
            return on_last if forecast is None else on_network
        monkeypatch.setattr("stvlm._base.ar_weight", weight)
        return STIDForecaster(history=12, horizon=4, steps_per_day=SPD, max_epochs=5, random_state=0).fit(s)

    reference = fit((0.0, 10.0, 10.0))  # no gain: the network's fit, as without the autoregression
    assert reference.ar_coef_ is None and reference.ar_weight_ is None and reference.best_epoch_ > 0
    X = Windows(make_windows(s[-100:], 12, 4)[0], time_of_day=np.arange(85) % SPD, steps_per_day=SPD)
    # a gain just short of 1 %: the network stays
    model = fit((0.5, 9.9 + 1e-9, 10.0))
    assert model.ar_coef_ is None and model.best_epoch_ == reference.best_epoch_
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    # 1 %: the network plus half the autoregression's change
    with pytest.warns(UserWarning, match="added to the network with weight ar_weight_=0.5"):
        model = fit((0.5, 9.9, 10.0))
    assert model.ar_weight_ == 0.5 and model.best_epoch_ == reference.best_epoch_ and model.best_score_ == -9.9
    x = torch.as_tensor(X.X)
    ar_change = (ar_forecast(x, model.ar_coef_) - x[:, -1:, :]).numpy()
    np.testing.assert_allclose(model.predict(X), reference.predict(X) + 0.5 * ar_change, rtol=1e-5, atol=1e-3)
    # better still on the last value: the output layer zeroed, the whole autoregression
    with pytest.warns(UserWarning, match=r"added to the last value \(output layer zeroed\) with weight ar_weight_=1"):
        model = fit((0.5, 9.9, 10.0), on_last=(1.0, 9.0, 12.0))
    assert model.ar_weight_ == 1.0 and model.best_epoch_ == 0 and model.best_score_ == -9.0
    np.testing.assert_allclose(model.predict(X), X.X[:, -1:, :] + ar_change, rtol=1e-5, atol=1e-3)
    assert weights_asked == [1.0, None] * 4  # the last value: the whole of it; the network: fitted


def test_level_output_and_large_windows_never_add_it(monkeypatch):
    s = momentum_series(T=700, N=3, phi=0.8)
    calls = []
    monkeypatch.setattr("stvlm._base.fit_ar", lambda *a, **k: calls.append(1) or fit_ar(*a, **k))
    level = STIDForecaster(history=12, horizon=4, steps_per_day=SPD, max_epochs=1, output="level",
                           random_state=0).fit(s)
    assert level.ar_coef_ is None and not calls
    monkeypatch.setattr(_autoregression, "_FALLBACK_GRAM_VALUES", 4 * 11**2 - 1)  # one value short
    with pytest.warns(UserWarning, match="no epoch beat the untrained model"):
        STIDForecaster(history=12, horizon=4, steps_per_day=SPD, max_epochs=1, learning_rate=1e-9,
                       random_state=0).fit(s)
    assert not calls
    assert _autoregression.fits_in_memory(12, 4) is False
    monkeypatch.setattr(_autoregression, "_FALLBACK_GRAM_VALUES", 4 * 11**2)
    assert _autoregression.fits_in_memory(12, 4) is True


def test_save_and_load_keep_the_weighted_autoregression(tmp_path):
    s = series(T=500)  # a weight below 1 here
    with pytest.warns(UserWarning, match="linear autoregression"):
        model = STVLMForecaster(history=12, horizon=4, backbone=TINY, max_epochs=1, batch_size=32,
                                calendar=None, random_state=0, verbose=0).fit(s)
    assert model.output == "change" and model.ar_coef_ is not None and model.ar_weight_ < 1
    X, _ = make_windows(s[-100:], 12, 4)
    d = model.save(tmp_path / "fb")
    again = STVLMForecaster.load(d)
    np.testing.assert_array_equal(again.ar_coef_, model.ar_coef_)
    assert again.ar_weight_ == model.ar_weight_
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    # a folder of format 4 (session 23: no ar_weight_) held the autoregression whole
    config = json.loads((d / "stvlm_config.json").read_text())
    del config["fitted"]["ar_weight_"]
    config["format_version"] = 4
    (d / "stvlm_config.json").write_text(json.dumps(config))
    old = STVLMForecaster.load(d)
    assert old.ar_weight_ == 1.0
    x = torch.as_tensor(X)
    ar_change = (ar_forecast(x, model.ar_coef_) - x[:, -1:, :]).numpy()
    np.testing.assert_allclose(old.predict(X), model.predict(X) + (1 - model.ar_weight_) * ar_change,
                               rtol=1e-5, atol=1e-3)
