"""STVLMForecaster: training, prediction, persistence and bad input.

Every model here is a tiny random ViLT on a few sensors, so each fit takes seconds.
"""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
from _offline import record_connections
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import TimeSeriesSplit, cross_val_score

from stvlm import STVLMForecaster, SpatialToImageTransformer, make_windows
from stvlm.images import correlation_channels
from stvlm.training import TrainingLoop
from stvlm.metrics import masked_mae
from stvlm.network import BackboneNotAvailableError, trainable_parameter_summary

TINY = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=16,
    patch_size=8,
    vocab_size=500,
)
N_SENSORS = 5


def make_series(T=260, N=N_SENSORS, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    phase = rng.uniform(0, 2 * np.pi, N)
    return 200 + 80 * np.sin(2 * np.pi * t / 48 + phase) + rng.normal(0, 5, (T, N))


def tiny_model(**kw):
    params = dict(
        history=12,
        horizon=3,
        backbone=TINY,
        max_epochs=2,
        batch_size=32,
        encoder_hidden=8,
        decoder_hidden=8,
        random_state=0,
        verbose=0,
    )
    params.update(kw)
    return STVLMForecaster(**params)


@pytest.fixture(scope="module")
def series():
    return make_series()


@pytest.fixture(scope="module")
def fitted(series):
    return tiny_model().fit(series[:200])


@pytest.fixture(scope="module")
def test_windows(series):
    return make_windows(series[200:], history=12, horizon=3)


# --------------------------------------------------------------------- estimator API
def test_init_stores_params_unchanged():
    backbone = dict(TINY)
    model = STVLMForecaster(backbone=backbone, lora_r=4, device="cpu")
    assert model.backbone is backbone
    assert model.get_params()["lora_r"] == 4
    assert clone(model).get_params()["backbone"] == backbone


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        tiny_model().predict(np.zeros((1, 12, N_SENSORS)))
    with pytest.raises(NotFittedError):
        tiny_model().save("/nonexistent")


def test_fit_on_series_records_training(fitted):
    assert fitted.n_features_in_ == N_SENSORS
    assert len(fitted.loss_history_) == 2
    assert {"epoch", "train_loss", "val_loss", "lr", "seconds"} <= set(fitted.loss_history_[0])
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in fitted.loss_history_)
    assert fitted.best_epoch_ in (1, 2)
    assert fitted.dtw_scale_ > 0


def test_predict_shape_and_units(fitted, test_windows, series):
    X, y = test_windows
    pred = fitted.predict(X)
    assert pred.shape == y.shape
    assert np.isfinite(pred).all()
    # Forecasts come back in the original units (around 200), not z-scores.
    assert abs(pred.mean() - series[:200].mean()) < 3 * series[:200].std()


def test_score_is_negative_masked_mae(fitted, test_windows, series):
    X, y = test_windows
    expected = -masked_mae(y, fitted.predict(X), null_value=0.0)
    assert fitted.score(X, y) == pytest.approx(expected)
    # A series is cut into windows with their targets.
    Xs, ys = make_windows(series[200:], 12, 3)
    assert fitted.score(series[200:]) == pytest.approx(-masked_mae(ys, fitted.predict(Xs)))


def test_fit_on_windows_with_targets(series):
    X, y = make_windows(series[:200], 12, 3)
    model = tiny_model(max_epochs=1).fit(X, y)
    assert model.predict(X[:4]).shape == (4, 3, N_SENSORS)


def _split(model, X, y=None):
    """The training and validation windows the model's fit uses."""
    from stvlm.data import chronological_split

    return chronological_split(model._front_door(X, y), model.validation_fraction)


def _val_loss(model, val):
    """Masked MAE of a fitted model on validation windows, images as fit caches them."""
    model._prepare(val, torch.device("cpu"))
    return -model.score(val)


def test_scaling_uses_training_part_only(series):
    model = tiny_model(max_epochs=1, validation_fraction=0.25)
    train, val = _split(model, series[:200])
    model.fit(series[:200])
    assert model.mean_ == pytest.approx(train.X.mean())
    assert model.std_ == pytest.approx(train.X.std())


