"""Self-attention-aware fusion (SAF): an image-driven bias on sensor-to-sensor attention.

Two pieces:

- :class:`PadConvBias` (``f_PadConv``) turns the mixed S2I image ``M'`` into one
  ``N x N`` bias map per attention head;
- :class:`SAFSelfAttention` replaces the first ViLT layer's self-attention and
  adds that map to the sensor-token x sensor-token block of ``QK^T`` before the
  ``1/sqrt(d_k)`` scaling.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PadConvBias", "SAFSelfAttention", "install_saf"]


class PadConvBias(nn.Module):
    """``f_PadConv``: per-head sensor-pair attention bias from the mixed image.

    A same-size convolution without bias (``kernel_size`` odd, replicate
    padding, so a constant image stays constant and edge sensors get no
    artificial border effect) maps the ``3 x N x N`` image to ``n_heads`` maps;
    each map is standardised per sample and head over its ``N x N`` pixels
    (``(z - mean) / sqrt(var + eps)``, so a constant map gives exactly 0, never
    NaN) and multiplied by the learnable scalar :attr:`scale` (initial value
    ``init_scale``). Pixel ``(i, j)`` of the output steers how sensor ``i``
    attends to sensor ``j``.

    Parameters
    ----------
    n_heads : int
        Attention heads of the backbone (one map per head).
    kernel_size : int, default=3
        Odd convolution size.
    in_channels : int, default=3
    eps : float, default=1e-5
    init_scale : float, default=1.0

    Attributes
    ----------
    conv : torch.nn.Conv2d
    scale : torch.nn.Parameter, shape ()

    Examples
    --------
    >>> import torch
    >>> from stvlm.network import PadConvBias
    >>> f = PadConvBias(n_heads=4)
    >>> f(torch.rand(2, 3, 10, 10)).shape
    torch.Size([2, 4, 10, 10])
    >>> bool(f(torch.full((1, 3, 5, 5), 0.7)).abs().max() == 0)
    True
    """

    def __init__(self, n_heads, kernel_size=3, in_channels=3, eps=1e-5, init_scale=1.0):
        super().__init__()
        kernel_size = int(kernel_size)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}.")
        self.n_heads = int(n_heads)
        self.eps = float(eps)
        self.conv = nn.Conv2d(
            in_channels,
            self.n_heads,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
            padding_mode="replicate",
            bias=False,  # a per-map constant is removed by the standardisation anyway
        )
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))

    def forward(self, image, mix=None):
        """Bias maps.

        Parameters
        ----------
        image : torch.Tensor of shape (B, C, N, N)
        mix : torch.Tensor of shape (C, C), optional
            A per-pixel channel mix to apply to ``image`` first (``W_af``). It is
            folded into the convolution's weights, which gives the same maps while the
            image itself needs no gradient: the backward pass then costs a small
            fraction of the convolution's (about 10x less at 170 sensors).

        Returns
        -------
        torch.Tensor of shape (B, n_heads, N, N)
        """
        weight = self.conv.weight
        if mix is not None:
            # Replicate padding commutes with a per-pixel channel mix.
            weight = torch.einsum("ockl,ce->oekl", weight, mix.to(weight.dtype))
        pad = self.conv.padding[0]
        z = F.conv2d(F.pad(image, (pad, pad, pad, pad), mode="replicate"), weight.to(image.dtype))
        if z.dtype in (torch.float16, torch.bfloat16):  # statistics in float32 under autocast
            z = z.float()
        z = z - z[..., :1, :1]  # shift by one pixel: exactly 0 for a constant map
        z = z - z.mean(dim=(-2, -1), keepdim=True)
        # The mean of squares of the centred map, not Tensor.var: the same value, and
        # several times faster over (N, N) maps on a CPU.
        var = z.square().mean(dim=(-2, -1), keepdim=True)
        return z * (torch.rsqrt(var + self.eps) * self.scale)


def _additive_mask(mask, dtype):
    """An attention mask as an additive float mask (a boolean one: ``False`` -> the dtype's
    minimum), or ``None`` where it adds nothing: ViLT's mask of a batch without padding
    is all zeros."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        mask = torch.zeros_like(mask, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
    return mask if bool(mask.any()) else None


class _AddIntoBlock(torch.autograd.Function):
    """``scores[..., o:o+n, o:o+n] += alpha * bias`` in place, for autograd.

    Autograd's own in-place update of a slice copies the whole (B, H, L, L) gradient in
    the backward pass; here the scores' gradient passes through as it is and the bias's
    is read from its block. ``scores`` must be a tensor that no node saved for its
    backward pass (a matmul's output: matmul's backward reads only its inputs).
    """

    @staticmethod
    def forward(ctx, scores, bias, offset, alpha):
        n = bias.shape[-1]
        scores[..., offset : offset + n, offset : offset + n].add_(bias, alpha=alpha)
        ctx.mark_dirty(scores)
        ctx.block = (offset, n, alpha, bias.shape[0] != scores.shape[0])
        return scores

    @staticmethod
    def backward(ctx, grad):
        offset, n, alpha, broadcast = ctx.block
        grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_bias = grad[..., offset : offset + n, offset : offset + n] * alpha
            if broadcast:  # one bias for the whole batch
                grad_bias = grad_bias.sum(dim=0, keepdim=True)
        return grad, grad_bias, None, None


