"""Loading the ViLT backbone, tokenising the task prompt, extending text positions.

The backbone of ST-VLM is a :class:`transformers.ViltModel` (single-stream
vision-language transformer). This module holds everything that deals with the
backbone *as a Hugging Face model*: where it comes from (:func:`load_backbone`),
how the task prompt becomes token ids (:func:`make_prompt`,
:func:`tokenize_prompt`), and how its 40-row text position table is made long
enough for ``prompt + N`` sensor tokens (:func:`extend_text_positions`).
"""

from __future__ import annotations

import copy
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DEFAULT_BACKBONE",
    "BackboneNotAvailableError",
    "ExtendedPositionEmbedding",
    "extend_text_positions",
    "load_backbone",
    "make_prompt",
    "tokenize_prompt",
]

#: Hugging Face hub name of the checkpoint used by the paper.
DEFAULT_BACKBONE = "dandelin/vilt-b32-mlm"

_TRUE = {"1", "on", "yes", "true", "y"}


class BackboneNotAvailableError(OSError, ValueError):
    """The requested pretrained ViLT backbone cannot be loaded.

    Raised by :func:`load_backbone` when a checkpoint is neither in the local
    Hugging Face cache nor a local directory, and cannot (offline mode) or
    could not (connection or not-found error) be downloaded. The message names
    the ways out. It is an :class:`OSError` (what ``from_pretrained`` raises)
    and also a :class:`ValueError` (an unusable ``backbone`` argument).

    Examples
    --------
    >>> from stvlm.network import BackboneNotAvailableError
    >>> issubclass(BackboneNotAvailableError, OSError)
    True
    """


def _offline_mode() -> bool:
    """Whether the environment forbids network access to the Hugging Face hub."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return True
    try:  # the value huggingface_hub read at import time
        from huggingface_hub import constants

        return bool(getattr(constants, "HF_HUB_OFFLINE", False))
    except Exception:  # pragma: no cover - hub always installed with transformers
        return False


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a filesystem path rather than a hub id."""
    if os.path.isabs(name) or name.startswith((".", "~")) or os.sep in name.replace("/", "", 1):
        return True
    if os.altsep and os.altsep in name.replace("/", "", 1):
        return True
    return name.count("/") > 1 or os.path.exists(name)


def _not_available(name: str, reason: str) -> BackboneNotAvailableError:
    return BackboneNotAvailableError(
        f"Could not load the ViLT backbone {name!r}: {reason}\n"
        "Ways out:\n"
        "  1. Download it once on a machine with internet access, e.g.\n"
        f"       huggingface-cli download {name if not _looks_like_path(name) else DEFAULT_BACKBONE}\n"
        "     (or `hf download ...`, or `transformers.ViltModel.from_pretrained(name)"
        ".save_pretrained('/some/dir')` together with the tokenizer's save_pretrained),\n"
        "     then copy the Hugging Face cache or that directory here and pass the "
        "local directory path as backbone='/some/dir';\n"
        "  2. or pass backbone=transformers.ViltConfig(...) for a randomly-initialised "
        "backbone (no download, no pretrained knowledge)."
    )


def _load_tokenizer(name: str, *, local_files_only: bool):
    """Best-effort tokenizer load; ``None`` when there is no usable vocabulary."""
    tokenizer = None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)
    except Exception:
        try:
            from transformers import BertTokenizerFast

            tokenizer = BertTokenizerFast.from_pretrained(name, local_files_only=local_files_only)
        except Exception:
            tokenizer = None
    if tokenizer is not None and not _tokenizer_has_vocabulary(tokenizer):
        tokenizer = None
    return tokenizer


def _tokenizer_has_vocabulary(tokenizer) -> bool:
    """False for the special-tokens-only tokenizer transformers builds from a bare config."""
    try:
        ids = tokenizer(make_prompt(2, 2), add_special_tokens=False)["input_ids"]
    except Exception:
        return False
    unk = getattr(tokenizer, "unk_token_id", None)
    if not ids:
        return False
    n_unk = sum(1 for i in ids if i == unk)
    return n_unk <= len(ids) // 2


