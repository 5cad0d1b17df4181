"""The frozen vision-language backbones of Time-VLM (ViLT, CLIP, BLIP-2) as one
module, :class:`VLMEncoder` (images in [0, 1] + prompts -> pooled vision and text
vectors); :mod:`._vlm_loading` builds or loads them."""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


__all__ = ["DEFAULT_VLMS", "VLMEncoder"]

#: Default Hugging Face hub checkpoint of each kind.
DEFAULT_VLMS = {
    "vilt": "dandelin/vilt-b32-mlm",
    "clip": "openai/clip-vit-base-patch32",
    "blip2": "Salesforce/blip2-opt-2.7b",
}

# Pixel normalisation of each kind's image processor, hard-coded so that no processor has to
# be downloaded: ViltImageProcessor uses IMAGENET_STANDARD_MEAN/STD (0.5, 0.5); CLIP's and
# BLIP-2's processors use transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD.
_OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_PIXEL_STATS = {
    "vilt": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "clip": (_OPENAI_CLIP_MEAN, _OPENAI_CLIP_STD),
    "blip2": (_OPENAI_CLIP_MEAN, _OPENAI_CLIP_STD),
}
# Text cap for BLIP-2's language model (the reference code's limit); OPT allows 2048.
_BLIP2_TEXT_CAP = 1024
# Word-level fallback: id 0 (or the config's pad id) pads, words start at this offset.
_FALLBACK_OFFSET = 3
_WORD_RE = re.compile(r"\w+|[^\w\s]")


_CLASSES = {"vilt": ("ViltConfig", "ViltModel"), "clip": ("CLIPConfig", "CLIPModel"), "blip2": ("Blip2Config", "Blip2Model")}


def _classes(kind):
    """(config class, model class) of ``kind``; ValueError for an unknown kind."""
    if not isinstance(kind, str) or kind not in _CLASSES:
        raise ValueError(f"kind must be one of {sorted(DEFAULT_VLMS)}, got {kind!r}.")
    import transformers

    return tuple(getattr(transformers, name) for name in _CLASSES[kind])


def _kind_of(model):
    for kind in DEFAULT_VLMS:
        if isinstance(model, _classes(kind)[1]):
            return kind
    raise TypeError(
        "model must be a transformers ViltModel, CLIPModel or Blip2Model; "
        f"got {type(model).__name__}."
    )


def _hash_ids(prompt, n_words, cls_id, sep_id, offset, upper):
    """``[cls] word ids [sep]``; word id = ``offset + crc32(word) % (upper - offset)``."""
    words = _WORD_RE.findall(str(prompt).lower())[: max(n_words, 0)]
    span = upper - offset
    return [cls_id] + [offset + zlib.crc32(w.encode("utf-8")) % span for w in words] + [sep_id]


