"""benchmarks/tune.py: the few-shot score on the full fit period's validation windows."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from _scripts import load_script

from stvlm.datasets import make_protocol

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "tune.py"
HISTORY, HORIZON = 4, 3


@pytest.fixture(scope="module")
def tune():
    return load_script(SCRIPT)


class _Recorder:
    """An estimator stand-in: forecasts a constant and keeps the windows it was given."""

    history, horizon, validation_fraction, null_value, threshold = HISTORY, HORIZON, 0.2, 0.0, None

    def __init__(self, value):
        self.value = value
        self.seen = []

    def predict(self, windows):
        self.seen.append(windows)
        return np.full(windows.y.shape, self.value)


def test_later_validation_reads_the_fit_periods_held_out_windows(tune):
    rng = np.random.default_rng(0)
    series = rng.uniform(1, 10, size=(200, 3))
    p = make_protocol(series, steps_per_day=24, first_time_index=5, history=HISTORY, horizon=HORIZON)
    est = _Recorder(2.0)
    mae = tune._later_validation_mae(est, p)

    (windows,) = est.seen
    fit = p.fit_series
    n_all = len(fit) - HISTORY - HORIZON + 1
    n_val = len(windows.X)
    assert 0 < n_val < n_all * 0.3
    # the last n_val windows of the fit period, in order, each with its own clock
    starts = np.arange(n_all - n_val, n_all)
    np.testing.assert_array_equal(windows.X, np.stack([fit[s : s + HISTORY] for s in starts]))
    targets = np.stack([fit[s + HISTORY : s + HISTORY + HORIZON] for s in starts])
    np.testing.assert_array_equal(windows.y, targets)
    np.testing.assert_array_equal(windows.time_of_day, (5 + starts + HISTORY - 1) % 24)
    # nothing past the fit period (the test targets start right after it)
    assert starts[-1] + HISTORY + HORIZON == len(fit)
    assert mae == pytest.approx(np.abs(targets - 2.0).mean())


def test_later_validation_of_the_last_value_matches_the_naive_score(tune):
    rng = np.random.default_rng(1)
    p = make_protocol(rng.uniform(1, 10, size=(180, 2)), steps_per_day=24, history=HISTORY, horizon=HORIZON)

    class LastValue(_Recorder):
        def predict(self, windows):
            self.seen.append(windows)
            return np.repeat(windows.X[:, -1:, :], HORIZON, axis=1)

    est = LastValue(None)
    assert tune._later_validation_mae(est, p) == pytest.approx(tune._last_value_on_validation(est, p.fit_series))


def test_trial_readout_reads_each_windows_time_of_day_and_is_undone(tune):
    """``_with_head``: the head's own calendar changes the forecast with the slot, and
    leaving the context gives back the library's network."""
    import torch
    from transformers import ViltConfig

    from stvlm.network import MLPHead, STVLMNetwork

    cfg = ViltConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     image_size=16, patch_size=8, vocab_size=200)
    kwargs = dict(n_nodes=5, history=6, horizon=2, encoder_hidden=8, decoder_hidden=8,
                  calendar="time-of-day", steps_per_day=24, head="mlp")
    torch.manual_seed(0)
    with tune._with_head(dict(calendar_dim=4, node_dim=3, layers=3, dropout=0.1)):
        net = STVLMNetwork.from_backbone(cfg, **kwargs).eval()
        head = net.head
        assert not isinstance(head, MLPHead) and len(head.blocks) == 3
        assert head.inp.in_features == 16 + 4 + 3 and head.inp.out_features == 8
        x, images = torch.randn(1, 6, 5), torch.rand(1, 3, 5, 5)
        # the token calendar silenced, so only the head's own embedding can tell slots apart
        net.calendar_embedding.time_of_day.weight.data.zero_()
        with torch.no_grad():
            a, b = net(x, images, torch.tensor([3])), net(x, images, torch.tensor([17]))
            head.tod.weight.data.zero_()
            c, d = net(x, images, torch.tensor([3])), net(x, images, torch.tensor([17]))
    assert a.shape == (1, 2, 5)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(c, d)
    assert isinstance(STVLMNetwork.from_backbone(cfg, **kwargs).head, MLPHead)


def test_device_reaches_every_fit_and_stvlm_stays_float32(tune, monkeypatch):
    calls = []
    monkeypatch.setattr(tune, "run", lambda *args: calls.append(args))
    tune.main(["--variants", "mlp-hcal", "--device", "cuda"])
    tune.main(["--model", "stid", "--variants", "change", "--device", "cuda"])
    tune.main(["--variants", "mlp-hcal"])
    # run(protocol, model, variants, settings, seeds, out, overrides, history, horizon)
    assert [c[6] for c in calls] == [{"device": "cuda", "precision": "fp32"}, {"device": "cuda"}, None]
    assert [c[7:] for c in calls] == [(None, None)] * 3