def load_backbone(backbone=DEFAULT_BACKBONE, *, local_files_only=None):
    """Build or load the ViLT backbone and, when there is one, its tokenizer.

    Parameters
    ----------
    backbone : transformers.ViltConfig, transformers.ViltModel or str, default=DEFAULT_BACKBONE
        - ``ViltConfig``: a randomly-initialised ``ViltModel(config,
          add_pooling_layer=False)`` built on a deep copy of the config (the
          network later edits ``config.max_position_embeddings``; the caller's
          object stays untouched). No tokenizer.
        - ``ViltModel``: used as is (not copied). A tokenizer is looked up,
          locally only, from ``config.name_or_path`` when that is set.
        - ``str`` or path-like: a hub name (e.g. ``"dandelin/vilt-b32-mlm"``)
          or a local directory, loaded with ``ViltModel.from_pretrained(...,
          add_pooling_layer=False)`` and ``AutoTokenizer.from_pretrained``.
    local_files_only : bool or None, default=None
        ``None``: try the local directory / Hugging Face cache first, then a
        download unless the environment is offline (``HF_HUB_OFFLINE=1`` or
        ``TRANSFORMERS_OFFLINE=1``). ``True``: never download. ``False``: same
        as ``None`` (the cache is always tried first).

    Returns
    -------
    model : transformers.ViltModel
        The backbone, without pooling layer.
    tokenizer : transformers.PreTrainedTokenizerBase or None
        The checkpoint's tokenizer, or ``None`` (config backbone, or no
        tokenizer files with a real vocabulary next to the weights); then
        :func:`tokenize_prompt` uses its word-level fallback.

    Raises
    ------
    BackboneNotAvailableError
        The checkpoint is not available locally and downloading it is
        forbidden (offline mode, ``local_files_only=True``), pointless (the
        name is a filesystem path) or failed. The message names the ways out:
        download it once, pass a local directory, or pass a ``ViltConfig``.
    TypeError
        ``backbone`` is of another type.

    Examples
    --------
    >>> from transformers import ViltConfig
    >>> from stvlm.network import load_backbone
    >>> cfg = ViltConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                  intermediate_size=64, image_size=32, patch_size=8)
    >>> model, tokenizer = load_backbone(cfg)
    >>> type(model).__name__, tokenizer is None, model.pooler is None
    ('ViltModel', True, True)
    """
    from transformers import ViltConfig, ViltModel

    if isinstance(backbone, ViltConfig):
        model = ViltModel(copy.deepcopy(backbone), add_pooling_layer=False)
        return model, None
    if isinstance(backbone, ViltModel):
        tokenizer = None
        name = getattr(backbone.config, "name_or_path", "") or ""
        if name:
            tokenizer = _load_tokenizer(name, local_files_only=True)
        return backbone, tokenizer
    if not isinstance(backbone, (str, os.PathLike)):
        raise TypeError(
            "backbone must be a transformers.ViltConfig, a transformers.ViltModel, a hub "
            f"name or a local directory path; got {type(backbone).__name__}."
        )

    name = os.path.expanduser(os.fspath(backbone))
    if os.path.isdir(name):
        try:
            model = ViltModel.from_pretrained(name, add_pooling_layer=False, local_files_only=True)
        except Exception as exc:
            raise _not_available(
                name, f"the directory exists but holds no loadable ViltModel ({exc})."
            ) from exc
        return model, _load_tokenizer(name, local_files_only=True)

    # 1. local cache only: never touches the network.
    try:
        model = ViltModel.from_pretrained(name, add_pooling_layer=False, local_files_only=True)
        return model, _load_tokenizer(name, local_files_only=True)
    except Exception as exc:  # OSError (not cached), ValueError (bad repo id), ...
        local_error = exc

    if _looks_like_path(name):
        raise _not_available(name, "no such local directory.") from local_error
    if local_files_only:
        raise _not_available(
            name, "it is not in the local Hugging Face cache and local_files_only=True."
        ) from local_error
    if _offline_mode():
        raise _not_available(
            name,
            "it is not in the local Hugging Face cache and the environment is offline "
            "(HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set).",
        ) from local_error

    # 2. a normal download.
    try:
        model = ViltModel.from_pretrained(name, add_pooling_layer=False)
    except Exception as exc:
        raise _not_available(
            name,
            f"it is not in the local Hugging Face cache and downloading it failed "
            f"({type(exc).__name__}: {exc}).",
        ) from exc
    return model, _load_tokenizer(name, local_files_only=False)


def make_prompt(n_nodes, horizon):
    """The ST-VLM task prompt.

    Parameters
    ----------
    n_nodes : int
        Number of sensors ``N``.
    horizon : int
        Number of steps to forecast.

    Returns
    -------
    str

    Examples
    --------
    >>> from stvlm.network import make_prompt
    >>> make_prompt(170, 12)[:60]
    'This is a spatial-temporal prediction task, forecast the nex'
    """
    return (
        f"This is a spatial-temporal prediction task, forecast the next {int(horizon)} steps "
        f"in {int(n_nodes)} nodes; the image depicts the temporal correlation among nodes, "
        "with color blocks representing correlation levels."
    )


