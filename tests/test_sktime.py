"""STVLMSktimeForecaster: sktime's estimator checks, the wrapper's contract, evaluate.

Every model is a tiny random ViLT trained for one or two epochs on a few sensors, so
each fit takes well under a second; sktime's full ``check_estimator`` run (both test
parameter sets, ~700 checks, ~400 fits) takes about a minute on 2 cores.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sktime")

from sktime.benchmarking.forecasting import ForecastingBenchmark  # noqa: E402
from sktime.forecasting.base import ForecastingHorizon  # noqa: E402
from sktime.forecasting.model_evaluation import evaluate  # noqa: E402
from sktime.forecasting.naive import NaiveForecaster  # noqa: E402
from sktime.performance_metrics.forecasting import MeanAbsoluteError  # noqa: E402
from sktime.split import ExpandingWindowSplitter, SlidingWindowSplitter  # noqa: E402
from sktime.utils.estimator_checks import check_estimator  # noqa: E402

from stvlm.data import last_window
from stvlm import STVLMForecaster  # noqa: E402
from stvlm.data import as_windows, chronological_split, rows_needed  # noqa: E402
from stvlm.presets import MODEL_PRESETS as PRESETS  # noqa: E402
from stvlm.sktime import STVLMSktimeForecaster  # noqa: E402

TINY = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=16,
    patch_size=8,
    vocab_size=500,
)
N_SENSORS = 4
START = "2016-08-07 03:40"

# Every sktime 1.2 forecaster (NaiveForecaster too) warns on construction that the
# default of ``remember_data`` will change in 1.3 (a FutureWarning). It is sktime's, not
# ours; it cannot be filtered with a pytest mark, since sktime's own warning-suppression
# context re-enables FutureWarnings on exit.


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one torch/numba thread is faster on a shared 2-core machine.

    With two threads per process, every small op pays thread hand-off and spinning
    against the other processes on the machine (measured: ~5x slower fits).
    """
    import numba
    import torch

    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(torch_threads)
    numba.set_num_threads(numba_threads)


def make_frame(T=160, N=N_SENSORS, seed=0, start=START):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    values = 200 + 80 * np.sin(2 * np.pi * t / 48 + rng.uniform(0, 2 * np.pi, N)) + rng.normal(0, 5, (T, N))
    index = pd.date_range(start, periods=T, freq="5min")
    return pd.DataFrame(values, index=index, columns=[f"sensor_{i}" for i in range(N)])


def tiny(**kw):
    params = dict(
        history=6,
        backbone=TINY,
        max_epochs=2,
        batch_size=16,
        validation_fraction=0,
        encoder_hidden=8,
        decoder_hidden=8,
        device="cpu",
        random_state=0,
        verbose=0,
    )
    params.update(kw)
    return STVLMSktimeForecaster(**params)


@pytest.fixture(scope="module")
def y():
    return make_frame()


# --------------------------------------------------------------------- sktime's checks
@pytest.mark.slow
def test_check_estimator_passes():
    # No test is excluded: every check of sktime 1.2 runs, for both test parameter sets.
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sktime/pandas deprecation chatter
        results = check_estimator(STVLMSktimeForecaster, raise_exceptions=True, verbose=False)
    seconds = time.perf_counter() - t0
    assert results and all(v == "PASSED" for v in results.values())
    print(f"check_estimator: {len(results)} checks passed in {seconds:.0f} s")


def test_get_test_params_are_cheap_and_valid():
    params = STVLMSktimeForecaster.get_test_params()
    assert isinstance(params, list) and len(params) == 2
    for p in params:
        f = STVLMSktimeForecaster(**p)
        assert f.max_epochs == 1 and f.verbose == 0 and f.random_state == 0
        assert f.history >= 2
        # cheap by construction (no wall-clock limit in a unit test): a one-layer, 32-wide ViLT
        # on 16-pixel images, tiny LSTMs, small batches
        assert f.backbone["num_hidden_layers"] == 1 and f.backbone["hidden_size"] <= 32
        assert f.backbone["image_size"] <= 16 and f.encoder_hidden <= 8 and f.decoder_hidden <= 8
    # the second set exercises the paper's ablations
    assert params[1]["fusion"] is None and params[1]["finetune"] is None


