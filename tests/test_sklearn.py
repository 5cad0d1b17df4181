"""scikit-learn compatibility: estimator checks, pipelines on a series and on windows,
cross-validation and grid search (with and without stvlm's scorers), and the gap rule.

scikit-learn's estimator checks feed small tabular data (10-30 rows of 2-D ``X``, most
with a 1-D ``y``). For both estimators a 2-D ``X`` is a *series* ``(T, n_sensors)``, so
the check instances use short windows (``history=3``, ``horizon=2``) that such data
can hold; checks that cannot apply are listed with the reason in
``TRANSFORMER_EXPECTED_FAILED`` / ``FORECASTER_EXPECTED_FAILED`` (strict: a listed check
that passes fails the test). Where a check's property is meaningful on proper data, a
test below checks it on a series instead ("equivalent of check_...").

Every model is a tiny random ViLT on 3 sensors, so each fit takes a fraction of a second.
"""

from __future__ import annotations

import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks as ec
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from stvlm import CorrelationImages, SpatialToImageTransformer, STVLMForecaster, make_windows
from stvlm.metrics import get_scorer, masked_mae

TINY = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=16,
    patch_size=8,
    vocab_size=500,
)
H, F = 3, 2  # history and horizon of the models here: tiny tabular data holds windows
N = 3  # sensors


def tiny_forecaster(**kw):
    params = dict(
        history=H,
        horizon=F,
        backbone=dict(TINY),
        max_epochs=1,
        batch_size=16,
        encoder_hidden=8,
        decoder_hidden=8,
        validation_fraction=0.0,
        random_state=0,
        verbose=0,
    )
    params.update(kw)
    return STVLMForecaster(**params)


def tiny_pipeline(transformer=None, **kw):
    transformer = transformer or SpatialToImageTransformer(history=H, horizon=F, n_jobs=-1)
    return make_pipeline(transformer, tiny_forecaster(**kw))


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    t = np.arange(90)[:, None]
    return 100 + 40 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 2 * np.pi, N)) + rng.normal(0, 3, (90, N))


# ----------------------------------------------------------- scikit-learn's checks
_TABULAR_Y = (
    "feeds tabular 2-D X together with a 1-D (or 2-D) y; for STVLMForecaster a 2-D X "
    "is a series (T, n_sensors) whose targets are cut from it, so y must be None (windows "
    "with targets are 3-D) and fit raises ValueError before the property can be tested"
)
FORECASTER_EXPECTED_FAILED = {
    name: _TABULAR_Y + suffix
    for name, suffix in {
        "check_fit_score_takes_y": "; fit/score on a series take y=None (test_fit_and_score_take_y)",
        "check_estimators_overwrite_params": " (equivalent: test_forecaster_fit_leaves_params_and_public_attributes)",
        "check_dont_overwrite_parameters": " (equivalent: test_forecaster_fit_leaves_params_and_public_attributes)",
        "check_estimators_fit_returns_self": " (equivalent: test_forecaster_fit_leaves_params_and_public_attributes)",
        "check_readonly_memmap_input": " (equivalent: test_forecaster_accepts_dtypes_readonly_and_fortran_input)",
        "check_n_features_in_after_fitting": " (equivalent: test_forecaster_n_features_in_and_mismatch)",
        "check_n_features_in": " (equivalent: test_forecaster_n_features_in_and_mismatch)",
        "check_positive_only_tag_during_fit": "",
        "check_estimators_dtypes": " (equivalent: test_forecaster_accepts_dtypes_readonly_and_fortran_input)",
        "check_f_contiguous_array_estimator": " (equivalent: test_forecaster_accepts_dtypes_readonly_and_fortran_input)",
        "check_pipeline_consistency": " (equivalent: test_pipeline_of_the_forecaster_alone_is_consistent)",
        "check_estimators_pickle": " (pickling: tests/test_forecaster.py::test_pickle_round_trip_predicts_identically)",
        "check_regressors_train": "",
        "check_regressor_data_not_an_array": "",
        "check_regressor_multioutput": "",
        "check_regressors_no_decision_function": "",
        "check_supervised_y_2d": "",
        "check_regressors_int": " (integer series: test_forecaster_accepts_dtypes_readonly_and_fortran_input)",
        "check_methods_sample_order_invariance": "; besides, the rows of a series are ordered time steps",
        "check_methods_subset_invariance": "; besides, a window needs history + horizon consecutive rows",
        "check_fit2d_1sample": "",
        "check_fit2d_1feature": "",
        "check_dict_unchanged": " (equivalent: test_forecaster_fit_leaves_params_and_public_attributes)",
        "check_fit_idempotent": " (equivalent: test_forecaster_fit_is_idempotent)",
        "check_fit_check_is_fitted": " (NotFittedError before fit: test_forecaster_n_features_in_and_mismatch)",
        "check_fit2d_predict1d": "",
    }.items()
}
FORECASTER_EXPECTED_FAILED["check_dtype_object"] = (
    "stvlm refuses object-dtype arrays with a TypeError even when every element is a "
    "number (its input rule, tested in tests/test_images.py::test_fit_rejects_non_numeric_windows); "
    "the check expects object arrays of numbers to be converted; besides, it passes a 1-D y"
)