#: ids of the word-level fallback vocabulary (see :func:`tokenize_prompt`).
_FALLBACK_CLS, _FALLBACK_SEP, _FALLBACK_OFFSET = 1, 2, 3
_WORD_RE = re.compile(r"\w+|[^\w\s]")


def tokenize_prompt(prompt, tokenizer, vocab_size):
    """Token ids of the prompt, ``[CLS] ... [SEP]``.

    With a tokenizer (a pretrained checkpoint), its own BERT tokenisation with
    special tokens. Without one (a ``ViltConfig`` backbone, whose word
    embeddings are random anyway) a deterministic word-level vocabulary built
    from the prompt itself: the text is lower-cased and split into words
    (``\\w+``) and single punctuation marks; id 0 is left to padding (ViLT's
    ``pad_token_id``, whose embedding is zero), id 1 plays ``[CLS]``, id 2
    ``[SEP]``, and distinct words get ids 3, 4, ... in order of first
    appearance. If the prompt has more distinct words than ``vocab_size - 3``
    the ids wrap around (``3 + k % (vocab_size - 3)``), so every id is below
    ``vocab_size``. The same prompt always gives the same ids.

    Parameters
    ----------
    prompt : str
    tokenizer : transformers tokenizer or None
    vocab_size : int
        The backbone's ``config.vocab_size``; every id must be below it.

    Returns
    -------
    torch.LongTensor of shape (L,)

    Raises
    ------
    ValueError
        ``vocab_size < 4`` without a tokenizer, or the tokenizer produces ids
        outside the backbone's vocabulary.

    Examples
    --------
    >>> from stvlm.network import tokenize_prompt
    >>> tokenize_prompt("Forecast the next steps; the end.", None, 1000).tolist()
    [1, 3, 4, 5, 6, 7, 4, 8, 9, 2]
    """
    vocab_size = int(vocab_size)
    if tokenizer is not None:
        ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        if ids.numel() and (int(ids.max()) >= vocab_size or int(ids.min()) < 0):
            raise ValueError(
                f"The tokenizer produced ids up to {int(ids.max())}, outside the backbone's "
                f"vocabulary of {vocab_size} tokens; tokenizer and backbone do not match."
            )
        return ids
    if vocab_size < _FALLBACK_OFFSET + 1:
        raise ValueError(f"vocab_size must be at least {_FALLBACK_OFFSET + 1}, got {vocab_size}.")
    span = vocab_size - _FALLBACK_OFFSET
    vocab: dict[str, int] = {}
    ids = [_FALLBACK_CLS]
    for word in _WORD_RE.findall(str(prompt).lower()):
        if word not in vocab:
            vocab[word] = _FALLBACK_OFFSET + len(vocab) % span
        ids.append(vocab[word])
    ids.append(_FALLBACK_SEP)
    return torch.tensor(ids, dtype=torch.long)


