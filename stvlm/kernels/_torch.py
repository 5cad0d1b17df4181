"""Batched torch kernels for the three S2I channels, for any device.

They take prepared inputs (see ``stvlm.kernels._prepare``) as tensors and return
``(B, N, N)`` tensors on the same device. On a GPU they let the forecaster compute the
images of each batch where it trains instead of storing every window's images.
"""

from __future__ import annotations

import torch

# Upper bound on elements of one (B, pairs, k) working tensor: keeps DTW's memory
# bounded (~64 MB in float32) whatever the batch and sensor count.
_MAX_ELEMENTS = 1 << 24


@torch.no_grad()
def dtw_torch(X: torch.Tensor) -> torch.Tensor:
    """DTW matrices of windows ``X`` (B, N, k), series along the last axis."""
    B, N, k = X.shape
    out = torch.zeros(B, N, N, dtype=X.dtype, device=X.device)
    iu, ju = torch.triu_indices(N, N, 1, device=X.device)
    P = iu.numel()
    chunk = max(1, _MAX_ELEMENTS // max(1, B * k))
    for p0 in range(0, P, chunk):
        ii, jj = iu[p0 : p0 + chunk], ju[p0 : p0 + chunk]
        a, b = X[:, ii, :], X[:, jj, :]  # (B, P, k)
        # Same order of operations as the numba kernel: cost + min(up, left, diag).
        prev = torch.cumsum((a[..., :1] - b) ** 2, dim=-1)
        for i in range(1, k):
            cost = (a[..., i : i + 1] - b) ** 2
            v = cost[..., 0] + prev[..., 0]
            cols = [v]
            for j in range(1, k):
                v = cost[..., j] + torch.minimum(torch.minimum(prev[..., j], v), prev[..., j - 1])
                cols.append(v)
            prev = torch.stack(cols, dim=-1)
        d = torch.sqrt(prev[..., -1])
        out[:, ii, jj] = d
        out[:, jj, ii] = d
    return out


@torch.no_grad()
def xcorr_torch(Z: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Signed max-|R| lagged correlation of centred unit-norm series ``Z`` (B, N, k)."""
    B, N, k = Z.shape
    best = torch.zeros(B, N, N, dtype=Z.dtype, device=Z.device)
    # Largest |R| over the lags; where both signs tie in magnitude, the positive value
    # (as the numba kernel), so (i, j) and (j, i) always agree. R(-s) = R(+s)^T.
    for tau in range(k):
        R = Z[..., : k - tau] @ Z[..., tau:].transpose(-1, -2)  # lag +tau
        for cand in (R, R.transpose(-1, -2)) if tau else (R,):
            a, b = cand.abs(), best.abs()
            best = torch.where((a > b) | ((a == b) & (cand > best)), cand, best)
    best.clamp_(-1.0, 1.0)  # rounding excess of collinear series
    diag = (~flat).to(Z.dtype)
    best.diagonal(dim1=-2, dim2=-1).copy_(diag)
    return best


@torch.no_grad()
def spectral_torch(A: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of standardised amplitude spectra ``A`` (B, N, m)."""
    P = (A @ A.transpose(-1, -2)).clamp_(-1.0, 1.0)
    P.diagonal(dim1=-2, dim2=-1).copy_((~flat).to(A.dtype))
    return P
