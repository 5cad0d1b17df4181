"""numba kernels for the three S2I channels on the CPU.

Layout (PERFORMANCE.md): vectorise *across sensor pairs*. For one series ``a`` of a
window, a block of ``LANES`` partner series is copied into a small ``(k, LANES)``
buffer, and each DP cell or lag sum is computed for all lanes in the innermost loop,
which LLVM turns into SIMD. The DP keeps two rows, alternating by parity, in a local
``(2k, LANES)`` buffer. Parallel work units pair row ``u`` with row ``N-1-u`` of the
upper triangle, so every unit has ``N-1`` pairs.

No ``fastmath``: results stay bit-identical to tslearn's ``cdist_dtw`` in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# 32 lanes = 4 AVX-512 vectors of f64 (or 2 of f32) per DP cell: enough independent
# chains to hide the min/add latency, small enough to stay in L1 with k <= 64.
LANES = 32


@njit(cache=True, nogil=True, inline="always")
def _load_block(Xw, j0, nl, buf):
    k = Xw.shape[1]
    for l in range(LANES):
        # Lanes past the last partner repeat it; their results are never stored.
        jj = j0 + (l if l < nl else nl - 1)
        for t in range(k):
            buf[t, l] = Xw[jj, t]


@njit(cache=True, nogil=True)
def _dtw_row(Xw, r, out_w, buf, D):
    """DTW between series ``r`` and every later series ``j > r`` of one window.

    Only the upper triangle (row ``r``) is written: writing the mirrored column from
    two threads at once thrashes shared cache lines; ``mirror_upper`` fills it later.
    """
    N, k = Xw.shape
    a = Xw[r]
    last = ((k - 1) & 1) * k + k - 1
    j0 = r + 1
    while j0 < N:
        nl = min(LANES, N - j0)
        _load_block(Xw, j0, nl, buf)
        a0 = a[0]
        for l in range(LANES):
            d = a0 - buf[0, l]
            D[0, l] = d * d
        for j in range(1, k):
            for l in range(LANES):
                d = a0 - buf[j, l]
                D[j, l] = d * d + D[j - 1, l]
        for i in range(1, k):
            ai = a[i]
            cur = (i & 1) * k
            prv = k - cur
            for l in range(LANES):
                d = ai - buf[0, l]
                D[cur, l] = d * d + D[prv, l]
            for j in range(1, k):
                for l in range(LANES):
                    d = ai - buf[j, l]
                    m = D[prv + j, l]
                    m2 = D[cur + j - 1, l]
                    m = m2 if m2 < m else m
                    m3 = D[prv + j - 1, l]
                    m = m3 if m3 < m else m
                    D[cur + j, l] = d * d + m
        for l in range(nl):
            out_w[r, j0 + l] = math.sqrt(D[last, l])
        j0 += LANES


# Tile of the blocked transpose in ``mirror_upper``.
_TILE = 32


@njit(cache=True, nogil=True)
def _mirror_tile_row(out, t, nb):
    n, N, _ = out.shape
    w = t // nb
    bi = t % nb
    i0 = bi * _TILE
    i1 = min(N, i0 + _TILE)
    for bj in range(bi + 1):
        j0 = bj * _TILE
        j1 = min(N, j0 + _TILE)
        for i in range(i0, i1):
            for j in range(j0, min(j1, i)):
                out[w, i, j] = out[w, j, i]


@njit(cache=True, parallel=True)
def mirror_upper(out):
    """Copy the upper triangle of each ``out[w]`` onto its lower triangle."""
    n, N, _ = out.shape
    nb = (N + _TILE - 1) // _TILE
    for t in prange(n * nb):
        _mirror_tile_row(out, t, nb)


@njit(cache=True, nogil=True)
def mirror_upper_serial(out):
    """``mirror_upper`` on one thread, releasing the GIL."""
    n, N, _ = out.shape
    nb = (N + _TILE - 1) // _TILE
    for t in range(n * nb):
        _mirror_tile_row(out, t, nb)


@njit(cache=True, nogil=True)
def _dtw_unit(X, out, t, units):
    n, N, k = X.shape
    w = t // units
    u = t % units
    buf = np.empty((k, LANES), dtype=X.dtype)
    D = np.empty((2 * k, LANES), dtype=X.dtype)
    out[w, u, u] = 0.0
    _dtw_row(X[w], u, out[w], buf, D)
    v = N - 1 - u
    if v != u:
        out[w, v, v] = 0.0
        _dtw_row(X[w], v, out[w], buf, D)


@njit(cache=True, parallel=True)
def dtw_batch(X, out):
    """Upper triangles of the DTW matrices. ``X``: (n, N, k) C-contiguous; ``out``: (n, N, N)."""
    n, N, k = X.shape
    units = N // 2 + (N % 2)
    for t in prange(n * units):
        _dtw_unit(X, out, t, units)


@njit(cache=True, nogil=True)
def dtw_batch_serial(X, out):
    """``dtw_batch`` on one thread, releasing the GIL (for joblib workers)."""
    n, N, k = X.shape
    units = N // 2 + (N % 2)
    for t in range(n * units):
        _dtw_unit(X, out, t, units)


@njit(cache=True, nogil=True)
def _xcorr_row(Zt, r, out_w, acc):
    """Signed max-|R| lagged correlation of series ``r`` with every later series.

    ``Zt`` is one window, time-major ``(k, N)``, each series centred and of unit norm,
    so a lag sum is already the normalised correlation. Here the lanes are all partners
    ``j > r`` at once: ``Zt[s, r+1:]`` is contiguous, and slicing from ``r + 1`` gives
    the inner loops a zero-based trip count that LLVM vectorises. One lag at a time is
    summed into ``acc[0]`` and merged into ``acc[1]`` at once, so both stay in L1.
    """
    k, N = Zt.shape
    j0 = r + 1
    n = N - j0
    if n <= 0:
        return
    s = acc[0]
    best = acc[1]
    for q in range(2 * k - 1):
        tau = q - (k - 1)  # lag: sum_t a[t] * b[t + tau]
        for j in range(n):
            s[j] = 0.0
        for t in range(max(0, -tau), min(k, k - tau)):
            at = Zt[t, r]
            zs = Zt[t + tau, j0:]
            for j in range(n):
                s[j] += at * zs[j]
        if q == 0:
            for j in range(n):
                best[j] = s[j]
        else:
            for j in range(n):
                v = s[j]
                b = best[j]
                # Where both signs tie in magnitude, the positive value: the result then
                # depends only on the set of lag values, not on the order of the pair.
                av = abs(v)
                ab = abs(b)
                best[j] = v if (av > ab or (av == ab and v > b)) else b
    for j in range(n):
        # Clip the rounding excess (a few ulp past +-1 for collinear series).
        out_w[r, j0 + j] = min(1.0, max(-1.0, best[j]))


@njit(cache=True, nogil=True)
def _xcorr_unit(Zt, flat, out, t, units):
    n, k, N = Zt.shape
    w = t // units
    u = t % units
    acc = np.empty((2, N), dtype=Zt.dtype)
    out[w, u, u] = 0.0 if flat[w, u] else 1.0
    _xcorr_row(Zt[w], u, out[w], acc)
    v = N - 1 - u
    if v != u:
        out[w, v, v] = 0.0 if flat[w, v] else 1.0
        _xcorr_row(Zt[w], v, out[w], acc)


@njit(cache=True, parallel=True)
def xcorr_batch(Zt, flat, out):
    """Upper triangles of the lagged cross-correlation matrices.

    ``Zt`` (n, k, N) is time-major, each series centred and of unit norm; ``flat``
    (n, N) marks flat series, whose values are all 0 in ``Zt`` and whose diagonal
    entry is 0, not 1.
    """
    n, k, N = Zt.shape
    units = N // 2 + (N % 2)
    for t in prange(n * units):
        _xcorr_unit(Zt, flat, out, t, units)


@njit(cache=True, nogil=True)
def xcorr_batch_serial(Zt, flat, out):
    """``xcorr_batch`` on one thread, releasing the GIL (for joblib workers)."""
    n, k, N = Zt.shape
    units = N // 2 + (N % 2)
    for t in range(n * units):
        _xcorr_unit(Zt, flat, out, t, units)


@njit(cache=True, nogil=True)
def _finish_tile_row(out, inv_scale, flat_r, flat_p, t, nb):
    n, _, N, _ = out.shape
    w = t // nb
    bi = t % nb
    i0 = bi * _TILE
    i1 = min(N, i0 + _TILE)
    for bj in range(bi + 1):
        j0 = bj * _TILE
        j1 = min(N, j0 + _TILE)
        for i in range(i0, i1):
            for j in range(j0, min(j1, i)):
                d = math.exp(-out[w, 0, j, i] * inv_scale)
                out[w, 0, i, j] = d
                out[w, 0, j, i] = d
                r = (out[w, 1, j, i] + 1.0) * 0.5
                out[w, 1, i, j] = r
                out[w, 1, j, i] = r
                p = min(1.0, max(-1.0, out[w, 2, j, i]))
                p = (p + 1.0) * 0.5
                out[w, 2, i, j] = p
                out[w, 2, j, i] = p
    for i in range(i0, i1):
        out[w, 0, i, i] = 1.0
        out[w, 1, i, i] = 0.5 if flat_r[w, i] else 1.0
        out[w, 2, i, i] = 0.5 if flat_p[w, i] else 1.0


@njit(cache=True, parallel=True)
def finish_channels(out, inv_scale, flat_r, flat_p):
    """Mirror the upper triangles of raw images ``out`` (n, 3, N, N) and map to [0, 1].

    Channel 0 holds DTW distances and becomes ``exp(-d * inv_scale)``; channels 1
    and 2 hold correlations and become ``(v + 1) / 2``. Diagonals are set exactly.
    """
    n, _, N, _ = out.shape
    nb = (N + _TILE - 1) // _TILE
    for t in prange(n * nb):
        _finish_tile_row(out, inv_scale, flat_r, flat_p, t, nb)


@njit(cache=True, nogil=True)
def finish_channels_serial(out, inv_scale, flat_r, flat_p):
    """``finish_channels`` on one thread, releasing the GIL."""
    n, _, N, _ = out.shape
    nb = (N + _TILE - 1) // _TILE
    for t in range(n * nb):
        _finish_tile_row(out, inv_scale, flat_r, flat_p, t, nb)


@njit(cache=True, nogil=True)
def _spectral_unit(At, out, t, N):
    """Row ``i`` of window ``w``: dot products of standardised spectra with j > i."""
    w = t // N
    i = t % N
    m = At.shape[1]
    n = N - i - 1
    row = out[w, i, i + 1 :]
    for j in range(n):
        row[j] = 0.0
    for f in range(m):
        a = At[w, f, i]
        col = At[w, f, i + 1 :]
        for j in range(n):
            row[j] += a * col[j]


@njit(cache=True, parallel=True)
def spectral_batch(At, out):
    """Upper triangles of the spectral correlations from ``At`` (n, m, N), frequency-major.

    A few frequency bins make this a tiny matrix product; doing it here rather than in
    BLAS keeps BLAS's spinning threads from competing with numba's.
    """
    n, m, N = At.shape
    for t in prange(n * N):
        _spectral_unit(At, out, t, N)


@njit(cache=True, nogil=True)
def spectral_batch_serial(At, out):
    """``spectral_batch`` on one thread, releasing the GIL."""
    n, m, N = At.shape
    for t in range(n * N):
        _spectral_unit(At, out, t, N)