# --------------------------------------------------------------------- parameters
def test_params_are_the_engines_without_horizon():
    wrapper = STVLMSktimeForecaster().get_params(deep=False)
    engine = STVLMForecaster().get_params(deep=False)
    engine.pop("horizon")
    assert wrapper == engine


def test_tags():
    tags = STVLMSktimeForecaster.get_class_tags()
    assert tags["y_inner_mtype"] == "pd.DataFrame"
    assert tags["capability:multivariate"] is True
    assert tags["capability:exogenous"] is False
    assert tags["requires-fh-in-fit"] is True
    assert tags["capability:insample"] is False
    assert tags["capability:pred_int"] is False
    assert tags["capability:missing_values"] is True
    assert tags["capability:update"] is True
    assert tags["property:randomness"] == "derandomized"
    assert tags["capability:random_state"] is True
    assert set(tags["python_dependencies"]) == {"torch", "transformers", "peft"}


def test_from_preset():
    f = STVLMSktimeForecaster.from_preset("cpu", history=8, random_state=1)
    assert f.backbone == PRESETS["cpu"]["backbone"] and f.backbone is not PRESETS["cpu"]["backbone"]
    assert f.max_epochs == PRESETS["cpu"]["max_epochs"]
    assert f.history == 8 and f.random_state == 1
    with pytest.raises(ValueError, match="known presets"):
        STVLMSktimeForecaster.from_preset("nope")


# --------------------------------------------------------------------- fit / predict
@pytest.fixture(scope="module")
def fitted(y):
    return tiny().fit(y, fh=[1, 2, 3])


def test_fit_predict_frame_with_datetime_index(y, fitted):
    y_pred = fitted.predict()
    expected_index = pd.date_range(y.index[-1] + pd.Timedelta("5min"), periods=3, freq="5min")
    assert isinstance(y_pred, pd.DataFrame)
    assert y_pred.shape == (3, N_SENSORS)
    assert list(y_pred.columns) == list(y.columns)
    pd.testing.assert_index_equal(y_pred.index, expected_index, check_names=False)
    assert np.isfinite(y_pred.to_numpy()).all()


def test_engine_is_the_fitted_stvlm_forecaster(y, fitted):
    engine = fitted.forecaster_
    assert isinstance(engine, STVLMForecaster)
    assert engine.horizon == fitted.horizon_ == 3
    assert engine.n_features_in_ == N_SENSORS
    params = engine.get_params(deep=False)
    for name, value in fitted.get_params(deep=False).items():
        assert params[name] == value
    # the engine saw the whole training frame: its scaling is that of the training windows
    assert "forecaster" in fitted.get_fitted_params()


def test_predictions_are_the_engines_on_the_last_window(y, fitted):
    window = last_window(y, fitted.history)  # the last rows, dated by y's index
    assert fitted.forecaster_.calendar_ == "time-of-day"
    expected = fitted.forecaster_.predict(window)[0]
    np.testing.assert_array_equal(fitted.predict().to_numpy(), expected)


def test_non_contiguous_fh_picks_the_requested_steps(y):
    f = tiny().fit(y, fh=[2, 5])
    assert f.horizon_ == 5
    y_pred = f.predict()
    full = f.forecaster_.predict(last_window(y, f.history))[0]
    np.testing.assert_array_equal(y_pred.to_numpy(), full[[1, 4]])
    step = pd.Timedelta("5min")
    assert list(y_pred.index) == [y.index[-1] + 2 * step, y.index[-1] + 5 * step]


def test_absolute_fh(y):
    future = pd.date_range(y.index[-1] + pd.Timedelta("5min"), periods=2, freq="5min")
    fh = ForecastingHorizon(future, is_relative=False)
    f = tiny().fit(y, fh=fh)
    y_pred = f.predict()
    pd.testing.assert_index_equal(y_pred.index, fh.to_pandas(), check_names=False)
    assert f.horizon_ == 2


def test_same_seed_same_forecast(y, fitted):
    again = tiny().fit(y, fh=[1, 2, 3])
    pd.testing.assert_frame_equal(again.predict(), fitted.predict())


