"""Tests of stvlm.kernels: the three S2I channels (DTW, lagged cross-correlation,
spectral correlation) on both backends, against tslearn on real PEMS08 windows and
against brute-force references written here from the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stvlm import dtw_matrix, lagged_xcorr_matrix, spectral_corr_matrix

KERNELS = {
    "dtw": dtw_matrix,
    "xcorr": lagged_xcorr_matrix,
    "spectral": spectral_corr_matrix,
}
BACKENDS = ("numba", "torch")
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------- brute-force references
def _is_constant(x):
    return bool(np.all(x == x[0]))


def dtw_reference(a, b):
    """Classic DTW: squared local cost, accumulated, square root of the total."""
    k, m = len(a), len(b)
    D = [[math.inf] * (m + 1) for _ in range(k + 1)]
    D[0][0] = 0.0
    for i in range(1, k + 1):
        for j in range(1, m + 1):
            cost = (float(a[i - 1]) - float(b[j - 1])) ** 2
            D[i][j] = cost + min(D[i - 1][j], D[i][j - 1], D[i - 1][j - 1])
    return math.sqrt(D[k][m])


def xcorr_candidates(x, y):
    """R_xy(tau) for tau in [-(k-1), k-1] (paper's Eq. 2); None if a series is flat."""
    if _is_constant(x) or _is_constant(y):
        return None
    k = len(x)
    a = x - x.mean()
    b = y - y.mean()
    norm = math.sqrt(float(np.dot(a, a))) * math.sqrt(float(np.dot(b, b)))
    values = []
    for tau in range(-(k - 1), k):
        s = 0.0
        for t in range(k):
            if 0 <= t + tau < k:  # only the steps where both series exist
                s += float(a[t]) * float(b[t + tau])
        values.append(s / norm)
    return values


def xcorr_reference(x, y):
    """The signed value of largest magnitude over the lags (the positive one where both
    signs tie); 0 for a flat series."""
    values = xcorr_candidates(x, y)
    if values is None:
        return 0.0
    return max(values, key=lambda v: (abs(v), v))


def _amplitude(x):
    return np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64)))[1:]  # no DC bin


def _spectrum_is_flat(x):
    amp = _amplitude(x)
    return _is_constant(x) or float(np.ptp(amp)) <= 1e-6 * float(np.max(amp))


def spectral_reference(x, y):
    """Pearson correlation of |rfft| without the DC bin; 0 for a flat spectrum."""
    if _spectrum_is_flat(x) or _spectrum_is_flat(y):
        return 0.0
    p, q = _amplitude(x), _amplitude(y)
    p, q = p - p.mean(), q - q.mean()
    return float(np.sum(p * q) / math.sqrt(float(np.sum(p * p)) * float(np.sum(q * q))))


def reference_matrices(kind, X):
    """All-pairs reference matrix ``(n, N, N)`` of windows ``X`` (n, k, N)."""
    n, _, N = X.shape
    out = np.empty((n, N, N))
    for w in range(n):
        for i in range(N):
            for j in range(N):
                x, y = X[w, :, i], X[w, :, j]
                if kind == "dtw":
                    out[w, i, j] = dtw_reference(x, y)
                elif i == j:
                    flat = _is_constant(x) if kind == "xcorr" else _spectrum_is_flat(x)
                    out[w, i, j] = 0.0 if flat else 1.0
                elif kind == "xcorr":
                    out[w, i, j] = xcorr_reference(x, y)
                else:
                    out[w, i, j] = spectral_reference(x, y)
    return out