def test_validation_split_is_chronological_with_gap(series):
    model = tiny_model(validation_fraction=0.25)
    train, val = _split(model, series[:200])
    n = 200 - 12 - 3 + 1
    assert len(val) == int(n * 0.25)
    # The last training window's last target row comes before the first validation row.
    first_val_start = n - len(val)
    last_train_end = (len(train) - 1) + 12 + 3 - 1
    assert last_train_end < first_val_start
    np.testing.assert_array_equal(val.X[0], series[first_val_start : first_val_start + 12])


def test_same_seed_same_predictions(series, test_windows):
    X, _ = test_windows
    a = tiny_model(random_state=3).fit(series[:200]).predict(X)
    b = tiny_model(random_state=3).fit(series[:200]).predict(X)
    c = tiny_model(random_state=4).fit(series[:200]).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_predict_is_deterministic_and_leaves_global_rng(fitted, test_windows):
    X, _ = test_windows
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    p1, p2 = fitted.predict(X), fitted.predict(X)
    np.testing.assert_array_equal(p1, p2)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])


def test_best_weights_are_restored(series):
    # A large learning rate makes validation loss jump around; whatever happens, the
    # final network must score exactly the best recorded validation loss.
    model = tiny_model(max_epochs=5, learning_rate=0.05, patience=2)
    model.fit(series[:200])
    _, val = _split(model, series[:200])
    best = model.loss_history_[model.best_epoch_ - 1]["val_loss"]
    assert best == min(h["val_loss"] for h in model.loss_history_)
    assert _val_loss(model, val) == pytest.approx(best, rel=1e-5)


def test_early_stopping_stops_after_patience(series, monkeypatch):
    losses = iter([5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0])
    monkeypatch.setattr(TrainingLoop, "evaluate", lambda self, *a: next(losses))
    # output="level": no "epoch 0" evaluation; ema_decay=None: every epoch counts from the
    # first (the wait for the average to settle: tests/test_training.py covers both)
    model = tiny_model(max_epochs=8, patience=3, output="level", ema_decay=None).fit(series[:200])
    assert len(model.loss_history_) == 5  # best at 2, then 3 epochs without gain
    assert model.best_epoch_ == 2


def test_plateau_schedule_halves_learning_rate(series, monkeypatch):
    monkeypatch.setattr(TrainingLoop, "evaluate", lambda self, *a: 1.0)
    model = tiny_model(max_epochs=4, lr_patience=1, patience=10, learning_rate=1e-3).fit(series[:200])
    lrs = [h["lr"] for h in model.loss_history_]
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-3 * 0.5 ** (len(lrs) // 2), rel=1e-6) or lrs[-1] < 1e-3


def test_cosine_schedule_reaches_the_loop(series, monkeypatch):
    monkeypatch.setattr(TrainingLoop, "evaluate", lambda self, *a: 1.0)
    model = tiny_model(max_epochs=3, patience=10, learning_rate=1e-3, lr_schedule="cosine").fit(series[:200])
    assert [h["lr"] for h in model.loss_history_] == pytest.approx([1e-3, 0.75e-3, 0.25e-3])


def test_mlp_head_trains_saves_and_loads(series, tmp_path):
    from stvlm.network import LSTMDecoderHead, MLPHead

    model = tiny_model(head="mlp", decoder_hidden=16).fit(series[:200])
    assert isinstance(model.network_.head, MLPHead)
    assert isinstance(tiny_model(head="lstm").fit(series[:200]).network_.head, LSTMDecoderHead)
    X = series[200:212][None]
    again = STVLMForecaster.load(model.save(tmp_path / "mlp"))
    assert again.head == "mlp" and isinstance(again.network_.head, MLPHead)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="head must be one of"):
        tiny_model(head="gru").fit(series[:200])


def test_linear_encoder_trains_saves_and_loads(series, tmp_path):
    from stvlm.network import LinearEncoder, TemporalEncoder

    model = tiny_model(temporal_encoder="linear").fit(series[:200])
    assert isinstance(model.network_.temporal_encoder, LinearEncoder)
    assert isinstance(tiny_model(temporal_encoder="lstm").fit(series[:200]).network_.temporal_encoder, TemporalEncoder)
    X = series[200:212][None]
    again = STVLMForecaster.load(model.save(tmp_path / "linear"))
    assert again.temporal_encoder == "linear" and isinstance(again.network_.temporal_encoder, LinearEncoder)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="temporal_encoder must be one of"):
        tiny_model(temporal_encoder="gru").fit(series[:200])