class SAFSelfAttention(nn.Module):
    """ViLT self-attention with an optional additive bias on one token block.

    Scores are ``softmax((Q K^T + A_bias) / sqrt(d_k) + attention_mask)``
    where ``A_bias`` is zero except on the ``[offset:offset+N, offset:offset+N]``
    block (the sensor tokens), which holds the ``(B, H, N, N)`` bias set for
    the current call. The bias is given per forward call by the owning network
    through the context manager :meth:`sensor_bias` (or
    :meth:`set_sensor_bias` / :meth:`clear_sensor_bias`), and is only ever
    added into that block, so no ``(B, H, L, L)`` bias tensor is built. With no
    bias set, the computation is exactly ViLT's. Because the bias only lives
    for the duration of the call, activation (gradient) checkpointing must not
    be enabled on this layer: its recomputation during backward would run
    without the bias.

    The original module's ``query``, ``key``, ``value`` (and ``dropout``)
    children are reused, not copied: pretrained weights are kept and peft's
    ``target_modules=["query", "key"]`` finds them under the same names.

    Parameters
    ----------
    original : transformers.models.vilt.modeling_vilt.ViltSelfAttention
        The module to replace.

    Examples
    --------
    >>> import torch
    >>> from transformers import ViltConfig, ViltModel
    >>> from stvlm.network import SAFSelfAttention
    >>> cfg = ViltConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                  intermediate_size=64, image_size=32, patch_size=8)
    >>> model = ViltModel(cfg, add_pooling_layer=False)
    >>> saf = SAFSelfAttention(model.encoder.layer[0].attention.attention)
    >>> h = torch.randn(2, 12, 32)
    >>> with saf.sensor_bias(torch.randn(2, 4, 5, 5), offset=3):
    ...     out = saf(h)[0]
    >>> out.shape, saf.bias is None
    (torch.Size([2, 12, 32]), True)
    """

    def __init__(self, original):
        super().__init__()
        self.num_attention_heads = original.num_attention_heads
        self.attention_head_size = original.attention_head_size
        self.all_head_size = original.all_head_size
        self.query = original.query
        self.key = original.key
        self.value = original.value
        self.dropout = original.dropout
        self.bias = None
        self.bias_offset = 0

    # -- bias plumbing -------------------------------------------------------------
    def set_sensor_bias(self, bias, offset):
        """Set the ``(B, H, N, N)`` bias for the block starting at token ``offset``."""
        if bias is not None:
            if bias.dim() != 4 or bias.shape[1] != self.num_attention_heads or bias.shape[2] != bias.shape[3]:
                raise ValueError(
                    f"bias must have shape (B, {self.num_attention_heads}, N, N), got {tuple(bias.shape)}."
                )
        self.bias = bias
        self.bias_offset = int(offset)

    def clear_sensor_bias(self):
        """Remove the bias: the module computes plain ViLT attention again."""
        self.bias = None
        self.bias_offset = 0

    @contextlib.contextmanager
    def sensor_bias(self, bias, offset):
        """Context manager: the bias holds for the calls inside the block only."""
        self.set_sensor_bias(bias, offset)
        try:
            yield self
        finally:
            self.clear_sensor_bias()

    # -- attention -----------------------------------------------------------------
    def _heads(self, layer, hidden_states):
        hidden_shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
        return layer(hidden_states).view(hidden_shape).transpose(1, 2)

    def _scores(self, query_layer, key_layer, attention_mask):
        bias = self.bias
        if bias is None:  # ViLT's operations, in ViLT's order: the same scores to the bit
            scores = torch.matmul(query_layer, key_layer.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        else:
            # (Q / sqrt(d)) K^T + A_bias / sqrt(d): scaled on the (L, d) queries rather than
            # on the (L, L) scores, which saves a division over the scores and one over their
            # gradient (7 % of a CPU training step at 243 tokens).
            scale = 1.0 / math.sqrt(self.attention_head_size)
            scores = torch.matmul(query_layer * scale, key_layer.transpose(-1, -2))
            _, o = self._checked_bias_block(scores.shape[0], scores.shape[-1])
            scores = _AddIntoBlock.apply(scores, bias.to(scores.dtype), o, scale)
        mask = _additive_mask(attention_mask, scores.dtype)
        return scores if mask is None else scores + mask

    def _checked_bias_block(self, batch, length):
        """Size and offset of the bias block, refused if it does not fit ``length`` tokens."""
        n, o = self.bias.shape[-1], self.bias_offset
        if o < 0 or o + n > length or self.bias.shape[0] not in (1, batch):
            raise ValueError(
                f"sensor bias of shape {tuple(self.bias.shape)} at offset {o} does not fit attention "
                f"over {length} tokens."
            )
        return n, o

    def _fused(self, q, k, v, attention_mask):
        """The same attention through ``scaled_dot_product_attention`` (2-3x faster on a
        CPU than the explicit softmax); the bias enters as part of its additive mask.

        On a CPU, a bias that needs a gradient sends SDPA to its explicit (math) kernel
        anyway, and the (B, H, L, L) mask built for it, and that mask's gradient, add to
        it: there the explicit path below, which adds the bias into the block in place,
        is cheaper (docs/performance.md). Other devices keep SDPA (not measured here).
        """
        explicit = q.device.type == "cpu" and q.dtype in (torch.float32, torch.float64)
        if explicit and self.bias is not None and self.bias.requires_grad and torch.is_grad_enabled():
            probs = torch.softmax(self._scores(q, k, attention_mask), dim=-1)
            return torch.matmul(self.dropout(probs), v)
        mask = _additive_mask(attention_mask, q.dtype)  # None also speeds SDPA up
        bias = self.bias
        if bias is not None:
            length = q.shape[-2]
            n, o = self._checked_bias_block(q.shape[0], length)
            full = q.new_zeros(max(bias.shape[0], q.shape[0]), q.shape[1], length, length)
            full[:, :, o : o + n, o : o + n] = bias.to(q.dtype) / math.sqrt(self.attention_head_size)
            mask = full if mask is None else full + mask.to(q.dtype)
        elif mask is not None:
            mask = mask.to(q.dtype)
        drop = self.dropout.p if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)

    def attention_scores(self, hidden_states, attention_mask=None):
        """Pre-softmax scores ``(Q K^T + A_bias) / sqrt(d_k) + mask``, shape (B, H, L, L)."""
        q = self._heads(self.query, hidden_states)
        k = self._heads(self.key, hidden_states)
        return self._scores(q, k, attention_mask)

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        """Same call and return as ``ViltSelfAttention.forward``.

        Accepts ``(hidden_states, attention_mask, output_attentions)`` (transformers
        5) and ``(hidden_states, attention_mask, head_mask, output_attentions)``
        (transformers 4). Returns ``(context,)`` or ``(context, probs)``.
        """
        head_mask = kwargs.pop("head_mask", None)
        output_attentions = kwargs.pop("output_attentions", False)
        if len(args) == 1:
            output_attentions = args[0]
        elif len(args) == 2:
            head_mask, output_attentions = args
        elif len(args) > 2:
            raise TypeError(f"unexpected positional arguments: {len(args) + 2} given")
        kwargs.pop("position_bias", None)

        query_layer = self._heads(self.query, hidden_states)
        key_layer = self._heads(self.key, hidden_states)
        value_layer = self._heads(self.value, hidden_states)
        if not output_attentions and head_mask is None:
            context_layer = self._fused(query_layer, key_layer, value_layer, attention_mask)
            context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
            return (context_layer.view(*context_layer.size()[:-2], self.all_head_size),)

        attention_scores = self._scores(query_layer, key_layer, attention_mask)
        attention_probs = nn.Softmax(dim=-1)(attention_scores)
        attention_probs = self.dropout(attention_probs)
        if head_mask is not None:
            attention_probs = attention_probs * head_mask

        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        context_layer = context_layer.view(*context_layer.size()[:-2], self.all_head_size)
        return (context_layer, attention_probs) if output_attentions else (context_layer,)

    def extra_repr(self):
        return f"heads={self.num_attention_heads}, head_size={self.attention_head_size}"


