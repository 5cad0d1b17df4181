"""Input checks shared by every public entry point.

Each check turns a bad input into a ``ValueError``/``TypeError`` that says what was
wrong and what was expected, before it can reach numba or torch.
"""

from __future__ import annotations

import numbers

import numpy as np


def _as_float_array(X, name: str) -> np.ndarray:
    """Return ``X`` as a float ndarray, refusing non-numeric data."""
    if _is_sparse(X):
        raise TypeError(
            f"{name} is a sparse {type(X).__name__}; sparse input is not supported: stvlm needs "
            "dense arrays (use X.toarray())."
        )
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # pandas
        X = X.to_numpy()
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like of numbers; got {type(X).__name__}: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(
            f"{name} must hold real numbers; got an array of dtype {arr.dtype!s}. "
            "Convert strings or objects to float first."
        )
    if np.issubdtype(arr.dtype, np.complexfloating):
        # ValueError, as scikit-learn's check_array raises for complex data.
        raise ValueError(f"Complex data not supported: {name} must hold real numbers; got dtype {arr.dtype!s}.")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _is_sparse(X) -> bool:
    """Whether ``X`` is a scipy sparse matrix or array (without importing scipy)."""
    module = type(X).__module__ or ""
    if not module.startswith("scipy.sparse"):
        return False
    import scipy.sparse

    return scipy.sparse.issparse(X)


def check_windows(X, *, name: str = "X", min_history: int = 2, dtype=None) -> np.ndarray:
    """Validate windows of shape ``(n_windows, history, n_sensors)``.

    Returns a C-contiguous float array (``dtype`` if given, else float32 stays float32
    and everything else becomes float64). Non-finite values are kept: callers decide
    whether they are masked or imputed.
    """
    arr = _as_float_array(X, name)
    if arr.ndim != 3:
        hint = (
            " A 2-D array looks like a series (T, N): cut windows with "
            "stvlm.make_windows(series, history, horizon) first."
            if arr.ndim == 2
            else ""
        )
        raise ValueError(
            f"{name} must be 3-D windows of shape (n_windows, history, n_sensors); "
            f"got an array with shape {arr.shape}.{hint}"
        )
    n, k, N = arr.shape
    if n == 0 or N == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}; need at least one window and one sensor.")
    if k < min_history:
        raise ValueError(
            f"{name} has history {k}; at least {min_history} time steps per window are needed "
            "(correlations and DTW of a single step carry no information)."
        )
    if dtype is None:
        dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return np.ascontiguousarray(arr, dtype=dtype)


def check_series(X, *, name: str = "X") -> np.ndarray:
    """Validate a series of shape ``(T, n_sensors)``; returns float64."""
    arr = _as_float_array(X, name)
    if arr.ndim == 1:
        raise ValueError(
            f"{name} is 1-D with shape {arr.shape}; a series must be 2-D (T, n_sensors). "
            "Reshape your data: for a single sensor use X.reshape(-1, 1)."
        )
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D series (T, n_sensors); got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.shape[1] == 0:
        raise ValueError(
            f"{name} is empty: 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required "
            "(one column per sensor)."
        )
    return np.ascontiguousarray(arr, dtype=np.float64)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Check that ``value`` is an integer ``>= minimum`` (bools refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def check_n_jobs(n_jobs) -> int:
    """Resolve ``n_jobs`` as joblib does, refusing negatives other than -1."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(f"n_jobs must be None, -1 or a positive integer; got {n_jobs!r}.")
    if n_jobs == 0 or n_jobs < -1:
        raise ValueError(
            f"n_jobs must be None, -1 (all cores) or a positive integer; got {n_jobs}."
        )
    if n_jobs == -1:
        import os

        return os.cpu_count() or 1
    return int(n_jobs)


def impute_nonfinite(X: np.ndarray) -> np.ndarray:
    """Fill NaN/inf in windows ``(n, k, N)`` along time, per window and sensor.

    A missing step takes the last finite value before it (forward fill); leading
    missing steps take the first finite value after them; a sensor with no finite
    value in the window becomes 0 (a flat series, whose correlations are defined as 0).
    Returns ``X`` itself when everything is finite.
    """
    bad = ~np.isfinite(X)
    if not bad.any():
        return X
    X = np.where(bad, np.nan, X)
    n, k, N = X.shape
    idx = np.where(~bad, np.arange(k)[None, :, None], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(X, idx, axis=1)
    # Leading gaps: backward fill from the first finite value.
    still = np.isnan(filled)
    if still.any():
        ridx = np.where(~still, np.arange(k)[None, :, None], k - 1)
        ridx = np.minimum.accumulate(ridx[:, ::-1], axis=1)[:, ::-1]
        filled = np.take_along_axis(filled, ridx, axis=1)
        filled = np.where(np.isnan(filled), 0.0, filled)
    return np.ascontiguousarray(filled, dtype=X.dtype)


def check_real(value, name, low=None, high=None, low_open=False, high_open=False):
    """Check that ``value`` is a finite real number within the given bounds."""
    import math

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number; got {value!r}.")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}; got {value}.")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}; got {value}.")
    return value


def check_seed(random_state) -> int:
    """An int seed from ``random_state``, as scikit-learn's ``check_random_state`` reads it.

    ``None`` draws a fresh seed; an int must lie in ``[0, 2**32 - 1]``; a
    ``numpy.random.RandomState`` or ``Generator`` gives the next draw of it (so a shared
    one gives each fit its own seed, as in scikit-learn).
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, (bool, np.bool_)):
        if not 0 <= random_state <= 2**32 - 1:
            raise ValueError(f"random_state must be in [0, 2**32 - 1]; got {random_state}.")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise TypeError(
        "random_state must be None, an int in [0, 2**32 - 1], a numpy.random.RandomState or a "
        f"numpy.random.Generator; got {random_state!r}."
    )