_ROWS_ARE_TIME_STEPS = (
    "a 2-D X is a series: transform returns one image per window, T - history - horizon + 1 "
    "of them, not one output row per input row"
)
TRANSFORMER_EXPECTED_FAILED = {
    "check_transformer_general": _ROWS_ARE_TIME_STEPS,
    "check_transformer_data_not_an_array": _ROWS_ARE_TIME_STEPS,
    "check_methods_sample_order_invariance": (
        "the rows of a series are ordered time steps: permuting them changes every window, "
        "and the output has fewer rows (windows) than the input, so it cannot be indexed by "
        "the row permutation"
    ),
    "check_methods_subset_invariance": (
        "transforms the data in one-row batches; a window needs history + horizon consecutive "
        "rows, so a series cannot be transformed row by row"
    ),
    "check_dtype_object": FORECASTER_EXPECTED_FAILED["check_dtype_object"].rsplit(";", 1)[0],
}


def _expected_failed_checks(estimator):
    if isinstance(estimator, STVLMForecaster):
        return FORECASTER_EXPECTED_FAILED
    return TRANSFORMER_EXPECTED_FAILED


@parametrize_with_checks(
    [SpatialToImageTransformer(history=H, horizon=F), tiny_forecaster()],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator, check):
    # Of the checks that pass for the forecaster, check_supervised_y_no_nan passes only
    # because any ValueError is accepted from a third-party estimator (here the one for
    # a 1-D y beside a series), and check_estimators_partial_fit_n_features and
    # check_non_transformer_estimators_n_iter have nothing to check (no partial_fit, no
    # max_iter). The others (API, tags, repr, clone, unfitted, sparse, complex, empty and
    # 1-D input) test the real behaviour.
    name = getattr(check, "func", check)
    while hasattr(name, "func"):
        name = name.func
    if name.__name__.startswith("check_array_api_input"):
        # scikit-learn skips these unless SCIPY_ARRAY_API=1; neither estimator claims
        # array-API support (torch and numba do the work), which is what to assert.
        assert not estimator.__sklearn_tags__().array_api_support
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # batch_size > windows in tiny data
        check(estimator)


# ----------------------------------------------------------- the baselines' checks
# The neural baselines share the forecaster's base class, so its checks fail for the
# same reason (a 2-D X is a series, y is cut from it). The simple ones learn nothing from
# y and predict windows (3-D) only, so the checks that fit on tabular X and predict that
# same 2-D X fail on predict, and the one that wants a NaN y refused finds it ignored.
from stvlm import TimeVLMForecaster  # noqa: E402
from stvlm._base import BaseWindowForecaster  # noqa: E402
from stvlm.baselines import (  # noqa: E402
    DLinearForecaster,
    HistoricalAverageForecaster,
    LastValueForecaster,
    LSTMForecaster,
    PatchTSTForecaster,
    SeasonalNaiveForecaster,
    STIDForecaster,
)

