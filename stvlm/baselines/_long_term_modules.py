"""The torch modules of the long-term baselines: DLinear's decomposition and linear maps,
PatchTST's RevIN, encoder and head (imported by the estimators when they build them)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._patchtst import n_patches

__all__ = ["DLinearModule", "PatchTSTModule", "PerChannelLinear", "RevIN", "moving_average"]


def moving_average(x, kernel):
    """Centred moving average of ``x (..., L)`` along its last axis, the first and
    last values repeated ``(kernel - 1) // 2`` times at the edges: length ``L``."""
    shape = x.shape
    x = x.reshape(-1, 1, shape[-1])
    pad = (kernel - 1) // 2
    x = F.pad(x, (pad, pad), mode="replicate")
    return F.avg_pool1d(x, kernel, stride=1).reshape(shape)


class PerChannelLinear(nn.Module):
    """One ``Linear(n_in -> n_out)`` per channel, on ``(B, N, n_in)``."""

    def __init__(self, n_channels, n_in, n_out):
        super().__init__()
        bound = 1 / math.sqrt(n_in)  # nn.Linear's initialisation, per channel
        self.weight = nn.Parameter(torch.empty(n_channels, n_out, n_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_channels, n_out).uniform_(-bound, bound))

    def forward(self, x):
        return torch.einsum("bni,noi->bno", x, self.weight) + self.bias


class DLinearModule(nn.Module):
    """Scaled windows ``(B, history, N)`` -> scaled forecasts ``(B, horizon, N)``:
    a linear map of each channel's trend plus one of its remainder."""

    def __init__(self, history, horizon, kernel, n_channels=None):
        super().__init__()
        self.kernel = kernel
        if n_channels is None:
            self.seasonal = nn.Linear(history, horizon)
            self.trend = nn.Linear(history, horizon)
        else:
            self.seasonal = PerChannelLinear(n_channels, history, horizon)
            self.trend = PerChannelLinear(n_channels, history, horizon)

    def forward(self, x):
        x = x.transpose(1, 2)  # (B, N, history): one series per channel
        trend = moving_average(x, self.kernel)
        return (self.seasonal(x - trend) + self.trend(trend)).transpose(1, 2)


class RevIN(nn.Module):
    """Reversible instance normalisation over time of ``(B, L, N)``, per window and
    channel; ``affine``: a learned scale and shift per channel."""

    def __init__(self, n_channels, affine=False, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(n_channels)) if affine else None

    def normalize(self, x):
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        x = (x - mean) / std
        if self.weight is not None:
            x = x * self.weight + self.bias
        return x, (mean, std)

    def denormalize(self, y, stats, shift=True):
        """Back to the window's units; ``shift=False``: a change (scaled, not shifted)."""
        mean, std = stats
        if self.weight is not None:
            y = (y - self.bias) / (self.weight + self.eps**2)
        y = y * std
        return y + mean if shift else y


class _BatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the features of ``(B, P, d)``."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class EncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer: attention and a GELU feed-forward block,
    each added back and normalised (BatchNorm as in the paper, or LayerNorm)."""

    def __init__(self, d_model, n_heads, d_ff, dropout, norm="batch"):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.drop = nn.Dropout(dropout)
        make = _BatchNorm if norm == "batch" else nn.LayerNorm
        self.norm_attn, self.norm_ff = make(d_model), make(d_model)

    def forward(self, h):
        h = self.norm_attn(h + self.drop(self.attn(h, h, h, need_weights=False)[0]))
        return self.norm_ff(h + self.drop(self.ff(h)))


class PatchTSTModule(nn.Module):
    """Scaled windows ``(B, history, N)`` -> scaled forecasts ``(B, horizon, N)``,
    each channel on its own: RevIN, patches, encoder, flatten head."""

    def __init__(self, history, horizon, n_channels, *, patch_len=16, stride=8, d_model=16, n_heads=4,
                 n_layers=3, d_ff=128, dropout=0.3, norm="batch", revin=True, affine=False, change=False):
        super().__init__()
        self.patch_len, self.stride, self.change = patch_len, stride, change
        self.n_patches = n_patches(history, patch_len, stride)
        self.revin = RevIN(n_channels, affine) if revin else None
        self.embed = nn.Linear(patch_len, d_model)
        self.position = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout, norm) for _ in range(n_layers))
        self.head = nn.Linear(self.n_patches * d_model, horizon)

    def patches(self, x):
        """``(S, L)`` sequences -> ``(S, n_patches, patch_len)``, the last value
        repeated ``stride`` times at the end."""
        x = torch.cat([x, x[:, -1:].expand(-1, self.stride)], dim=1)
        return x.unfold(-1, self.patch_len, self.stride)

    def forward(self, x):
        B, L, N = x.shape
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
        h = self.patches(x.transpose(1, 2).reshape(B * N, L))  # one sequence per (window, channel)
        h = self.drop(self.embed(h) + self.position)
        for layer in self.layers:
            h = layer(h)
        y = self.head(h.flatten(1)).reshape(B, N, -1).transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y, stats, shift=not self.change)
        return y
