"""The Time-VLM network: normalise, RAL, VAL + TAL through a frozen VLM, gated fusion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._images import LearnableImage, series_to_image
from ._memory import RetrievalAugmentedLearner
from ._prompts import make_prompts

__all__ = ["TimeVLMNetwork"]


class _Fusion(nn.Module):
    """The multimodal branch and the gate of Time-VLM (reference ``forward_prediction``
    steps 5-10)."""

    def __init__(self, vlm_dim, d_model, horizon, n_heads, dropout):
        super().__init__()
        self.enhance = nn.Sequential(nn.Linear(vlm_dim, d_model), nn.GELU(), nn.Dropout(dropout))
        self.norm = nn.LayerNorm(d_model)  # one LayerNorm used twice, as in the reference
        self.cross = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.head = nn.Sequential(nn.Linear(d_model, horizon), nn.LayerNorm(horizon), nn.GELU(), nn.Dropout(dropout))
        self.gate = nn.Sequential(nn.Linear(2 * horizon, horizon), nn.GELU(), nn.Linear(horizon, 2), nn.Softmax(dim=-1))
        self.out = nn.Sequential(nn.Linear(2 * horizon, horizon), nn.GELU(), nn.Dropout(dropout))

    def forward(self, memory_forecast, temporal, vlm_features):
        C = temporal.shape[1]
        mm = self.norm(self.enhance(vlm_features)[:, None, :].expand(-1, C, -1))
        # Cosine-like query and keys (L2-normalised), as in the reference.
        mm, _ = self.cross(F.normalize(temporal, dim=-1), F.normalize(mm, dim=-1), F.normalize(mm, dim=-1), need_weights=False)
        mm = self.head(self.norm(mm))  # (B, C, horizon)
        w = self.gate(torch.cat([memory_forecast, mm], dim=-1))
        mixed = w[..., :1] * memory_forecast + w[..., 1:] * mm
        return self.out(torch.cat([memory_forecast, mixed], dim=-1)) + memory_forecast


class TimeVLMNetwork(nn.Module):
    """Time-VLM: windows ``(B, L, C)`` to forecasts ``(B, horizon, C)``.

    1. RevIN-style normalisation per window and variable (``norm_const`` scales the
       standard deviation down, as in the paper), undone on the output.
    2. RAL (:class:`RetrievalAugmentedLearner`): the memory forecast and temporal
       features; with ``memory=False`` (the "w/o RAL" ablation) its local and global
       memories are left out and the heads read the patches alone.
    3. VAL: an image of the window (:func:`series_to_image` or :class:`LearnableImage`);
       ``image=None`` (w/o VAL) gives the VLM a blank image and drops its vision vector.
    4. TAL: a prompt per window (:func:`make_prompts`); ``text=False`` (w/o TAL) drops
       the text vector.
    5. The frozen VLM (:class:`VLMEncoder`) pools a vision and a text vector.
    6. Fusion: cross-attention of the temporal features over the multimodal vector, a
       softmax gate between the memory and multimodal forecasts, and a last linear
       layer with the memory forecast added back.

    Parameters
    ----------
    vlm : VLMEncoder
        The frozen vision-language model.
    history, horizon : int
    d_model, n_heads, patch_len, stride, top_k, memory_size : int
    dropout, norm_const : float
    image : {"fixed", "learnable"} or None
    text, memory : bool
    periodicity : int
        Steps per period (images and the learnable transform's clock).
    description : str or None
        The data's sentence in the prompts.

    Examples
    --------
    >>> import torch
    >>> from stvlm.timevlm import TimeVLMNetwork, load_vlm, tiny_vlm_config
    >>> _ = torch.manual_seed(0)
    >>> vlm = load_vlm("vilt", tiny_vlm_config("vilt"))
    >>> net = TimeVLMNetwork(vlm, history=48, horizon=12, d_model=32, n_heads=4, patch_len=16,
    ...                      stride=8, top_k=3, memory_size=20, dropout=0.1, norm_const=0.4,
    ...                      image="fixed", text=True, memory=True, periodicity=24, description=None)
    >>> net(torch.randn(2, 48, 3)).shape
    torch.Size([2, 12, 3])
    """

    def __init__(self, vlm, *, history, horizon, d_model, n_heads, patch_len, stride, top_k, memory_size, dropout,
                 norm_const, image, text, memory, periodicity, description):
        super().__init__()
        self.vlm = vlm
        self.history, self.horizon = int(history), int(horizon)
        self.norm_const, self.image, self.text, self.use_memory = float(norm_const), image, bool(text), bool(memory)
        self.periodicity, self.description = int(periodicity), description
        self.ral = RetrievalAugmentedLearner(
            history, horizon, d_model=d_model, patch_len=patch_len, stride=stride, n_heads=n_heads, top_k=top_k,
            memory_size=memory_size, dropout=dropout,
        )
        self.learnable_image = LearnableImage(vlm.image_size, periodicity) if image == "learnable" else None
        self.fusion = _Fusion(vlm.vision_dim + vlm.text_dim, d_model, horizon, n_heads, dropout)

    @property
    def features_are_fixed(self):
        """Whether the VLM's vectors depend on the window alone (so may be computed once)."""
        return self.learnable_image is None

    def normalise(self, x):
        """``(x - mean) / (sqrt(var + 1e-5) / norm_const)`` per window and variable."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach() / self.norm_const
        return (x - mean) / std, mean, std

    def vlm_features(self, x_norm):
        """The VLM's ``[vision, text]`` vector of normalised windows, ``(B, vision_dim + text_dim)``."""
        B = x_norm.shape[0]
        size = self.vlm.image_size
        if self.image is None:
            images = torch.full((B, 3, size, size), 0.5, device=x_norm.device)
        elif self.learnable_image is not None:
            images = self.learnable_image(x_norm)
        else:
            images = series_to_image(x_norm, size, self.periodicity)
        prompts = make_prompts(x_norm, history=self.history, horizon=self.horizon, description=self.description,
                               transform=self.image or "fixed")
        vision, text = self.vlm(images, prompts)
        if self.image is None:
            vision = torch.zeros_like(vision)
        if not self.text:
            text = torch.zeros_like(text)
        return torch.cat([vision, text], dim=-1).float()

    def forward(self, x, features=None):
        x_norm, mean, std = self.normalise(x.float())
        if self.use_memory:
            memory_forecast, temporal = self.ral(x_norm)
        else:
            memory_forecast, temporal = self._without_memory(x_norm)
        if features is None:
            features = self.vlm_features(x_norm)
        y = self.fusion(memory_forecast, temporal, features.to(memory_forecast.dtype))  # (B, C, horizon)
        return y.transpose(1, 2) * std + mean

    def _without_memory(self, x_norm):
        B, _, C = x_norm.shape
        flat = self.ral.patches(x_norm).flatten(1)
        return self.ral.memory_head(flat).reshape(B, C, -1), self.ral.temporal_head(flat).reshape(B, C, -1)