_PREDICT_WINDOWS = (
    "fits on tabular 2-D X (a series) and then predicts that same 2-D X; predict takes "
    "windows (n_windows, history, n_sensors) only (the forecaster's rule), so it raises ValueError"
)
SIMPLE_EXPECTED_FAILED = {
    name: _PREDICT_WINDOWS
    for name in (
        "check_regressors_train", "check_estimators_pickle", "check_supervised_y_2d", "check_regressors_int",
        "check_regressor_multioutput", "check_regressor_data_not_an_array", "check_pipeline_consistency",
        "check_n_features_in_after_fitting", "check_methods_subset_invariance",
        "check_methods_sample_order_invariance", "check_fit_score_takes_y", "check_fit_idempotent",
        "check_fit2d_predict1d", "check_f_contiguous_array_estimator", "check_estimators_dtypes",
        "check_dict_unchanged",
    )
}
SIMPLE_EXPECTED_FAILED["check_supervised_y_no_nan"] = (
    "fit learns nothing from y (the forecast is a rule on the windows), so a NaN y is ignored, not refused"
)
SIMPLE_EXPECTED_FAILED["check_dtype_object"] = FORECASTER_EXPECTED_FAILED["check_dtype_object"]
BASELINES = [
    STIDForecaster(history=H, horizon=F, steps_per_day=4, max_epochs=1, batch_size=16, random_state=0),
    LSTMForecaster(history=H, horizon=F, hidden_size=4, max_epochs=1, batch_size=16, random_state=0),
    LastValueForecaster(horizon=F),
    HistoricalAverageForecaster(steps_per_day=4, history=H, horizon=F),
    SeasonalNaiveForecaster(season=F, horizon=F),
    # the long-term models (issue #14) share the base, so the same checks apply
    DLinearForecaster(history=H, horizon=F, moving_average=3, max_epochs=1, batch_size=16, random_state=0),
    PatchTSTForecaster(history=H, horizon=F, patch_len=2, stride=1, max_epochs=1, batch_size=16, random_state=0),
    TimeVLMForecaster(history=H, horizon=F, backbone="tiny", patch_len=2, stride=1, d_model=8, n_heads=2,
                      max_epochs=1, batch_size=16, random_state=0, verbose=0),
]


def _baseline_expected_failed(estimator):
    if isinstance(estimator, BaseWindowForecaster):
        return FORECASTER_EXPECTED_FAILED
    return SIMPLE_EXPECTED_FAILED


@parametrize_with_checks(BASELINES, expected_failed_checks=_baseline_expected_failed, xfail_strict=True)
def test_baselines_estimator_checks(estimator, check):
    name = getattr(check, "func", check)
    while hasattr(name, "func"):
        name = name.func
    if name.__name__.startswith("check_array_api_input"):
        assert not estimator.__sklearn_tags__().array_api_support
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_expected_failures_are_only_checks_that_exist():
    names = {
        ec._check_name(check)
        for est in (SpatialToImageTransformer(history=H, horizon=F), tiny_forecaster())
        for _, check in ec.estimator_checks_generator(est, legacy=True, mark=None)
    }
    assert set(FORECASTER_EXPECTED_FAILED) <= names
    assert set(TRANSFORMER_EXPECTED_FAILED) <= names
    assert set(SIMPLE_EXPECTED_FAILED) <= names


# Checks that need no data (or only the data they make, for the transformer), run
# explicitly on the default-constructed estimators too.
API_CHECKS = [
    ec.check_no_attributes_set_in_init,
    ec.check_parameters_default_constructible,
    ec.check_get_params_invariance,
    ec.check_set_params,
    ec.check_estimator_repr,
    ec.check_estimator_cloneable,
    ec.check_mixin_order,
    ec.check_valid_tag_types,
    ec.check_estimator_tags_renamed,
    ec.check_do_not_raise_errors_in_init_or_set_params,
    ec.check_estimators_unfitted,
]
API_ESTIMATORS = [
    SpatialToImageTransformer(),
    SpatialToImageTransformer(history=H, horizon=F, image_size=8, dtype="float16", n_jobs=-1),
    STVLMForecaster(),
    tiny_forecaster(),
]