def assert_xcorr_matches_reference(R, X, tol):
    """``R`` picks a lag of (numerically) largest |R| with that lag's sign.

    Where two lags of opposite sign tie in magnitude within ``tol``, either is right.
    """
    n, _, N = X.shape
    for w in range(n):
        for i in range(N):
            for j in range(N):
                x, y = X[w, :, i], X[w, :, j]
                if i == j:
                    assert R[w, i, i] == pytest.approx(0.0 if _is_constant(x) else 1.0, abs=tol)
                    continue
                values = xcorr_candidates(x, y)
                if values is None:
                    assert R[w, i, j] == pytest.approx(0.0, abs=tol)
                    continue
                top = max(abs(v) for v in values)
                assert abs(R[w, i, j]) == pytest.approx(top, abs=tol)
                near_top = [v for v in values if abs(v) >= top - tol]
                assert min(abs(R[w, i, j] - v) for v in near_top) <= tol, (w, i, j)


def impute_reference(X):
    """Documented imputation: forward fill, then backward fill along time per window and
    sensor; a sensor with no finite value in a window becomes flat (0)."""
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


# --------------------------------------------------------------------- strategies
@st.composite
def windows(draw, flats=True, missing=False):
    """Random windows (n, k, N), N in 2..12, k in 2..16, with continuous values (no
    exact ties between lags), optionally flat (constant or all-zero) sensors and NaN/inf."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 3))
    k = draw(st.integers(2, 16))
    N = draw(st.integers(2, 12))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k, N)) * rng.uniform(0.5, 5.0, size=N) + rng.uniform(-10.0, 10.0, size=N)
    if flats:
        n_flat = draw(st.integers(0, N // 2))
        for j in rng.choice(N, size=n_flat, replace=False):
            w = rng.integers(n)
            X[w, :, j] = 0.0 if rng.random() < 0.5 else rng.uniform(-50.0, 50.0)
    if missing:
        mask = rng.random(X.shape) < draw(st.sampled_from([0.1, 0.3]))
        X[mask] = rng.choice([np.nan, np.inf, -np.inf], size=int(mask.sum()))
        if draw(st.booleans()):
            X[rng.integers(n), :, rng.integers(N)] = np.nan  # an all-missing sensor
    return X


def _random_windows(seed, n=3, k=12, N=7, flat=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k, N)) * rng.uniform(0.5, 5.0, size=N) + rng.uniform(-10.0, 10.0, size=N)
    if flat:
        X[0, :, 1] = 0.0  # all-zero sensor
        X[1, :, 2] = 42.5  # constant sensor
        X[2, :, 3] = 1e5  # large constant: FFT leaves rounding noise beyond DC
    return X


# ------------------------------------------------------------- DTW against tslearn
@pytest.fixture(scope="module")
def pems08_windows():
    from stvlm.datasets import load_protocol

    X = load_protocol("pems08-tail").test_X  # the embedded copy of the real data
    return np.ascontiguousarray(X[[0, X.shape[0] // 2, X.shape[0] - 1]])  # (3, 12, 170)


@pytest.fixture(scope="module")
def pems08_tslearn(pems08_windows):
    from tslearn.metrics import cdist_dtw

    # tslearn wants (n_series, length, dims): one series per sensor.
    return np.stack([cdist_dtw(w.T[:, :, None]) for w in pems08_windows])


def test_dtw_numba_matches_tslearn_on_pems08(pems08_windows, pems08_tslearn):
    assert pems08_windows.shape == (3, 12, 170)
    D = dtw_matrix(pems08_windows, backend="numba", dtype="float64")
    np.testing.assert_allclose(D, pems08_tslearn, rtol=1e-9, atol=0)


def test_dtw_numba_float64_is_bit_identical_to_tslearn_on_pems08(pems08_windows, pems08_tslearn):
    D = dtw_matrix(pems08_windows, backend="numba", dtype="float64")
    assert np.array_equal(D, pems08_tslearn)


def test_dtw_torch_float64_matches_tslearn_on_pems08(pems08_windows, pems08_tslearn):
    D = dtw_matrix(pems08_windows, backend="torch", dtype="float64")
    assert D.dtype == np.float64
    np.testing.assert_allclose(D, pems08_tslearn, rtol=1e-9, atol=0)


# ------------------------------------------------------------ hand-computed cases
@pytest.mark.parametrize("backend", BACKENDS)
def test_dtw_hand_computed_warping(backend):
    # 0,1,2,1 warps onto 0,0,1,2 at zero cost up to the last step (1 vs 2): sqrt(1).
    # 0,0 vs 3,4: every path pays 9 + 16 at least -> sqrt(25) = 5.
    X = np.array([[[0.0, 0.0], [1.0, 0.0], [2.0, 1.0], [1.0, 2.0]]])
    np.testing.assert_allclose(dtw_matrix(X, backend=backend), [[[0.0, 1.0], [1.0, 0.0]]], atol=1e-12)
    Y = np.array([[[0.0, 3.0], [0.0, 4.0]]])
    np.testing.assert_allclose(dtw_matrix(Y, backend=backend), [[[0.0, 5.0], [5.0, 0.0]]], atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lagged_xcorr_hand_computed_shift_and_negation(backend):
    # b is a shifted copy of a with no part cut off, so some lag gives exactly 1 ...
    a = np.array([1.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    b = np.roll(a, 3)
    X = np.stack([a, b, -a], axis=1)[None]
    R = lagged_xcorr_matrix(X, backend=backend)[0]
    # ... and -a is perfectly anti-correlated at lag 0; a vs -b at lag 3 as well.
    np.testing.assert_allclose(R, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lagged_xcorr_tie_between_signs_takes_positive_value(backend):
    # a = [1, 0, -1], b = [0, 1, 0]: centred b = [-1, 2, -1] / 3, norms sqrt(2) and
    # sqrt(6) / 3; R(+1) = 2/3 / (sqrt(2) sqrt(6) / 3) = 1/sqrt(3) = -R(-1), R(0) = 0,
    # |R(+-2)| = 1/(2 sqrt(3)). Both signs tie: the value is +1/sqrt(3) in either order.
    a = np.array([1.0, 0.0, -1.0])
    b = np.array([0.0, 1.0, 0.0])
    for X in (np.stack([a, b], axis=1)[None], np.stack([b, a], axis=1)[None]):
        R = lagged_xcorr_matrix(X, backend=backend)[0]
        np.testing.assert_allclose(R, [[1, 1 / math.sqrt(3)], [1 / math.sqrt(3), 1]], atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_spectral_corr_hand_computed_scaled_copy_and_impulse(backend):
    t = np.arange(12.0)
    impulse = np.zeros(12)
    impulse[4] = 1.0  # |rfft| is 1 in every bin: a flat spectrum
    X = np.stack([np.sin(t), 5 + 2 * np.sin(t), impulse], axis=1)[None]
    P = spectral_corr_matrix(X, backend=backend)[0]
    np.testing.assert_allclose(P, [[1, 1, 0], [1, 1, 0], [0, 0, 0]], atol=1e-9)


# ---------------------------------------------- correlations against brute force
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_lagged_xcorr_matches_bruteforce_reference(backend, dtype, tol, seed):
    X = _random_windows(seed)
    R = lagged_xcorr_matrix(X, backend=backend, dtype=dtype)
    assert R.dtype == np.dtype(dtype)
    np.testing.assert_allclose(R, reference_matrices("xcorr", X), rtol=0, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_spectral_corr_matches_bruteforce_reference(backend, dtype, tol, seed):
    X = _random_windows(seed)
    P = spectral_corr_matrix(X, backend=backend, dtype=dtype)
    assert P.dtype == np.dtype(dtype)
    np.testing.assert_allclose(P, reference_matrices("spectral", X), rtol=0, atol=tol)


@PROPERTY
@given(X=windows())
def test_lagged_xcorr_matches_reference_on_random_windows(X):
    for backend in BACKENDS:
        assert_xcorr_matches_reference(lagged_xcorr_matrix(X, backend=backend, dtype="float64"), X, 1e-10)


@PROPERTY
@given(X=windows())
def test_spectral_corr_matches_reference_on_random_windows(X):
    ref = reference_matrices("spectral", X)
    for backend in BACKENDS:
        np.testing.assert_allclose(spectral_corr_matrix(X, backend=backend, dtype="float64"), ref, atol=1e-10)


@PROPERTY
@given(X=windows())
def test_dtw_matches_reference_on_random_windows(X):
    ref = reference_matrices("dtw", X)
    for backend in BACKENDS:
        np.testing.assert_allclose(dtw_matrix(X, backend=backend, dtype="float64"), ref, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- properties
@PROPERTY
@given(X=windows(missing=True))
def test_all_matrices_are_symmetric(X):
    for name, kernel in KERNELS.items():
        for backend in BACKENDS:
            M = kernel(X, backend=backend)
            np.testing.assert_allclose(M, M.transpose(0, 2, 1), rtol=1e-12, atol=1e-12, err_msg=f"{name}/{backend}")


@PROPERTY
@given(X=windows(missing=True))
def test_dtw_diagonal_is_zero(X):
    for backend in BACKENDS:
        D = dtw_matrix(X, backend=backend)
        assert np.all(np.diagonal(D, axis1=1, axis2=2) == 0.0)
        assert np.all(D >= 0.0)


@PROPERTY
@given(X=windows(missing=True), dtype=st.sampled_from(["float32", "float64"]))
def test_all_values_are_finite(X, dtype):
    for name, kernel in KERNELS.items():
        for backend in BACKENDS:
            assert np.all(np.isfinite(kernel(X, backend=backend, dtype=dtype))), f"{name}/{backend}"


@PROPERTY
@given(X=windows(missing=True), dtype=st.sampled_from(["float32", "float64"]))
def test_correlations_lie_in_minus_one_one(X, dtype):
    for kernel in (lagged_xcorr_matrix, spectral_corr_matrix):
        for backend in BACKENDS:
            M = kernel(X, backend=backend, dtype=dtype)
            assert M.min() >= -1.0 and M.max() <= 1.0


@PROPERTY
@given(X=windows(missing=True), data=st.data())
def test_permuting_sensors_permutes_rows_and_columns(X, data):
    perm = np.array(data.draw(st.permutations(range(X.shape[2]))))
    for name, kernel in KERNELS.items():
        for backend in BACKENDS:
            M = kernel(X, backend=backend, dtype="float64")
            Mp = kernel(X[:, :, perm], backend=backend, dtype="float64")
            np.testing.assert_allclose(
                Mp, M[:, perm][:, :, perm], rtol=1e-12, atol=1e-12, err_msg=f"{name}/{backend}"
            )


@PROPERTY
@given(X=windows(missing=True), dtype=st.sampled_from(["float32", "float64"]))
def test_numba_and_torch_backends_agree(X, dtype):
    tol = {"float32": 1e-5, "float64": 1e-10}[dtype]
    for name, kernel in KERNELS.items():
        a = kernel(X, backend="numba", dtype=dtype)
        b = kernel(X, backend="torch", dtype=dtype)
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)


def test_auto_backend_equals_numba():
    X = _random_windows(3)
    for kernel in KERNELS.values():
        np.testing.assert_array_equal(kernel(X), kernel(X, backend="auto"))
        np.testing.assert_array_equal(kernel(X, backend="auto"), kernel(X, backend="numba"))


def test_xcorr_exact_lag_ties_stay_symmetric_and_backends_agree():
    # Small integer series make |R| tie exactly between lags of opposite sign; both
    # backends must still return symmetric matrices and pick the same lag.
    X = np.random.default_rng(0).integers(-2, 3, size=(400, 4, 3)).astype(np.float64)
    Rn = lagged_xcorr_matrix(X, backend="numba")
    Rt = lagged_xcorr_matrix(X, backend="torch")
    np.testing.assert_array_equal(Rt, Rt.transpose(0, 2, 1))
    np.testing.assert_array_equal(Rn, Rn.transpose(0, 2, 1))
    np.testing.assert_allclose(Rn, Rt, atol=1e-12)
    assert_xcorr_matches_reference(Rn, X, 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_collinear_series_correlate_to_at_most_one(backend, dtype):
    rng = np.random.default_rng(1)
    base = rng.normal(size=(200, 12, 1))
    X = np.concatenate([base, 3 * base + 1, base, -base], axis=2)
    R = lagged_xcorr_matrix(X, backend=backend, dtype=dtype)
    assert np.abs(R).max() <= 1.0
    np.testing.assert_allclose(R[:, 0, 1], 1.0, atol=1e-6)
    np.testing.assert_allclose(R[:, 0, 3], -1.0, atol=1e-6)


# ------------------------------------------------------------- flat series, NaN
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [5, 7, 12])
@pytest.mark.parametrize("level", [0.0, 3.0, 7e3, 1e5])
def test_flat_series_have_zero_correlation_never_nan(backend, k, level):
    X = np.random.default_rng(k).normal(size=(2, k, 4))
    X[:, :, 1] = level
    for kernel in (lagged_xcorr_matrix, spectral_corr_matrix):
        M = kernel(X, backend=backend)
        assert not np.isnan(M).any()
        np.testing.assert_array_equal(M[:, 1, :], 0.0)
        np.testing.assert_array_equal(M[:, :, 1], 0.0)
        np.testing.assert_allclose(M[:, 0, 0], 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_flat_window_gives_zero_correlations(backend):
    X = np.zeros((1, 12, 3))
    X[0, :, 2] = 5.0
    for kernel in (lagged_xcorr_matrix, spectral_corr_matrix):
        np.testing.assert_array_equal(kernel(X, backend=backend), 0.0)
    np.testing.assert_allclose(dtw_matrix(X, backend=backend)[0, 0, 2], 5.0 * math.sqrt(12))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_nonfinite_values_are_imputed_along_time(backend, name):
    X = _random_windows(4)
    X[0, 0, 0] = np.nan  # leading gap: backward fill
    X[0, 5:7, 0] = np.inf  # inner gap: forward fill
    X[1, -3:, 4] = -np.inf  # trailing gap: forward fill
    X[2, :, 5] = np.nan  # all missing: flat
    X[1, ::2, 6] = np.nan
    kernel = KERNELS[name]
    M = kernel(X, backend=backend)
    assert np.all(np.isfinite(M))
    np.testing.assert_array_equal(M, kernel(impute_reference(X), backend=backend))


def test_impute_reference_agrees_with_hand_example():
    # Guards the reference itself: [nan, 1, nan, 3, inf] -> [1, 1, 1, 3, 3].
    X = np.array([np.nan, 1.0, np.nan, 3.0, np.inf])[None, :, None]
    np.testing.assert_array_equal(impute_reference(X)[0, :, 0], [1, 1, 1, 3, 3])


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_missing_sensor_is_flat(backend):
    X = _random_windows(5, flat=False)
    X[0, :, 2] = np.nan
    R = lagged_xcorr_matrix(X, backend=backend)
    np.testing.assert_array_equal(R[0, 2], 0.0)
    np.testing.assert_array_equal(spectral_corr_matrix(X, backend=backend)[0, 2], 0.0)


# ----------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_dtype_defaults_follow_input_and_can_be_set(backend, name):
    kernel = KERNELS[name]
    X = _random_windows(6)
    assert kernel(X, backend=backend).dtype == np.float64
    assert kernel(X.astype(np.float32), backend=backend).dtype == np.float32
    assert kernel(X.astype(int), backend=backend).dtype == np.float64
    assert kernel(X, backend=backend, dtype=np.float32).dtype == np.float32
    assert kernel(X.astype(np.float32), backend=backend, dtype="float64").dtype == np.float64


# -------------------------------------------------------------------- bad input
_GOOD = np.random.default_rng(0).normal(size=(2, 12, 4))


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize(
    "X, kwargs, error, match",
    [
        (_GOOD[0], {}, ValueError, "3-D windows"),
        (_GOOD[:, :1], {}, ValueError, "history 1"),
        (_GOOD.astype(str), {}, TypeError, "real numbers"),
        (_GOOD.astype(object), {}, TypeError, "real numbers"),
        (np.zeros((0, 12, 4)), {}, ValueError, "empty"),
        (np.zeros((2, 12, 0)), {}, ValueError, "empty"),
        (_GOOD, {"dtype": "float16"}, ValueError, "dtype must be float32 or float64"),
        (_GOOD, {"dtype": "int32"}, ValueError, "dtype must be float32 or float64"),
        (_GOOD, {"backend": "cuda"}, ValueError, "backend must be one of"),
        (_GOOD, {"backend": "numba", "device": "cuda"}, ValueError, "runs on the CPU"),
    ],
    ids=[
        "2d",
        "history-1",
        "strings",
        "objects",
        "no-windows",
        "no-sensors",
        "dtype-float16",
        "dtype-int",
        "backend",
        "numba-on-cuda",
    ],
)
def test_bad_input_raises_clear_error(name, X, kwargs, error, match):
    with pytest.raises(error, match=match):
        KERNELS[name](X, **kwargs)


@pytest.mark.parametrize(("k", "N"), [(7, 150), (12, 150), (64, 40)])
def test_dtw_numba_bit_identical_to_tslearn_across_partner_blocks(k, N):
    # The kernel takes partners in blocks of lanes (fewer for long histories) and DP
    # rows in pairs (row 0 alone for odd k): N and k here span several blocks and both
    # parities.
    from tslearn.metrics import cdist_dtw

    from stvlm.kernels._numba import dtw_lanes

    assert N > dtw_lanes(k, 8)
    X = _random_windows(k, n=1, k=k, N=N, flat=False)
    D = dtw_matrix(X, backend="numba", dtype="float64")[0]
    assert np.array_equal(D, cdist_dtw(X[0].T[:, :, None]))


# ------------------------------------------------- kernels unrolled for one history
def _generic_and_unrolled(kind, X, dtype, sim_scale=0.0):
    from stvlm.kernels import _numba, _unit_rows, _unrolled

    n, k, N = X.shape
    mod = _unrolled.kernels(k)
    a = np.full((n, 1, N, N), np.nan, dtype=dtype)
    b = np.full((n, 1, N, N), np.nan, dtype=dtype)
    if kind == "dtw":
        Xt = np.ascontiguousarray(X, dtype=dtype)
        s = Xt.dtype.type(sim_scale)  # typed as the library passes it: no extra compile
        _numba.dtw_batch(Xt, a, 0, _numba.dtw_lanes(k, Xt.itemsize), s)
        mod.dtw_batch(Xt, b, 0, s)
    else:
        Z, flat = _unit_rows(np.ascontiguousarray(X.transpose(0, 2, 1)))
        Zt = np.ascontiguousarray(Z.transpose(0, 2, 1), dtype=dtype)
        _numba.xcorr_batch(Zt, flat, a, 0)
        mod.xcorr_batch(Zt, flat, b, 0)
    upper = np.triu(np.ones((N, N), dtype=bool))  # the kernels write the upper triangle
    return a[:, 0][:, upper], b[:, 0][:, upper]


@pytest.mark.parametrize(
    ("k", "dtype"), [(2, np.float64), (5, np.float64), (5, np.float32), (12, np.float32)]
)
@pytest.mark.parametrize(("kind", "sim_scale"), [("dtw", 0.0), ("dtw", 0.3), ("xcorr", 0.0)])
def test_unrolled_kernels_equal_generic_bit_for_bit(k, dtype, kind, sim_scale):
    # Same operations in the same order: not close, equal. Flat sensors included.
    X = _random_windows(k, n=3, k=k, N=41, flat=True)
    a, b = _generic_and_unrolled(kind, X, dtype, sim_scale)
    assert np.isfinite(a).all()
    assert np.array_equal(a, b)


def test_unrolled_dtw_bit_identical_to_tslearn_on_pems08(pems08_windows, pems08_tslearn, monkeypatch):
    from stvlm.kernels import _unrolled

    assert not _unrolled.worth_unrolling(*pems08_windows.shape[::2], 12)  # 3 windows: generic
    monkeypatch.setattr(_unrolled, "MIN_PAIRS", 0)
    calls = []
    real = _unrolled.kernels
    monkeypatch.setattr(_unrolled, "kernels", lambda k: calls.append(k) or real(k))
    D = dtw_matrix(pems08_windows, backend="numba", dtype="float64")
    assert calls == [12]
    assert np.array_equal(D, pems08_tslearn)


def test_worth_unrolling_needs_a_big_batch_and_a_short_history():
    from stvlm.kernels._unrolled import MAX_HISTORY, MIN_PAIRS, worth_unrolling

    pairs_170 = 170 * 169 // 2
    n_big = -(-MIN_PAIRS // pairs_170)
    assert worth_unrolling(n_big, 170, 12)
    assert not worth_unrolling(n_big - 1, 170, 12)
    assert not worth_unrolling(n_big, 170, MAX_HISTORY + 1)
    assert not worth_unrolling(10**6, 1, 12)  # one sensor: no pairs


def test_unrolled_kernels_are_written_to_the_kernel_dir_and_reused(tmp_path, monkeypatch):
    from stvlm.kernels import _unrolled

    monkeypatch.setenv("STVLM_KERNEL_DIR", str(tmp_path))
    assert _unrolled.kernel_dir() == tmp_path
    _unrolled.kernels.cache_clear()
    try:
        mod = _unrolled.kernels(3)
        path = tmp_path / f"stvlm_s2i_k3_v{_unrolled._GEN_VERSION}.py"
        assert path.read_text() == _unrolled.source(3)
        assert mod.__file__ == str(path)
        assert _unrolled.kernels(3) is mod
    finally:
        _unrolled.kernels.cache_clear()
    with pytest.raises(ValueError, match="histories 2"):
        _unrolled.kernels(_unrolled.MAX_HISTORY + 1)


def test_kernel_dir_falls_back_to_a_temporary_folder(tmp_path, monkeypatch):
    from stvlm.kernels import _unrolled

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("STVLM_KERNEL_DIR", str(blocker / "kernels"))  # cannot be created
    d = _unrolled.kernel_dir()
    assert d != blocker / "kernels"
    assert d.is_dir() and d.name.startswith("stvlm-kernels-")


def test_generic_kernels_serve_when_no_folder_takes_generated_source(monkeypatch):
    from stvlm.kernels import _unrolled

    X = _random_windows(21, n=3, k=12, N=30)
    expected = (dtw_matrix(X, dtype="float64"), lagged_xcorr_matrix(X, dtype="float64"))
    monkeypatch.setattr(_unrolled, "MIN_PAIRS", 0)

    def no_folder(k):
        raise OSError("no writable folder")

    monkeypatch.setattr(_unrolled, "kernels", no_folder)
    assert np.array_equal(dtw_matrix(X, dtype="float64"), expected[0])
    assert np.array_equal(lagged_xcorr_matrix(X, dtype="float64"), expected[1])


def test_numba_kernels_leave_torchs_thread_count_alone():
    """numba's OpenMP layer sets OpenMP's thread count to its own at each parallel launch,
    and torch reads the same count: a fit limited to one thread ran on every core after its
    first image. Every kernel that reaches numba gives torch back its count."""
    import torch

    from stvlm.kernels import (correlation_channels, dtw_matrix, fit_dtw_scale, lagged_xcorr_matrix,
                               spectral_corr_matrix)

    X = np.random.default_rng(0).normal(size=(3, 12, 5))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for run in (lambda: correlation_channels(X, dtw_scale=1.0), lambda: fit_dtw_scale(X),
                    lambda: dtw_matrix(X), lambda: lagged_xcorr_matrix(X), lambda: spectral_corr_matrix(X),
                    lambda: correlation_channels(X, dtw_scale=1.0, dtype=np.float64, serial=True)):
            run()
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
