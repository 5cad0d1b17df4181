"""numba kernels for the three S2I channels on the CPU.

Layout (measured in docs/performance.md): vectorise *across sensor pairs*. Windows are time-major,
``(k, N)``, so the values of many partner series at one step form a contiguous slice;
for one series ``a``, every DP cell or lag sum is computed for a block of partners in
the innermost loop, which LLVM turns into SIMD. Parallel work units pair row ``u`` with
row ``N-1-u`` of the upper triangle, so every unit has ``N-1`` pairs.

No ``fastmath``: results stay bit-identical to tslearn's ``cdist_dtw`` in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


def dtw_lanes(k, itemsize):
    """Partner series per block in ``_dtw_row``.

    As many as keep its three DP rows (``3k`` lane vectors) within about 32 KB, the L1
    cache, in multiples of 16, from 16 to 128 (more gave nothing).
    """
    lanes = (32768 // (3 * k * itemsize)) // 16 * 16
    return max(16, min(128, lanes))


@njit(cache=True, nogil=True)
def _dtw_row(Xt, r, out_w, D, sim_scale):
    """DTW between series ``r`` and every later series ``j > r`` of one window.

    ``Xt`` is the window time-major, ``(k, N)``, so the values of a block of partners
    at one step are a contiguous slice: the SIMD lanes. DP rows are computed two at a
    time: the lower cell takes its upper neighbour from a register, and the pair shares
    the loads. ``D`` (``3k`` rows of ``lanes``) holds three DP rows of ``k`` cells in
    slots that rotate.

    Writes ``sqrt(cost)`` or, when ``sim_scale > 0``, the similarity
    ``exp(-sqrt(cost) * sim_scale)``. Only the upper triangle (row ``r``) is written:
    writing the mirrored column from two threads at once thrashes shared cache lines.
    The minimum is taken over (up, left, diagonal) in this order and added to the
    squared difference, as tslearn does: float64 results are bit-identical to it.
    """
    k, N = Xt.shape
    lanes = D.shape[1]
    j0 = r + 1
    while j0 < N:
        nl = min(lanes, N - j0)
        a0 = Xt[0, r]
        if k % 2 == 0:
            # DP rows 0 and 1 into slots 0 and 1, so that the rows left pair up.
            a1 = Xt[1, r]
            b = Xt[0, j0 : j0 + nl]
            c1 = D[0]
            c2 = D[k]
            for l in range(nl):
                bl = b[l]
                d = a0 - bl
                v = d * d
                c1[l] = v
                e = a1 - bl
                c2[l] = e * e + v
            for j in range(1, k):
                b = Xt[j, j0 : j0 + nl]
                c1 = D[j]
                c1l = D[j - 1]
                c2 = D[k + j]
                c2l = D[k + j - 1]
                for l in range(nl):
                    bl = b[l]
                    d = a0 - bl
                    x = c1l[l]
                    v = d * d + x
                    c1[l] = v
                    e = a1 - bl
                    z = c2l[l]
                    m = z if z < v else v
                    m = x if x < m else m
                    c2[l] = e * e + m
            p = 1  # slot of the last finished DP row
            i = 2
        else:
            b = Xt[0, j0 : j0 + nl]
            c1 = D[0]
            for l in range(nl):
                d = a0 - b[l]
                c1[l] = d * d
            for j in range(1, k):
                b = Xt[j, j0 : j0 + nl]
                c1 = D[j]
                c1l = D[j - 1]
                for l in range(nl):
                    d = a0 - b[l]
                    c1[l] = d * d + c1l[l]
            p = 0
            i = 1
        while i < k:
            ai = Xt[i, r]
            ai1 = Xt[i + 1, r]
            s1 = p + 1 if p < 2 else 0
            s2 = s1 + 1 if s1 < 2 else 0
            P = p * k
            C1 = s1 * k
            C2 = s2 * k
            # Column 0: only the cell above.
            b = Xt[0, j0 : j0 + nl]
            up = D[P]
            c1 = D[C1]
            c2 = D[C2]
            for l in range(nl):
                bl = b[l]
                d = ai - bl
                v = d * d + up[l]
                c1[l] = v
                e = ai1 - bl
                c2[l] = e * e + v
            for j in range(1, k):
                b = Xt[j, j0 : j0 + nl]
                up = D[P + j]
                upl = D[P + j - 1]
                c1 = D[C1 + j]
                c1l = D[C1 + j - 1]
                c2 = D[C2 + j]
                c2l = D[C2 + j - 1]
                for l in range(nl):
                    bl = b[l]
                    d = ai - bl
                    m = up[l]
                    x = c1l[l]
                    y = upl[l]
                    m = x if x < m else m
                    m = y if y < m else m
                    v = d * d + m
                    c1[l] = v
                    e = ai1 - bl
                    z = c2l[l]
                    m = z if z < v else v
                    m = x if x < m else m
                    c2[l] = e * e + m
            p = s2
            i += 2
        last = D[p * k + k - 1]
        o = out_w[r, j0 : j0 + nl]
        if sim_scale > 0:
            for l in range(nl):
                o[l] = math.exp(-math.sqrt(last[l]) * sim_scale)
        else:
            for l in range(nl):
                o[l] = math.sqrt(last[l])
        j0 += lanes


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
def _dtw_unit(Xt, out, c, t, units, lanes, sim_scale):
    n, k, N = Xt.shape
    w = t // units
    u = t % units
    D = np.empty((3 * k, lanes), dtype=Xt.dtype)
    diag = 1.0 if sim_scale > 0 else 0.0
    out[w, c, u, u] = diag
    _dtw_row(Xt[w], u, out[w, c], D, sim_scale)
    v = N - 1 - u
    if v != u:
        out[w, c, v, v] = diag
        _dtw_row(Xt[w], v, out[w, c], D, sim_scale)


@njit(cache=True, parallel=True)
def dtw_batch(Xt, out, c, lanes, sim_scale):
    """Upper triangles and diagonals of the DTW matrices.

    ``Xt``: windows ``(n, k, N)``, C-contiguous; the result goes to channel ``c`` of
    ``out`` ``(n, C, N, N)``, C-contiguous (a strided 3-D view would keep the stores
    from vectorising); ``lanes`` from :func:`dtw_lanes`. ``sim_scale > 0`` writes
    similarities (see ``_dtw_row``), else distances.
    """
    n, k, N = Xt.shape
    units = N // 2 + (N % 2)
    for t in prange(n * units):
        _dtw_unit(Xt, out, c, t, units, lanes, sim_scale)


@njit(cache=True, nogil=True)
def dtw_batch_serial(Xt, out, c, lanes, sim_scale):
    """``dtw_batch`` on one thread, releasing the GIL (for joblib workers)."""
    n, k, N = Xt.shape
    units = N // 2 + (N % 2)
    for t in range(n * units):
        _dtw_unit(Xt, out, c, t, units, lanes, sim_scale)


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
def _xcorr_unit(Zt, flat, out, c, t, units):
    n, k, N = Zt.shape
    w = t // units
    u = t % units
    acc = np.empty((2, N), dtype=Zt.dtype)
    out[w, c, u, u] = 0.0 if flat[w, u] else 1.0
    _xcorr_row(Zt[w], u, out[w, c], acc)
    v = N - 1 - u
    if v != u:
        out[w, c, v, v] = 0.0 if flat[w, v] else 1.0
        _xcorr_row(Zt[w], v, out[w, c], acc)


@njit(cache=True, parallel=True)
def xcorr_batch(Zt, flat, out, c):
    """Upper triangles of the lagged cross-correlation matrices, into ``out[:, c]``.

    ``Zt`` (n, k, N) is time-major, each series centred and of unit norm; ``flat``
    (n, N) marks flat series, whose values are all 0 in ``Zt`` and whose diagonal
    entry is 0, not 1.
    """
    n, k, N = Zt.shape
    units = N // 2 + (N % 2)
    for t in prange(n * units):
        _xcorr_unit(Zt, flat, out, c, t, units)


@njit(cache=True, nogil=True)
def xcorr_batch_serial(Zt, flat, out, c):
    """``xcorr_batch`` on one thread, releasing the GIL (for joblib workers)."""
    n, k, N = Zt.shape
    units = N // 2 + (N % 2)
    for t in range(n * units):
        _xcorr_unit(Zt, flat, out, c, t, units)


@njit(cache=True, nogil=True)
def _finish_tile_row(out, flat_r, flat_p, t, nb):
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
                out[w, 0, i, j] = out[w, 0, j, i]
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
def finish_channels(out, flat_r, flat_p):
    """Mirror the upper triangles of raw images ``out`` (n, 3, N, N) and map to [0, 1].

    Channel 0 already holds DTW similarities (``dtw_batch`` with ``sim_scale``);
    channels 1 and 2 hold correlations and become ``(v + 1) / 2``. Diagonals are set
    exactly.
    """
    n, _, N, _ = out.shape
    nb = (N + _TILE - 1) // _TILE
    for t in prange(n * nb):
        _finish_tile_row(out, flat_r, flat_p, t, nb)


@njit(cache=True, nogil=True)
def finish_channels_serial(out, flat_r, flat_p):
    """``finish_channels`` on one thread, releasing the GIL."""
    n, _, N, _ = out.shape
    nb = (N + _TILE - 1) // _TILE
    for t in range(n * nb):
        _finish_tile_row(out, flat_r, flat_p, t, nb)


@njit(cache=True, nogil=True)
def _spectral_unit(At, out, c, t, N):
    """Row ``i`` of window ``w``: dot products of standardised spectra with j > i."""
    w = t // N
    i = t % N
    m = At.shape[1]
    n = N - i - 1
    row = out[w, c, i, i + 1 :]
    for j in range(n):
        row[j] = 0.0
    for f in range(m):
        a = At[w, f, i]
        col = At[w, f, i + 1 :]
        for j in range(n):
            row[j] += a * col[j]


@njit(cache=True, parallel=True)
def spectral_batch(At, out, c):
    """Upper triangles of the spectral correlations, into ``out[:, c]``.

    ``At`` (n, m, N) holds the standardised spectra, frequency-major.
    A few frequency bins make this a tiny matrix product; doing it here rather than in
    BLAS keeps BLAS's spinning threads from competing with numba's.
    """
    n, m, N = At.shape
    for t in prange(n * N):
        _spectral_unit(At, out, c, t, N)


@njit(cache=True, nogil=True)
def spectral_batch_serial(At, out, c):
    """``spectral_batch`` on one thread, releasing the GIL."""
    n, m, N = At.shape
    for t in range(n * N):
        _spectral_unit(At, out, c, t, N)


@njit(cache=True, nogil=True)
def unit_rows(V, Z, flat, rtol, atol):
    """Rows of ``V`` (float64, 2-D) centred and scaled to unit norm, into ``Z``.

    A row is flat, and its ``Z`` row 0, when its norm after centring is at most
    ``rtol * max|v| * sqrt(m) + atol``. A loop per row: numpy's reductions over a
    short last axis cost more than the arithmetic here.
    """
    rows, m = V.shape
    root_m = math.sqrt(m)
    for i in range(rows):
        v = V[i]
        mean = 0.0
        big = 0.0
        for t in range(m):
            mean += v[t]
            big = max(big, abs(v[t]))
        mean /= m
        ss = 0.0
        for t in range(m):
            c = v[t] - mean
            ss += c * c
        norm = math.sqrt(ss)
        f = norm <= rtol * big * root_m + atol
        flat[i] = f
        z = Z[i]
        if f:
            for t in range(m):
                z[t] = 0.0
        else:
            for t in range(m):
                z[t] = (v[t] - mean) / norm