@pytest.mark.parametrize("estimator", API_ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_data_free_api_checks(estimator, check):
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("check", [ec.check_estimators_overwrite_params, ec.check_dont_overwrite_parameters])
def test_transformer_fit_does_not_overwrite_params(check):
    # These fit on 20-21 rows: a series that holds windows of history=3, horizon=2.
    check("SpatialToImageTransformer", SpatialToImageTransformer(history=H, horizon=F))


def test_tags_declare_series_and_windows():
    for est in (SpatialToImageTransformer(), STVLMForecaster()):
        tags = get_tags(est)
        assert tags.input_tags.three_d_array and tags.input_tags.two_d_array
        assert tags.input_tags.allow_nan and not tags.input_tags.sparse
    assert get_tags(SpatialToImageTransformer()).transformer_tags.preserves_dtype == []
    assert get_tags(STVLMForecaster()).target_tags.required is False
    assert get_tags(STVLMForecaster(random_state=0)).non_deterministic is False
    assert get_tags(STVLMForecaster()).non_deterministic is True


def test_repr_shows_changed_params_and_is_deterministic():
    est = STVLMForecaster(lora_r=4, horizon=6)
    assert repr(est) == "STVLMForecaster(horizon=6, lora_r=4)"
    assert repr(STVLMForecaster()) == "STVLMForecaster()"
    assert repr(SpatialToImageTransformer(history=6, dtype="float16")) == (
        "SpatialToImageTransformer(dtype='float16', history=6)"
    )
    assert repr(tiny_forecaster()) == repr(clone(tiny_forecaster()))
    pipe = tiny_pipeline()
    assert "stvlmforecaster" in str(pipe.get_params()) and repr(pipe) == repr(clone(pipe))


def test_clone_and_set_params_through_a_pipeline():
    pipe = tiny_pipeline()
    pipe.set_params(stvlmforecaster__lora_r=2, spatialtoimagetransformer__dtype="float16")
    again = clone(pipe)
    assert again.get_params()["stvlmforecaster__lora_r"] == 2
    assert again.get_params()["spatialtoimagetransformer__dtype"] == "float16"
    assert again[-1].backbone == TINY and again[-1].backbone is not pipe[-1].backbone


# ----------------------------------------------- forecaster: the checks' properties
def test_fit_and_score_take_y(series):
    X, y = make_windows(series, H, F)
    model = tiny_forecaster()
    assert model.fit(X, y=y) is model
    assert np.isfinite(model.score(X, y=y))
    assert model.fit(series, y=None) is model
    assert np.isfinite(model.score(series, y=None))


def test_forecaster_fit_leaves_params_and_public_attributes(series):
    model = tiny_forecaster()
    params = joblib.hash(model.get_params(deep=True))
    public = {k for k in vars(model) if not k.startswith("_")}
    assert model.fit(series) is model
    assert joblib.hash(model.get_params(deep=True)) == params  # the backbone dict is not mutated
    added = {k for k in vars(model) if not k.startswith("_")} - public
    assert added and all(k.endswith("_") for k in added), added
    # predict and score leave the fitted state as it is (check_dict_unchanged).
    before = {k: v for k, v in vars(model).items() if k != "network_"}
    state = {k: v.clone() for k, v in model.network_.state_dict().items()}
    X, y = make_windows(series, H, F)
    model.predict(X)
    model.score(X, y)
    assert joblib.hash({k: v for k, v in vars(model).items() if k != "network_"}) == joblib.hash(before)
    assert all(np.array_equal(state[k], v) for k, v in model.network_.state_dict().items())


def test_forecaster_n_features_in_and_mismatch(series):
    with pytest.raises(NotFittedError):
        tiny_forecaster().predict(np.zeros((2, H, N)))
    model = tiny_forecaster().fit(series)
    assert model.n_features_in_ == N
    with pytest.raises(ValueError, match=f"X has 1 features, but STVLMForecaster is expecting {N} features"):
        model.predict(np.zeros((2, H, 1)))
    with pytest.raises(ValueError, match=f"is expecting {N} features"):
        model.score(series[:, :1])


def test_forecaster_accepts_dtypes_readonly_and_fortran_input(series):
    X, _ = make_windows(series, H, F)
    ref = tiny_forecaster().fit(series).predict(X)
    readonly = series.copy()
    readonly.flags.writeable = False
    for s in (readonly, np.asfortranarray(series)):
        np.testing.assert_allclose(tiny_forecaster().fit(s).predict(X), ref, rtol=1e-6)
    for dtype in (np.float32, np.int64, np.int32):
        pred = tiny_forecaster().fit(series.astype(dtype)).predict(X.astype(dtype))
        assert pred.shape == (len(X), F, N) and pred.dtype == np.float64 and np.isfinite(pred).all()


def test_forecaster_fit_is_idempotent(series):
    X, _ = make_windows(series, H, F)
    model = tiny_forecaster()
    first = model.fit(series).predict(X)
    np.testing.assert_array_equal(model.fit(series).predict(X), first)


def test_pipeline_of_the_forecaster_alone_is_consistent(series):
    model = tiny_forecaster().fit(series[:60])
    pipe = make_pipeline(tiny_forecaster()).fit(series[:60])
    assert pipe.score(series[60:]) == model.score(series[60:])


def test_sparse_input_is_refused_with_a_clear_message(series):
    sp = pytest.importorskip("scipy.sparse")
    for est in (SpatialToImageTransformer(history=H, horizon=F), tiny_forecaster()):
        with pytest.raises(TypeError, match="sparse input is not supported"):
            est.fit(sp.csr_matrix(series))


def test_complex_input_is_a_value_error(series):
    with pytest.raises(ValueError, match="Complex data not supported"):
        tiny_forecaster().fit(series.astype(complex))


# --------------------------------------------------------------- the pipeline
def test_pipeline_on_a_series_fits_predicts_and_scores(series):
    pipe = tiny_pipeline().fit(series[:60])
    test = series[60:]
    X, y = make_windows(test, H, F)
    pred = pipe.predict(test)  # every window cut from the series, in order
    assert pred.shape == (len(test) - H - F + 1, F, N)
    np.testing.assert_allclose(pred, pipe.predict(X), rtol=1e-6)
    assert pipe.score(test) == pytest.approx(-masked_mae(y, pred))
    assert pipe.score(X, y) == pytest.approx(pipe.score(test))
    assert pipe[-1].dtw_scale_ is None and pipe[0].n_features_in_ == N


def test_pipeline_on_windows_fits_predicts_and_scores(series):
    X, y = make_windows(series, H, F)
    pipe = tiny_pipeline().fit(X[:50], y[:50])
    assert pipe.predict(X[50:]).shape == y[50:].shape
    assert pipe.score(X[50:], y[50:]) == pytest.approx(-masked_mae(y[50:], pipe.predict(X[50:])))


def _split(model, X, y=None):
    from stvlm.data import chronological_split

    return chronological_split(model._front_door(X, y), model.validation_fraction)


def test_images_of_a_series_keep_the_series_validation_split(series):
    model = tiny_forecaster(validation_fraction=0.25)
    images = SpatialToImageTransformer(history=H, horizon=F).fit_transform(series)
    assert images.from_series and images.targets.shape == (len(images), F, N)
    train_s, val_s = _split(model, series)
    train_i, val_i = _split(model, images)
    for a, b in ((train_s, train_i), (val_s, val_i)):
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)
    # A gap of history + horizon - 1 windows: no validation window shares a row with training.
    assert len(images) - len(train_i) - len(val_i) == H + F - 1
    # Windows given with y (no series behind them) are split without a gap.
    Xw, yw = make_windows(series, H, F)
    train_w, val_w = _split(model, Xw, yw)
    assert len(train_w) + len(val_w) == len(Xw)
    # A subset that is not consecutive is no longer a series' windows.
    assert not images[::2].from_series and images[5:40].from_series