def test_files_from_before_the_linear_encoder_load_with_the_lstm(series, tmp_path):
    model = tiny_model(temporal_encoder="lstm").fit(series[:200])
    d = model.save(tmp_path / "old")
    config = json.loads((d / "stvlm_config.json").read_text())
    del config["params"]["temporal_encoder"]
    (d / "stvlm_config.json").write_text(json.dumps(config))
    again = STVLMForecaster.load(d)
    assert again.temporal_encoder == "lstm"
    X = series[200:212][None]
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_unknown_lr_schedule_is_a_clear_error(series):
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        tiny_model(lr_schedule="step").fit(series[:200])


def test_ctrl_c_keeps_best_weights(series, monkeypatch):
    calls = {"n": 0}
    original = TrainingLoop.evaluate

    def interrupt_on_third(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(TrainingLoop, "evaluate", interrupt_on_third)
    model = tiny_model(max_epochs=10, output="level")  # every evaluate call is an epoch's
    with pytest.warns(UserWarning, match="interrupted"):
        model.fit(series[:200])
    assert model.interrupted_
    assert len(model.loss_history_) == 2
    monkeypatch.setattr(TrainingLoop, "evaluate", original)
    _, val = _split(model, series[:200])
    best = model.loss_history_[model.best_epoch_ - 1]["val_loss"]
    assert _val_loss(model, val) == pytest.approx(best, rel=1e-5)


def test_verbose_zero_is_silent_and_verbose_shows_progress(series, capfd):
    tiny_model(max_epochs=1, verbose=0).fit(series[:150])
    assert capfd.readouterr().err == ""
    tiny_model(max_epochs=1, verbose=1).fit(series[:150])
    assert "STVLMForecaster fit" in capfd.readouterr().err


# --------------------------------------------------------------------- network variants
@pytest.mark.parametrize("fusion,finetune", [("saf", "lora"), (None, "lora"), ("saf", None), (None, None)])
def test_ablations_train_the_right_parameters(series, fusion, finetune):
    model = tiny_model(max_epochs=1, fusion=fusion, finetune=finetune).fit(series[:150])
    summary = trainable_parameter_summary(model.network_)
    assert (summary["lora"] > 0) == (finetune == "lora")
    assert (summary["padconv"] > 0) == (fusion == "saf")
    assert summary["other"] == 0
    backbone_trainable = [n for n, p in model.network_.backbone.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "position_embeddings.extra" in n for n in backbone_trainable)


def test_lora_and_saf_weights_change_during_training(series):
    model = tiny_model(max_epochs=1)
    model._check_params()
    torch.manual_seed(0)
    before = {n: p.detach().clone() for n, p in model._build_module(N_SENSORS).named_parameters()}
    model.fit(series[:150])
    after = dict(model.network_.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert any("lora_B" in n for n in changed)
    assert any("padconv" in n for n in changed)
    assert not any("lora_" not in n and "backbone" in n and "extra" not in n for n in changed)


# --------------------------------------------------------------------- images
def test_cached_and_per_batch_images_give_the_same_model(series, test_windows):
    X, _ = test_windows
    cached = tiny_model(max_epochs=1).fit(series[:150])
    per_batch = tiny_model(max_epochs=1, image_cache_mb=0).fit(series[:150])
    np.testing.assert_allclose(cached.predict(X), per_batch.predict(X), rtol=1e-5, atol=1e-4)


def test_torch_image_path_matches_numba(series):
    from stvlm.kernels import correlation_channels_torch

    X, _ = make_windows(series[:60], 12, 3)
    t = correlation_channels_torch(X, 40.0, torch.device("cpu")).numpy()
    np.testing.assert_allclose(t, correlation_channels(X, 40.0), atol=2e-5)


def test_pipeline_images_from_transformer(series, test_windows):
    X, y = make_windows(series[:200], 12, 3)
    s2i = SpatialToImageTransformer().fit(X)
    model = tiny_model(max_epochs=1).fit(s2i.transform(X), y)
    assert model.dtw_scale_ is None
    Xt, yt = test_windows
    assert model.predict(s2i.transform(Xt)).shape == yt.shape
    with pytest.raises(ValueError, match="SpatialToImageTransformer"):
        model.predict(Xt)


def test_cross_val_score_needs_no_scorer(series):
    scores = cross_val_score(tiny_model(max_epochs=1), series, cv=TimeSeriesSplit(2, gap=14))
    assert scores.shape == (2,) and np.all(scores < 0)


# --------------------------------------------------------------------- missing values
def test_nan_in_series_is_masked_and_imputed(series, test_windows):
    s = series[:200].copy()
    s[10:20, 1] = np.nan
    s[50, :] = np.inf
    s[100:103, 2] = 0.0  # zeros are missing targets
    model = tiny_model(max_epochs=1).fit(s)
    assert all(np.isfinite(h["train_loss"]) for h in model.loss_history_)
    X, _ = test_windows
    Xn = X.copy()
    Xn[0, 3:6, 0] = np.nan
    assert np.isfinite(model.predict(Xn)).all()


def test_loss_ignores_zero_and_nan_targets(fitted, series):
    from stvlm.training import masked_mae_loss

    train, _ = _split(fitted, series[:200])
    idx = np.arange(8)
    pred = fitted.predict(train.X[idx])
    y = train.y[idx].copy()
    y[0, 0, 0] = 0.0
    y[1, 1, 1] = np.nan
    loss, n = masked_mae_loss(torch.as_tensor(pred), torch.as_tensor(y))
    assert n == y.size - 2
    assert float(loss) == pytest.approx(masked_mae(y, pred), rel=1e-12)


def test_all_nan_sensor_is_a_clear_error(series):
    s = series[:200].copy()
    s[:, 3] = np.nan
    with pytest.raises(ValueError, match=r"sensors \[3\] have no finite value"):
        tiny_model().fit(s)


# --------------------------------------------------------------------- persistence
def test_pickle_round_trip_predicts_identically(fitted, test_windows):
    X, _ = test_windows
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))