def test_update_moves_cutoff_and_window_without_refit(y, fitted):
    f = fitted.clone().fit(y.iloc[:-10], fh=[1, 2, 3])
    engine = f.forecaster_
    weights = {k: v.clone() for k, v in engine.network_.state_dict().items()}
    f.update(y.iloc[-10:], update_params=True)  # no retraining, whatever update_params
    assert f.cutoff[0] == y.index[-1]
    assert f.forecaster_ is engine
    for k, v in engine.network_.state_dict().items():
        assert np.array_equal(v.numpy(), weights[k].numpy()), k
    y_pred = f.predict()
    assert y_pred.index[0] == y.index[-1] + pd.Timedelta("5min")
    expected = engine.predict(last_window(y, f.history))[0]
    np.testing.assert_array_equal(y_pred.to_numpy(), expected)


def test_remember_data_is_off_by_default_and_can_be_turned_on(y):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning about remember_data from us
        f = tiny()
    assert f.get_config()["remember_data"] is False
    f.fit(y.iloc[:-5], fh=[1])
    assert f._y is None  # only the forecaster's own copy of the rows
    on = tiny().set_config(remember_data=True)
    on.fit(y.iloc[:-5], fh=[1])
    on.update(y.iloc[-5:], update_params=False)
    pd.testing.assert_frame_equal(on._y, y)
    f.update(y.iloc[-5:], update_params=False)
    pd.testing.assert_frame_equal(f.predict(), on.predict())
    expected = f.forecaster_.predict(last_window(y, f.history))[0]
    np.testing.assert_array_equal(f.predict().to_numpy(), expected)


def test_univariate_series_is_one_sensor(y):
    s = y["sensor_0"].rename("flow")
    f = tiny().fit(s, fh=[1, 2])
    y_pred = f.predict()
    assert isinstance(y_pred, pd.Series) and y_pred.name == "flow"
    assert len(y_pred) == 2 and f.forecaster_.n_features_in_ == 1
    expected = f.forecaster_.predict(last_window(s.to_frame(), f.history))[0, :, 0]
    np.testing.assert_array_equal(y_pred.to_numpy(), expected)


def test_missing_values_are_accepted(y):
    y_nan = y.copy()
    y_nan.iloc[10:20, 1] = np.nan
    y_nan.iloc[-2, 0] = np.nan  # inside the last window: filled along time
    f = tiny().fit(y_nan, fh=[1, 2])
    assert np.isfinite(f.predict().to_numpy()).all()


def test_exogenous_X_is_ignored(y, fitted):
    X = pd.DataFrame({"x": np.arange(len(y), dtype=float)}, index=y.index)
    X_future = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0]}, index=pd.date_range(y.index[-1] + pd.Timedelta("5min"), periods=3, freq="5min")
    )
    f = tiny().fit(y, X=X, fh=[1, 2, 3])
    pd.testing.assert_frame_equal(f.predict(X=X_future), fitted.predict())


def test_panel_is_broadcast_one_model_per_series(y):
    panel = pd.concat({"a": y.iloc[:60], "b": y.iloc[60:120]}, names=["instance", "time"])
    f = tiny().fit(panel, fh=[1, 2])
    y_pred = f.predict()
    assert y_pred.shape == (4, N_SENSORS)
    assert list(y_pred.index.get_level_values(0).unique()) == ["a", "b"]


# --------------------------------------------------------------------- evaluate
@pytest.mark.parametrize(
    "cv",
    [
        ExpandingWindowSplitter(fh=[1, 2, 3], initial_window=100, step_length=20),
        SlidingWindowSplitter(fh=[1, 2, 3], window_length=100, step_length=20),
    ],
    ids=["expanding", "sliding"],
)
def test_evaluate_runs_and_scores(y, cv):
    results = evaluate(tiny(max_epochs=1), cv=cv, y=y, scoring=MeanAbsoluteError())
    assert len(results) == cv.get_n_splits(y) == 3
    scores = results["test_MeanAbsoluteError"].to_numpy()
    assert np.isfinite(scores).all() and (scores > 0).all()