@pytest.mark.parametrize("s2i", [dict(history=H, horizon=F + 1), dict(history=H + 1, horizon=F)])
def test_transformer_and_forecaster_must_agree(series, s2i):
    pipe = tiny_pipeline(SpatialToImageTransformer(**s2i))
    with pytest.raises(ValueError, match=r"SpatialToImageTransformer\(history=\d, horizon=\d\), but the forecaster has"):
        pipe.fit(series)


def test_images_of_windows_still_need_y(series):
    X, _ = make_windows(series, H, F)
    images = SpatialToImageTransformer().fit_transform(X)
    with pytest.raises(ValueError, match="y is required"):
        tiny_forecaster().fit(images)


def test_correlation_images_convert_to_an_array(series):
    images = SpatialToImageTransformer(history=H, horizon=F, image_size=4).fit_transform(series)
    arr = np.asarray(images)
    assert arr.shape == images.shape and arr.dtype == images.dtype == np.float32
    np.testing.assert_array_equal(arr, images.images)
    assert np.asarray(images, dtype=np.float64).dtype == np.float64
    again = pickle.loads(pickle.dumps(images))
    assert isinstance(again, CorrelationImages) and again.from_series
    np.testing.assert_array_equal(again.targets, images.targets)


# ----------------------------------------------------------- model selection
def test_cross_val_score_on_a_series_without_and_with_scorers(series):
    cv = TimeSeriesSplit(n_splits=2)  # on a series, gap=0 does not leak
    model = tiny_forecaster()
    default = cross_val_score(model, series, cv=cv)
    assert default.shape == (2,) and np.all(default < 0)
    mae = cross_val_score(model, series, cv=cv, scoring=get_scorer("neg_masked_mae"))
    np.testing.assert_allclose(mae, default, rtol=1e-9)
    rmse = cross_val_score(tiny_pipeline(), series, cv=cv, scoring=get_scorer("neg_masked_rmse"))
    assert np.all(rmse < 0) and np.all(np.isfinite(rmse))