class ExtendedPositionEmbedding(nn.Module):
    """A text position table with frozen pretrained rows and trainable new rows.

    Replaces ``text_embeddings.position_embeddings`` (an ``nn.Embedding``) of a
    ViLT backbone. ``forward(ids) = F.embedding(ids, cat(base, extra))``.

    New row ``k`` (``k >= P``, ``P`` pretrained rows) is initialised as a copy
    of pretrained row ``1 + (k - 1) % (P - 1)``: the pretrained table is
    repeated cyclically, skipping row 0 (the ``[CLS]`` position, which BERT
    treats specially), so every new position starts with a realistic,
    pretrained embedding rather than noise, and interpolation cannot touch the
    pretrained rows, which must stay exact. ``source_index[k]`` holds that row.

    Parameters
    ----------
    base : torch.nn.Parameter of shape (P, D)
        The pretrained table; kept as is (same object) and frozen.
    n_total : int
        Rows after extension, ``> P``.
    extra : torch.Tensor of shape (n_old, D), optional
        Already trained extra rows to keep (when growing an extended table).

    Attributes
    ----------
    base : torch.nn.Parameter (P, D), ``requires_grad=False``
    extra : torch.nn.Parameter (n_total - P, D), trainable
    source_index : torch.LongTensor (n_total,)
        Pretrained row each position was initialised from.

    Examples
    --------
    >>> import torch
    >>> from stvlm.network import ExtendedPositionEmbedding
    >>> emb = ExtendedPositionEmbedding(torch.nn.Parameter(torch.randn(4, 2)), 7)
    >>> emb.source_index.tolist()
    [0, 1, 2, 3, 1, 2, 3]
    >>> emb(torch.arange(7)[None]).shape
    torch.Size([1, 7, 2])
    """

    def __init__(self, base, n_total, extra=None):
        super().__init__()
        n_base = base.shape[0]
        n_total = int(n_total)
        if n_total <= n_base:
            raise ValueError(f"n_total ({n_total}) must exceed the pretrained rows ({n_base}).")
        if not isinstance(base, nn.Parameter):
            base = nn.Parameter(base.detach())
        base.requires_grad_(False)
        self.base = base
        positions = torch.arange(n_total)
        if n_base > 1:
            source = torch.where(positions < n_base, positions, 1 + (positions - 1) % (n_base - 1))
        else:
            source = torch.zeros_like(positions)
        self.register_buffer("source_index", source, persistent=False)
        n_old = 0 if extra is None else extra.shape[0]
        new_rows = base.detach()[source[n_base + n_old :].to(base.device)].clone()
        if extra is not None:
            new_rows = torch.cat([extra.detach().to(new_rows), new_rows], dim=0)
        self.extra = nn.Parameter(new_rows)

    @property
    def num_embeddings(self) -> int:
        """Total number of positions (pretrained + new)."""
        return self.base.shape[0] + self.extra.shape[0]

    @property
    def embedding_dim(self) -> int:
        """Width of one position embedding."""
        return self.base.shape[1]

    def full_weight(self):
        """The whole ``(num_embeddings, embedding_dim)`` table."""
        return torch.cat([self.base, self.extra.to(self.base.dtype)], dim=0)

    def forward(self, ids):
        """Look up position ids in ``cat(base, extra)``."""
        return F.embedding(ids, self.full_weight())

    def extra_repr(self):
        return f"{self.base.shape[0]} pretrained + {self.extra.shape[0]} new rows, dim={self.embedding_dim}"


def extend_text_positions(backbone, n_tokens):
    """Make a ViLT backbone accept ``n_tokens`` text tokens (in place).

    ViLT's ``TextEmbeddings`` has ``config.max_position_embeddings`` (40)
    position rows and always uses its own ``position_ids`` and
    ``token_type_ids`` buffers (sliced ``[:, :seq_length]``), so a longer text
    stream fails. When ``n_tokens`` exceeds the table, the table is replaced by
    an :class:`ExtendedPositionEmbedding` (pretrained rows frozen, new rows
    trainable and initialised by cyclic copy of pretrained rows), the two
    buffers become ``(1, n_tokens)`` (``arange`` and zeros) and
    ``config.max_position_embeddings`` is set to ``n_tokens``. An already
    extended table grows, keeping its trained rows. Nothing happens when the
    table is long enough.

    Parameters
    ----------
    backbone : transformers.ViltModel
    n_tokens : int
        Text tokens the backbone must accept (prompt + sensors).

    Returns
    -------
    torch.nn.Module
        The position table now in place (``nn.Embedding`` or
        :class:`ExtendedPositionEmbedding`).

    Examples
    --------
    >>> from transformers import ViltConfig, ViltModel
    >>> from stvlm.network import extend_text_positions
    >>> cfg = ViltConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                  intermediate_size=64, image_size=32, patch_size=8)
    >>> model = ViltModel(cfg, add_pooling_layer=False)
    >>> table = extend_text_positions(model, 50)
    >>> table.num_embeddings, tuple(model.embeddings.text_embeddings.position_ids.shape)
    (50, (1, 50))
    """
    text = backbone.embeddings.text_embeddings
    table = text.position_embeddings
    n_tokens = int(n_tokens)
    current = table.num_embeddings
    if n_tokens > current:
        if isinstance(table, ExtendedPositionEmbedding):
            new_table = ExtendedPositionEmbedding(table.base, n_tokens, extra=table.extra)
        else:
            new_table = ExtendedPositionEmbedding(table.weight, n_tokens)
        text.position_embeddings = new_table
        table = new_table
        backbone.config.max_position_embeddings = n_tokens
    n_buf = max(n_tokens, current)
    device = text.position_ids.device
    if text.position_ids.shape[-1] < n_buf:
        text.position_ids = torch.arange(n_buf, device=device, dtype=text.position_ids.dtype).expand(1, -1)
    if getattr(text, "token_type_ids", None) is not None and text.token_type_ids.shape[-1] < n_buf:
        text.token_type_ids = torch.zeros(1, n_buf, dtype=text.token_type_ids.dtype, device=device)
    return table
