"""The three channels assembled into one image per window, on numba or torch.

The one place where S2I images are made: :class:`~stvlm.SpatialToImageTransformer`
and :class:`~stvlm.STVLMForecaster` both call :func:`correlation_channels` (and
:func:`fit_dtw_scale` for the scale of its DTW channel).
"""

from __future__ import annotations

import math

import numpy as np

from ._threads import keeps_torch_threads

# Windows sampled (evenly spaced) to fit the DTW similarity scale: enough for a stable
# median, cheap even for thousands of sensors.
_SCALE_WINDOWS = 256
# Distances fit_dtw_scale computes at once; beyond, chunk by chunk (same values, bounded memory).
_SCALE_PAIRS_AT_ONCE = 1 << 25
# Within an image, a series is flat (correlation 0) when its spread is at most 1e-6 of
# its magnitude (the kernels' rule) or this fraction of the data's DTW scale: a bound
# that moves with the data, so that rescaling the data never turns sensors flat.
FLAT_ATOL_REL = 1e-12
# Windows whose largest magnitude lies in this band go to the float32 kernels as they
# are: their squared differences (times 2k steps) stay far inside float32's range.
_SCALE_FREE_LOW, _SCALE_FREE_HIGH = 2.0**-40, 2.0**40


def _power_of_two_scale(X, dtw_scale):
    """``X`` scaled by a power of two to ``max|X|`` in [0.5, 1) when its magnitude lies
    outside the float32-safe band, with its DTW scale.

    Multiplying by a power of two is exact in binary floating point, so every channel
    comes out bit for bit as from the unscaled windows; but no square in the float32
    kernels can overflow, whatever the data's magnitude.
    """
    big = float(np.max(np.abs(X))) if X.size else 0.0
    # Inside the safe band scaling would change no bit: skip the copy on the hot path.
    if big == 0.0 or not np.isfinite(big) or _SCALE_FREE_LOW <= big <= _SCALE_FREE_HIGH:
        return X, float(dtw_scale)
    f = math.ldexp(1.0, -math.frexp(big)[1])
    return X * f, float(dtw_scale) * f


def correlation_channels(X, dtw_scale, *, dtype=np.float32, device="cpu", serial=False, out=None, check_input=True):
    """The three channels of each window, mapped to ``[0, 1]``: ``(n, 3, N, N)``.

    Channel 0 is the DTW similarity ``exp(-d / dtw_scale)``, channel 1 the lagged
    cross-correlation and channel 2 the spectral correlation, both as ``(v + 1) / 2``.

    Parameters
    ----------
    X : array-like of shape (n_windows, history, n_sensors)
        Windows; NaN/inf are imputed along time (see :func:`stvlm.dtw_matrix`).
    dtw_scale : float
        The positive DTW distance that maps to similarity ``exp(-1)``, learned by
        :func:`fit_dtw_scale`.
    dtype : numpy dtype, default=np.float32
        Output dtype (float16, float32 or float64).
    device : str or torch.device, default="cpu"
        ``"cpu"`` uses the numba kernels; any other torch device the torch kernels.
    serial : bool, default=False
        Run the numba kernels on the calling thread (inside joblib workers).
    out : ndarray of shape (n_windows, 3, n_sensors, n_sensors), optional
        C-contiguous array to write the result into (float32 or float64, matching
        ``dtype``), such as a slice ``big[start:stop]`` of a larger array.
    check_input : bool, default=True
        ``False`` skips the checks and the imputation, for callers that pass windows
        already imputed (C-contiguous float64 without NaN/inf), such as the forecaster,
        which imputes each window once.

    Returns
    -------
    channels : ndarray of shape (n_windows, 3, n_sensors, n_sensors)

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.kernels import correlation_channels
    >>> X = np.random.default_rng(0).normal(size=(2, 12, 5))
    >>> C = correlation_channels(X, dtw_scale=3.0)
    >>> C.shape, bool(C.min() >= 0), bool(C.max() <= 1)
    ((2, 3, 5, 5), True, True)
    """
    from . import _prepare, _series, _torch_call

    if not np.isfinite(dtw_scale) or dtw_scale <= 0:
        raise ValueError(f"dtw_scale must be a positive finite number; got {dtw_scale!r}.")
    if check_input:
        X, _ = _prepare(X, np.float64)
    n, _k, N = X.shape
    # The kernels work in float32 unless float64 output is asked for.
    work = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    if out is not None and (
        out.shape != (n, 3, N, N)
        or out.dtype != np.dtype(dtype)
        or out.dtype != work
        or not out.flags.c_contiguous
    ):
        raise ValueError(
            f"out must be a C-contiguous {np.dtype(dtype)} array of shape {(n, 3, N, N)}; "
            f"got {out.dtype} {out.shape}{'' if out.flags.c_contiguous else ', not C-contiguous'}."
        )
    X, dtw_scale = _power_of_two_scale(X, dtw_scale)
    atol = FLAT_ATOL_REL * dtw_scale
    if str(device) == "cpu":
        res = _channels_numba(X, work, 1.0 / dtw_scale, serial, out, atol)
    else:
        S = _series(X)
        d, r, p = (_torch_call(kind, S, work, device, atol) for kind in ("dtw", "xcorr", "spectral"))
        res = torch_images(d, r, p, dtw_scale).cpu().numpy()
        if out is not None:
            out[...] = res
            res = out
    return res if res.dtype == np.dtype(dtype) else res.astype(dtype)


