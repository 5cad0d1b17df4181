"""Time-VLM's retrieval-augmented learner (RAL): patches of each variable, a memory of
pooled patches with top-k retrieval (local memory), self-attention pooled over the
patches (global memory), and the two heads that read the result."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PatchEmbedding", "RetrievalAugmentedLearner", "n_patches"]


def n_patches(history, patch_len, stride):
    """Patches of a window of ``history`` steps, its end padded by ``stride`` steps.

    Parameters
    ----------
    history, patch_len, stride : int

    Returns
    -------
    int
        ``(history - patch_len) // stride + 2``.

    Examples
    --------
    >>> from stvlm.timevlm import n_patches
    >>> n_patches(512, 16, 8)
    64
    """
    return (int(history) - int(patch_len)) // int(stride) + 2


def _sinusoid(n, d):
    """The fixed sine/cosine position table of the Transformer, (n, d)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return table


class PatchEmbedding(nn.Module):
    """Channel-independent patches: ``(B, L, C) -> (B * C, P, d_model)``.

    The window's end is padded by repeating its last value ``stride`` times; patches
    of ``patch_len`` steps every ``stride`` steps are projected linearly (no bias) and
    given a fixed sinusoidal position, then dropout.

    Parameters
    ----------
    history, patch_len, stride, d_model : int
    dropout : float

    Examples
    --------
    >>> import torch
    >>> from stvlm.timevlm import PatchEmbedding
    >>> emb = PatchEmbedding(history=96, patch_len=16, stride=8, d_model=32, dropout=0.0)
    >>> emb(torch.zeros(2, 96, 7)).shape
    torch.Size([14, 12, 32])
    """

    def __init__(self, history, patch_len, stride, d_model, dropout):
        super().__init__()
        self.patch_len, self.stride = int(patch_len), int(stride)
        self.value = nn.Linear(self.patch_len, d_model, bias=False)
        self.register_buffer("position", _sinusoid(n_patches(history, patch_len, stride), d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = x.transpose(1, 2)  # (B, C, L)
        x = torch.cat([x, x[..., -1:].expand(*x.shape[:-1], self.stride)], dim=-1)
        patches = x.unfold(-1, self.patch_len, self.stride)  # (B, C, P, patch_len)
        patches = patches.reshape(-1, patches.shape[-2], self.patch_len)
        return self.dropout(self.value(patches) + self.position)


class RetrievalAugmentedLearner(nn.Module):
    """RAL: the temporal memory of Time-VLM; ``(B, L, C)`` normalised windows to a
    memory forecast ``(B, C, horizon)`` and temporal features ``(B, C, d_model)``.

    *Local memory*: a circular buffer of ``memory_size`` pooled patch vectors, filled
    from training batches (detached). Each series' pooled patches retrieve their
    ``top_k`` most similar entries (dot product); an MLP (d -> 2d -> d) maps them, their
    mean is added to every patch. *Global memory*: self-attention over the patches,
    mean-pooled, added. The flattened result feeds ``memory_head`` (-> horizon) and
    ``temporal_head`` (-> d_model), each followed by dropout as in the reference code.

    Unlike the reference code, the buffer is written only in training mode: a forecast
    depends on its window and the fitted model alone, not on the windows forecast
    before it. The buffer is a module buffer, so it is saved, copied and moved with the
    weights (and the best epoch's buffer is the one kept).

    Parameters
    ----------
    history, horizon : int
    d_model, patch_len, stride, n_heads, top_k, memory_size : int
    dropout : float

    Examples
    --------
    >>> import torch
    >>> from stvlm.timevlm import RetrievalAugmentedLearner
    >>> ral = RetrievalAugmentedLearner(96, 24, d_model=32, patch_len=16, stride=8, n_heads=4,
    ...                                 top_k=3, memory_size=50, dropout=0.0)
    >>> forecast, features = ral(torch.randn(2, 96, 7))
    >>> tuple(forecast.shape), tuple(features.shape)
    ((2, 7, 24), (2, 7, 32))
    """

    def __init__(self, history, horizon, *, d_model, patch_len, stride, n_heads, top_k, memory_size, dropout):
        super().__init__()
        self.top_k = int(top_k)
        self.patches = PatchEmbedding(history, patch_len, stride, d_model, dropout)
        self.local_mlp = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))
        self.attention = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        flat = d_model * n_patches(history, patch_len, stride)
        self.memory_head = nn.Sequential(nn.Linear(flat, horizon), nn.Dropout(dropout))
        self.temporal_head = nn.Sequential(nn.Linear(flat, d_model), nn.Dropout(dropout))
        self.register_buffer("memory", torch.zeros(int(memory_size), d_model))
        self.register_buffer("memory_next", torch.zeros((), dtype=torch.long))

    def _remember(self, pooled):
        """Write pooled patch vectors into the circular buffer (oldest first out)."""
        size = self.memory.shape[0]
        pooled = pooled.detach()[-size:]
        idx = (self.memory_next + torch.arange(len(pooled), device=pooled.device)) % size
        self.memory[idx] = pooled.to(self.memory.dtype)
        self.memory_next.copy_((self.memory_next + len(pooled)) % size)

    def forward(self, x):
        B, _, C = x.shape
        patches = self.patches(x)  # (B*C, P, d)
        pooled = patches.mean(dim=1)
        k = min(self.top_k, self.memory.shape[0])
        idx = (pooled @ self.memory.to(pooled.dtype).T).topk(k, dim=-1).indices  # (B*C, k)
        local = self.local_mlp(self.memory.to(pooled.dtype)[idx]).mean(dim=1, keepdim=True) + patches
        attended, _ = self.attention(patches, patches, patches, need_weights=False)
        features = (local + attended.mean(dim=1, keepdim=True)).flatten(1)
        if self.training:
            self._remember(pooled)
        forecast = self.memory_head(features).reshape(B, C, -1)
        temporal = self.temporal_head(features).reshape(B, C, -1)
        return forecast, temporal