def test_cross_val_score_on_windows_with_the_gap(series):
    X, y = make_windows(series, H, F)
    cv = TimeSeriesSplit(n_splits=2, gap=H + F - 1)
    scores = cross_val_score(tiny_pipeline(), X, y, cv=cv, scoring=get_scorer("neg_masked_mape", threshold=1.0))
    assert scores.shape == (2,) and np.all(scores < 0)


def test_grid_search_over_forecaster_and_transformer_params(series):
    grid = {"stvlmforecaster__lora_r": [2, 4], "spatialtoimagetransformer__dtype": ["float32", "float16"]}
    gs = GridSearchCV(tiny_pipeline(), grid, cv=TimeSeriesSplit(n_splits=2)).fit(series[:70])
    assert len(gs.cv_results_["params"]) == 4
    assert np.all(np.isfinite(gs.cv_results_["mean_test_score"]))
    assert gs.best_params_ in gs.cv_results_["params"]
    assert np.isfinite(gs.score(series[70:]))
    scored = GridSearchCV(
        tiny_pipeline(),
        {"stvlmforecaster__lora_r": [2, 4]},
        cv=TimeSeriesSplit(n_splits=2),
        scoring={"mae": get_scorer("neg_masked_mae"), "rmse": get_scorer("neg_masked_rmse")},
        refit="mae",
    ).fit(series[:70])
    assert np.all(scored.cv_results_["mean_test_rmse"] <= scored.cv_results_["mean_test_mae"])
    assert scored.score(series[70:]) == pytest.approx(scored.best_estimator_.score(series[70:]))


def test_scorer_without_y_needs_a_series_and_history(series):
    from stvlm.baselines import LastValueForecaster

    X, y = make_windows(series, H, F)
    base = LastValueForecaster(horizon=F).fit(X)
    with pytest.raises(ValueError, match="history and horizon"):
        get_scorer("neg_masked_mae")(base, series)
    assert get_scorer("neg_masked_mae")(base, X, y) < 0
    model = tiny_forecaster().fit(series)
    with pytest.raises(ValueError, match="must be a series"):
        get_scorer("neg_masked_mae")(model, X)


# ------------------------------------------------------------- the gap rule
def _rows(window_index):
    """Rows a window (history and targets) covers, for windows cut with stride 1."""
    return set(range(window_index, window_index + H + F))


@pytest.mark.parametrize("gap, shares", [(H + F - 1, False), (H + F - 2, True), (F - 1, True)])
def test_gap_rule_for_windows(gap, shares):
    n_windows = 60
    for train, test in TimeSeriesSplit(n_splits=3, gap=gap).split(np.zeros(n_windows)):
        train_rows = set().union(*(_rows(i) for i in train))
        test_rows = set().union(*(_rows(i) for i in test))
        assert bool(train_rows & test_rows) is shares
        # Test targets are never training rows once gap >= horizon - 1.
        test_targets = set().union(*(set(range(i + H, i + H + F)) for i in test))
        assert not (train_rows & test_targets)


def test_gap_rule_for_a_series_gap_zero_shares_no_row():
    T = 60
    for train, test in TimeSeriesSplit(n_splits=3).split(np.zeros(T)):
        # Windows are cut inside each part: their rows are the part's rows.
        first_test_window_rows = set(test[0] + np.arange(H + F))
        assert not (set(train) & first_test_window_rows)
        assert test[0] == train[-1] + 1  # its history directly follows the training rows