def correlation_channels_torch(X, dtw_scale, device):
    """:func:`correlation_channels` of imputed float64 windows as a float32 tensor on ``device``.

    The GPU path of the forecaster: the images stay on the device.

    Parameters
    ----------
    X : ndarray of shape (n_windows, history, n_sensors)
        Windows without NaN/inf (imputed), float64.
    dtw_scale : float
        As in :func:`correlation_channels`.
    device : str or torch.device

    Returns
    -------
    torch.Tensor of shape (n_windows, 3, n_sensors, n_sensors), float32

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.kernels import correlation_channels, correlation_channels_torch
    >>> X = np.random.default_rng(0).normal(size=(2, 12, 4))
    >>> t = correlation_channels_torch(X, 3.0, "cpu")
    >>> bool(np.allclose(t.numpy(), correlation_channels(X, 3.0), atol=1e-5))
    True
    """
    from . import _series, _torch_call

    X, dtw_scale = _power_of_two_scale(X, dtw_scale)
    S = _series(X)
    atol = FLAT_ATOL_REL * dtw_scale
    d, r, p = (_torch_call(kind, S, np.float32, device, atol) for kind in ("dtw", "xcorr", "spectral"))
    return torch_images(d, r, p, dtw_scale)


@keeps_torch_threads
def _channels_numba(X, work, inv_scale, serial, out=None, atol=1e-12):
    """Raw channels written straight into the image array, then mirrored and mapped."""
    from . import _numba, _run_dtw, _run_xcorr, _series, _spectra, _unit_rows

    n, k, N = X.shape
    if out is None:
        out = np.empty((n, 3, N, N), dtype=work)
    S = _series(X)
    Z, flat_r = _unit_rows(S, atol)
    Zt = np.ascontiguousarray(Z.transpose(0, 2, 1), dtype=work)
    A, flat_p = _spectra(S, flat_r, atol)
    At = np.ascontiguousarray(A.transpose(0, 2, 1), dtype=work)
    Xw = np.ascontiguousarray(X, dtype=work)
    # The DTW kernel writes similarities exp(-d / scale) itself: once per pair there.
    _run_dtw(Xw, out, 0, inv_scale, serial)
    _run_xcorr(Zt, flat_r, out, 1, serial)
    (_numba.spectral_batch_serial if serial else _numba.spectral_batch)(At, out, 2)
    (_numba.finish_channels_serial if serial else _numba.finish_channels)(out, flat_r, flat_p)
    return out