def test_save_load_round_trip(fitted, test_windows, tmp_path):
    X, _ = test_windows
    fitted.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "stvlm_config.json").read_text())
    assert config["format"] == "stvlm-forecaster"
    loaded = STVLMForecaster.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    assert loaded.get_params()["backbone"] == TINY
    assert loaded.best_epoch_ == fitted.best_epoch_


def test_load_rejects_corrupt_and_foreign_files(fitted, tmp_path):
    d = tmp_path / "m"
    fitted.save(d)
    with pytest.raises(ValueError, match="expected stvlm_config.json"):
        STVLMForecaster.load(tmp_path / "empty")
    (d / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="safetensors"):
        STVLMForecaster.load(d)
    fitted.save(d)
    (d / "stvlm_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        STVLMForecaster.load(d)
    (d / "stvlm_config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="format marker"):
        STVLMForecaster.load(d)
    # Weights of another model under a valid config.
    other = tiny_model(max_epochs=1, encoder_hidden=4).fit(make_series(T=150))
    fitted.save(d)
    other.save(tmp_path / "o")
    (d / "model.safetensors").write_bytes((tmp_path / "o" / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not match"):
        STVLMForecaster.load(d)


# --------------------------------------------------------------------- bad input
def test_one_d_input():
    with pytest.raises(ValueError, match="1-D"):
        tiny_model().fit(np.arange(100.0))


def test_series_shorter_than_history_plus_horizon():
    with pytest.raises(ValueError, match="history \\+ horizon = 12 \\+ 3 = 15"):
        tiny_model().fit(np.ones((14, 3)))


def test_different_sensor_count_at_predict(fitted):
    with pytest.raises(ValueError, match="fitted with 5"):
        fitted.predict(np.ones((2, 12, 4)))


def test_wrong_history_at_predict(fitted):
    with pytest.raises(ValueError, match="history=12"):
        fitted.predict(np.ones((2, 10, N_SENSORS)))


def test_two_d_predict_explains_windows(fitted, series):
    with pytest.raises(ValueError, match="make_windows"):
        fitted.predict(series[:30])


@pytest.mark.parametrize("param", ["history", "horizon"])
def test_history_or_horizon_below_one(series, param):
    with pytest.raises(ValueError, match=param):
        tiny_model(**{param: 0}).fit(series)


def test_unknown_backbone_fails_fast_offline(series, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts = record_connections(monkeypatch)
    with pytest.raises(BackboneNotAvailableError, match="ViltConfig"):
        tiny_model(backbone="no-such-org/no-such-vilt").fit(series[:100])
    assert attempts == []  # fails at once: no download attempt


def test_backbone_of_wrong_type(series):
    with pytest.raises(TypeError, match="backbone must be"):
        tiny_model(backbone=3.5).fit(series[:100])


def test_image_size_smaller_than_sensor_count(series):
    with pytest.raises(ValueError, match="smaller than the 5 sensors"):
        tiny_model(image_size=4).fit(series[:100])


def test_batch_size_larger_than_data_warns_and_trains(series):
    with pytest.warns(UserWarning, match="batch_size=500 is larger"):
        model = tiny_model(max_epochs=1, batch_size=500).fit(series[:120])
    assert len(model.loss_history_) == 1


def test_windows_without_targets(series):
    X, _ = make_windows(series[:100], 12, 3)
    with pytest.raises(ValueError, match="y is required"):
        tiny_model().fit(X)


def test_targets_with_wrong_horizon(series):
    X, y = make_windows(series[:100], 12, 4)
    with pytest.raises(ValueError, match="horizon=3"):
        tiny_model().fit(X, y)


@pytest.mark.parametrize(
    "param,value,err",
    [
        ("fusion", "cross", ValueError),
        ("finetune", "full", ValueError),
        ("learning_rate", 0.0, ValueError),
        ("validation_fraction", 1.0, ValueError),
        ("precision", "fp8", ValueError),
        ("batch_size", 0, ValueError),
        ("lr_factor", 1.5, ValueError),
        ("max_epochs", 2.5, TypeError),
    ],
)
def test_invalid_parameters(series, param, value, err):
    with pytest.raises(err, match=param):
        tiny_model(**{param: value}).fit(series[:100])


def test_too_few_windows_for_validation():
    with pytest.raises(ValueError, match="validation_fraction"):
        tiny_model().fit(make_series(T=30))


def test_presets():
    model = STVLMForecaster.from_preset("cpu", random_state=1)
    assert model.random_state == 1 and isinstance(model.backbone, dict)
    assert STVLMForecaster.from_preset("paper").backbone == "dandelin/vilt-b32-mlm"
    with pytest.raises(ValueError, match="known presets"):
        STVLMForecaster.from_preset("huge")


def test_defaults_follow_the_paper():
    p = STVLMForecaster().get_params()
    assert (p["history"], p["horizon"], p["batch_size"], p["max_epochs"]) == (12, 12, 32, 100)
    assert (p["patience"], p["lr_patience"], p["lr_factor"]) == (30, 10, 0.5)
    assert (p["fusion"], p["finetune"], p["backbone"]) == ("saf", "lora", "dandelin/vilt-b32-mlm")


def test_no_warnings_in_a_plain_fit(series):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_model(max_epochs=1).fit(series[:150])


def test_bf16_autocast_path_trains_and_predicts_on_cpu(series, test_windows):
    # precision="auto" turns on bf16 autocast on CUDA; "bf16" runs the same code path here.
    X, y = test_windows
    model = tiny_model(max_epochs=1, precision="bf16").fit(series[:150])
    pred = model.predict(X)
    assert pred.dtype == np.float64 and np.isfinite(pred).all()
    fp32 = tiny_model(max_epochs=1).fit(series[:150]).predict(X)
    assert not np.array_equal(pred, fp32)  # autocast really changed the arithmetic
    assert np.abs(pred - fp32).mean() < 0.1 * np.abs(fp32).mean()


def test_load_reads_files_written_before_loss_history_was_renamed(fitted, test_windows, tmp_path):
    X, _ = test_windows
    d = fitted.save(tmp_path / "old")
    config = json.loads((d / "stvlm_config.json").read_text())
    config["fitted"]["history_"] = config["fitted"].pop("loss_history_")  # the format as written before
    del config["params"]["threshold"], config["params"]["callbacks"]
    (d / "stvlm_config.json").write_text(json.dumps(config))
    again = STVLMForecaster.load(d)
    assert again.loss_history_ == fitted.loss_history_
    assert again.threshold is None and again.callbacks is None
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