def test_horizons_run_one_protocol_each(tune, monkeypatch):
    calls = []
    monkeypatch.setattr(tune, "run", lambda *args: calls.append(args))
    tune.main(["--protocol", "etth1", "--model", "timevlm", "--variants", "steps-30", "--settings", "few-shot-0.05",
               "--history", "512", "--horizons", "96,336"])
    assert [c[7:] for c in calls] == [(512, 96), (512, 336)]
    assert tune.VARIANTS["timevlm"]["steps-30"] == {"min_steps_per_epoch": 30}
    assert tune.VARIANTS["timevlm"]["steps-1pass"] == {"min_steps_per_epoch": None}


def test_long_term_row_scores_the_last_value_on_the_protocols_validation_months(tune):
    """ETT rows: the fit's validation MSE and the naive forecast's on the same windows,
    worked out by hand here."""
    import time
    from types import SimpleNamespace

    val = np.arange(30, dtype=float)[:, None] ** 1.5 * np.array([[1.0, -0.5]])
    p = SimpleNamespace(name="etth1", val_series=val)
    est = SimpleNamespace(history=HISTORY, horizon=HORIZON, best_score_=-0.25, best_epoch_=2)
    hist = [dict(val_loss=0.3), dict(val_loss=0.25), dict(val_loss=0.26)]
    row = tune._long_term_row(p, "few-shot-0.05", "timevlm", "steps-30", 0, est, hist, time.perf_counter(), {})
    errors = [(val[s + HISTORY + k] - val[s + HISTORY - 1]) ** 2
              for s in range(len(val) - HISTORY - HORIZON + 1) for k in range(HORIZON)]
    assert row["last_value_val_mse"] == pytest.approx(np.mean(errors))
    assert row["val_mse"] == 0.25 and row["horizon"] == HORIZON and row["epochs"] == 3


def test_loop_trials_nest_and_are_undone(tune):
    import stvlm.training as training

    original = training.TrainingLoop
    with tune._without_initial_validation(True), tune._with_warmup(10):
        loop = training.TrainingLoop
        assert loop is not original and issubclass(loop, original)
        assert loop.train_epoch is not original.train_epoch  # the warm-up's
        made = loop(None, max_epochs=1, batch_size=1, learning_rate=1e-3, patience=1, lr_patience=1,
                    lr_factor=0.5, validate_initial=True)
        assert made.validate_initial is False  # the outer trial's, kept under the inner one
    assert training.TrainingLoop is original
    with tune._without_initial_validation(False), tune._with_warmup(0):
        assert training.TrainingLoop is original


def test_backbone_trials_train_what_they_say_and_are_undone(tune):
    """``_with_lora_targets`` puts LoRA on every linear layer of the backbone,
    ``_with_trained_backbone`` trains every backbone weight, ``_with_adamw`` swaps the
    loop's optimiser; each gives back the library's behaviour on leaving."""
    import peft
    import torch
    from transformers import ViltConfig

    from stvlm.network import STVLMNetwork

    cfg = ViltConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     image_size=16, patch_size=8, vocab_size=200)
    kwargs = dict(n_nodes=5, history=6, horizon=2, encoder_hidden=8, decoder_hidden=8, head="mlp")

    def lora_layers(net):
        return {n.split(".lora_A")[0].split("layer.")[1] for n, p in net.named_parameters()
                if "lora_A" in n and p.requires_grad}

    with tune._with_lora_targets(["query", "key", "value", "dense"]):
        net = STVLMNetwork.from_backbone(cfg, **kwargs)
    per_layer = {"attention.attention.query", "attention.attention.key", "attention.attention.value",
                 "attention.output.dense", "intermediate.dense", "output.dense"}
    assert lora_layers(net) == {f"{i}.{name}" for i in range(2) for name in per_layer}
    assert lora_layers(STVLMNetwork.from_backbone(cfg, **kwargs)) == {
        f"{i}.attention.attention.{name}" for i in range(2) for name in ("query", "key")}
    assert peft.LoraConfig.__name__ == "LoraConfig"

    with tune._with_trained_backbone(True):
        net = STVLMNetwork.from_backbone(cfg, finetune=None, **kwargs)
    assert all(p.requires_grad for p in net.backbone.parameters())
    net = STVLMNetwork.from_backbone(cfg, finetune=None, **kwargs)
    assert not any(p.requires_grad for n, p in net.backbone.named_parameters() if "position_embeddings.extra" not in n)

    with tune._with_adamw(True):
        assert torch.optim.Adam is torch.optim.AdamW
    assert torch.optim.Adam is not torch.optim.AdamW

    with tune._with_identity_values(True):
        net = STVLMNetwork.from_backbone(cfg, **kwargs)
    plain = STVLMNetwork.from_backbone(cfg, **kwargs)
    for trial, layer in zip(net.backbone.encoder.layer, plain.backbone.encoder.layer):
        for get in (lambda lay: lay.attention.attention.value, lambda lay: lay.attention.output.dense):
            assert torch.equal(get(trial).weight, torch.eye(16)) and not get(trial).bias.any()
            assert not get(trial).weight.requires_grad  # frozen, as the backbone's own weights
            assert get(layer).weight.abs().max() < 0.2  # ViLT's N(0, 0.02) outside the trial


