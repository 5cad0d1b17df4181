"""Tests of stvlm.metrics: masked metrics against brute-force references, masks,
errors, per-horizon figures and the scikit-learn scorers."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from stvlm.metrics import (
    get_scorer,
    horizon_metrics,
    mae_scorer,
    mape_scorer,
    masked_mae,
    masked_mape,
    masked_rmse,
    rmse_scorer,
)


# ------------------------------------------------------------------ brute force
def _brute(y_true, y_pred, null_value=0.0, threshold=None, kind="mae"):
    """Element-by-element reference, written independently of stvlm.metrics."""
    errs = []
    for t, p in zip(np.ravel(y_true).tolist(), np.ravel(y_pred).tolist()):
        if math.isnan(t):
            continue
        if null_value is not None and t == null_value:
            continue
        if threshold is not None and abs(t) < threshold:
            continue
        if kind == "mape":
            if t == 0:
                continue
            errs.append(abs(p - t) / abs(t))
        elif kind == "rmse":
            errs.append((p - t) ** 2)
        else:
            errs.append(abs(p - t))
    mean = sum(errs) / len(errs)
    if kind == "rmse":
        return math.sqrt(mean)
    if kind == "mape":
        return 100.0 * mean
    return mean


def _random_pair(seed, shape=(7, 4, 5)):
    rng = np.random.default_rng(seed)
    y_true = rng.gamma(2.0, 50.0, size=shape)
    y_true[rng.random(shape) < 0.15] = 0.0
    y_true[rng.random(shape) < 0.10] = np.nan
    y_true[rng.random(shape) < 0.05] = 1e-9  # float noise around 0
    y_true[rng.random(shape) < 0.05] = 0.5
    y_pred = y_true + rng.normal(0.0, 20.0, size=shape)
    y_pred = np.where(np.isnan(y_pred), rng.normal(100.0, 5.0, size=shape), y_pred)
    return y_true, y_pred


FUNCS = {"mae": masked_mae, "rmse": masked_rmse, "mape": masked_mape}


@pytest.mark.parametrize("kind", ["mae", "rmse", "mape"])
@pytest.mark.parametrize(
    "null_value, threshold",
    [(0.0, None), (None, None), (0.0, 1e-6), (None, 1.0), (0.5, None), (0.0, 1.0)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_brute_force(kind, null_value, threshold, seed):
    y_true, y_pred = _random_pair(seed)
    got = FUNCS[kind](y_true, y_pred, null_value=null_value, threshold=threshold)
    want = _brute(y_true, y_pred, null_value, threshold, kind)
    assert isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.sampled_from([0.0, 1e-8, 0.3, 1.0, 2.5, 7.0, -4.0, float("nan")]),
            st.floats(-50, 50, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    ),
    threshold=st.sampled_from([None, 1e-6, 1.0]),
)
def test_metrics_match_brute_force_property(data, threshold):
    y_true = np.array([d[0] for d in data])
    y_pred = np.array([d[1] for d in data])
    for kind, f in FUNCS.items():
        try:
            want = _brute(y_true, y_pred, 0.0, threshold, kind)
        except ZeroDivisionError:  # nothing left
            with pytest.raises(ValueError, match="no valid target values"):
                f(y_true, y_pred, threshold=threshold)
            continue
        assert f(y_true, y_pred, threshold=threshold) == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_mape_is_in_percent():
    assert masked_mape([100.0, 200.0], [110.0, 180.0]) == pytest.approx(10.0)


def test_mape_always_leaves_out_zeros():
    # null_value=None keeps zeros for MAE but MAPE is undefined there.
    y_true = np.array([0.0, 10.0])
    y_pred = np.array([5.0, 12.0])
    assert masked_mae(y_true, y_pred, null_value=None) == pytest.approx(3.5)
    assert masked_mape(y_true, y_pred, null_value=None) == pytest.approx(20.0)


def test_nan_in_true_always_masked_and_nan_null_value():
    y_true = np.array([np.nan, 2.0, 4.0])
    y_pred = np.array([100.0, 3.0, 4.0])
    for nv in (0.0, None, np.nan):
        assert masked_mae(y_true, y_pred, null_value=nv) == pytest.approx(0.5)


def test_null_value_is_exact_and_threshold_catches_noise():
    y_true = np.array([1e-12, 5.0])
    y_pred = np.array([3.0, 5.0])
    # 1e-12 != 0.0 exactly: kept with the default mask ...
    assert masked_mae(y_true, y_pred) == pytest.approx(1.5)
    # ... and left out with a threshold.
    assert masked_mae(y_true, y_pred, threshold=1e-6) == 0.0
    # threshold compares |y_true|: negative values below it are left out too
    assert masked_rmse([-1e-9, -3.0], [1.0, -1.0], threshold=1e-6) == pytest.approx(2.0)


def test_nan_prediction_where_masked_is_ignored():
    y_true = np.array([0.0, np.nan, 3.0])
    y_pred = np.array([np.nan, np.inf, 4.0])
    assert masked_mae(y_true, y_pred) == 1.0
    assert masked_rmse(y_true, y_pred) == 1.0


@pytest.mark.parametrize("f", [masked_mae, masked_rmse, masked_mape])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_prediction_where_valid_raises(f, bad):
    with pytest.raises(ValueError, match="non-finite"):
        f(np.array([1.0, 2.0]), np.array([1.0, bad]))


@pytest.mark.parametrize("f", [masked_mae, masked_rmse, masked_mape])
def test_shape_mismatch_raises(f):
    with pytest.raises(ValueError, match="same shape"):
        f(np.ones((2, 3, 4)), np.ones((2, 4, 3)))


@pytest.mark.parametrize("f", [masked_mae, masked_rmse, masked_mape])
def test_all_masked_raises(f):
    with pytest.raises(ValueError, match="no valid target values after masking"):
        f(np.array([0.0, np.nan, 0.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="no valid target values"):
        f(np.array([0.5, 1e-9]), np.array([1.0, 2.0]), threshold=1.0)
    with pytest.raises(ValueError, match="no valid target values"):
        f(np.zeros((0, 3)), np.zeros((0, 3)))


def test_infinite_true_value_raises():
    with pytest.raises(ValueError, match="infinite"):
        masked_mae(np.array([np.inf, 1.0]), np.array([1.0, 1.0]))


@pytest.mark.parametrize("thr", [-1.0, np.nan, np.inf])
def test_bad_threshold_raises(thr):
    with pytest.raises(ValueError, match="threshold"):
        masked_mae([1.0], [1.0], threshold=thr)


def test_non_numeric_input_raises():
    with pytest.raises(TypeError):
        masked_mae(np.array(["a", "b"]), np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="null_value"):
        masked_mae([1.0], [1.0], null_value="0")


def test_accepts_lists_ints_and_float32():
    assert masked_mae([[1, 2], [3, 0]], [[2, 2], [3, 5]]) == pytest.approx(1 / 3)
    y = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3)
    assert masked_rmse(y, y + np.float32(0.5)) == pytest.approx(0.5)


# -------------------------------------------------------------- horizon_metrics
def test_horizon_metrics_per_step_and_overall():
    y_true, y_pred = _random_pair(3, shape=(6, 12, 4))
    res = horizon_metrics(y_true, y_pred)
    assert set(res) == {"MAE", "RMSE", "MAPE", "horizons"}
    assert list(res["horizons"]) == [3, 6, 12]
    assert res["MAE"] == pytest.approx(masked_mae(y_true, y_pred))
    assert res["RMSE"] == pytest.approx(masked_rmse(y_true, y_pred))
    assert res["MAPE"] == pytest.approx(masked_mape(y_true, y_pred))
    for h in (3, 6, 12):
        t, p = y_true[:, h - 1], y_pred[:, h - 1]
        assert res["horizons"][h] == {
            "MAE": pytest.approx(_brute(t, p, kind="mae")),
            "RMSE": pytest.approx(_brute(t, p, kind="rmse")),
            "MAPE": pytest.approx(_brute(t, p, kind="mape")),
        }


def test_horizon_metrics_separate_mape_threshold():
    y_true, y_pred = _random_pair(4, shape=(5, 3, 2))
    res = horizon_metrics(y_true, y_pred, horizons=(1,), threshold=1e-6, mape_threshold=1.0)
    assert res["MAE"] == pytest.approx(_brute(y_true, y_pred, 0.0, 1e-6, "mae"))
    assert res["RMSE"] == pytest.approx(_brute(y_true, y_pred, 0.0, 1e-6, "rmse"))
    assert res["MAPE"] == pytest.approx(_brute(y_true, y_pred, 0.0, 1.0, "mape"))
    # mape_threshold=None falls back on threshold
    res2 = horizon_metrics(y_true, y_pred, horizons=(), threshold=1.0)
    assert res2["MAPE"] == pytest.approx(res["MAPE"])
    assert res2["horizons"] == {}


def test_horizon_metrics_errors():
    y = np.ones((2, 4, 3))
    with pytest.raises(ValueError, match="out of range"):
        horizon_metrics(y, y, horizons=(5,))
    with pytest.raises(ValueError, match="out of range"):
        horizon_metrics(y, y, horizons=(0,))
    with pytest.raises(TypeError):
        horizon_metrics(y, y, horizons=(1.5,))
    with pytest.raises(ValueError, match="axis 1"):
        horizon_metrics(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="same shape"):
        horizon_metrics(y, np.ones((2, 3, 3)))


# ---------------------------------------------------------------------- scorers
class _Scaled(RegressorMixin, BaseEstimator):
    """Persistence forecast times ``a``: predicts 3-D windows."""

    def __init__(self, a=1.0, horizon=4):
        self.a = a
        self.horizon = horizon

    def fit(self, X, y):
        return self

    def predict(self, X):
        return self.a * np.repeat(X[:, -1:], self.horizon, axis=1)


def _windows(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.gamma(2.0, 10.0, size=(30, 6, 5))
    y = rng.gamma(2.0, 10.0, size=(30, 4, 5))
    y[rng.random(y.shape) < 0.1] = 0.0
    return X, y


@pytest.mark.parametrize(
    "scorer, f",
    [(mae_scorer, masked_mae), (rmse_scorer, masked_rmse), (mape_scorer, masked_mape)],
)
def test_scorers_on_3d_windows(scorer, f):
    X, y = _windows()
    est = _Scaled(0.9)
    assert scorer(est, X, y) == pytest.approx(-f(y, est.predict(X)))
    cv = KFold(3)
    scores = cross_val_score(est, X, y, scoring=scorer, cv=cv)
    want = [-f(y[te], est.predict(X[te])) for _, te in cv.split(X)]
    np.testing.assert_allclose(scores, want)


def test_get_scorer_names_and_kwargs():
    X, y = _windows(1)
    est = _Scaled(1.1)
    assert get_scorer("neg_masked_mae") is mae_scorer
    assert get_scorer("neg_masked_rmse") is rmse_scorer
    assert get_scorer("neg_masked_mape") is mape_scorer
    sc = get_scorer("neg_masked_mape", threshold=20.0)
    assert sc(est, X, y) == pytest.approx(-masked_mape(y, est.predict(X), threshold=20.0))
    sc = get_scorer("neg_masked_rmse", null_value=None)
    assert sc(est, X, y) == pytest.approx(-masked_rmse(y, est.predict(X), null_value=None))
    pickle.loads(pickle.dumps(sc))
    with pytest.raises(ValueError, match="neg_masked_mae"):
        get_scorer("mae")
    with pytest.raises(TypeError, match="null_value"):
        get_scorer("neg_masked_mae", atol=1.0)


def test_grid_search_picks_lower_error():
    X, y = _windows(2)
    y = X[:, -1:].repeat(4, axis=1) * 0.5  # the best scale factor is 0.5
    gs = GridSearchCV(_Scaled(), {"a": [0.5, 1.0, 2.0]}, scoring=get_scorer("neg_masked_mae"), cv=3)
    gs.fit(X, y)
    assert gs.best_params_ == {"a": 0.5}
    assert gs.best_score_ == pytest.approx(0.0)
