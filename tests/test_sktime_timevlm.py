"""TimeVLMSktimeForecaster: sktime's estimator checks and the wrapper's contract.

Every model is a tiny random VLM (``backbone="tiny"``) with an 8-wide memory trained for
one epoch, so each fit takes a few hundredths of a second; sktime's full
``check_estimator`` run (both test parameter sets) takes well under a minute on 2 cores.
What the wrapper shares with STVLMSktimeForecaster (stvlm/_sktime_base.py) is tested in
depth in tests/test_sktime.py; here, that it holds for the Time-VLM engine.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sktime")

from sktime.forecasting.base import ForecastingHorizon  # noqa: E402
from sktime.forecasting.model_evaluation import evaluate  # noqa: E402
from sktime.performance_metrics.forecasting import MeanAbsoluteError  # noqa: E402
from sktime.split import ExpandingWindowSplitter  # noqa: E402
from sktime.utils.estimator_checks import check_estimator  # noqa: E402

from stvlm import TimeVLMForecaster  # noqa: E402
from stvlm._sktime_base import WindowSktimeForecaster  # noqa: E402
from stvlm.data import last_window  # noqa: E402
from stvlm.sktime import STVLMSktimeForecaster, TimeVLMSktimeForecaster  # noqa: E402
from stvlm.timevlm import TIMEVLM_PRESETS  # noqa: E402

N_VARS = 3
HISTORY = 8


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one torch thread is faster on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_frame(T=120, N=N_VARS, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    values = 10 + 3 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 2 * np.pi, N)) + rng.normal(0, 0.3, (T, N))
    index = pd.date_range("2016-07-01", periods=T, freq="h")
    return pd.DataFrame(values, index=index, columns=[f"var_{i}" for i in range(N)])


def tiny(**kw):
    params = dict(history=HISTORY, backbone="tiny", patch_len=4, stride=2, d_model=8, n_heads=2, max_epochs=1,
                  batch_size=16, random_state=0, verbose=0)
    params.update(kw)
    return TimeVLMSktimeForecaster(**params)


@pytest.fixture(scope="module")
def y():
    return make_frame()


@pytest.fixture(scope="module")
def fitted(y):
    return tiny().fit(y, fh=[1, 2, 3])


# --------------------------------------------------------------------- sktime's checks
@pytest.mark.slow
def test_check_estimator_passes():
    # As for STVLMSktimeForecaster, no check is excluded: every check of sktime 1.2 runs,
    # for both test parameter sets.
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sktime/pandas deprecation chatter
        results = check_estimator(TimeVLMSktimeForecaster, raise_exceptions=True, verbose=False)
    seconds = time.perf_counter() - t0
    assert results and all(v == "PASSED" for v in results.values())
    print(f"check_estimator: {len(results)} checks passed in {seconds:.0f} s")


def test_get_test_params_are_cheap_and_valid():
    params = TimeVLMSktimeForecaster.get_test_params()
    assert isinstance(params, list) and len(params) >= 2
    for p in params:
        f = TimeVLMSktimeForecaster(**p)
        assert f.backbone == "tiny" and f.max_epochs == 1 and f.verbose == 0 and f.random_state == 0
        assert f.d_model <= 8  # cheap by construction (no wall-clock limit in a unit test)
        assert f.patch_len <= f.history
    assert {p.get("vlm", "vilt") for p in params} == {"vilt", "clip"}


# --------------------------------------------------------------------- parameters
def test_params_are_the_engines_without_horizon():
    wrapper = TimeVLMSktimeForecaster().get_params(deep=False)
    engine = TimeVLMForecaster().get_params(deep=False)
    engine.pop("horizon")
    assert wrapper == engine
    assert set(TimeVLMSktimeForecaster._engine_params()) == set(wrapper)


def test_get_params_round_trip():
    f = tiny(vlm="clip", image="learnable", memory=False, description="hourly load")
    params = f.get_params(deep=False)
    again = TimeVLMSktimeForecaster(**params)
    assert again.get_params(deep=False) == params
    assert f.clone().get_params(deep=False) == params
    f2 = TimeVLMSktimeForecaster().set_params(**params)
    assert f2.get_params(deep=False) == params
    assert "horizon" not in params
    with pytest.raises(TypeError):
        TimeVLMSktimeForecaster(horizon=3)


def test_both_faces_share_one_base_and_their_tags():
    assert issubclass(TimeVLMSktimeForecaster, WindowSktimeForecaster)
    assert issubclass(STVLMSktimeForecaster, WindowSktimeForecaster)
    tv, st = TimeVLMSktimeForecaster.get_class_tags(), STVLMSktimeForecaster.get_class_tags()
    assert set(tv["python_dependencies"]) == {"torch", "transformers"}
    assert "peft" in st["python_dependencies"]
    for tags in (tv, st):
        assert tags["requires-fh-in-fit"] is True and tags["capability:insample"] is False
        assert tags["capability:multivariate"] is True and tags["capability:missing_values"] is True
        assert tags["property:randomness"] == "derandomized"


def test_from_preset():
    f = TimeVLMSktimeForecaster.from_preset("cpu", history=96, random_state=1)
    for name, value in TIMEVLM_PRESETS["cpu"].items():
        assert getattr(f, name) == value, name
    assert f.history == 96 and f.random_state == 1
    assert TimeVLMSktimeForecaster.from_preset("paper").vlm == "clip"
    with pytest.raises(ValueError, match="known presets"):
        TimeVLMSktimeForecaster.from_preset("nope")


# --------------------------------------------------------------------- fit / predict
def test_predictions_are_the_engines_on_the_last_window(y, fitted):
    engine = fitted.forecaster_
    assert isinstance(engine, TimeVLMForecaster)
    assert engine.horizon == fitted.horizon_ == 3 and engine.n_features_in_ == N_VARS
    for name, value in fitted.get_params(deep=False).items():
        assert getattr(engine, name) == value, name
    y_pred = fitted.predict()
    expected = engine.predict(y.to_numpy()[None, -HISTORY:])[0]
    np.testing.assert_array_equal(y_pred.to_numpy(), expected)
    expected_index = pd.date_range(y.index[-1] + pd.Timedelta("1h"), periods=3, freq="h")
    pd.testing.assert_index_equal(y_pred.index, expected_index, check_names=False)
    assert list(y_pred.columns) == list(y.columns)
    # not the engine's forecast of another window
    other = engine.predict(y.to_numpy()[None, -HISTORY - 1 : -1])[0]
    assert not np.allclose(y_pred.to_numpy(), other)


def test_non_contiguous_and_absolute_fh(y):
    f = tiny().fit(y, fh=[2, 5])
    assert f.horizon_ == 5
    full = f.forecaster_.predict(last_window(y, HISTORY))[0]
    np.testing.assert_array_equal(f.predict().to_numpy(), full[[1, 4]])
    future = pd.date_range(y.index[-1] + pd.Timedelta("1h"), periods=2, freq="h")
    fh = ForecastingHorizon(future, is_relative=False)
    g = tiny().fit(y, fh=fh)
    assert g.horizon_ == 2
    y_abs = g.predict()
    np.testing.assert_array_equal(y_abs.to_numpy(), g.forecaster_.predict(last_window(y, HISTORY))[0])
    pd.testing.assert_index_equal(y_abs.index, fh.to_pandas(), check_names=False)


def test_fh_beyond_the_horizon_is_refused_as_by_the_stvlm_face(y, fitted):
    stvlm_face = STVLMSktimeForecaster(**STVLMSktimeForecaster.get_test_params()[0]).fit(y, fh=[1, 2, 3])
    for f in (fitted, stvlm_face):
        # sktime refuses another fh than fit's (requires-fh-in-fit): refit for a longer one
        with pytest.raises(ValueError, match="re-fit"):
            f.predict(fh=[1, 2, 3, 4])
        # the wrapper's own guard, for direct calls: no recursion past the fitted horizon
        with pytest.raises(ValueError, match=r"fitted to forecast steps 1 to 3.*\[4\].*Refit"):
            f._predict(ForecastingHorizon([4], is_relative=True))
    # within the horizon, the guard lets a subset through
    np.testing.assert_array_equal(
        fitted._predict(ForecastingHorizon([3], is_relative=True)).to_numpy(), fitted.predict().to_numpy()[[2]]
    )


def test_same_seed_same_forecast(y, fitted):
    pd.testing.assert_frame_equal(tiny().fit(y, fh=[1, 2, 3]).predict(), fitted.predict())


def test_update_moves_cutoff_and_window_without_refit(y):
    f = tiny().fit(y.iloc[:-10], fh=[1, 2, 3])
    engine = f.forecaster_
    weights = {k: v.clone() for k, v in engine.module_.state_dict().items()}
    f.update(y.iloc[-10:], update_params=True)
    assert f.cutoff[0] == y.index[-1] and f.forecaster_ is engine
    for k, v in engine.module_.state_dict().items():
        assert np.array_equal(v.numpy(), weights[k].numpy()), k
    expected = engine.predict(y.to_numpy()[None, -HISTORY:])[0]
    np.testing.assert_array_equal(f.predict().to_numpy(), expected)


def test_univariate_series_and_missing_values(y):
    s = y["var_0"].rename("load")
    f = tiny().fit(s, fh=[1, 2])
    y_pred = f.predict()
    assert isinstance(y_pred, pd.Series) and y_pred.name == "load" and f.forecaster_.n_features_in_ == 1
    np.testing.assert_array_equal(y_pred.to_numpy(), f.forecaster_.predict(s.to_numpy()[None, -HISTORY:, None])[0, :, 0])
    y_nan = y.copy()
    y_nan.iloc[10:20, 1] = np.nan
    y_nan.iloc[-2, 0] = np.nan  # inside the last window: filled along time
    assert np.isfinite(tiny().fit(y_nan, fh=[1, 2]).predict().to_numpy()).all()


def test_evaluate_runs_and_scores(y):
    cv = ExpandingWindowSplitter(fh=[1, 2, 3], initial_window=80, step_length=15)
    results = evaluate(tiny(), cv=cv, y=y, scoring=MeanAbsoluteError())
    assert len(results) == cv.get_n_splits(y)
    assert np.isfinite(results["test_MeanAbsoluteError"]).all()


# --------------------------------------------------------------------- errors
def test_too_short_series_says_how_many_rows(y):
    with pytest.raises(ValueError, match=r"at least history \+ horizon = 11 rows.*got 10"):
        tiny(validation_fraction=0).fit(y.iloc[:10], fh=[1, 2, 3])
    with pytest.raises(ValueError, match=r"validation_fraction=0"):
        tiny(validation_fraction=0.2).fit(y.iloc[:20], fh=[1, 2, 3])


def test_invalid_engine_parameter_is_reported_at_fit(y):
    with pytest.raises(ValueError, match="patch_len=16 is longer than the window"):
        tiny(patch_len=16).fit(y, fh=[1])
    with pytest.raises(ValueError, match="vlm must be one of"):
        tiny(vlm="llava").fit(y, fh=[1])


def test_fitted_params_list_the_engines_without_its_deprecated_alias(fitted):
    """sktime reads every public name ending in "_" of the engine; the deprecated
    ``history_`` alias is left out of ``dir`` so that this does not warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        params = fitted.get_fitted_params()
    assert "forecaster__loss_history" in params and "forecaster__history" not in params  # sktime drops the "_"
    assert "history_" not in dir(fitted.forecaster_)
    with pytest.warns(FutureWarning, match="loss_history_"):
        assert fitted.forecaster_.history_ is fitted.forecaster_.loss_history_