def test_time_of_day_knots_interpolate_round_the_clock_and_are_undone(tune):
    """``_with_tod_knots``: both models' time-of-day vectors are the knots at every K-th
    slot, their linear interpolation in between (the last slots towards the first knot),
    trained through the forecast; leaving gives back one free vector per slot."""
    import torch

    from stvlm.baselines._modules import STIDModule
    from stvlm.network import CalendarEmbedding

    with tune._with_tod_knots(4):
        stid = STIDModule(6, 2, 3, 12, 4, 4, 4, 1, 0.0)
        cal = CalendarEmbedding(12, 8)
    knots = stid.tod_table.knots
    table = stid.tod_emb
    assert table.shape == (12, 4) and knots.shape == (4, 4)
    torch.testing.assert_close(table[::3], knots)
    torch.testing.assert_close(table[1], (2 * knots[0] + knots[1]) / 3)
    torch.testing.assert_close(table[11], (knots[3] + 2 * knots[0]) / 3)
    stid(torch.randn(2, 6, 3), torch.tensor([1, 11])).sum().backward()
    assert knots.grad[[0, 1, 3]].abs().sum(dim=1).gt(0).all() and knots.grad[2].abs().sum() == 0
    assert [n for n, _ in cal.named_parameters()] == ["time_of_day.knots"]
    torch.testing.assert_close(cal(torch.tensor([6]))[0, 0], cal.time_of_day.knots[2])
    assert isinstance(STIDModule(6, 2, 3, 12, 4, 4, 4, 1, 0.0).tod_emb, torch.nn.Parameter)
    assert isinstance(CalendarEmbedding(12, 8).time_of_day, torch.nn.Embedding)


def test_trainable_ar_trains_the_coefficients_from_the_least_squares_fit_and_is_undone(tune):
    """``_with_trainable_ar``: the module holds the coefficients as a parameter that starts at
    ``ar_coef_`` and moves with training; outside, ``ar_coef_`` stays fixed."""
    from stvlm.baselines import STIDForecaster

    rng = np.random.default_rng(0)
    s = 50 + 10 * np.sin(2 * np.pi * np.arange(400) / 24)[:, None] + rng.normal(size=(400, 3))
    make = lambda: STIDForecaster(history=6, horizon=2, steps_per_day=24, max_epochs=3, output="ar",  # noqa: E731
                                  ema_decay=None, random_state=0)
    with tune._with_trainable_ar(True):
        model = make().fit(s)
        assert model.best_epoch_ > 0
        moved = model.module_.ar_weight.detach().numpy()
        assert moved.shape == model.ar_coef_.shape and not np.allclose(moved, model.ar_coef_)
        start = make()
        start.max_epochs = 1
        start.learning_rate = 1e-12
        start.fit(s)
        np.testing.assert_allclose(start.module_.ar_weight.detach().numpy(), start.ar_coef_, rtol=1e-6)
    plain = make().fit(s)
    assert not hasattr(plain.module_, "ar_weight")


def test_sensor_scale_z_scores_each_sensor_and_round_trips_and_is_undone(tune):
    """``_with_sensor_scale``: the network reads every sensor z-scored with its own training
    mean and std; forecasts come back in the units of the data (the untrained "change" model
    repeats the last value exactly); outside the trial the base's one mean and std serve."""
    import torch

    from stvlm._base import BaseWindowForecaster
    from stvlm.baselines import STIDForecaster
    from stvlm.data import as_windows

    rng = np.random.default_rng(0)
    levels, spreads = np.array([10.0, 300.0, 2000.0]), np.array([1.0, 40.0, 5.0])
    s = levels + spreads * (np.sin(2 * np.pi * np.arange(300) / 24)[:, None] + 0.3 * rng.normal(size=(300, 3)))
    make = lambda: STIDForecaster(history=6, horizon=2, steps_per_day=24, max_epochs=1,  # noqa: E731
                                  learning_rate=1e-12, ema_decay=None, random_state=0)
    original = BaseWindowForecaster._inputs
    with tune._with_sensor_scale(True):
        model = make().fit(s)
        windows = as_windows(s[:200], history=6, horizon=2, steps_per_day=24, start="2020-01-01")
        (x, *_) = model._inputs(windows, np.arange(len(windows)), torch.device("cpu"))
        x = x.numpy()
        np.testing.assert_allclose(x.mean(axis=(0, 1)), 0, atol=0.1)
        np.testing.assert_allclose(x.std(axis=(0, 1)), 1, atol=0.1)
        np.testing.assert_allclose(model._sensor_mean, s[:200].mean(axis=0), rtol=0.05)
        pred = model.predict(windows)
        np.testing.assert_allclose(pred, np.repeat(windows.X[:, -1:], 2, axis=1), rtol=1e-5, atol=1e-3)
    assert BaseWindowForecaster._inputs is original
    plain = make().fit(s)
    (x, *_) = plain._inputs(windows, np.arange(len(windows)), torch.device("cpu"))
    assert x.numpy().std(axis=(0, 1)).max() < 0.1  # one std for all, set by the gaps between levels
