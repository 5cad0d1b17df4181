"""The long-term baselines DLinear and PatchTST: their pieces against hand-written
definitions (moving average, decomposition, patches, RevIN), what they learn, and the
estimator contract (shapes, parameters, clone, seeds, pickling)."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone

from stvlm import make_windows
from stvlm.baselines import DLinearForecaster, LSTMForecaster, PatchTSTForecaster
from stvlm.baselines._long_term_modules import DLinearModule, PatchTSTModule, RevIN, moving_average
from stvlm.baselines._patchtst import n_patches


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def noisy_series(T=400, N=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    return 5 + np.sin(2 * np.pi * t / 24)[:, None] * np.arange(1, N + 1) + 0.1 * rng.standard_normal((T, N))


def np_moving_average(x, k):
    """Centred mean over k steps of a 1-D x, its first/last value repeated at the edges."""
    pad = (k - 1) // 2
    padded = np.concatenate([np.full(pad, x[0]), x, np.full(pad, x[-1])])
    return np.array([padded[i : i + k].mean() for i in range(len(x))])


# ---------------------------------------------------------------------- DLinear
@pytest.mark.parametrize(("L", "k"), [(40, 25), (30, 1), (5, 7), (96, 25)])
def test_moving_average_is_the_edge_replicated_mean(L, k):
    x = np.random.default_rng(L).normal(size=(2, 3, L))
    got = moving_average(torch.tensor(x), k).numpy()
    want = np.array([[np_moving_average(s, k) for s in row] for row in x])
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_moving_average_by_hand():
    # k=3 on [0, 3, 6, 9]: padded [0, 0, 3, 6, 9, 9].
    got = moving_average(torch.tensor([[0.0, 3.0, 6.0, 9.0]], dtype=torch.float64), 3)
    np.testing.assert_allclose(got.numpy(), [[1.0, 3.0, 6.0, 8.0]])


@pytest.mark.parametrize("individual", [False, True])
def test_dlinear_is_two_linear_maps_of_the_decomposition(individual):
    B, L, H, N, k = 4, 20, 6, 3, 5
    torch.manual_seed(0)
    module = DLinearModule(L, H, k, N if individual else None).double()
    with torch.no_grad():  # biases away from their small initial values
        module.seasonal.bias.normal_()
        module.trend.bias.normal_()
    x = np.random.default_rng(1).normal(size=(B, L, N))
    got = module(torch.tensor(x)).detach().numpy()

    Ws, bs = module.seasonal.weight.detach().numpy(), module.seasonal.bias.detach().numpy()
    Wt, bt = module.trend.weight.detach().numpy(), module.trend.bias.detach().numpy()
    want = np.empty((B, H, N))
    for b in range(B):
        for n in range(N):
            trend = np_moving_average(x[b, :, n], k)
            season = x[b, :, n] - trend
            if individual:
                want[b, :, n] = Ws[n] @ season + bs[n] + Wt[n] @ trend + bt[n]
            else:
                want[b, :, n] = Ws @ season + bs + Wt @ trend + bt
    assert got.shape == (B, H, N)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    if individual:
        assert module.seasonal.weight.shape == (N, H, L)


@pytest.mark.parametrize(("output", "epochs"), [("level", 200), ("change", 100)])
def test_dlinear_learns_to_extrapolate_a_line(output, epochs):
    # Every window of a straight line is continued by one fixed linear map of the window
    # (shared by all channels): DLinear holds it exactly, so training must find it.
    T, L, H = 300, 8, 4
    t = np.arange(T, dtype=float)
    series = np.column_stack([0.02 * t, 3 - 0.01 * t, 1 + 0.015 * t])
    model = DLinearForecaster(
        history=L, horizon=H, moving_average=3, max_epochs=epochs, patience=epochs, learning_rate=3e-2,
        lr_schedule="plateau", lr_patience=10, validation_fraction=0, output=output, random_state=0,
    ).fit(series)
    s = np.arange(L + H, dtype=float)
    fresh = np.column_stack([2 + 0.012 * s, 4 - 0.005 * s])[:, [0, 1, 0]]  # new lines, within the slopes seen
    X, y = fresh[None, :L], fresh[None, L:]
    err = np.abs(model.predict(X) - y).max()
    assert err < 5e-3, err
    # The last value (what a model that learned little falls back on) is 10 times further off.
    assert np.abs(X[:, -1:] - y).max() > 0.04


def test_dlinear_change_starts_at_the_last_value():
    model = DLinearForecaster(history=12, horizon=4, output="change")
    module = model._build_module(3)
    x = torch.randn(2, 12, 3)
    assert torch.equal(module(x), torch.zeros(2, 4, 3))


# ---------------------------------------------------------------------- PatchTST pieces
@pytest.mark.parametrize(("L", "p", "s", "expected"), [(96, 16, 8, 12), (336, 16, 8, 42), (30, 8, 4, 7), (24, 24, 5, 2)])
def test_patch_count(L, p, s, expected):
    assert n_patches(L, p, s) == expected
    module = PatchTSTModule(L, 5, 2, patch_len=p, stride=s, d_model=8, n_heads=2, n_layers=1, d_ff=8)
    assert module.patches(torch.zeros(3, L)).shape == (3, expected, p)
    assert module.head.in_features == expected * 8


def test_patches_pad_the_end_with_the_last_value():
    L, p, s = 30, 8, 4
    module = PatchTSTModule(L, 5, 1, patch_len=p, stride=s, d_model=8, n_heads=2, n_layers=1, d_ff=8)
    x = torch.arange(1.0, L + 1).reshape(1, L)
    got = module.patches(x)[0].numpy()
    padded = np.concatenate([np.arange(1.0, L + 1), np.full(s, float(L))])
    want = np.array([padded[i * s : i * s + p] for i in range(7)])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[-1], [25, 26, 27, 28, 29, 30, 30, 30])  # padded[24:32]


def test_revin_normalises_each_window_and_channel_and_inverts():
    x = torch.tensor(np.random.default_rng(0).normal(3, 2, size=(4, 50, 3)))
    revin = RevIN(3, affine=False).double()
    z, stats = revin.normalize(x)
    np.testing.assert_allclose(z.mean(dim=1).numpy(), 0, atol=1e-12)
    xn = x.numpy()
    want_std = np.sqrt(xn.var(axis=1) + 1e-5)  # population variance, as RevIN
    np.testing.assert_allclose((x - x.mean(1, keepdim=True)).numpy() / want_std[:, None], z.numpy(), rtol=1e-12)
    np.testing.assert_allclose(revin.denormalize(z, stats).numpy(), xn, rtol=1e-10)
    np.testing.assert_allclose(revin.denormalize(z, stats, shift=False).numpy(), (z * stats[1]).numpy())


def _module(revin=True, affine=False, norm="batch", change=False, N=3):
    torch.manual_seed(0)
    module = PatchTSTModule(24, 6, N, patch_len=8, stride=4, d_model=8, n_heads=2, n_layers=2, d_ff=16,
                            norm=norm, revin=revin, affine=affine, change=change).double()
    if affine:
        with torch.no_grad():
            module.revin.weight.uniform_(0.5, 2)
            module.revin.bias.normal_()
    return module.eval()


@pytest.mark.parametrize(("affine", "norm"), [(False, "batch"), (True, "batch"), (False, "layer")])
def test_revin_makes_the_forecast_shift_and_scale_with_the_input(affine, norm):
    module = _module(affine=affine, norm=norm)
    x = torch.tensor(np.random.default_rng(2).normal(size=(5, 24, 3)))
    a = torch.tensor([3.0, 0.5, 7.0], dtype=torch.float64)  # per channel: RevIN is per channel
    c = torch.tensor([10.0, -4.0, 0.25], dtype=torch.float64)
    with torch.no_grad():
        base, moved = module(x), module(a * x + c)
    np.testing.assert_allclose(moved.numpy(), (a * base + c).numpy(), rtol=1e-4, atol=1e-4)


def test_without_revin_the_forecast_does_not_follow_a_shift():
    module = _module(revin=False)
    x = torch.tensor(np.random.default_rng(2).normal(size=(5, 24, 3)))
    with torch.no_grad():
        assert not torch.allclose(module(x + 10), module(x) + 10, atol=1e-2)


def test_change_output_rescales_without_shifting():
    module = _module(change=True)
    x = torch.tensor(np.random.default_rng(3).normal(size=(5, 24, 3)))
    with torch.no_grad():
        np.testing.assert_allclose(module(3 * x + 5).numpy(), 3 * module(x).numpy(), rtol=1e-4, atol=1e-4)
        module.head.weight.zero_()
        module.head.bias.zero_()
        assert torch.equal(module(x), torch.zeros(5, 6, 3, dtype=torch.float64))  # no change: the last value


@pytest.mark.parametrize("make", [lambda: _module(), lambda: DLinearModule(24, 6, 5).double().eval()])
def test_channels_never_mix(make):
    module = make()
    x = torch.tensor(np.random.default_rng(4).normal(size=(5, 24, 3)))
    y = x.clone()
    y[:, :, 1] = 100 * torch.randn(5, 24, dtype=torch.float64)
    with torch.no_grad():
        a, b = module(x), module(y)
    np.testing.assert_allclose(a[:, :, [0, 2]].numpy(), b[:, :, [0, 2]].numpy(), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(a[:, :, 1], b[:, :, 1])


# ---------------------------------------------------------------------- estimators
TINY_PATCHTST = {"patch_len": 8, "stride": 4, "d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16, "batch_size": 32}
MODELS = {
    "dlinear": lambda **kw: DLinearForecaster(history=24, horizon=12, max_epochs=2, **kw),
    "dlinear-individual": lambda **kw: DLinearForecaster(history=24, horizon=12, max_epochs=2, individual=True, **kw),
    "patchtst": lambda **kw: PatchTSTForecaster(history=24, horizon=12, max_epochs=2, **TINY_PATCHTST, **kw),
}


@pytest.fixture(scope="module")
def fitted():
    series = noisy_series()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: make(random_state=0).fit(series) for name, make in MODELS.items()}
    finally:
        torch.set_num_threads(n)


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_predict_shapes_and_score(name, fitted):
    series = noisy_series()
    model = fitted[name]
    X, y = make_windows(series, history=24, horizon=12)
    pred = model.predict(X[:7])
    assert pred.shape == (7, 12, 3) and np.isfinite(pred).all()
    assert model.n_features_in_ == 3 and len(model.loss_history_) == 2
    assert np.isfinite(model.score(X, y))


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_model_other_seed_other_model(name, fitted):
    series = noisy_series()
    X = series[None, -24:]
    again = MODELS[name](random_state=0).fit(series)
    np.testing.assert_array_equal(again.predict(X), fitted[name].predict(X))
    other = MODELS[name](random_state=1).fit(series)
    assert not np.allclose(other.predict(X), fitted[name].predict(X))


def test_fitted_patchtst_scales_with_the_data(fitted):
    # RevIN (and the z-score before it) make a level forecast move with a * X + c.
    X = noisy_series()[None, -30:-6]
    model = fitted["patchtst"]
    np.testing.assert_allclose(model.predict(2 * X + 7), 2 * model.predict(X) + 7, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", list(MODELS))
def test_pickle_round_trip(name, fitted):
    X = noisy_series()[None, -24:]
    again = pickle.loads(pickle.dumps(fitted[name]))
    np.testing.assert_array_equal(again.predict(X), fitted[name].predict(X))


def test_unpickles_in_a_fresh_process_and_import_needs_no_torch(tmp_path, fitted):
    # A fresh process finds the torch modules by name (stvlm.baselines._long_term_modules).
    X = noisy_series()[None, -24:]
    (tmp_path / "m.pkl").write_bytes(pickle.dumps([fitted["dlinear-individual"], fitted["patchtst"]]))
    np.save(tmp_path / "x.npy", X)
    code = (
        "import sys, pickle, numpy as np; import stvlm.baselines; assert 'torch' not in sys.modules; "
        f"ms = pickle.load(open({str(tmp_path / 'm.pkl')!r}, 'rb')); x = np.load({str(tmp_path / 'x.npy')!r}); "
        f"np.save({str(tmp_path / 'p.npy')!r}, np.stack([m.predict(x) for m in ms]))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    want = np.stack([fitted["dlinear-individual"].predict(X), fitted["patchtst"].predict(X)])
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), want)


@pytest.mark.parametrize("cls", [DLinearForecaster, PatchTSTForecaster])
def test_get_params_and_clone_round_trip(cls):
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    model = cls(history=48, horizon=24, batch_size=16, loss="mae", null_value=0.0, random_state=3)
    params = model.get_params()
    assert sorted(params) == sorted(names)
    assert params["loss"] == "mae" and params["history"] == 48 and params["null_value"] == 0.0
    assert clone(model).get_params() == params
    assert cls().get_params()["loss"] == "mse" and cls().get_params()["null_value"] is None
    shared = set(inspect.signature(LSTMForecaster.__init__).parameters)
    shared -= {"self", "hidden_size", "num_layers", "dropout"}
    assert shared <= set(names)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: PatchTSTForecaster(history=12, horizon=4, patch_len=16), "patch_len"),
        (lambda: PatchTSTForecaster(history=24, horizon=4, patch_len=8, stride=0), "stride"),
        (lambda: PatchTSTForecaster(history=24, horizon=4, patch_len=8, d_model=10, n_heads=4), "n_heads"),
        (lambda: PatchTSTForecaster(history=24, horizon=4, patch_len=8, norm="group"), "norm"),
        (lambda: PatchTSTForecaster(history=24, horizon=4, patch_len=8, dropout=1.0), "dropout"),
        (lambda: DLinearForecaster(history=24, horizon=4, moving_average=4), "moving_average"),
        (lambda: DLinearForecaster(history=24, horizon=4, moving_average=0), "moving_average"),
        (lambda: DLinearForecaster(history=24, horizon=4, loss="huber"), "loss"),
    ],
)
def test_bad_parameters_are_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make().fit(noisy_series(T=100))


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: DLinearForecaster(history=24, horizon=4, individual="yes"), "individual"),
        (lambda: PatchTSTForecaster(history=24, horizon=4, patch_len=8, revin=1), "revin"),
        (lambda: PatchTSTForecaster(history=24, horizon=4, patch_len=8.0), "patch_len"),
    ],
)
def test_parameters_of_the_wrong_type_are_refused_by_name(make, name):
    with pytest.raises(TypeError, match=name):
        make().fit(noisy_series(T=100))
