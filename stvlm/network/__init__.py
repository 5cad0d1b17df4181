"""The ST-VLM neural network: ViLT backbone, SAF attention, temporal encoder and head.

- :mod:`~stvlm.network.backbone`: :func:`load_backbone`, :func:`make_prompt`,
  :func:`tokenize_prompt`, :func:`extend_text_positions`;
- :mod:`~stvlm.network.attention`: :class:`SAFSelfAttention`, :class:`PadConvBias`;
- :mod:`~stvlm.network.layers`: :class:`ChannelMixing` (``W_af``),
  :class:`TemporalEncoder`, :class:`LinearEncoder`, :class:`LSTMDecoderHead`, :class:`MLPHead`;
- :mod:`~stvlm.network.model`: :class:`STVLMNetwork`, :func:`trainable_parameter_summary`.
"""

from .attention import PadConvBias, SAFSelfAttention, install_saf
from .backbone import (
    DEFAULT_BACKBONE,
    BackboneNotAvailableError,
    ExtendedPositionEmbedding,
    extend_text_positions,
    load_backbone,
    make_prompt,
    tokenize_prompt,
)
from .layers import CalendarEmbedding, ChannelMixing, LinearEncoder, LSTMDecoderHead, MLPHead, TemporalEncoder
from .model import STVLMNetwork
from .summary import trainable_parameter_summary

__all__ = [
    "DEFAULT_BACKBONE",
    "BackboneNotAvailableError",
    "CalendarEmbedding",
    "ChannelMixing",
    "ExtendedPositionEmbedding",
    "LSTMDecoderHead",
    "LinearEncoder",
    "MLPHead",
    "PadConvBias",
    "SAFSelfAttention",
    "STVLMNetwork",
    "TemporalEncoder",
    "extend_text_positions",
    "install_saf",
    "load_backbone",
    "make_prompt",
    "tokenize_prompt",
    "trainable_parameter_summary",
]
