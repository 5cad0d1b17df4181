"""Time-VLM: its learners checked against definitions written here, the network's
invariances, the estimator's cache, ablations and errors. Backbones are tiny random
configs (tests/test_timevlm_backbones.py checks the VLMs themselves)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from stvlm import TimeVLMForecaster
from stvlm.timevlm import (
    LearnableImage,
    PatchEmbedding,
    RetrievalAugmentedLearner,
    TimeVLMNetwork,
    load_vlm,
    make_prompts,
    minmax_scale,
    n_patches,
    series_to_image,
    tiny_vlm_config,
)
from stvlm.timevlm._images import _fold

L, H = 48, 12


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    t = np.arange(400)[:, None]
    return 5 + np.sin(2 * np.pi * t / 24 + np.arange(3)) + 0.1 * rng.standard_normal((400, 3))


def tiny(**kw):
    params = dict(history=L, horizon=H, backbone="tiny", d_model=16, max_epochs=2, random_state=0, verbose=0)
    params.update(kw)
    return TimeVLMForecaster(**params)


def network(image="fixed", text=True, memory=True, seed=0):
    torch.manual_seed(seed)
    vlm = load_vlm("vilt", tiny_vlm_config("vilt"))
    return TimeVLMNetwork(
        vlm, history=L, horizon=H, d_model=16, n_heads=4, patch_len=16, stride=8, top_k=3, memory_size=10,
        dropout=0.0, norm_const=0.4, image=image, text=text, memory=memory, periodicity=24, description=None,
    ).eval()


# ------------------------------------------------------------------ RAL
def test_patches_pad_the_end_with_the_last_value():
    emb = PatchEmbedding(history=20, patch_len=8, stride=4, d_model=8, dropout=0.0)
    with torch.no_grad():
        emb.value.weight.copy_(torch.eye(8))
    x = torch.arange(20.0).reshape(1, 20, 1)
    patches = emb(x) - emb.position
    padded = list(range(20)) + [19] * 4
    expected = [padded[s : s + 8] for s in range(0, 24 - 8 + 1, 4)]
    assert patches.shape == (1, n_patches(20, 8, 4), 8) == (1, len(expected), 8)
    np.testing.assert_allclose(patches[0].detach().numpy(), np.array(expected, dtype=np.float32), atol=1e-5)


def test_memory_is_a_circular_buffer_written_only_while_training():
    ral = RetrievalAugmentedLearner(16, 4, d_model=4, patch_len=8, stride=4, n_heads=1, top_k=2, memory_size=5,
                                    dropout=0.0)
    vectors = torch.arange(7 * 4, dtype=torch.float32).reshape(7, 4)
    ral._remember(vectors[:3])
    ral._remember(vectors[3:])  # 7 written into 5 slots: slots 0, 1 hold the 6th and 7th
    expected = torch.stack([vectors[5], vectors[6], vectors[2], vectors[3], vectors[4]])
    assert torch.equal(ral.memory, expected) and int(ral.memory_next) == 2
    before = ral.memory.clone()
    ral.eval()
    ral(torch.randn(3, 16, 2))
    assert torch.equal(ral.memory, before)
    ral.train()
    ral(torch.randn(3, 16, 2))
    assert not torch.equal(ral.memory, before)


def test_local_memory_reads_the_most_similar_entries():
    torch.manual_seed(0)
    ral = RetrievalAugmentedLearner(16, 4, d_model=4, patch_len=8, stride=4, n_heads=1, top_k=1, memory_size=3,
                                    dropout=0.0).eval()
    x = torch.randn(1, 16, 1)
    pooled = ral.patches(x).mean(dim=1)[0]
    with torch.no_grad():
        ral.memory.copy_(torch.stack([-pooled, pooled, torch.zeros(4)]))
        out = ral(x)
        # Moving the entries retrieval does not pick leaves the forecast unchanged...
        ral.memory[0] = -2 * pooled
        assert torch.equal(ral(x)[0], out[0])
        # ... while the one it picks changes it.
        ral.memory[1] = 2 * pooled
        assert not torch.allclose(ral(x)[0], out[0])


# ------------------------------------------------------------------ VAL
def test_fold_puts_one_period_per_column_and_pads_the_start():
    x = torch.arange(50.0).reshape(1, 50, 1)
    fold = _fold(x, 24)[0, 0]  # 50 steps -> 22 padded + 72 = 3 periods
    assert fold.shape == (24, 3)
    padded = [0.0] * 22 + list(range(50))
    for r in range(24):
        for c in range(3):
            assert fold[r, c] == padded[c * 24 + r]


def test_fixed_image_channels_are_the_fold_its_spectrum_and_a_coarse_scale():
    x = torch.randn(2, 48, 3)
    img = series_to_image(x, image_size=24, periodicity=24)
    assert img.shape == (2, 3, 24, 24)
    assert torch.isclose(img.flatten(1).min(1).values, torch.zeros(2)).all()
    assert torch.isclose(img.flatten(1).max(1).values, torch.ones(2)).all()
    # Channel 1 is the magnitude of a Fourier transform: its columns pair up (|X_k| = |X_{n-k}|)
    # after the fold of 2 periods is stretched, so the image is the same read left to right
    # only where the series repeats; a series repeating every period has a spectrum only in column 0.
    periodic = torch.sin(torch.arange(48.0) * 2 * torch.pi / 24).reshape(1, 48, 1)
    fold = _fold(periodic, 24)
    spectrum = torch.fft.fft(fold, dim=-1).abs()
    assert torch.allclose(spectrum[..., 1], torch.zeros(1), atol=1e-5)


def test_minmax_scale_is_differentiable_and_maps_constant_images_to_zero():
    img = torch.tensor([[[[1.0, 3.0], [2.0, 5.0]]]], requires_grad=True)
    out = minmax_scale(img)
    out.sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()
    assert torch.equal(minmax_scale(torch.full((1, 3, 2, 2), 7.0)), torch.zeros(1, 3, 2, 2))


def test_learnable_image_trains_through_the_frozen_vlm(series):
    model = tiny(image="learnable", max_epochs=1)
    torch.manual_seed(0)
    untrained = LearnableImage(32, 24).conv1d.weight.detach().clone()
    model.fit(series)
    trained = model.module_.learnable_image.conv1d.weight
    assert untrained.shape == trained.shape and not torch.allclose(untrained, trained)
    assert not any(p.requires_grad for p in model.module_.vlm.parameters())


# ------------------------------------------------------------------ TAL
def test_prompt_statistics():
    x = torch.tensor([[[4.0, 1.0], [2.0, -3.0], [0.0, 0.5]]])  # the first variable falls 4, the second rises
    prompt = make_prompts(x, history=3, horizon=2, description="Some data.")[0]
    assert prompt.startswith("Forecast the next 2 steps using the past 3 steps. ")
    # median of {4, 1, 2, -3, 0, 0.5}: the lower middle value, 0.5; trend -4 - 0.5 < 0
    assert "min -3.000, max 4.000, median 0.500, trend downward." in prompt
    assert prompt.endswith("Some data.")


# ------------------------------------------------------------------ network
def test_forecast_moves_with_the_level_and_scale_of_the_window():
    net = network()
    x = torch.randn(2, L, 3) * 3
    with torch.no_grad():
        y = net(x)
        np.testing.assert_allclose(net(x + 10.0).numpy(), (y + 10.0).numpy(), atol=1e-4)
        np.testing.assert_allclose(net(x * 4.0).numpy(), (y * 4.0).numpy(), rtol=1e-3, atol=1e-3)


def test_cached_vectors_give_the_forecast_computed_in_the_forward_pass():
    net = network()
    x = torch.randn(4, L, 3)
    with torch.no_grad():
        features = net.vlm_features(net.normalise(x)[0])
        assert torch.allclose(net(x, features), net(x), atol=1e-6)


@pytest.mark.parametrize("kw, reads", [(dict(memory=False), "memory"), (dict(text=False), "text"),
                                       (dict(image=None), "image")])
def test_ablations_leave_their_learner_out(kw, reads):
    net = network(**kw)
    x = torch.randn(2, L, 3)
    with torch.no_grad():
        y = net(x)
        if reads == "memory":
            net.ral.memory.normal_()  # what the full model would retrieve
            assert torch.equal(net(x), y)
            full = network()
            before = full(x)
            full.ral.memory.normal_()
            assert not torch.allclose(full(x), before)
        else:
            part = slice(0, net.vlm.vision_dim) if reads == "image" else slice(net.vlm.vision_dim, None)
            assert torch.count_nonzero(net.vlm_features(net.normalise(x)[0])[:, part]) == 0


# ------------------------------------------------------------------ estimator
def test_fit_predict_and_the_fixed_image_cache(series):
    model = tiny().fit(series)
    windows = series[None, -L:]
    y = model.predict(windows)
    assert y.shape == (1, H, 3) and np.isfinite(y).all()
    assert model.best_epoch_ >= 1 and len(model.loss_history_) == 2
    # the same forecast again: the memory is not written at predict time
    assert np.array_equal(model.predict(windows), y)
    assert float(model.module_.ral.memory.abs().sum()) > 0  # filled while training


def test_same_seed_same_model(series):
    a = tiny(max_epochs=1).fit(series).predict(series[None, -L:])
    b = tiny(max_epochs=1).fit(series).predict(series[None, -L:])
    assert np.array_equal(a, b)


def test_trains_on_mse_by_default_and_mae_on_request(series):
    mse = tiny(max_epochs=1).fit(series)
    mae = tiny(max_epochs=1, loss="mae").fit(series)
    assert mse.loss == "mse" and mae.loss == "mae"
    assert mse.loss_history_[0]["train_loss"] != mae.loss_history_[0]["train_loss"]


def test_beats_the_last_value_on_a_daily_cycle(series):
    model = tiny(max_epochs=5, learning_rate=3e-3).fit(series[:300])
    X = np.stack([series[s : s + L] for s in range(300, 400 - L - H + 1)])
    y = np.stack([series[s + L : s + L + H] for s in range(300, 400 - L - H + 1)])
    mse = float(((model.predict(X) - y) ** 2).mean())
    last = float(((X[:, -1:, :] - y) ** 2).mean())
    assert mse < 0.5 * last


def test_pickle_and_clone(series):
    model = tiny(max_epochs=1).fit(series)
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict(series[None, -L:]), model.predict(series[None, -L:]))
    assert clone(model).get_params() == model.get_params()


def test_presets():
    cpu = TimeVLMForecaster.from_preset("cpu", horizon=192)
    assert (cpu.horizon, cpu.image, cpu.backbone, cpu.vlm) == (192, "fixed", "tiny", "vilt")
    # cpu: the cosine rate runs to its end (patience = the epoch cap); paper: patience 3
    assert (cpu.patience, cpu.max_epochs, cpu.min_steps_per_epoch, cpu.dropout) == (10, 10, 30, 0.3)
    assert TimeVLMForecaster().patience == 10
    paper = TimeVLMForecaster.from_preset("paper")
    assert (paper.image, paper.d_model, paper.max_epochs, paper.history) == ("learnable", 128, 10, 512)
    assert (paper.patience, paper.min_steps_per_epoch, paper.dropout) == (3, None, 0.1)
    with pytest.raises(ValueError, match="unknown preset 'gpu'"):
        TimeVLMForecaster.from_preset("gpu")


@pytest.mark.parametrize("kw, match", [
    (dict(vlm="gpt"), "vlm must be one of"),
    (dict(image="gaf"), "image must be one of"),
    (dict(d_model=10, n_heads=4), "multiple of n_heads"),
    (dict(patch_len=64), "patch_len=64 is longer than the window"),
    (dict(top_k=0), "top_k"),
    (dict(norm_const=0), "norm_const"),
    (dict(loss="huber"), "loss must be one of"),
])
def test_bad_parameters(series, kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw).fit(series)


def test_bad_switches_and_description(series):
    with pytest.raises(TypeError, match="text must be True or False"):
        tiny(text="yes").fit(series)
    with pytest.raises(TypeError, match="description must be None or a str"):
        tiny(description=3).fit(series)


def test_too_few_variables_at_predict(series):
    model = tiny(max_epochs=1).fit(series)
    with pytest.raises(ValueError, match="expecting 3 features"):
        model.predict(series[None, -L:, :2])


def test_constant_variables_and_missing_values_give_finite_forecasts(series):
    data = series.copy()
    data[:, 1] = 7.0  # a variable that never moves: RevIN divides by sqrt(1e-5), not 0
    data[50:60, 0] = np.nan  # missing values: masked in the loss, filled in the inputs
    model = tiny(max_epochs=1).fit(data)
    window = data[None, -L:].copy()
    window[0, 5, 2] = np.nan
    y = model.predict(window)
    assert np.isfinite(y).all()
    # a flat window forecasts its level, up to RevIN's floor sqrt(1e-5) / 0.4 times the normalised forecast
    np.testing.assert_allclose(y[0, :, 1], 7.0, atol=1e-2)


def test_missing_pretrained_weights_say_how_to_get_them(series, monkeypatch, tmp_path):
    from stvlm.network import BackboneNotAvailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneNotAvailableError, match="Ways out"):
        tiny(backbone=None, vlm="clip").fit(series)
    with pytest.raises(BackboneNotAvailableError, match="no such local directory"):
        tiny(backbone=str(tmp_path / "nowhere")).fit(series)
