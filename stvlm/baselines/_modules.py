"""The torch modules of the neural baselines (imported only when one is built).

Both map scaled windows ``x (B, history, N)`` and the time-of-day slot of each window's
last history step ``tod (B,)`` (or ``None``) to scaled forecasts ``(B, horizon, N)``.
"""

from __future__ import annotations

import torch
from torch import nn


class _ResidualBlock(nn.Module):
    def __init__(self, width, dropout):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, h):
        return h + self.fc2(self.drop(torch.relu(self.fc1(h))))


class STIDModule(nn.Module):
    """Window projection + sensor embedding + time-of-day embedding -> residual MLP."""

    def __init__(
        self, history, horizon, n_sensors, steps_per_day, embed_dim, node_dim, tod_dim, num_layers, dropout, dow_dim=0
    ):
        super().__init__()
        self.history = history
        self.steps_per_day = steps_per_day
        self.series_proj = nn.Linear(history, embed_dim)
        # A width of 0 drops that embedding (STID's own ablations).
        self.node_emb = nn.Parameter(torch.empty(n_sensors, node_dim)) if node_dim else None
        self.tod_emb = nn.Parameter(torch.empty(steps_per_day, tod_dim)) if tod_dim else None
        self.dow_emb = nn.Parameter(torch.empty(7, dow_dim)) if dow_dim else None
        for emb in (self.node_emb, self.tod_emb, self.dow_emb):
            if emb is not None:
                nn.init.xavier_uniform_(emb)
        width = embed_dim + node_dim + tod_dim + dow_dim
        self.blocks = nn.Sequential(*[_ResidualBlock(width, dropout) for _ in range(num_layers)])
        self.head = nn.Linear(width, horizon)

    def forward(self, x, tod, dow=None):
        B, _, N = x.shape
        parts = [self.series_proj(x.transpose(1, 2))]
        if self.node_emb is not None:
            parts.append(self.node_emb.unsqueeze(0).expand(B, N, -1))
        if self.tod_emb is not None:
            parts.append(self.tod_emb[tod].unsqueeze(1).expand(B, N, -1))
        if self.dow_emb is not None:
            parts.append(self.dow_emb[dow].unsqueeze(1).expand(B, N, -1))
        h = torch.cat(parts, dim=-1)
        return self.head(self.blocks(h)).transpose(1, 2)


class Seq2SeqLSTM(nn.Module):
    """Encoder-decoder LSTM shared by all sensors; the decoder feeds back its forecasts."""

    def __init__(self, horizon, hidden_size, num_layers, dropout):
        super().__init__()
        self.horizon = horizon
        drop = dropout if num_layers > 1 else 0.0
        self.encoder = nn.LSTM(1, hidden_size, num_layers, batch_first=True, dropout=drop)
        self.decoder = nn.LSTM(1, hidden_size, num_layers, batch_first=True, dropout=drop)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, x, tod=None, dow=None):
        B, k, N = x.shape
        seq = x.permute(0, 2, 1).reshape(B * N, k, 1)  # one sequence per (window, sensor)
        _, state = self.encoder(seq)
        step = seq[:, -1:, :]  # the decoder starts from the last observed value
        outs = []
        for _ in range(self.horizon):
            h, state = self.decoder(step, state)
            step = self.out(h)
            outs.append(step)
        return torch.cat(outs, dim=1).reshape(B, N, self.horizon).transpose(1, 2)
