"""Time-VLM's vision-augmented learner (VAL): a window of a multivariate series as a
3-channel image, by a fixed transform or a learnable one."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["IMAGE_TRANSFORMS", "LearnableImage", "minmax_scale", "series_to_image"]

#: The series-to-image transforms a :class:`~stvlm.TimeVLMForecaster` can use.
IMAGE_TRANSFORMS = ("fixed", "learnable")


def minmax_scale(images, eps=1e-5):
    """Scale each image of a batch to ``[0, 1]`` over all its channels and pixels.

    Differentiable, unlike the reference code's cast to ``uint8`` (which cuts the
    gradient, so its learnable transform never learns); an image with one value
    everywhere becomes zeros.

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W)
    eps : float, default=1e-5
        Smallest range divided by.

    Returns
    -------
    torch.Tensor of the same shape

    Examples
    --------
    >>> import torch
    >>> from stvlm.timevlm import minmax_scale
    >>> minmax_scale(torch.tensor([[[[1.0, 3.0], [2.0, 5.0]]]])).flatten().tolist()
    [0.0, 0.5, 0.25, 1.0]
    """
    flat = images.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    high = flat.max(dim=1).values.view(-1, 1, 1, 1)
    return (images - low) / (high - low).clamp_min(eps)


def _fold(x, periodicity):
    """``(B, L, C) -> (B * C, 1, periodicity, n_periods)``: one period per column, the
    window's start padded (repeating its first value) to whole periods."""
    B, L, C = x.shape
    x = x.transpose(1, 2).reshape(B * C, 1, L)
    pad = (-L) % periodicity
    if pad:
        x = torch.cat([x[..., :1].expand(-1, -1, pad), x], dim=-1)
    return x.reshape(B * C, 1, -1, periodicity).transpose(-1, -2)


def series_to_image(x, image_size, periodicity):
    """The fixed transform: windows ``(B, L, C)`` to images ``(B, 3, S, S)`` in ``[0, 1]``.

    Each variable's window is folded by ``periodicity`` (rows: the step within a
    period; columns: successive periods; the start padded to whole periods). The three
    channels are the fold, the magnitude of its Fourier transform across periods (how
    each step of the period changes from one period to the next), and its Haar
    approximation (the fold averaged over 2 x 2 blocks: the coarser scale), each
    resized bilinearly to ``image_size``. The variables' images are averaged, as in
    the reference code, and the result min-max scaled per window.

    Parameters
    ----------
    x : torch.Tensor of shape (B, L, C)
        Normalised windows.
    image_size : int
        Side ``S`` of the images.
    periodicity : int
        Steps per period of the data (24 for hourly data with a daily cycle).

    Returns
    -------
    torch.Tensor of shape (B, 3, image_size, image_size)

    Examples
    --------
    >>> import torch
    >>> from stvlm.timevlm import series_to_image
    >>> t = torch.arange(96.0)
    >>> x = torch.stack([torch.sin(2 * torch.pi * t / 24), t / 96], dim=-1)[None]
    >>> img = series_to_image(x, image_size=32, periodicity=24)
    >>> tuple(img.shape), float(img.min()), float(img.max())
    ((1, 3, 32, 32), 0.0, 1.0)
    """
    B, _, C = x.shape
    size = (int(image_size), int(image_size))
    fold = _fold(x.float(), int(periodicity))
    spectrum = torch.fft.fft(fold, dim=-1).abs()
    coarse = F.avg_pool2d(fold, 2, ceil_mode=True) * 2.0 if min(fold.shape[-2:]) >= 2 else fold
    channels = [F.interpolate(c, size=size, mode="bilinear", align_corners=False) for c in (fold, spectrum, coarse)]
    images = torch.cat(channels, dim=1).reshape(B, C, 3, *size).mean(dim=1)
    return minmax_scale(images)


class LearnableImage(nn.Module):
    """The learnable transform: windows ``(B, L, C)`` to images ``(B, 3, S, S)``.

    Each variable's window, with the sine and cosine of each step's index over
    ``periodicity``, goes through a 1-D convolution to ``hidden`` channels (kernel 3);
    two 2-D convolutions with ReLU over the (variable x time) grid make 3 channels,
    resized bilinearly to ``image_size`` and min-max scaled per window. Gradients reach
    its weights through the (frozen) vision-language model.

    Parameters
    ----------
    image_size, periodicity : int
    hidden : int, default=48

    Examples
    --------
    >>> import torch
    >>> from stvlm.timevlm import LearnableImage
    >>> _ = torch.manual_seed(0)
    >>> LearnableImage(32, 24)(torch.randn(2, 96, 7)).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(self, image_size, periodicity, hidden=48):
        super().__init__()
        self.image_size, self.periodicity, self.hidden = int(image_size), int(periodicity), int(hidden)
        self.conv1d = nn.Conv1d(3, self.hidden, kernel_size=3, padding=1)
        self.conv2d_1 = nn.Conv2d(self.hidden, self.hidden // 2, kernel_size=3, padding=1)
        self.conv2d_2 = nn.Conv2d(self.hidden // 2, 3, kernel_size=3, padding=1)

    def forward(self, x):
        B, L, C = x.shape
        phase = torch.arange(L, device=x.device, dtype=x.dtype) * (2 * math.pi / self.periodicity)
        clock = torch.stack([phase.sin(), phase.cos()])  # (2, L)
        series = x.transpose(1, 2).reshape(B * C, 1, L)
        h = self.conv1d(torch.cat([series, clock.expand(B * C, 2, L)], dim=1))  # (B*C, hidden, L)
        h = h.reshape(B, C, self.hidden, L).transpose(1, 2)  # (B, hidden, C, L)
        h = F.relu(self.conv2d_2(F.relu(self.conv2d_1(h))))
        h = F.interpolate(h, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return minmax_scale(h)
