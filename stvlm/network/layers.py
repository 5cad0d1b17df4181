"""The small trainable parts of ST-VLM around the backbone.

- :class:`ChannelMixing`: ``W_af``, the learnable 3x3 per-pixel mix of the S2I channels;
- :class:`TemporalEncoder`: LSTM over each sensor's history, one token per sensor;
- :class:`LinearEncoder`: a linear map of each sensor's history, one token per sensor
  (STID's window projection; an extension);
- :class:`LSTMDecoderHead`: LSTM decoder from each sensor's backbone output to
  ``horizon`` values (the paper's head);
- :class:`MLPHead`: residual MLP from each sensor's backbone output to all ``horizon``
  values at once (STID's readout; an extension);
- :class:`CalendarEmbedding`: learned vectors of a window's time of day and weekday.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CalendarEmbedding", "ChannelMixing", "LSTMDecoderHead", "LinearEncoder", "MLPHead", "TemporalEncoder"]


def _run_lstm(lstm, seq):
    """Run ``lstm``; under CPU autocast in float32 (oneDNN has no reduced-precision LSTM).

    On CUDA, autocast runs cuDNN's LSTM in half precision as usual.
    """
    if seq.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return lstm(seq.float())
    return lstm(seq)


def _lstm_cell(gates, c):
    """One step of ``nn.LSTM``'s cell from its pre-activation gates (gate order i, f, g, o):
    the new ``(h, c)``. The unrolled encoder and decoder share it."""
    width = c.shape[1]
    i, f, _, o = torch.sigmoid(gates).chunk(4, dim=1)
    g = torch.tanh(gates[:, 2 * width : 3 * width])
    c = torch.addcmul(f * c, i, g)
    return o * torch.tanh(c), c


class ChannelMixing(nn.Module):
    """``W_af``: a learnable ``C x C`` channel mix applied to every pixel, no bias.

    Initialised to the identity, so at the start of training the image is
    passed on unchanged. Zero pixels (the padding) stay zero.

    Parameters
    ----------
    channels : int, default=3

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (channels, channels)
        ``out[c] = sum_k weight[c, k] * in[k]``.

    Examples
    --------
    >>> import torch
    >>> from stvlm.network import ChannelMixing
    >>> mix = ChannelMixing()
    >>> img = torch.rand(2, 3, 5, 5)
    >>> torch.equal(mix(img), img)
    True
    """

    def __init__(self, channels=3):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(int(channels)))

    def forward(self, images):
        """Mix channels of ``images`` (B, C, H, W)."""
        return torch.einsum("ok,bkhw->bohw", self.weight.to(images.dtype), images)


class TemporalEncoder(nn.Module):
    """One token per sensor: LSTM over its history, last hidden state, linear map.

    Parameters
    ----------
    hidden_size : int
        Width of the backbone's tokens.
    encoder_hidden : int, default=64
        LSTM width.

    Examples
    --------
    >>> import torch
    >>> from stvlm.network import TemporalEncoder
    >>> enc = TemporalEncoder(hidden_size=32, encoder_hidden=16)
    >>> enc(torch.randn(2, 12, 7)).shape  # (B, history, N) -> (B, N, hidden)
    torch.Size([2, 7, 32])
    """

    def __init__(self, hidden_size, encoder_hidden=64):
        super().__init__()
        self.lstm = nn.LSTM(1, int(encoder_hidden), batch_first=True)
        self.proj = nn.Linear(int(encoder_hidden), int(hidden_size))

    def forward(self, x):
        """``x`` (B, history, N) -> sensor tokens (B, N, hidden)."""
        batch, history, n_nodes = x.shape
        seq = x.permute(0, 2, 1).reshape(batch * n_nodes, history, 1)
        if seq.device.type == "cpu":
            if torch.is_autocast_enabled("cpu"):
                with torch.autocast("cpu", enabled=False):
                    last = self._unrolled(seq.float())
            else:
                last = self._unrolled(seq)
        else:  # cuDNN's fused LSTM is the faster one there
            _, (h_n, _) = _run_lstm(self.lstm, seq)
            last = h_n[-1]
        return self.proj(last).view(batch, n_nodes, -1)

    def _unrolled(self, seq):
        """The last hidden state of ``self.lstm`` over ``seq`` (B*N, history, 1).

        The same recurrence and weights as ``nn.LSTM``, step by step: on a CPU oneDNN's
        LSTM backward at hidden 32 and a few thousand sequences of 12 steps took twice as
        long as autograd through these few operators (docs/performance.md, session 23).
        """
        lstm = self.lstm
        w_hh = lstm.weight_hh_l0
        width = w_hh.shape[1]
        # One input feature: the input projection is a broadcast product, all steps at once.
        gates_in = torch.addcmul(lstm.bias_ih_l0 + lstm.bias_hh_l0, seq, lstm.weight_ih_l0.view(1, 1, -1))
        h = c = seq.new_zeros(seq.shape[0], width)
        for step in gates_in.unbind(1):
            h, c = _lstm_cell(torch.addmm(step, h, w_hh.t()), c)
        return h


class LinearEncoder(nn.Module):
    """One token per sensor: a linear map of its ``history`` values (STID's window projection).

    Parameters
    ----------
    history : int
        Steps per window.
    hidden_size : int
        Width of the backbone's tokens.

    Examples
    --------
    >>> import torch
    >>> from stvlm.network import LinearEncoder
    >>> enc = LinearEncoder(history=12, hidden_size=32)
    >>> enc(torch.randn(2, 12, 7)).shape  # (B, history, N) -> (B, N, hidden)
    torch.Size([2, 7, 32])
    """

    def __init__(self, history, hidden_size):
        super().__init__()
        self.proj = nn.Linear(int(history), int(hidden_size))

    def forward(self, x):
        """``x`` (B, history, N) -> sensor tokens (B, N, hidden)."""
        return self.proj(x.transpose(1, 2))


class LSTMDecoderHead(nn.Module):
    """LSTM decoder: each sensor's vector is the input at every one of ``horizon`` steps.

    Parameters
    ----------
    hidden_size : int
        Width of the backbone's output tokens.
    horizon : int
    decoder_hidden : int, default=64

    Examples
    --------
    >>> import torch
    >>> from stvlm.network import LSTMDecoderHead
    >>> head = LSTMDecoderHead(hidden_size=32, horizon=12, decoder_hidden=16)
    >>> head(torch.randn(2, 7, 32)).shape  # (B, N, hidden) -> (B, horizon, N)
    torch.Size([2, 12, 7])
    """

    def __init__(self, hidden_size, horizon, decoder_hidden=64):
        super().__init__()
        self.horizon = int(horizon)
        self.lstm = nn.LSTM(int(hidden_size), int(decoder_hidden), batch_first=True)
        self.out = nn.Linear(int(decoder_hidden), 1)

    def forward(self, h):
        """``h`` (B, N, hidden) -> forecast (B, horizon, N)."""
        batch, n_nodes, hidden = h.shape
        x = h.reshape(batch * n_nodes, hidden)
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                out = self._unrolled(x.float())
        else:
            out = self._unrolled(x)
        y = self.out(out).squeeze(-1)  # (B*N, horizon)
        return y.view(batch, n_nodes, self.horizon).transpose(1, 2)

    def _unrolled(self, x):
        """``self.lstm`` on ``x`` repeated ``horizon`` times, (B*N, horizon, decoder_hidden).

        The input is the same at every step, so its projection is computed once: the
        same recurrence as ``nn.LSTM`` with about half the work (oneDNN's LSTM
        backward dominated a CPU training step).
        """
        lstm = self.lstm
        w_hh = lstm.weight_hh_l0
        gates_in = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)
        h = c = x.new_zeros(x.shape[0], w_hh.shape[1])
        outs = []
        for _ in range(self.horizon):
            h, c = _lstm_cell(gates_in + F.linear(h, w_hh), c)
            outs.append(h)
        return torch.stack(outs, dim=1)


class MLPHead(nn.Module):
    """Residual MLP readout: each sensor's vector to all ``horizon`` values at once.

    A linear map to ``width``, ``num_layers`` residual blocks
    ``h + W2 relu(W1 h)`` and a linear map to ``horizon`` values — STID's readout, in
    place of the paper's LSTM decoder (an extension: the decoder repeats one input at
    every step, and its error grew with the horizon).

    Parameters
    ----------
    hidden_size : int
        Width of the backbone's output tokens.
    horizon : int
    width : int, default=128
    num_layers : int, default=2

    Attributes
    ----------
    out : torch.nn.Linear
        The last layer, ``width -> horizon``.

    Examples
    --------
    >>> import torch
    >>> from stvlm.network import MLPHead
    >>> head = MLPHead(hidden_size=32, horizon=12, width=16)
    >>> head(torch.randn(2, 7, 32)).shape  # (B, N, hidden) -> (B, horizon, N)
    torch.Size([2, 12, 7])
    """

    def __init__(self, hidden_size, horizon, width=128, num_layers=2):
        super().__init__()
        width = int(width)
        self.horizon = int(horizon)
        self.inp = nn.Linear(int(hidden_size), width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)) for _ in range(int(num_layers))
        )
        self.out = nn.Linear(width, self.horizon)

    def forward(self, h):
        """``h`` (B, N, hidden) -> forecast (B, horizon, N)."""
        z = self.inp(h)
        for block in self.blocks:
            z = z + block(z)
        return self.out(z).transpose(1, 2)


class CalendarEmbedding(nn.Module):
    """Learned vectors of each window's time-of-day slot and, optionally, weekday.

    Initialised as STID's embeddings (Xavier uniform).

    Parameters
    ----------
    steps_per_day : int
        Time-of-day slots.
    hidden_size : int
        Width of the vectors (the backbone's tokens).
    day_of_week : bool, default=False
        Also embed the weekday (0 = Monday).

    Attributes
    ----------
    n_fields : int
        1, or 2 with ``day_of_week``.

    Examples
    --------
    >>> import torch
    >>> from stvlm.network import CalendarEmbedding
    >>> cal = CalendarEmbedding(288, 32, day_of_week=True)
    >>> cal(torch.tensor([0, 287]), torch.tensor([0, 6])).shape  # (B, n_fields, hidden)
    torch.Size([2, 2, 32])
    """

    def __init__(self, steps_per_day, hidden_size, day_of_week=False):
        super().__init__()
        self.time_of_day = nn.Embedding(int(steps_per_day), int(hidden_size))
        self.day_of_week = nn.Embedding(7, int(hidden_size)) if day_of_week else None
        for emb in (self.time_of_day, self.day_of_week):
            if emb is not None:
                nn.init.xavier_uniform_(emb.weight)
        self.n_fields = 1 + bool(day_of_week)

    def forward(self, time_of_day, day_of_week=None):
        """``(B,)`` slots (and weekdays) -> ``(B, n_fields, hidden)``."""
        if time_of_day is None or (self.day_of_week is not None and day_of_week is None):
            need = "time_of_day and day_of_week" if self.day_of_week is not None else "time_of_day"
            raise ValueError(f"this network reads the calendar: pass {need} of each window's last history step.")
        fields = [self.time_of_day(time_of_day)]
        if self.day_of_week is not None:
            fields.append(self.day_of_week(day_of_week))
        return torch.stack(fields, dim=1)
