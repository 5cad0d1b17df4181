"""The three spatial-to-image (S2I) channels as all-pairs kernels.

Each public function takes windows ``(n_windows, history, n_sensors)`` and returns
``(n_windows, n_sensors, n_sensors)``: ``dtw_matrix`` (distances),
``lagged_xcorr_matrix`` and ``spectral_corr_matrix`` (correlations in ``[-1, 1]``).
Two implementations sit behind them: numba kernels for the CPU (``backend="numba"``)
and batched torch kernels for any device (``backend="torch"``). On the CPU, batches big
enough to repay a compile use DTW and cross-correlation kernels unrolled for their
history length (``_unrolled``), with the same results bit for bit. :func:`correlation_channels` assembles the three into
the images of :class:`~stvlm.SpatialToImageTransformer` and the forecaster.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_windows, impute_nonfinite
from ._threads import keeps_torch_threads

__all__ = [
    "correlation_channels",
    "correlation_channels_torch",
    "dtw_matrix",
    "fit_dtw_scale",
    "lagged_xcorr_matrix",
    "spectral_corr_matrix",
]

# A series counts as flat (constant, or a sensor reading 0 throughout) when its spread
# is below this fraction of its magnitude, or below _FLAT_ATOL in absolute terms: its
# correlations are then defined as 0 instead of dividing by ~0.
_FLAT_RTOL = 1e-6
_FLAT_ATOL = 1e-12

_BACKENDS = ("auto", "numba", "torch")


def _resolve_dtype(dtype, X):
    if dtype is None:
        return np.float32 if X.dtype == np.float32 else np.float64
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {dt}.")
    return dt.type


def _check_backend(backend):
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}; got {backend!r}.")
    return "numba" if backend == "auto" else backend


def _unit_rows(V: np.ndarray, atol=_FLAT_ATOL):
    """Centre the last axis and scale to unit norm; flat rows become 0.

    Computed in float64 whatever the input, so the flat test and the normalisation
    do not depend on the output dtype.
    """
    from . import _numba

    V = np.ascontiguousarray(V, dtype=np.float64)
    Z = np.empty_like(V)
    flat = np.empty(V.shape[:-1], dtype=bool)
    m = V.shape[-1]
    _numba.unit_rows(V.reshape(-1, m), Z.reshape(-1, m), flat.reshape(-1), _FLAT_RTOL, float(atol))
    return Z, flat


def _prepare(X, dtype, *, min_history=2):
    """Checked windows ``(n, k, N)`` with NaN/inf imputed, and the working dtype."""
    X = check_windows(X, min_history=min_history)
    dt = _resolve_dtype(dtype, X)
    return impute_nonfinite(X), dt


def _series(X):
    """Windows ``(n, k, N)`` as series along the last axis: ``(n, N, k)``, float64."""
    return np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float64)


def _spectra(S: np.ndarray, flat_series=None, atol=_FLAT_ATOL):
    """Standardised amplitude spectra without the DC bin, and the flat mask.

    ``flat_series``: the series' own flat mask (``_unit_rows(S)[1]``) if already known.
    """
    S = S.astype(np.float64, copy=False)
    amp = np.abs(np.fft.rfft(S, axis=-1))[..., 1:]
    A, flat = _unit_rows(amp, atol)
    # A flat series has no spectrum beyond DC, but the FFT leaves rounding noise
    # (~1e-16 |x|) there, which _unit_rows alone would normalise into a spurious
    # spectrum with a correlation of 1 to itself: decide flatness on the series too.
    flat |= _unit_rows(S, atol)[1] if flat_series is None else flat_series
    A[flat] = 0.0
    return A, flat


def _unrolled_module(n, N, k, unrolled):
    """The module of kernels unrolled for ``k``, or None for the generic kernels.

    ``unrolled``: True / False, or None to decide by the batch size. Where no folder
    can take the generated source, the generic kernels serve.
    """
    from . import _unrolled

    if unrolled is None:
        unrolled = _unrolled.worth_unrolling(n, N, k)
    if not unrolled:
        return None
    try:
        return _unrolled.kernels(k)
    except OSError:
        return None


def _run_dtw(Xt, out, c, sim_scale=0.0, serial=False, unrolled=None):
    """Upper triangle and diagonal of channel ``c`` of ``out`` ``(n, C, N, N)``.

    From time-major windows ``Xt``. ``unrolled``: use the kernels unrolled for this
    history (default: where the batch is big enough to repay compiling them).
    """
    from . import _numba

    n, k, N = Xt.shape
    # Typed like the windows, so that every caller shares one compiled specialisation.
    sim_scale = Xt.dtype.type(sim_scale)
    mod = _unrolled_module(n, N, k, unrolled)
    if mod is not None:
        (mod.dtw_batch_serial if serial else mod.dtw_batch)(Xt, out, c, sim_scale)
    else:
        lanes = _numba.dtw_lanes(k, Xt.itemsize)
        (_numba.dtw_batch_serial if serial else _numba.dtw_batch)(Xt, out, c, lanes, sim_scale)


def _run_xcorr(Zt, flat, out, c, serial=False, unrolled=None):
    """Upper triangle and diagonal of channel ``c`` of ``out`` from unit series ``Zt``."""
    from . import _numba

    n, k, N = Zt.shape
    mod = _unrolled_module(n, N, k, unrolled)
    if mod is not None:
        (mod.xcorr_batch_serial if serial else mod.xcorr_batch)(Zt, flat, out, c)
    else:
        (_numba.xcorr_batch_serial if serial else _numba.xcorr_batch)(Zt, flat, out, c)


@keeps_torch_threads
def _dtw_numba(X, dt, serial=False, sim_scale=0.0, unrolled=None):
    """DTW matrices of windows ``X`` ``(n, k, N)`` (time-major, as given) on numba.

    ``sim_scale > 0`` gives similarities ``exp(-d * sim_scale)`` instead of distances;
    ``unrolled`` as in ``_run_dtw``.
    """
    from . import _numba

    Xt = np.ascontiguousarray(X, dtype=dt)
    n, k, N = Xt.shape
    out = np.empty((n, N, N), dtype=dt)
    _run_dtw(Xt, out[:, None], 0, sim_scale, serial, unrolled)
    (_numba.mirror_upper_serial if serial else _numba.mirror_upper)(out)
    return out


@keeps_torch_threads
def _xcorr_numba(S, dt, serial=False):
    from . import _numba

    Z, flat = _unit_rows(S)
    Zt = np.ascontiguousarray(Z.transpose(0, 2, 1), dtype=dt)
    out = np.empty(S.shape[:2] + (S.shape[1],), dtype=dt)
    _run_xcorr(Zt, flat, out[:, None], 0, serial)
    (_numba.mirror_upper_serial if serial else _numba.mirror_upper)(out)
    return out


@keeps_torch_threads
def _spectral_numba(S, dt):
    from . import _numba

    A, flat = _spectra(S)
    At = np.ascontiguousarray(A.transpose(0, 2, 1), dtype=dt)
    out = np.empty(S.shape[:2] + (S.shape[1],), dtype=dt)
    _numba.spectral_batch(At, out[:, None], 0)
    _numba.mirror_upper(out)
    np.clip(out, -1.0, 1.0, out=out)
    idx = np.arange(S.shape[1])
    out[:, idx, idx] = (~flat).astype(dt)
    return out


def _torch_call(kind, S, dt, device, atol=_FLAT_ATOL):
    import torch

    from . import _torch

    tdt = torch.float32 if dt == np.float32 else torch.float64
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if kind == "dtw":
        return _torch.dtw_torch(torch.as_tensor(S, dtype=tdt, device=dev))
    if kind == "xcorr":
        Z, flat = _unit_rows(S, atol)
        return _torch.xcorr_torch(
            torch.as_tensor(Z, dtype=tdt, device=dev), torch.as_tensor(flat, device=dev)
        )
    A, flat = _spectra(S, atol=atol)
    return _torch.spectral_torch(torch.as_tensor(A, dtype=tdt, device=dev), torch.as_tensor(flat, device=dev))


def _dispatch(kind, X, backend, dtype, device):
    backend = _check_backend(backend)
    X, dt = _prepare(X, dtype)
    if backend == "torch":
        return _torch_call(kind, _series(X), dt, device).cpu().numpy()
    if device is not None and str(device) != "cpu":
        raise ValueError(f"backend='numba' runs on the CPU; got device={device!r}. Use backend='torch'.")
    if kind == "dtw":
        return _dtw_numba(X, dt)
    if kind == "xcorr":
        return _xcorr_numba(_series(X), dt)
    return _spectral_numba(_series(X), dt)


_COMMON_PARAMS = """
    Parameters
    ----------
    X : array-like of shape (n_windows, history, n_sensors)
        Windows; ``history >= 2``. NaN and inf are imputed along time (forward fill,
        then backward fill; a sensor with no finite value in a window is flat), never
        propagated.
    backend : {"auto", "numba", "torch"}, default="auto"
        ``"numba"`` (the default behind ``"auto"``) runs the CPU kernels on numba's
        threads (``NUMBA_NUM_THREADS``); ``"torch"`` runs the batched torch kernels on
        ``device``.
    dtype : {None, "float32", "float64"}, default=None
        Output and working precision; ``None`` keeps float32 input as float32 and
        computes everything else in float64.
    device : str or torch.device, optional
        Device for ``backend="torch"`` (``"cpu"``, ``"cuda"``, ...).

    Returns
    -------
    M : ndarray of shape (n_windows, n_sensors, n_sensors)
