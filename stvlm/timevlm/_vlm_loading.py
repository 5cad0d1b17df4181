"""Building or loading a frozen Time-VLM backbone: :func:`load_vlm`, and the tiny random
configurations of tests and the ``cpu`` preset (:func:`tiny_vlm_config`). Hub access
follows :func:`stvlm.network.load_backbone`: local directory or cache first, a download
only when allowed, else :class:`~stvlm.network.BackboneNotAvailableError` naming the
ways out.
"""

from __future__ import annotations

import copy
import os

from stvlm.network.backbone import BackboneNotAvailableError, _load_tokenizer, _looks_like_path, _offline_mode

from ._backbones import DEFAULT_VLMS, VLMEncoder, _classes

__all__ = ["load_vlm", "tiny_vlm_config"]


def _not_available(kind, name, reason):
    default = DEFAULT_VLMS[kind]
    config_cls, model_cls = (c.__name__ for c in _classes(kind))
    return BackboneNotAvailableError(
        f"Could not load the {kind} backbone {name!r} for Time-VLM: {reason}\n"
        "Ways out:\n"
        "  1. Download it once on a machine with internet access, e.g.\n"
        f"       huggingface-cli download {default if _looks_like_path(name) else name}\n"
        f"     (or `transformers.{model_cls}.from_pretrained(name).save_pretrained('/some/dir')` "
        "together with the tokenizer's save_pretrained),\n"
        "     then copy the Hugging Face cache or that directory here and pass the local "
        "directory path as the backbone;\n"
        f"  2. or pass a transformers.{config_cls}(...) (e.g. tiny_vlm_config({kind!r})) for a "
        "randomly-initialised backbone (no download, no pretrained knowledge)."
    )


def load_vlm(kind="vilt", backbone=None, *, local_files_only=None):
    """Build or load a frozen Time-VLM backbone.

    Parameters
    ----------
    kind : {"vilt", "clip", "blip2"}, default="vilt"
    backbone : config, model, str, path-like or None, default=None
        - a config of the kind's class (``ViltConfig``, ``CLIPConfig``,
          ``Blip2Config``): a randomly-initialised model on a deep copy of it, no
          tokenizer (word-level fallback);
        - a model of the kind's class (``ViltModel``, ``CLIPModel``, ``Blip2Model``):
          used as is and frozen in place; a tokenizer is looked up, locally only, from
          ``config.name_or_path``;
        - a hub name or a local directory: ``from_pretrained(..., local_files_only=True)``
          first, then a download unless forbidden; the tokenizer when its files hold a
          real vocabulary;
        - ``None``: ``DEFAULT_VLMS[kind]``.
    local_files_only : bool or None, default=None
        ``True``: never download. ``None``/``False``: download when the local copy is
        missing, unless ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` is set.

    Returns
    -------
    VLMEncoder

    Raises
    ------
    ValueError
        Unknown ``kind``.
    TypeError
        ``backbone`` is a config or model of another class, or of another type.
    BackboneNotAvailableError
        The checkpoint is not available locally and cannot or could not be downloaded;
        the message names the ways out.

    Examples
    --------
    >>> from stvlm.timevlm import load_vlm, tiny_vlm_config
    >>> enc = load_vlm("clip", tiny_vlm_config("clip"))
    >>> enc.kind, enc.vision_dim, enc.text_dim, enc.max_text_tokens, enc.tokenizer is None
    ('clip', 48, 32, 77, True)
    """
    config_cls, model_cls = _classes(kind)
    if backbone is None:
        backbone = DEFAULT_VLMS[kind]
    from transformers import PretrainedConfig, PreTrainedModel

    if isinstance(backbone, config_cls):
        config = copy.deepcopy(backbone)
        model = model_cls(config, add_pooling_layer=False) if kind == "vilt" else model_cls(config)
        return VLMEncoder(model)
    if isinstance(backbone, model_cls):
        name = getattr(backbone.config, "name_or_path", "") or ""
        tokenizer = _load_tokenizer(name, local_files_only=True) if name else None
        return VLMEncoder(backbone, tokenizer)
    if isinstance(backbone, (PretrainedConfig, PreTrainedModel)):
        raise TypeError(
            f"kind={kind!r} needs a transformers.{config_cls.__name__} or {model_cls.__name__}; "
            f"got a {type(backbone).__name__}."
        )
    if not isinstance(backbone, (str, os.PathLike)):
        raise TypeError(
            f"backbone must be a transformers.{config_cls.__name__}, a {model_cls.__name__}, a hub "
            f"name or a local directory path; got {type(backbone).__name__}."
        )

    name = os.path.expanduser(os.fspath(backbone))
    extra = {"add_pooling_layer": False} if kind == "vilt" else {}
    try:  # 1. the directory or the local cache only: never touches the network
        model = model_cls.from_pretrained(name, local_files_only=True, **extra)
    except Exception as exc:  # OSError (not cached), ValueError (bad repo id), ...
        local_error = exc
    else:
        return VLMEncoder(model, _load_tokenizer(name, local_files_only=True))
    not_cached = "it is not in the local Hugging Face cache and "
    if os.path.isdir(name):
        reason = f"the directory exists but holds no loadable {model_cls.__name__} ({local_error})."
    elif _looks_like_path(name):
        reason = "no such local directory."
    elif local_files_only:
        reason = not_cached + "local_files_only=True."
    elif _offline_mode():
        reason = not_cached + "the environment is offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set)."
    else:
        try:  # 2. a normal download
            model = model_cls.from_pretrained(name, **extra)
        except Exception as exc:
            raise _not_available(kind, name, f"{not_cached}downloading it failed ({type(exc).__name__}: {exc}).") from exc
        return VLMEncoder(model, _load_tokenizer(name, local_files_only=False))
    raise _not_available(kind, name, reason) from local_error