def torch_images(d, r, p, dtw_scale):
    """Map raw torch channels (each ``(B, N, N)``) to a ``(B, 3, N, N)`` image in [0, 1]."""
    import torch

    return torch.stack([torch.exp(-d / dtw_scale), (r + 1) * 0.5, (p.clamp(-1, 1) + 1) * 0.5], dim=1)


def fit_dtw_scale(X, device="cpu", *, check_input=True):
    """Median off-diagonal DTW distance over up to 256 evenly spaced windows of ``X``.

    The scale that turns DTW distances into similarities ``exp(-d / scale)``, shared
    by :class:`~stvlm.SpatialToImageTransformer` and :class:`~stvlm.STVLMForecaster`
    so both map train and test windows alike. Falls back to the mean positive
    distance when the median is 0, and to 1 when every distance is 0.

    Parameters
    ----------
    X : array-like of shape (n_windows, history, n_sensors)
        Training windows (NaN/inf imputed unless ``check_input=False``).
    device : str or torch.device, default="cpu"
        ``"cpu"``: numba; another device: the torch kernels.
    check_input : bool, default=True
        ``False`` for windows already imputed (float64, no NaN/inf).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.kernels import fit_dtw_scale
    >>> X = np.array([[[0.0, 1.0], [0.0, 1.0]]])        # two flat sensors, 1 apart
    >>> fit_dtw_scale(X)                                # DTW = sqrt(1 + 1)
    1.4142135623730951
    """
    from .._validation import check_windows, impute_nonfinite
    from . import _dtw_numba, _series, _torch_call

    if check_input:
        X = check_windows(X, min_history=1)
    n, _, N = X.shape
    idx = np.unique(np.linspace(0, n - 1, min(n, _SCALE_WINDOWS)).round().astype(int))
    sample = np.ascontiguousarray(X[idx], dtype=np.float64)
    if check_input:
        sample = impute_nonfinite(sample)
    # Exact power-of-two rescaling, undone on the distances: no square can overflow.
    scaled, f = _power_of_two_scale(sample, 1.0)
    sample = scaled

    def dtw(part):
        if str(device) == "cpu":
            # The generic kernel: a float64 kernel unrolled for this alone would cost more
            # to compile than it saves on at most 256 windows.
            return _dtw_numba(part, np.float64, unrolled=False)
        return _torch_call("dtw", _series(part), np.float64, device).cpu().numpy()

    off = ~np.eye(N, dtype=bool)
    if len(idx) * N * N <= _SCALE_PAIRS_AT_ONCE:
        return robust_scale(dtw(sample)[:, off] / f)
    # Many sensors (256 windows of PEMS07's 883 are 1.6 GB of distances): the same values,
    # chunk by chunk into one array, and its median found in place.
    step = max(1, _SCALE_PAIRS_AT_ONCE // (N * N))
    vals = np.empty((len(idx), N * (N - 1)), dtype=np.float64)
    for s in range(0, len(idx), step):
        vals[s : s + step] = dtw(sample[s : s + step])[:, off] / f
    return _robust_scale_owned(vals.reshape(-1))


def _robust_scale_owned(d):
    """:func:`robust_scale` of an array it may reorder (no copy when all values are finite)."""
    if not np.isfinite(d).all():
        d = d[np.isfinite(d)]
    if not (d > 0).any():
        return 1.0
    med = float(np.median(d, overwrite_input=True))
    return med if med > 0 else float(d[d > 0].mean())


def robust_scale(d):
    """Median positive DTW distance, falling back to the mean, then to 1."""
    d = d[np.isfinite(d)]
    pos = d[d > 0]
    if pos.size == 0:
        return 1.0
    med = float(np.median(d))
    return med if med > 0 else float(pos.mean())
