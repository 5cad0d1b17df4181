"""Tests of stvlm.images: SpatialToImageTransformer, CorrelationImages and
correlation_channels (fit scale, mapping to [0, 1], padding, invariances, parallel
paths, scikit-learn API, bad input)."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from stvlm import (
    CorrelationImages,
    SpatialToImageTransformer,
    dtw_matrix,
    lagged_xcorr_matrix,
    make_windows,
    spectral_corr_matrix,
)
from stvlm.images import correlation_channels
from stvlm.kernels._channels import torch_images

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _windows(seed=0, n=10, k=12, N=6, flat=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k, N)) * rng.uniform(0.5, 5.0, size=N) + rng.uniform(-10.0, 10.0, size=N)
    if flat:
        X[0, :, 1] = 0.0
        X[min(1, n - 1), :, 2] = 7.0
    return X


def _impute_reference(X):
    """Forward fill, then backward fill along time per window and sensor; an
    all-missing sensor becomes flat (0)."""
    X = np.array(X, dtype=np.float64)
    n, k, N = X.shape
    for w in range(n):
        for j in range(N):
            x = X[w, :, j]
            ok = np.isfinite(x)
            if not ok.any():
                x[:] = 0.0
                continue
            last = None
            for t in range(k):
                if ok[t]:
                    last = x[t]
                elif last is not None:
                    x[t] = last
            first = x[int(np.argmax(ok))]
            for t in range(k):
                if ok[t]:
                    break
                x[t] = first
    return X


def _offdiag(D):
    return D[:, ~np.eye(D.shape[1], dtype=bool)]


@st.composite
def windows(draw, missing=False):
    """Random windows (n, k, N), N in 2..12, k in 2..16, some flat sensors."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 4))
    k = draw(st.integers(2, 16))
    N = draw(st.integers(2, 12))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k, N)) * rng.uniform(0.5, 5.0, size=N) + rng.uniform(-10.0, 10.0, size=N)
    for j in rng.choice(N, size=draw(st.integers(0, N // 2)), replace=False):
        X[rng.integers(n), :, j] = 0.0 if rng.random() < 0.5 else rng.uniform(-50.0, 50.0)
    if missing:
        mask = rng.random(X.shape) < 0.2
        X[mask] = rng.choice([np.nan, np.inf, -np.inf], size=int(mask.sum()))
    return X


@pytest.fixture(scope="module")
def X():
    return _windows()


@pytest.fixture(scope="module")
def fitted(X):
    return SpatialToImageTransformer(dtype="float64").fit(X)


# ----------------------------------------------------------------------------- fit
def test_fit_learns_sensor_count_history_and_image_size(X):
    s2i = SpatialToImageTransformer(image_size=9).fit(X)
    assert s2i.n_features_in_ == 6
    assert s2i.history_ == 12
    assert s2i.image_size_ == 9
    assert s2i.image_size == 9  # the parameter is left as given


def test_image_size_none_uses_sensor_count(X):
    s2i = SpatialToImageTransformer().fit(X)
    assert s2i.image_size is None
    assert s2i.image_size_ == X.shape[2]
    assert s2i.transform(X).shape == (len(X), 3, 6, 6)


def test_fit_returns_self(X):
    s2i = SpatialToImageTransformer()
    assert s2i.fit(X) is s2i


def test_dtw_scale_is_median_offdiagonal_dtw_of_training_windows(X):
    s2i = SpatialToImageTransformer().fit(X)
    expected = np.median(_offdiag(dtw_matrix(X, dtype="float64")))
    assert s2i.dtw_scale_ > 0
    assert s2i.dtw_scale_ == pytest.approx(expected, rel=1e-12)


def test_dtw_scale_uses_evenly_spaced_windows_of_a_large_dataset():
    X = _windows(seed=1, n=600, k=4, N=3, flat=False)
    # Make the windows differ in scale along the dataset, so a biased sample shows.
    X *= np.linspace(1.0, 10.0, len(X))[:, None, None]
    s2i = SpatialToImageTransformer().fit(X)
    idx = np.unique(np.linspace(0, len(X) - 1, 256).round().astype(int))
    expected = np.median(_offdiag(dtw_matrix(X[idx], dtype="float64")))
    assert s2i.dtw_scale_ == pytest.approx(expected, rel=1e-12)


def test_dtw_scale_ignores_nonfinite_values_after_imputation():
    X = _windows(seed=2)
    X[3, 2:5, 0] = np.nan
    X[4, :, 3] = np.inf
    s2i = SpatialToImageTransformer().fit(X)
    expected = np.median(_offdiag(dtw_matrix(_impute_reference(X), dtype="float64")))
    assert np.isfinite(s2i.dtw_scale_)
    assert s2i.dtw_scale_ == pytest.approx(expected, rel=1e-12)


def test_transform_keeps_the_fitted_scale_for_test_windows(X):
    s2i = SpatialToImageTransformer(dtype="float64").fit(X)
    scale = s2i.dtw_scale_
    X_test = 3.0 * _windows(seed=5, n=4)  # a differently scaled test set
    out = s2i.transform(X_test)
    assert s2i.dtw_scale_ == scale
    np.testing.assert_allclose(out.channels[:, 0], np.exp(-dtw_matrix(X_test) / scale), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------ channels
def test_channels_are_kernels_mapped_to_unit_interval(fitted):
    X = _windows(seed=7, n=5)
    out = fitted.transform(X)
    C = out.channels
    assert C.dtype == np.float64
    np.testing.assert_allclose(C[:, 0], np.exp(-dtw_matrix(X) / fitted.dtw_scale_), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(C[:, 1], (lagged_xcorr_matrix(X) + 1) / 2, atol=1e-12)
    np.testing.assert_allclose(C[:, 2], (spectral_corr_matrix(X) + 1) / 2, atol=1e-12)


def test_flat_sensor_pixels_are_one_half_and_dtw_diagonal_is_one(fitted):
    X = _windows(seed=8, n=2)
    X[0, :, 4] = 0.0
    C = fitted.transform(X).channels
    np.testing.assert_array_equal(C[0, 1:, 4, :], 0.5)
    np.testing.assert_array_equal(C[0, 1:, :, 4], 0.5)
    np.testing.assert_array_equal(np.diagonal(C[:, 0], axis1=1, axis2=2), 1.0)


def test_correlation_channels_torch_path_matches_numba_path():
    # The device path (used for CUDA) is torch_images over the torch kernels; check
    # it on the CPU against the numba path of correlation_channels.
    import torch

    X = _windows(seed=9, n=4)
    X[2, 3:6, 1] = np.nan
    scale = 4.5
    d, r, p = (
        torch.as_tensor(f(X, backend="torch", dtype="float64"))
        for f in (dtw_matrix, lagged_xcorr_matrix, spectral_corr_matrix)
    )
    via_torch = torch_images(d, r, p, scale).numpy()
    via_numba = correlation_channels(X, scale, dtype=np.float64)
    np.testing.assert_allclose(via_torch, via_numba, atol=1e-10)


def test_non_cpu_device_runs_the_torch_kernels(X, monkeypatch):
    # On a GPU the transformer runs the torch kernels on the device. Resolving the
    # device to torch.device("cpu", 0) (not the plain "cpu" of the numba path) takes
    # that code path on any machine.
    import torch

    from stvlm import images, kernels

    cpu = SpatialToImageTransformer(dtype="float64").fit(X)
    calls = []
    original = kernels._torch_call
    monkeypatch.setattr(kernels, "_torch_call", lambda *a: calls.append(a[0]) or original(*a))
    monkeypatch.setattr(images, "resolve_device", lambda device: torch.device("cpu", 0))
    dev = SpatialToImageTransformer(dtype="float64", device="cuda").fit(X)
    out = dev.transform(X)
    assert "dtw" in calls
    assert dev.dtw_scale_ == pytest.approx(cpu.dtw_scale_, rel=1e-9)
    np.testing.assert_allclose(out.channels, cpu.transform(X).channels, atol=1e-9)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_correlation_channels_rejects_bad_scale(bad):
    with pytest.raises(ValueError, match="dtw_scale must be a positive finite number"):
        correlation_channels(_windows(n=2), bad)


# ------------------------------------------------------------------------- padding
def test_padding_is_zero_at_bottom_and_right_top_left_aligned(X):
    out = SpatialToImageTransformer(image_size=10, dtype="float64").fit(X).transform(X)
    img = out.images
    N = X.shape[2]
    assert img.shape == (len(X), 3, 10, 10)
    np.testing.assert_array_equal(img[:, :, :N, :N], out.channels)
    assert not img[:, :, N:, :].any()
    assert not img[:, :, :, N:].any()


def test_correlation_images_len_shape_and_attributes(X):
    out = SpatialToImageTransformer(image_size=8).fit(X).transform(X)
    assert isinstance(out, CorrelationImages)
    assert len(out) == len(X)
    assert out.shape == (len(X), 3, 8, 8)
    assert out.n_sensors == 6
    assert out.channels.shape == (len(X), 3, 6, 6)
    np.testing.assert_array_equal(out.windows, X)
    assert "n_windows=10" in repr(out)


@pytest.mark.parametrize(
    "index, rows",
    [
        (3, [3]),
        (np.int64(3), [3]),
        (-1, [9]),
        (-2, [8]),
        (slice(2, 5), [2, 3, 4]),
        (np.array([0, 7, 7]), [0, 7, 7]),
        (np.arange(10) % 3 == 0, [0, 3, 6, 9]),
    ],
    ids=["int", "np-int", "last", "minus-2", "slice", "index-array", "mask"],
)
def test_correlation_images_indexing(X, index, rows):
    out = SpatialToImageTransformer(image_size=8).fit(X).transform(X)
    sub = out[index]
    assert isinstance(sub, CorrelationImages)
    assert len(sub) == len(rows)
    assert sub.shape == (len(rows), 3, 8, 8)
    np.testing.assert_array_equal(sub.windows, X[rows])
    np.testing.assert_array_equal(sub.images, out.images[rows])
    np.testing.assert_array_equal(out.padded(rows), out.images[rows])


def test_correlation_images_padded_returns_a_new_array(X):
    out = SpatialToImageTransformer().fit(X).transform(X)  # image_size == N
    img = out.padded()
    img[:] = -1.0
    assert out.channels.min() >= 0.0


def test_correlation_images_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(n, 3, N, N\)"):
        CorrelationImages(np.zeros((2, 12, 4)), np.zeros((2, 2, 4, 4)), 4)
    with pytest.raises(ValueError, match="do not match"):
        CorrelationImages(np.zeros((3, 12, 4)), np.zeros((2, 3, 4, 4)), 4)
    with pytest.raises(ValueError, match="smaller than the sensor count"):
        CorrelationImages(np.zeros((2, 12, 4)), np.zeros((2, 3, 4, 4)), 3)


# -------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype, tol", [("float16", 1e-3), ("float32", 1e-6), ("float64", 0.0)])
def test_output_dtype(X, dtype, tol):
    ref = SpatialToImageTransformer(dtype="float64").fit(X).transform(X).images
    out = SpatialToImageTransformer(dtype=dtype).fit(X).transform(X)
    assert out.images.dtype == np.dtype(dtype)
    assert out.channels.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out.images.astype(np.float64), ref, atol=tol)


def test_float32_is_the_default_dtype(X):
    assert SpatialToImageTransformer().fit(X).transform(X).images.dtype == np.float32


# --------------------------------------------------------------- parallel, progress
def test_n_jobs_threads_equal_single_process(X):
    ref = SpatialToImageTransformer(chunk_size=3).fit(X).transform(X).channels
    out = SpatialToImageTransformer(n_jobs=2, chunk_size=3).fit(X).transform(X).channels
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


def test_n_jobs_minus_one_equals_single_process(X):
    ref = SpatialToImageTransformer(chunk_size=4).fit(X).transform(X).channels
    out = SpatialToImageTransformer(n_jobs=-1, chunk_size=4).fit(X).transform(X).channels
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


def test_loky_backend_equals_single_process(X):
    ref = SpatialToImageTransformer(chunk_size=5).fit(X).transform(X).channels
    s2i = SpatialToImageTransformer(n_jobs=2, chunk_size=5).fit(X)
    with joblib.parallel_config(backend="loky"):
        out = s2i.transform(X).channels
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


def test_verbose_shows_a_progress_bar(X, capsys):
    SpatialToImageTransformer(verbose=1, chunk_size=4).fit(X).transform(X)
    err = capsys.readouterr().err
    assert "S2I images" in err
    assert "3/3" in err  # ceil(10 / 4) chunks


def test_verbose_zero_prints_nothing(X, capfd):
    SpatialToImageTransformer(verbose=0, chunk_size=4).fit(X).transform(X)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


# ---------------------------------------------------------------- scikit-learn API
def test_default_parameters():
    s2i = SpatialToImageTransformer()
    assert s2i.device == "cpu"
    assert s2i.get_params() == {
        "history": 12,
        "horizon": 12,
        "image_size": None,
        "dtype": "float32",
        "n_jobs": None,
        "chunk_size": 256,
        "device": "cpu",
        "verbose": 0,
    }


def test_get_params_set_params_and_clone(X):
    s2i = SpatialToImageTransformer(image_size=7, n_jobs=2)
    assert s2i.set_params(dtype="float64", chunk_size=3) is s2i
    assert s2i.get_params()["dtype"] == "float64"
    assert s2i.get_params()["chunk_size"] == 3
    s2i.fit(X)
    twin = clone(s2i)
    assert twin.get_params() == s2i.get_params()
    assert not hasattr(twin, "dtw_scale_")
    with pytest.raises(NotFittedError):
        twin.transform(X)
    np.testing.assert_array_equal(twin.fit(X).transform(X).images, s2i.transform(X).images)


def test_pickle_round_trip_of_fitted_transformer(fitted, X):
    again = pickle.loads(pickle.dumps(fitted))
    assert again.get_params() == fitted.get_params()
    assert again.dtw_scale_ == fitted.dtw_scale_
    np.testing.assert_array_equal(again.transform(X).images, fitted.transform(X).images)


def test_transform_before_fit_raises_not_fitted(X):
    with pytest.raises(NotFittedError):
        SpatialToImageTransformer().transform(X)


def test_fit_transform_equals_fit_then_transform(X):
    a = SpatialToImageTransformer().fit_transform(X).images
    b = SpatialToImageTransformer().fit(X).transform(X).images
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------ NaN / inf
def test_nonfinite_windows_give_images_of_imputed_windows(fitted):
    X = _windows(seed=11, n=4)
    X[0, 0, 0] = np.nan
    X[1, 4:8, 3] = np.inf
    X[2, -2:, 5] = -np.inf
    X[3, :, 2] = np.nan
    out = fitted.transform(X)
    assert not np.isnan(out.images).any()
    np.testing.assert_array_equal(out.images, fitted.transform(_impute_reference(X)).images)
    np.testing.assert_array_equal(out.windows, X)  # windows are kept as given


# ---------------------------------------------------------------------- properties
@PROPERTY
@given(X=windows(missing=True), dtype=st.sampled_from(["float16", "float32", "float64"]))
def test_images_lie_in_unit_interval(X, dtype):
    out = SpatialToImageTransformer(dtype=dtype, image_size=X.shape[2] + 1).fit_transform(X)
    img = out.images
    assert np.all(np.isfinite(img))
    assert img.min() >= 0.0 and img.max() <= 1.0


@PROPERTY
@given(X=windows(missing=True), data=st.data())
def test_permuting_sensors_permutes_image_rows_and_columns(X, data):
    perm = np.array(data.draw(st.permutations(range(X.shape[2]))))
    a = SpatialToImageTransformer(dtype="float64").fit_transform(X).channels
    b = SpatialToImageTransformer(dtype="float64").fit_transform(X[:, :, perm]).channels
    np.testing.assert_allclose(b, a[:, :, perm][:, :, :, perm], rtol=1e-12, atol=1e-12)


@PROPERTY
@given(
    X=windows(),
    a=st.floats(0.1, 10.0),
    b=st.floats(-100.0, 100.0),
)
def test_images_invariant_to_affine_rescaling_of_the_dataset(X, a, b):
    ref = SpatialToImageTransformer(dtype="float64").fit_transform(X).channels
    out = SpatialToImageTransformer(dtype="float64").fit_transform(a * X + b).channels
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-8)


# ------------------------------------------------------------------------ bad input
_GOOD = _windows(seed=3, n=4, N=5)


@pytest.mark.parametrize(
    "X, params, match",
    [
        (_GOOD[0, :, 0], {}, "1-D"),
        (_GOOD[0], {}, r"series of n_samples = 12 time steps, too short .* history \+ horizon = 12 \+ 12 = 24"),
        (_GOOD[0], {"history": 6, "horizon": 7}, r"history \+ horizon = 6 \+ 7 = 13"),
        (_GOOD[None], {}, "3-D windows"),
        (_GOOD[:, :1], {}, "history 1"),
        (np.zeros((0, 12, 5)), {}, "empty"),
        (np.zeros((4, 12, 0)), {}, "empty"),
        (_GOOD, {"image_size": 3}, "image_size=3 is smaller than the 5 sensors"),
        (_GOOD, {"n_jobs": -2}, "n_jobs must be"),
        (_GOOD, {"n_jobs": 0}, "n_jobs must be"),
        (_GOOD, {"dtype": "int8"}, "dtype must be one of"),
        (_GOOD, {"image_size": 0}, "image_size must be >= 1"),
        (_GOOD, {"chunk_size": 0}, "chunk_size must be >= 1"),
        (_GOOD, {"device": "no-such-device"}, "device must be"),
        (_GOOD, {"history": 1}, "history must be >= 2"),
        (_GOOD, {"horizon": 0}, "horizon must be >= 1"),
    ],
    ids=[
        "1d",
        "2d-series-too-short",
        "2d-series-too-short-custom",
        "4d",
        "history-1",
        "no-windows",
        "no-sensors",
        "image-too-small",
        "n_jobs-minus-2",
        "n_jobs-0",
        "dtype-int8",
        "image-size-0",
        "chunk-size-0",
        "device",
        "history-param-1",
        "horizon-param-0",
    ],
)
def test_fit_rejects_bad_input_with_value_error(X, params, match):
    with pytest.raises(ValueError, match=match):
        SpatialToImageTransformer(**params).fit(X)


@pytest.mark.parametrize("X", [_GOOD.astype(str), _GOOD.astype(object)], ids=["strings", "objects"])
def test_fit_rejects_non_numeric_windows(X):
    with pytest.raises(TypeError, match="real numbers"):
        SpatialToImageTransformer().fit(X)


@pytest.mark.parametrize("n_jobs", [1.5, "2"])
def test_fit_rejects_non_integer_n_jobs(n_jobs):
    with pytest.raises(TypeError, match="n_jobs must be"):
        SpatialToImageTransformer(n_jobs=n_jobs).fit(_GOOD)


def test_transform_rejects_different_sensor_count():
    s2i = SpatialToImageTransformer().fit(_GOOD)
    with pytest.raises(ValueError, match="X has 4 features, but SpatialToImageTransformer is expecting 5 features"):
        s2i.transform(_GOOD[:, :, :4])


def test_transform_rejects_different_history():
    s2i = SpatialToImageTransformer().fit(_GOOD)
    with pytest.raises(ValueError, match="windows of 10 steps, but .* fitted on 12"):
        s2i.transform(_GOOD[:, :10])


def test_transform_reads_2d_input_as_a_series_and_rejects_a_short_one():
    s2i = SpatialToImageTransformer().fit(_GOOD)
    with pytest.raises(ValueError, match=r"too short to cut one window: history \+ horizon"):
        s2i.transform(_GOOD[0])  # 12 steps < history + horizon = 24
    with pytest.raises(ValueError, match="1-D"):
        s2i.transform(_GOOD[0, :, 0])


# ------------------------------------------------------------------ series input
def _series(T=40, N=5, seed=0):
    return np.random.default_rng(seed).normal(size=(T, N)) * 3.0 + 10.0


def test_series_is_cut_into_windows_with_their_targets():
    series = _series()
    Xw, yw = make_windows(series, history=6, horizon=4)
    s2i = SpatialToImageTransformer(history=6, horizon=4, dtype="float64")
    out = s2i.fit_transform(series)
    assert s2i.history_ == 6 and s2i.n_features_in_ == 5
    assert len(out) == 40 - 6 - 4 + 1
    np.testing.assert_array_equal(out.windows, Xw)
    np.testing.assert_array_equal(out.targets, yw)
    assert out.from_series
    # Same scale and images as when given the windows themselves.
    ref = SpatialToImageTransformer(dtype="float64").fit(Xw)
    assert s2i.dtw_scale_ == ref.dtw_scale_
    np.testing.assert_array_equal(out.channels, ref.transform(Xw).channels)


def test_windows_input_ignores_history_and_horizon_and_has_no_targets():
    s2i = SpatialToImageTransformer(history=5, horizon=2).fit(_GOOD)
    assert s2i.history_ == 12
    out = s2i.transform(_GOOD)
    assert out.targets is None and not out.from_series
    # A series is cut with history=5, which does not match the fitted windows.
    with pytest.raises(ValueError, match="windows of 5 steps, but the transformer was fitted on 12"):
        s2i.transform(_series())


def test_transform_series_and_windows_after_fit_on_a_series():
    series = _series()
    s2i = SpatialToImageTransformer(history=6, horizon=4).fit(series[:25])
    Xw, _ = make_windows(series[25:], 6, 4)
    np.testing.assert_array_equal(s2i.transform(series[25:]).channels, s2i.transform(Xw).channels)
    with pytest.raises(ValueError, match="X has 3 features, but .* expecting 5 features"):
        s2i.transform(series[:, :3])


@pytest.mark.parametrize(
    "index, consecutive",
    [(slice(2, 5), True), (3, True), (slice(0, 9, 2), False), (np.array([0, 4, 2]), False)],
    ids=["slice", "int", "step-slice", "index-array"],
)
def test_correlation_images_indexing_keeps_targets(index, consecutive):
    out = SpatialToImageTransformer(history=6, horizon=4).fit_transform(_series())
    sub = out[index]
    rows = np.arange(len(out))[index]
    np.testing.assert_array_equal(sub.targets, out.targets[np.atleast_1d(rows)])
    assert sub.from_series is consecutive


def test_correlation_images_rejects_mismatched_targets_and_shows_them_in_repr():
    w, c = np.zeros((3, 12, 4)), np.zeros((3, 3, 4, 4))
    with pytest.raises(ValueError, match="targets .* do not match windows"):
        CorrelationImages(w, c, 4, targets=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="targets .* do not match windows"):
        CorrelationImages(w, c, 4, targets=np.zeros((3, 3, 5)))
    out = CorrelationImages(w, c, 4, targets=np.zeros((3, 2, 4)), from_series=True)
    assert "horizon=2" in repr(out) and "from_series=True" in repr(out)
    assert "horizon" not in repr(CorrelationImages(w, c, 4))


def test_transform_rejects_params_made_invalid_after_fit():
    s2i = SpatialToImageTransformer().fit(_GOOD)
    s2i.set_params(n_jobs=-2)
    with pytest.raises(ValueError, match="n_jobs must be"):
        s2i.transform(_GOOD)


# --------------------------------------------------------------------- make_windows
def test_make_windows_cuts_hand_checked_windows():
    series = np.arange(20.0).reshape(10, 2)
    X, y = make_windows(series, history=3, horizon=2)
    assert X.shape == (6, 3, 2) and y.shape == (6, 2, 2)
    np.testing.assert_array_equal(X[1, :, 0], [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(y[1, :, 0], [8.0, 10.0])


@pytest.mark.parametrize(
    "series, kwargs, error, match",
    [
        (np.zeros((30, 4, 2)), {}, ValueError, "2-D series"),
        (np.zeros(30), {}, ValueError, "1-D"),
        (np.zeros((23, 4)), {}, ValueError, "23 time steps"),
        (np.zeros((30, 4)), {"history": 0}, ValueError, "history must be >= 1"),
        (np.zeros((30, 4)), {"horizon": 0}, ValueError, "horizon must be >= 1"),
        (np.zeros((30, 4)), {"history": -3}, ValueError, "history must be >= 1"),
        (np.zeros((30, 4)), {"history": 2.5}, TypeError, "history must be an integer"),
        (np.zeros((0, 4)), {}, ValueError, "empty"),
        (np.full((30, 4), "a"), {}, TypeError, "real numbers"),
    ],
    ids=["3d", "1d", "too-short", "history-0", "horizon-0", "history-negative", "history-float", "empty", "strings"],
)
def test_make_windows_rejects_bad_input(series, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_windows(series, **kwargs)


def test_correlation_channels_unrolled_path_equals_generic_path(monkeypatch):
    # Big batches take the kernels unrolled for their history: same images, bit for bit.
    from stvlm.kernels import _unrolled

    X = _windows(seed=11, n=3)
    X[1, :, 2] = 0.0  # a flat sensor
    assert X.shape[1] <= _unrolled.MAX_HISTORY
    monkeypatch.setattr(_unrolled, "MIN_PAIRS", 10**12)
    generic = correlation_channels(X, 2.5, dtype=np.float32)
    monkeypatch.setattr(_unrolled, "MIN_PAIRS", 0)
    unrolled = correlation_channels(X, 2.5, dtype=np.float32)
    assert np.array_equal(generic, unrolled)
    np.testing.assert_array_equal(np.diagonal(unrolled[:, 0], axis1=1, axis2=2), 1.0)


def test_correlation_channels_out_fills_a_slice_and_rejects_a_strided_array():
    X = _windows(seed=12, n=4)
    N = X.shape[2]
    big = np.zeros((6, 3, N, N), dtype=np.float32)
    res = correlation_channels(X, 3.0, out=big[1:5])
    assert np.shares_memory(res, big)
    np.testing.assert_array_equal(big[1:5], correlation_channels(X, 3.0))
    np.testing.assert_array_equal(big[[0, 5]], 0.0)
    strided = np.zeros((4, 3, N, 2 * N), dtype=np.float32)[..., ::2]
    with pytest.raises(ValueError, match="not C-contiguous"):
        correlation_channels(X, 3.0, out=strided)