def tiny_vlm_config(kind, image_size=32):
    """A tiny random-init config of ``kind`` for tests and CPU smoke runs.

    Hidden sizes 32-64, one layer per tower, a 1000-token vocabulary, patch size 8
    (``image_size <= 32``) or 16; for BLIP-2 a tiny OPT language model and a one-layer
    Q-Former with 4 query tokens. Vision and text widths differ for CLIP (48 / 32) and
    BLIP-2 (32 / 48) so that a mix-up shows.

    Parameters
    ----------
    kind : {"vilt", "clip", "blip2"}
    image_size : int, default=32
        Side of the images; a multiple of the patch size.

    Returns
    -------
    transformers.ViltConfig, CLIPConfig or Blip2Config

    Examples
    --------
    >>> from stvlm.timevlm import tiny_vlm_config
    >>> cfg = tiny_vlm_config("blip2")
    >>> cfg.num_query_tokens, cfg.vision_config.image_size, cfg.text_config.model_type
    (4, 32, 'opt')
    """
    config_cls, _ = _classes(kind)
    image_size = int(image_size)
    patch = 8 if image_size <= 32 else 16
    if image_size < patch or image_size % patch:
        raise ValueError(f"image_size must be a positive multiple of {patch}, got {image_size}.")
    vocab = 1000
    tower = {"num_hidden_layers": 1, "num_attention_heads": 4}
    if kind == "vilt":
        return config_cls(
            hidden_size=32, intermediate_size=64, image_size=image_size, patch_size=patch,
            vocab_size=vocab, **tower,
        )  # fmt: skip
    vision = dict(hidden_size=48, intermediate_size=96, image_size=image_size, patch_size=patch, **tower)
    if kind == "clip":
        # bos/eos at the top of the vocabulary, as in CLIP's own (49406 / 49407).
        text = dict(hidden_size=32, intermediate_size=64, vocab_size=vocab, max_position_embeddings=77,
                    bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=1, **tower)  # fmt: skip
        return config_cls(text_config=text, vision_config=vision, projection_dim=16)
    vision["hidden_size"], vision["intermediate_size"] = 32, 64
    qformer = dict(hidden_size=32, intermediate_size=64, vocab_size=vocab, max_position_embeddings=64, **tower)
    text = dict(model_type="opt", vocab_size=vocab, hidden_size=48, ffn_dim=96, word_embed_proj_dim=48,
                max_position_embeddings=128, **tower)  # fmt: skip
    return config_cls(vision_config=vision, qformer_config=qformer, text_config=text, num_query_tokens=4)
