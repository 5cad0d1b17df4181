"""The ST-VLM network: S2I image + prompt + sensor tokens through ViLT, LSTM head."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._calendar import CALENDAR_FORMS, CALENDARS
from .attention import PadConvBias, SAFSelfAttention, install_fused_attention
from .backbone import ExtendedPositionEmbedding, extend_text_positions, load_backbone, make_prompt, tokenize_prompt
from .layers import CalendarEmbedding, ChannelMixing, LinearEncoder, LSTMDecoderHead, MLPHead, TemporalEncoder

__all__ = ["STVLMNetwork"]

#: ViLT's image processor normalises with mean = std = 0.5 per channel.
_IMAGE_MEAN = 0.5
_IMAGE_STD = 0.5

_FUSIONS = ("saf", None)
_FINETUNES = ("lora", None)
_HEADS = ("mlp", "lstm")
_ENCODERS = ("lstm", "linear")


def _positive_int(name, value):
    try:
        ivalue = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer, got {value!r}.") from None
    if ivalue != value or ivalue < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return ivalue


class STVLMNetwork(nn.Module):
    """ST-VLM: forecast ``horizon`` steps of ``N`` sensors with a ViLT backbone.

    One forward pass, for windows ``x`` (B, history, N) and their S2I images
    (B, 3, n, n):

    1. ``W_af`` (:class:`ChannelMixing`, identity at init) mixes the three
       channels of the top-left ``N x N`` block, giving ``M'``.
    2. ``M'`` is zero-padded at the bottom/right to ``image_size``,
       normalised like ViLT's image processor (``(v - 0.5) / 0.5``) and
       embedded *deterministically*: patch projection, patch position
       embeddings interpolated to the patch grid exactly as
       ``ViltEmbeddings.visual_embed`` does for a full image, image ``[CLS]``
       prepended, no random patch sampling; passed as ``image_embeds`` with an
       all-ones ``pixel_mask`` of the image token count.
    3. The prompt ids are embedded with the backbone's word embeddings.
    4. :class:`TemporalEncoder` (or, ``temporal_encoder="linear"``,
       :class:`LinearEncoder`) gives one token per sensor; text stream =
       ``[prompt, N sensor tokens]`` passed as ``inputs_embeds`` (ViLT adds
       text positions, token types and LayerNorm); the position table is
       extended to ``len(prompt) + N`` rows (:func:`extend_text_positions`).
    5. ``fusion="saf"``: :class:`PadConvBias` of ``M'`` biases the
       sensor x sensor block of layer 0's attention scores
       (:class:`SAFSelfAttention`).
    6. ``finetune="lora"``: LoRA (peft) on ``query`` and ``key`` of every
       layer; the backbone's own weights are frozen either way.
    7. :class:`LSTMDecoderHead` (or, ``head="mlp"``, :class:`MLPHead`) maps the
       backbone's output at the sensor tokens to ``(B, horizon, N)``.

    The backbone is modified in place (positions, SAF, LoRA); pass a fresh
    backbone (or a ``copy.deepcopy``) to each network.

    Parameters
    ----------
    backbone : transformers.ViltModel
        E.g. from :func:`load_backbone`. Modified in place.
    prompt_ids : torch.LongTensor of shape (L,)
        Prompt token ids (:func:`tokenize_prompt`).
    n_nodes : int
        Number of sensors ``N``; at most ``image_size``.
    history, horizon : int
        Input and output window lengths.
    fusion : {"saf", None}, default="saf"
        ``None``: no SAF: layer 0's attention gets no bias (it computes ViLT's attention).
    finetune : {"lora", None}, default="lora"
        ``None``: backbone fully frozen, no LoRA.
    lora_r, lora_alpha, lora_dropout : LoRA rank, scaling and dropout.
    encoder_hidden, decoder_hidden : int
        LSTM widths of the temporal encoder and of the head (with ``head="mlp"``,
        ``decoder_hidden`` is the MLP's width).
    temporal_encoder : {"lstm", "linear"}, default="lstm"
        ``"lstm"``: the paper's LSTM encoder; ``"linear"``: a linear map of each
        sensor's window (STID's window projection; an extension).
    image_size : int, optional
        Side of the padded image fed to the backbone; defaults to
        ``config.image_size``. Any multiple of the patch size works: the
        pretrained patch position grid is interpolated to the image's grid, as
        ViLT does for images of any size.
    calendar : {None, "time-of-day", "time-of-day+day-of-week"}, default=None
        Learned embeddings of each window's time-of-day slot (and weekday) — an
        extension beyond the paper, whose network sees no clock. ``forward`` then
        takes ``time_of_day`` (and ``day_of_week``) of each window's last history step.
    steps_per_day : int, optional
        Time-of-day slots; required with a calendar.
    calendar_form : {"embedding", "tokens"}, default="embedding"
        ``"embedding"``: the calendar embeddings are added to every sensor token (as
        STID adds its time-of-day embedding to every sensor); ``"tokens"``: one text
        token per calendar field, between the prompt and the sensor tokens.
    head : {"lstm", "mlp"}, default="lstm"
        ``"lstm"``: the paper's LSTM decoder; ``"mlp"``: a residual MLP that reads out
        all ``horizon`` values at once (STID's readout; an extension).

    Attributes
    ----------
    backbone : transformers.ViltModel
    w_af : ChannelMixing
    temporal_encoder : TemporalEncoder or LinearEncoder
    padconv : PadConvBias or None
    head : LSTMDecoderHead or MLPHead
    n_prompt_tokens, n_text_tokens, n_image_tokens : int
    sensor_offset : int
        Position of the first sensor token in the text stream.
    calendar_embedding : CalendarEmbedding or None

    Examples
    --------
    >>> import torch
    >>> from transformers import ViltConfig
    >>> from stvlm.network import STVLMNetwork, load_backbone, make_prompt, tokenize_prompt
    >>> cfg = ViltConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    ...                  intermediate_size=64, image_size=32, patch_size=8, vocab_size=1000)
    >>> backbone, tok = load_backbone(cfg)
    >>> ids = tokenize_prompt(make_prompt(10, 3), tok, cfg.vocab_size)
    >>> net = STVLMNetwork(backbone, ids, n_nodes=10, history=12, horizon=3,
    ...                    encoder_hidden=16, decoder_hidden=16).eval()
    >>> net(torch.randn(2, 12, 10), torch.rand(2, 3, 10, 10)).shape
    torch.Size([2, 3, 10])
    """

    def __init__(
        self,
        backbone,
        prompt_ids,
        n_nodes,
        history,
        horizon,
        fusion="saf",
        finetune="lora",
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        encoder_hidden=64,
        decoder_hidden=64,
        image_size=None,
        calendar=None,
        steps_per_day=None,
        calendar_form="embedding",
        head="lstm",
        temporal_encoder="lstm",
    ):
        super().__init__()
        from transformers import ViltModel

        if not isinstance(backbone, ViltModel):
            raise TypeError(f"backbone must be a transformers.ViltModel, got {type(backbone).__name__}.")
        if fusion not in _FUSIONS:
            raise ValueError(f"fusion must be 'saf' or None, got {fusion!r}.")
        if finetune not in _FINETUNES:
            raise ValueError(f"finetune must be one of {_FINETUNES}, got {finetune!r}.")
        if calendar not in CALENDARS:
            raise ValueError(f"calendar must be one of {CALENDARS}, got {calendar!r}.")
        if calendar_form not in CALENDAR_FORMS:
            raise ValueError(f"calendar_form must be one of {CALENDAR_FORMS}, got {calendar_form!r}.")
        if head not in _HEADS:
            raise ValueError(f"head must be one of {_HEADS}, got {head!r}.")
        if temporal_encoder not in _ENCODERS:
            raise ValueError(f"temporal_encoder must be one of {_ENCODERS}, got {temporal_encoder!r}.")
        for _, module in backbone.named_modules():
            if isinstance(module, SAFSelfAttention) or hasattr(module, "lora_A"):
                raise ValueError(
                    "This backbone was already modified by another STVLMNetwork (SAF or LoRA "
                    "installed); pass a fresh backbone or a copy.deepcopy of the original."
                )
        self.n_nodes = _positive_int("n_nodes", n_nodes)
        self.history = _positive_int("history", history)
        self.horizon = _positive_int("horizon", horizon)
        self.fusion = fusion
        self.finetune = finetune

        config = backbone.config
        patch_size = config.patch_size
        if image_size is None:
            image_size = config.image_size
        if not isinstance(image_size, int) or isinstance(image_size, bool):
            raise ValueError(f"only square images are supported, got image_size={image_size!r}.")
        if image_size % patch_size:
            raise ValueError(
                f"image_size={image_size} must be a multiple of the backbone's patch size {patch_size}, "
                "so that every sensor row and column falls inside a patch."
            )
        if config.num_channels != 3:
            raise ValueError(f"the backbone must take 3-channel images, got num_channels={config.num_channels}.")
        if self.n_nodes > image_size:
            raise ValueError(
                f"n_nodes={self.n_nodes} sensors do not fit in a {image_size}x{image_size} image; "
                f"use image_size >= {self.n_nodes}."
            )
        self.image_size = int(image_size)

        prompt_ids = torch.as_tensor(prompt_ids, dtype=torch.long).reshape(-1)
        if prompt_ids.numel() == 0:
            raise ValueError("prompt_ids must not be empty.")
        if int(prompt_ids.min()) < 0 or int(prompt_ids.max()) >= config.vocab_size:
            raise ValueError(f"prompt_ids must lie in [0, {config.vocab_size}) (the backbone's vocabulary).")
        self.register_buffer("prompt_ids", prompt_ids)
        self.n_prompt_tokens = int(prompt_ids.numel())
        hidden = config.hidden_size
        self.calendar = calendar
        self.calendar_form = calendar_form
        self.calendar_embedding = None
        if calendar is not None:
            spd = _positive_int("steps_per_day", steps_per_day)
            self.calendar_embedding = CalendarEmbedding(spd, hidden, day_of_week=calendar.endswith("day-of-week"))
        n_fields = 0 if self.calendar_embedding is None else self.calendar_embedding.n_fields
        self.sensor_offset = self.n_prompt_tokens + (n_fields if calendar_form == "tokens" else 0)
        self.n_text_tokens = self.sensor_offset + self.n_nodes

        backbone.requires_grad_(False)
        self.backbone = backbone
        extend_text_positions(backbone, self.n_text_tokens)
        patch = backbone.embeddings.patch_embeddings
        grid = (self.image_size // patch.patch_size[0], self.image_size // patch.patch_size[1])
        self.n_image_tokens = 1 + grid[0] * grid[1]

        # Every layer gets the fused attention; only with SAF does layer 0's get a bias.
        install_fused_attention(backbone)
        if fusion == "saf":
            self.padconv = PadConvBias(config.num_attention_heads)
        else:
            self.padconv = None

        if finetune == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            lora_config = LoraConfig(
                r=_positive_int("lora_r", lora_r),
                lora_alpha=lora_alpha,
                lora_dropout=float(lora_dropout),
                target_modules=["query", "key"],
                bias="none",
            )
            inject_adapter_in_model(lora_config, backbone)
        # exactly: LoRA matrices and the new position rows train inside the backbone
        for name, param in backbone.named_parameters():
            param.requires_grad_("lora_" in name)
        positions = backbone.embeddings.text_embeddings.position_embeddings
        if isinstance(positions, ExtendedPositionEmbedding):
            positions.extra.requires_grad_(True)

        self.w_af = ChannelMixing(3)
        if temporal_encoder == "linear":
            self.temporal_encoder = LinearEncoder(self.history, hidden)
        else:
            self.temporal_encoder = TemporalEncoder(hidden, encoder_hidden)
        if head == "mlp":
            self.head = MLPHead(hidden, self.horizon, _positive_int("decoder_hidden", decoder_hidden))
        else:
            self.head = LSTMDecoderHead(hidden, self.horizon, decoder_hidden)

    @classmethod
    def from_backbone(cls, backbone, n_nodes, history, horizon, *, prompt=None, local_files_only=None, **kwargs):
        """Load/build the backbone, tokenise the prompt and build the network.

        Parameters
        ----------
        backbone : ViltConfig, ViltModel or str
            As for :func:`load_backbone`.
        n_nodes, history, horizon : int
        prompt : str, optional
            Defaults to :func:`make_prompt` ``(n_nodes, horizon)``.
        local_files_only : bool or None
            Passed to :func:`load_backbone`.
        **kwargs
            Other :class:`STVLMNetwork` parameters.

        Returns
        -------
        STVLMNetwork

        Examples
        --------
        >>> from transformers import ViltConfig
        >>> from stvlm.network import STVLMNetwork
        >>> cfg = ViltConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        ...                  intermediate_size=64, image_size=32, patch_size=8, vocab_size=1000)
        >>> net = STVLMNetwork.from_backbone(cfg, n_nodes=8, history=12, horizon=12)
        >>> net.n_text_tokens == net.n_prompt_tokens + 8
        True
        """
        model, tokenizer = load_backbone(backbone, local_files_only=local_files_only)
        if prompt is None:
            prompt = make_prompt(n_nodes, horizon)
        ids = tokenize_prompt(prompt, tokenizer, model.config.vocab_size)
        return cls(model, ids, n_nodes, history, horizon, **kwargs)

    @property
    def saf(self):
        """The :class:`SAFSelfAttention` of layer 0, or ``None`` without fusion."""
        module = self.backbone.encoder.layer[0].attention.attention
        return module if self.fusion == "saf" and isinstance(module, SAFSelfAttention) else None

    # -- input checks ------------------------------------------------------------------
    def _check_inputs(self, x, images):
        if not torch.is_tensor(x) or x.dim() != 3:
            raise ValueError(f"x must be a tensor of shape (batch, history, n_nodes), got {_shape(x)}.")
        if x.shape[1] != self.history or x.shape[2] != self.n_nodes:
            raise ValueError(
                f"x must have shape (batch, {self.history}, {self.n_nodes}) (history, n_nodes), "
                f"got {tuple(x.shape)}."
            )
        if not torch.is_tensor(images) or images.dim() != 4:
            raise ValueError(f"images must be a tensor of shape (batch, 3, n, n), got {_shape(images)}.")
        b, c, h, w = images.shape
        if b != x.shape[0]:
            raise ValueError(f"images has batch size {b} but x has {x.shape[0]}.")
        if c != 3:
            raise ValueError(f"images must have 3 channels, got {c}.")
        lo, hi = self.n_nodes, self.image_size
        if not (lo <= h <= hi and lo <= w <= hi):
            raise ValueError(
                f"images must be between {lo}x{lo} (n_nodes) and {hi}x{hi} (the backbone's "
                f"image_size) pixels, top-left aligned; got {h}x{w}."
            )

    # -- embeddings --------------------------------------------------------------------
    def mix_image(self, images):
        """``M'``: ``W_af`` applied to the top-left ``N x N`` block, (B, 3, N, N)."""
        n = self.n_nodes
        return self.w_af(images[:, :, :n, :n])

    def embed_image(self, mixed):
        """Deterministic ViLT image tokens for ``M'`` (B, 3, N, N) -> (B, 1 + patches, hidden).

        Same as ``ViltEmbeddings.visual_embed`` on a full (unmasked) image,
        except that the patches keep their raster order instead of being
        shuffled with ``torch.multinomial`` (the output of the bidirectional
        encoder at the text tokens does not depend on that order).
        """
        emb = self.backbone.embeddings
        pad = self.image_size - mixed.shape[-1], self.image_size - mixed.shape[-2]
        pixels = F.pad(mixed, (0, pad[0], 0, pad[1]))
        pixels = (pixels - _IMAGE_MEAN) / _IMAGE_STD
        patches = emb.patch_embeddings(pixels)  # (B, D, gh, gw)
        return self._image_tokens(patches.flatten(2).transpose(1, 2), *patches.shape[-2:])

    def _embed_mixed_image(self, images):
        """``embed_image(mix_image(images))``, with ``W_af`` and ViLT's pixel
        normalisation folded into the patch projection, run as one matrix product.

        The same tokens, but the (B, 3, image_size, image_size) pixels need no
        gradient: only the (hidden, 3 x patch^2) composed weight does, which makes the
        backward pass several times cheaper on a CPU.
        """
        proj = self.backbone.embeddings.patch_embeddings.projection
        n, size, p = self.n_nodes, self.image_size, proj.kernel_size[0]
        g = size // p
        pixels = F.pad(images[:, :, :n, :n], (0, size - n, 0, size - n)).to(proj.weight.dtype)
        batch = pixels.shape[0]
        patches = pixels.reshape(batch, 3, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(batch, g * g, 3 * p * p)
        # conv((W_af x - mean) / std) = conv_{P W_af / std}(x) + bias - (mean / std) sum(P)
        weight = torch.einsum("dckl,ce->dekl", proj.weight, self.w_af.weight.to(proj.weight.dtype)) / _IMAGE_STD
        bias = proj.bias - (_IMAGE_MEAN / _IMAGE_STD) * proj.weight.sum(dim=(1, 2, 3))
        tokens = F.linear(patches, weight.reshape(weight.shape[0], -1), bias)
        return self._image_tokens(tokens, g, g)

    def _image_tokens(self, patches, gh, gw):
        """[CLS] + patch tokens (B, gh * gw, D) with ViLT's interpolated positions."""
        emb = self.backbone.embeddings
        batch, _, dim = patches.shape
        # The pretrained position grid (12x12 for ViLT-B/32 at 384 px), interpolated to
        # this image's patch grid as ViLT does for any image size.
        patch_dim = math.isqrt(emb.position_embeddings.shape[1] - 1)
        spatial_pos = emb.position_embeddings[:, 1:, :].transpose(1, 2).view(1, dim, patch_dim, patch_dim)
        pos = F.interpolate(spatial_pos, size=(gh, gw), mode="bilinear", align_corners=True)
        pos = pos.flatten(2).transpose(1, 2)
        pos = torch.cat([emb.position_embeddings[:, :1, :], pos], dim=1)
        tokens = torch.cat([emb.cls_token.expand(batch, -1, -1), patches], dim=1)
        return emb.dropout(tokens + pos)

    def embed_text(self, x, time_of_day=None, day_of_week=None):
        """Text stream before ViLT's text embedding, (B, L, hidden): the prompt words,
        the calendar tokens (``calendar_form="tokens"``) and the sensor tokens."""
        words = self.backbone.embeddings.text_embeddings.word_embeddings(self.prompt_ids)
        words = words.unsqueeze(0).expand(x.shape[0], -1, -1)
        sensors = self.temporal_encoder(x).to(words.dtype)
        if self.calendar_embedding is None:
            return torch.cat([words, sensors], dim=1)
        fields = self.calendar_embedding(time_of_day, day_of_week).to(words.dtype)  # (B, fields, hidden)
        if self.calendar_form == "tokens":
            return torch.cat([words, fields, sensors], dim=1)
        return torch.cat([words, sensors + fields.sum(dim=1, keepdim=True)], dim=1)

    # -- forward -----------------------------------------------------------------------
    def forward(self, x, images, time_of_day=None, day_of_week=None):
        """Forecast.

        Parameters
        ----------
        x : torch.Tensor of shape (B, history, N)
            z-scored history windows.
        images : torch.Tensor of shape (B, 3, n, n)
            S2I images in [0, 1], ``N <= n <= image_size``, top-left
            aligned; only the ``N x N`` block is read (the rest is padding).
        time_of_day, day_of_week : torch.LongTensor of shape (B,), optional
            Slot and weekday (0 = Monday) of each window's last history step; read
            only with a calendar.

        Returns
        -------
        torch.Tensor of shape (B, horizon, N)
        """
        self._check_inputs(x, images)
        dtype = self.head.out.weight.dtype
        x = x.to(dtype)
        images = images.to(dtype)
        batch = x.shape[0]

        image_embeds = self._embed_mixed_image(images)
        text_embeds = self.embed_text(x, time_of_day, day_of_week)
        device = text_embeds.device
        attention_mask = torch.ones(batch, self.n_text_tokens, dtype=torch.long, device=device)
        pixel_mask = torch.ones(batch, image_embeds.shape[1], dtype=torch.long, device=device)
        kwargs = dict(
            inputs_embeds=text_embeds,
            attention_mask=attention_mask,
            image_embeds=image_embeds,
            pixel_mask=pixel_mask,
            output_attentions=False,
            output_hidden_states=False,
            return_dict=True,
        )
        saf = self.saf
        if saf is not None and self.padconv is not None:
            n = self.n_nodes
            bias = self.padconv(images[:, :, :n, :n], mix=self.w_af.weight)  # = padconv(mix_image(images))
            with saf.sensor_bias(bias, self.sensor_offset):
                out = self.backbone(**kwargs)
        else:
            out = self.backbone(**kwargs)
        sensors = out.last_hidden_state[:, self.sensor_offset : self.n_text_tokens]
        return self.head(sensors)


def _shape(value):
    return tuple(value.shape) if hasattr(value, "shape") else type(value).__name__