"""


def dtw_matrix(X, *, backend="auto", dtype=None, device=None):
    return _dispatch("dtw", X, backend, dtype, device)


def lagged_xcorr_matrix(X, *, backend="auto", dtype=None, device=None):
    return _dispatch("xcorr", X, backend, dtype, device)


def spectral_corr_matrix(X, *, backend="auto", dtype=None, device=None):
    return _dispatch("spectral", X, backend, dtype, device)


dtw_matrix.__doc__ = (
    """Dynamic time warping distance between every pair of sensors of each window.

    Classic DTW with squared local cost and the square root of the accumulated total,
    equal to ``tslearn.metrics.cdist_dtw`` (bit-identical in float64 on the numba
    backend). Symmetric with a zero diagonal.
"""
    + _COMMON_PARAMS
    + """
    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import dtw_matrix
    >>> X = np.array([[[0.0, 0.0], [1.0, 0.0], [2.0, 1.0], [1.0, 2.0]]])  # (1, 4, 2)
    >>> dtw_matrix(X)  # warping aligns 0,1,2,1 with 0,0,1,2 up to the last step
    array([[[0., 1.],
            [1., 0.]]])
"""
)

lagged_xcorr_matrix.__doc__ = (
    """Time-lagged cross-correlation between every pair of sensors of each window.

    For centred series ``a`` and ``b`` of length ``k`` (the paper's Eq. 2),
    ``R_ab(tau) = sum_t a[t] b[t + tau] / (||a|| ||b||)`` for
    ``tau`` in ``[-(k-1), k-1]``, summing over the steps where both exist. The entry is
    the signed value of largest magnitude over the lags (the positive one where both
    signs tie), in ``[-1, 1]``. The diagonal is
    1, except for flat series (constant or all-zero), whose row and column are 0.
"""
    + _COMMON_PARAMS
    + """
    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import lagged_xcorr_matrix
    >>> a = np.array([0.0, 1, 3, 1, 0, 0, 0, 0])
    >>> b = np.roll(a, 2)                       # the same pulse two steps later: 6 of 8 steps overlap
    >>> X = np.stack([a, b, -a, np.full(8, 3.0)], axis=1)[None]
    >>> lagged_xcorr_matrix(X)[0].round(3)
    array([[ 1.   ,  0.901, -1.   ,  0.   ],
           [ 0.901,  1.   , -0.901,  0.   ],
           [-1.   , -0.901,  1.   ,  0.   ],
           [ 0.   ,  0.   ,  0.   ,  0.   ]])
"""
)

spectral_corr_matrix.__doc__ = (
    """Pearson correlation of the FFT amplitude spectra of every pair of sensors.

    The spectra are ``|rfft(x)|`` without the DC bin (the window mean, which DTW
    already sees). Values in ``[-1, 1]``; the diagonal is 1, and a series whose spectrum
    is flat (constant or all-zero series) has correlation 0 with everything.
"""
    + _COMMON_PARAMS
    + """
    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import spectral_corr_matrix
    >>> t = np.arange(12.0)
    >>> X = np.stack([np.sin(t), 5 + 2 * np.sin(t), np.zeros(12)], axis=1)[None]
    >>> spectral_corr_matrix(X).round(6)
    array([[[1., 1., 0.],
            [1., 1., 0.],
            [0., 0., 0.]]])
"""
)


from ._channels import _SCALE_WINDOWS as SCALE_WINDOWS  # noqa: E402, F401 (how many windows fit_dtw_scale reads)
from ._channels import correlation_channels, correlation_channels_torch, fit_dtw_scale  # noqa: E402