class VLMEncoder(nn.Module):
    """A frozen vision-language model giving pooled vision and text vectors.

    ``forward(images, prompts)`` maps images ``(B, 3, S, S)`` in [0, 1] and ``B`` prompt
    strings to ``(vision (B, vision_dim), text (B, text_dim))``, float32:

    - ``"vilt"`` (``ViltModel``, one pass over ``[text, image CLS, patches]``): text =
      mask-aware mean of the text-token states, vision = mean of the image-token states
      (image CLS included, weighted by the ``pixel_mask`` passed). Images are embedded
      deterministically (patch projection, position table interpolated to the patch grid
      as ViLT does, image CLS) and given as ``image_embeds``: ViLT's ``pixel_values`` path
      shuffles the patches with ``torch.multinomial``, consuming the global RNG.
    - ``"clip"`` (``CLIPModel``): ``vision_model(...).pooler_output`` and
      ``text_model(...).pooler_output``.
    - ``"blip2"`` (``Blip2Model``): vision = mean of the Q-Former's query outputs
      (``get_qformer_features``), text = mask-aware mean of the language model's last
      hidden states over the prompt.

    Images of another size are resized (bilinear, differentiable) to ``image_size``, then
    normalised with the processor's mean and std. Prompts are tokenised with the
    checkpoint's tokenizer when one was found, else with a word-level hash (each
    lower-cased word or punctuation mark gets ``offset + crc32(word) % span``, stable
    across prompts and processes), cut to ``max_text_tokens``; tokenisations are cached per
    distinct prompt (LRU). All backbone parameters are frozen and the backbone stays in
    eval mode (no dropout) whatever ``train()`` says; gradients still reach the images.

    Parameters
    ----------
    model : transformers.ViltModel, CLIPModel or Blip2Model
        The backbone; frozen in place (``requires_grad_(False)``, ``eval()``).
    tokenizer : transformers tokenizer or None, default=None
        The checkpoint's tokenizer; ``None`` uses the word-level fallback.
    max_text_tokens : int or None, default=None
        Text tokens per prompt, special tokens included; at most (and by default) the
        model's limit: ViLT's text position table (40), CLIP's 77, BLIP-2's language
        model positions capped at 1024.
    cache_size : int, default=4096
        Distinct prompts whose tokenisation is kept.

    Attributes
    ----------
    backbone : torch.nn.Module
        The wrapped model.
    kind : {"vilt", "clip", "blip2"}
    vision_dim, text_dim : int
        Widths of the two outputs (ViLT: hidden size twice; CLIP: vision and text hidden
        sizes; BLIP-2: Q-Former and language-model hidden sizes).
    image_size : int
        Side ``S`` of the square images the backbone expects.
    max_text_tokens : int
    vocab_size : int
        Size of the text vocabulary; every token id is below it.

    Examples
    --------
    >>> import torch
    >>> from stvlm.timevlm import load_vlm, tiny_vlm_config
    >>> enc = load_vlm("vilt", tiny_vlm_config("vilt"))
    >>> enc.kind, enc.image_size, enc.max_text_tokens
    ('vilt', 32, 40)
    >>> vision, text = enc(torch.rand(2, 3, 32, 32), ["a rising series", "a flat one"])
    >>> tuple(vision.shape), tuple(text.shape), vision.dtype
    ((2, 32), (2, 32), torch.float32)
    """

    def __init__(self, model, tokenizer=None, *, max_text_tokens=None, cache_size=4096):
        super().__init__()
        kind = _kind_of(model)
        config = model.config
        if kind == "vilt":
            text_cfg = config
            self.vision_dim = self.text_dim = int(config.hidden_size)
            self.image_size = int(config.image_size)
            # The position table (and its position_ids buffer) bounds the text length:
            # ViLT slices position_ids[:, :seq_len], so longer text fails.
            emb = model.embeddings.text_embeddings
            limit = min(emb.position_embeddings.num_embeddings, emb.position_ids.shape[-1])
        elif kind == "clip":
            text_cfg = config.text_config
            self.vision_dim = int(config.vision_config.hidden_size)
            self.text_dim = int(text_cfg.hidden_size)
            self.image_size = int(config.vision_config.image_size)
            limit = int(text_cfg.max_position_embeddings)
        else:
            text_cfg = config.text_config
            self.vision_dim = int(config.qformer_config.hidden_size)
            self.text_dim = int(text_cfg.hidden_size)
            self.image_size = int(config.vision_config.image_size)
            limit = min(int(getattr(text_cfg, "max_position_embeddings", None) or 512), _BLIP2_TEXT_CAP)
        if max_text_tokens is None:
            max_text_tokens = limit
        if int(max_text_tokens) != max_text_tokens or not 3 <= int(max_text_tokens) <= limit:
            raise ValueError(f"max_text_tokens must be an integer in [3, {limit}] for {kind}, got {max_text_tokens!r}.")
        self.kind = kind
        self.max_text_tokens = int(max_text_tokens)
        self.vocab_size = int(text_cfg.vocab_size)
        self.tokenizer = tokenizer
        self._cache = OrderedDict()
        self._cache_size = int(cache_size)
        self._pad_id, self._cls_id, self._sep_id, self._upper = self._special_ids(text_cfg)
        mean, std = _PIXEL_STATS[kind]
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        model.requires_grad_(False)
        self.backbone = model
        self.backbone.eval()

    def _special_ids(self, text_cfg):
        """(pad, cls, sep, upper): fallback ids; words get ids in [offset, upper)."""
        vocab = self.vocab_size
        pad = getattr(text_cfg, "pad_token_id", None)
        if self.tokenizer is not None and getattr(self.tokenizer, "pad_token_id", None) is not None:
            pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None and 0 <= pad < vocab else 0
        if self.kind == "vilt":  # as tokenize_prompt's fallback: [CLS] = 1, [SEP] = 2
            cls, sep = 1, 2
        elif self.kind == "clip" and text_cfg.eos_token_id == 2:
            # Legacy CLIP configs pool at argmax(input_ids): the end token must be the
            # largest id (as 49407 is for the real tokenizer).
            cls, sep = vocab - 2, vocab - 1
        else:  # CLIP pools at the first eos; OPT starts with bos
            cls, sep = text_cfg.bos_token_id, text_cfg.eos_token_id
            cls = cls if cls is not None and 0 <= cls < vocab else 1
            sep = sep if sep is not None and 0 <= sep < vocab else 2
        upper = min([vocab] + [i for i in (cls, sep) if i >= _FALLBACK_OFFSET])
        if upper - _FALLBACK_OFFSET < 1:
            raise ValueError(f"The text vocabulary ({vocab} tokens) is too small for the word-level fallback.")
        return pad, cls, sep, upper

    def train(self, mode=True):
        """Set the wrapper's mode; the frozen backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    # -- text ------------------------------------------------------------------------
    def _ids(self, prompt):
        ids = self._cache.get(prompt)
        if ids is not None:
            self._cache.move_to_end(prompt)
            return ids
        if self.tokenizer is not None:
            ids = self.tokenizer(prompt, truncation=True, max_length=self.max_text_tokens)["input_ids"]
            ids = list(ids)[: self.max_text_tokens]
            if ids and (max(ids) >= self.vocab_size or min(ids) < 0):
                raise ValueError(
                    f"The tokenizer produced ids up to {max(ids)}, outside the backbone's vocabulary of "
                    f"{self.vocab_size} tokens; tokenizer and backbone do not match."
                )
        else:
            ids = _hash_ids(prompt, self.max_text_tokens - 2, self._cls_id, self._sep_id, _FALLBACK_OFFSET, self._upper)
        ids = tuple(ids)
        self._cache[prompt] = ids
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return ids

    def tokenize(self, prompts):
        """Token ids and attention mask of the prompts, right-padded.

        Parameters
        ----------
        prompts : sequence of str

        Returns
        -------
        input_ids, attention_mask : torch.LongTensor of shape (B, T)
            ``T <= max_text_tokens``; on the backbone's device.

        Examples
        --------
        >>> from stvlm.timevlm import load_vlm, tiny_vlm_config
        >>> enc = load_vlm("vilt", tiny_vlm_config("vilt"))
        >>> ids, mask = enc.tokenize(["up, then down", "down"])
        >>> ids[0, 0].item(), ids[0, 5].item(), mask.tolist()
        (1, 2, [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
        >>> ids[0, 4].item() == ids[1, 1].item()  # "down": the same id in both prompts
        True
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        rows = [self._ids(str(p)) for p in prompts]
        if not rows:
            raise ValueError("prompts must not be empty.")
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        device = self.pixel_mean.device
        return ids.to(device), mask.to(device)

    # -- forward ---------------------------------------------------------------------
    def _pixels(self, images):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, S, S), got {tuple(images.shape)}.")
        dtype = next(self.backbone.parameters()).dtype
        images = images.to(device=self.pixel_mean.device, dtype=torch.float32)
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return ((images - self.pixel_mean) / self.pixel_std).to(dtype)

    def _grad(self, module, *tensors):
        """Whether a graph is needed: some input or some parameter of ``module`` asks for it."""
        if not torch.is_grad_enabled():
            return False
        return any(t.requires_grad for t in tensors) or any(p.requires_grad for p in module.parameters())

    def forward(self, images, prompts):
        """Pooled vision and text vectors.

        Parameters
        ----------
        images : torch.Tensor of shape (B, 3, S, S)
            Values in [0, 1]; resized to ``image_size`` when ``S`` differs.
        prompts : sequence of str of length B, or str
            One prompt per image (a single string is used for every image).

        Returns
        -------
        vision : torch.Tensor of shape (B, vision_dim), float32
        text : torch.Tensor of shape (B, text_dim), float32
        """
        batch = images.shape[0]
        if isinstance(prompts, str):
            prompts = [prompts] * batch
        if len(prompts) != batch:
            raise ValueError(f"Got {len(prompts)} prompts for {batch} images.")
        pixels = self._pixels(images)
        ids, mask = self.tokenize(prompts)
        if self.kind == "vilt":
            with torch.set_grad_enabled(self._grad(self.backbone, pixels)):
                vision, text = self._vilt(pixels, ids, mask)
        elif self.kind == "clip":
            # The towers' pooled outputs, not CLIPModel's visual/text projections (512 for
            # B/32): the projections only serve the contrastive image-text score, and the
            # vision tower's own width keeps the paper's 768 for CLIP-B.
            model = self.backbone
            with torch.set_grad_enabled(self._grad(model.vision_model, pixels)):
                vision = model.vision_model(pixel_values=pixels, return_dict=True).pooler_output
            with torch.set_grad_enabled(self._grad(model.text_model)):
                text = model.text_model(input_ids=ids, attention_mask=mask, return_dict=True).pooler_output
        else:
            vision, text = self._blip2(pixels, ids, mask)
        return vision.float(), text.float()

    def _vilt(self, pixels, ids, mask):
        model = self.backbone
        emb = model.embeddings
        patches = emb.patch_embeddings(pixels)  # (B, D, gh, gw)
        batch, dim, gh, gw = patches.shape
        # What ViltEmbeddings.visual_embed does for a full image, minus the patch shuffle:
        # pretrained position grid interpolated to this patch grid, image [CLS] prepended.
        grid = int(model.config.image_size) // int(model.config.patch_size)
        spatial = emb.position_embeddings[:, 1:, :].transpose(1, 2).reshape(1, dim, grid, grid)
        if (gh, gw) != (grid, grid):
            spatial = F.interpolate(spatial, size=(gh, gw), mode="bilinear", align_corners=True)
        pos = torch.cat([emb.position_embeddings[:, :1, :], spatial.flatten(2).transpose(1, 2)], dim=1)
        tokens = torch.cat([emb.cls_token.expand(batch, -1, -1), patches.flatten(2).transpose(1, 2)], dim=1)
        image_embeds = emb.dropout(tokens + pos)
        pixel_mask = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=pixels.device)
        out = model(
            input_ids=ids,
            attention_mask=mask,
            token_type_ids=torch.zeros_like(ids),
            image_embeds=image_embeds,
            pixel_mask=pixel_mask,
            return_dict=True,
        ).last_hidden_state
        n_text = ids.shape[1]
        return _masked_mean(out[:, n_text:], pixel_mask), _masked_mean(out[:, :n_text], mask)

    def _blip2(self, pixels, ids, mask):
        model = self.backbone
        with torch.set_grad_enabled(self._grad(model, pixels)):
            queries = model.get_qformer_features(pixel_values=pixels)
            if not torch.is_tensor(queries):  # older versions return a model output
                queries = queries[0]
            vision = queries.mean(dim=1)
        lm = model.language_model
        with torch.set_grad_enabled(self._grad(lm)):
            if model.config.use_decoder_only_language_model:
                states = lm.base_model(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
            else:
                states = lm.get_encoder()(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
        return vision, _masked_mean(states, mask)

    def extra_repr(self):
        return (
            f"kind={self.kind!r}, vision_dim={self.vision_dim}, text_dim={self.text_dim}, "
            f"image_size={self.image_size}, max_text_tokens={self.max_text_tokens}, "
            f"tokenizer={'yes' if self.tokenizer is not None else 'word-level fallback'}"
        )


def _masked_mean(states, mask):
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