def install_fused_attention(backbone):
    """Give every layer of ``backbone`` a :class:`SAFSelfAttention` without a bias (in place).

    Without a bias it computes ViLT's attention, through
    ``torch.nn.functional.scaled_dot_product_attention``: the same function, 2-3x faster
    on a CPU than ViLT's explicit softmax. Layers that already have one keep it.

    Parameters
    ----------
    backbone : transformers.ViltModel

    Examples
    --------
    >>> from transformers import ViltConfig, ViltModel
    >>> from stvlm.network.attention import install_fused_attention
    >>> cfg = ViltConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    ...                  intermediate_size=64, image_size=32, patch_size=8)
    >>> model = ViltModel(cfg, add_pooling_layer=False)
    >>> install_fused_attention(model)
    >>> type(model.encoder.layer[1].attention.attention).__name__
    'SAFSelfAttention'
    """
    for index in range(len(backbone.encoder.layer)):
        install_saf(backbone, index)


def install_saf(backbone, layer=0):
    """Replace ``backbone.encoder.layer[layer].attention.attention`` by SAF (in place).

    Parameters
    ----------
    backbone : transformers.ViltModel
    layer : int, default=0

    Returns
    -------
    SAFSelfAttention
        The installed module (the existing one if already installed).

    Examples
    --------
    >>> from transformers import ViltConfig, ViltModel
    >>> from stvlm.network import install_saf
    >>> cfg = ViltConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                  intermediate_size=64, image_size=32, patch_size=8)
    >>> model = ViltModel(cfg, add_pooling_layer=False)
    >>> type(install_saf(model)).__name__
    'SAFSelfAttention'
    """
    holder = backbone.encoder.layer[layer].attention
    if isinstance(holder.attention, SAFSelfAttention):
        return holder.attention
    holder.attention = SAFSelfAttention(holder.attention)
    return holder.attention