def test_evaluate_update_strategy_uses_new_windows(y):
    cv = ExpandingWindowSplitter(fh=[1, 2], initial_window=100, step_length=20)
    results = evaluate(tiny(max_epochs=1), cv=cv, y=y, strategy="update", scoring=MeanAbsoluteError())
    assert len(results) == 3 and np.isfinite(results["test_MeanAbsoluteError"]).all()


def test_forecasting_benchmark_against_naive(y):
    benchmark = ForecastingBenchmark()
    benchmark.add_estimator(tiny(max_epochs=1), estimator_id="STVLM")
    benchmark.add_estimator(NaiveForecaster(strategy="last"), estimator_id="Naive-last")
    benchmark.add_task(
        (y,),
        ExpandingWindowSplitter(fh=[1, 2, 3], initial_window=120, step_length=20),
        [MeanAbsoluteError()],
        task_id="synthetic",
    )
    table = benchmark.run()
    assert len(table) == 2
    assert set(table["model_id"]) == {"STVLM", "Naive-last"}


# --------------------------------------------------------------------- errors
def test_too_short_series_says_how_many_rows(y):
    f = tiny(history=6, batch_size=1)
    with pytest.raises(ValueError, match=r"at least history \+ horizon = 9 rows.*got 8"):
        f.fit(y.iloc[:8], fh=[1, 2, 3])
    f.fit(y.iloc[:9], fh=[1, 2, 3])  # exactly one window is enough
    assert f.predict().shape == (3, N_SENSORS)


def test_too_short_for_validation_says_how_many_rows(y):
    # 12 + 12 with validation_fraction=0.2: 28 ... 51 rows (5 ... 28 windows) cannot
    # hold out a window after the 23-window gap; 52 can (29 windows: 1 held out, 5 trained).
    assert rows_needed(12, 12, 0.2) == 52
    f = tiny(history=12, validation_fraction=0.2)
    with pytest.raises(ValueError, match=r"at least 52 rows.*got 40.*validation_fraction=0"):
        f.fit(make_frame(T=40), fh=list(range(1, 13)))


@pytest.mark.parametrize("history,horizon", [(2, 1), (3, 3), (6, 4), (12, 12)])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.5])
def test_row_check_agrees_with_the_engines_split(history, horizon, fraction, monkeypatch):
    """The wrapper's row count check is the engine's split rule (no training here)."""
    monkeypatch.setattr(STVLMForecaster, "fit", lambda self, X, y=None: self)
    needed = rows_needed(history, horizon, fraction)
    for T in range(1, needed + 15):
        series = np.random.default_rng(T).normal(size=(T, 2))
        try:
            chronological_split(as_windows(series, history=history, horizon=horizon), fraction)
            engine_ok = True
        except ValueError:
            engine_ok = False
        wrapper = STVLMSktimeForecaster(history=history, validation_fraction=fraction, device="cpu")
        try:
            wrapper.fit(pd.DataFrame(series), fh=list(range(1, horizon + 1)))
            wrapper_ok = True
        except ValueError:
            wrapper_ok = False
        assert wrapper_ok == engine_ok, T
        if T >= needed:
            assert engine_ok, T


def test_in_sample_fh_is_refused(y):
    with pytest.raises(NotImplementedError, match="in-sample"):
        tiny().fit(y, fh=[-1, 1])
    with pytest.raises(NotImplementedError, match="in-sample"):
        tiny().fit(y, fh=0)


def test_fh_is_required_in_fit(y):
    with pytest.raises(ValueError, match="fh"):
        tiny().fit(y)


def test_invalid_engine_parameter_is_reported_at_fit(y):
    with pytest.raises(ValueError, match="history must be >= 2"):
        tiny(history=1).fit(y, fh=[1])
    with pytest.raises(ValueError, match="fusion"):
        tiny(fusion="cross").fit(y, fh=[1])


def test_sensor_without_data_is_reported(y):
    y_dead = y.copy()
    y_dead["sensor_2"] = np.nan
    with pytest.raises(ValueError, match=r"sensors \[2\]"):
        tiny().fit(y_dead, fh=[1])
