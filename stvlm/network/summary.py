"""Trainable parameter counts of an ST-VLM network, by component."""

from __future__ import annotations

__all__ = ["trainable_parameter_summary"]

_GROUPS = ("lora", "temporal_encoder", "w_af", "padconv", "positions", "head", "calendar", "other")


def _group_of(name):
    if "lora_" in name:
        return "lora"
    if name.endswith("position_embeddings.extra"):
        return "positions"
    for group in ("temporal_encoder", "w_af", "padconv", "head"):
        if name.startswith(group + "."):
            return group
    if name.startswith("calendar_embedding."):
        return "calendar"
    return "other"


def trainable_parameter_summary(net):
    """Trainable parameter counts of an :class:`STVLMNetwork`, by component.

    Parameters
    ----------
    net : STVLMNetwork

    Returns
    -------
    dict[str, int]
        Keys ``lora``, ``temporal_encoder``, ``w_af``, ``padconv`` (conv and
        scale), ``positions`` (new text position rows), ``head``, ``calendar``, ``other``
        (anything else that requires grad; 0 for a network as built) and
        ``total``.

    Examples
    --------
    >>> from transformers import ViltConfig
    >>> from stvlm.network import STVLMNetwork, trainable_parameter_summary
    >>> cfg = ViltConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    ...                  intermediate_size=64, image_size=32, patch_size=8, vocab_size=1000)
    >>> net = STVLMNetwork.from_backbone(cfg, n_nodes=10, history=12, horizon=3, lora_r=2)
    >>> trainable_parameter_summary(net)["lora"]  # 2 layers x (query, key) x r * (32 + 32)
    512
    """
    counts = dict.fromkeys(_GROUPS, 0)
    for name, param in net.named_parameters():
        if param.requires_grad:
            counts[_group_of(name)] += param.numel()
    counts["total"] = sum(counts[g] for g in _GROUPS)
    return counts
