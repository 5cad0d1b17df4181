"""The formats of :mod:`stvlm.persistence`, one per estimator class that saves: the name
and version of what it writes, the fitted attributes stored beside its parameters, the
fields that fix what its weights mean, and how its network is rebuilt from them.

Not public. :data:`SPECS` maps a format name -- the ``format`` of a saved config, which
so records the class that wrote it -- to its spec; a class names the format it writes
in ``_saved_as`` (:class:`~stvlm.persistence._SaveLoadMixin`).

- ``"stvlm-forecaster"`` (:class:`~stvlm.STVLMForecaster`), version 5; versions 1-5 load.
- ``"timevlm-forecaster"`` (:class:`~stvlm.TimeVLMForecaster`), version 1. The weights
  file holds the whole network: the frozen VLM's weights too, whatever the backbone was
  (a random ``"tiny"`` one could not be rebuilt otherwise, and a pretrained one then
  needs neither the hub nor its cache), and RAL's memory buffers. The VLM's config is
  stored in the ``network`` section, and a checkpoint's tokenizer, when the VLM has one,
  in ``tokenizer/`` (data files, checksummed in ``files``), so that a saved model loads
  anywhere, offline, with the same tokens. The price: the folder is as large as the VLM.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from ._calendar import CALENDARS

__all__ = ["SPECS", "TOKENIZER_DIR", "spec_of"]

#: Folder of a saved Time-VLM's tokenizer, inside the model's folder.
TOKENIZER_DIR = "tokenizer"


def _is_int(v, low):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


# Each fitted attribute with the rule its value must meet.
_RULES = {
    "n_features_in_": (lambda v: _is_int(v, 1), "an int >= 1"),
    "mean_": (_is_real, "a finite number"),
    "std_": (lambda v: _is_real(v) and v > 0, "a finite number > 0"),
    "dtw_scale_": (lambda v: v is None or (_is_real(v) and v > 0), "None or a finite number > 0"),
    "image_size_": (lambda v: _is_int(v, 1), "an int >= 1"),
    "best_epoch_": (lambda v: _is_int(v, 0), "an int >= 0"),
    "best_score_": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "interrupted_": (lambda v: isinstance(v, bool), "true or false"),
    "loss_history_": (lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v), "a list of records"),
    "prompt_ids_": (lambda v: isinstance(v, list) and all(_is_int(i, 0) for i in v), "a list of token ids"),
    "backbone_config_": (lambda v: isinstance(v, dict), "a ViltConfig dict"),
    "calendar_": (lambda v: v in CALENDARS, f"one of {CALENDARS}"),
    "steps_per_day_": (lambda v: v is None or _is_int(v, 1), "None or an int >= 1"),
    "ar_coef_": (
        lambda v: v is None or (isinstance(v, list) and all(
            isinstance(row, list) and len(row) == len(v[0]) and all(_is_real(c) for c in row) for row in v)),
        "None or a list of equal-length lists of finite numbers",
    ),
    "ar_weight_": (lambda v: v is None or (_is_real(v) and 0 <= v <= 1), "None or a number in [0, 1]"),
}


class _Spec:
    """What one estimator class saves and how it is rebuilt; subclasses fill it in."""

    format = ""  # the config's format marker
    estimator = ""  # the class's name, for messages
    an_estimator = ""  # the same with its article
    version = 1  # the version written
    readable = (1,)  # the versions read
    verified_since = 1  # the first version with a weights checksum and shape-defining fields
    fitted = ()  # the fitted attributes stored; load sets these and no others
    shaped = ()  # parameters or fitted attributes that fix the weights' shapes and meaning

    def params_to_json(self, model):
        """The constructor's parameters as JSON-able values (``callbacks`` left out: code)."""
        params = model.get_params(deep=False)
        params["callbacks"] = None
        return params

    def params_from_json(self, params):
        """The constructor's parameters from the stored ones."""
        return params

    def upgrade(self, params, fitted):
        """Stored parameters and fitted attributes of an older version, brought up to date."""
        return params, fitted

    def check_fitted(self, fitted, cfg_file):
        """``fitted`` when it holds exactly the known attributes, each valid; else ValueError."""
        unknown = sorted(set(fitted) - set(self.fitted))
        if unknown:
            raise ValueError(f"{cfg_file}: unknown fitted fields {unknown}; the file was not written by stvlm.")
        for name in self.fitted:
            if name not in fitted:
                raise ValueError(f"{cfg_file}: the fitted field {name!r} is missing.")
            ok, what = _RULES[name]
            if not ok(fitted[name]):
                raise ValueError(f"{cfg_file}: fitted field {name!r} must be {what}; got {fitted[name]!r}.")
        return fitted

    def network_config(self, model):
        """The ``network`` section of the config (what rebuilds the network), or None."""
        return None

    def write_files(self, model, folder):
        """Write any files beyond the weights and the config into ``folder``."""

    def build(self, model, fitted, network, folder):
        """The untrained network of ``model`` (its parameters set) with its fitted shapes."""
        raise NotImplementedError


class _STVLMSpec(_Spec):
    format = "stvlm-forecaster"
    estimator = "STVLMForecaster"
    an_estimator = "an STVLMForecaster"
    # 2: the weights' sha256 and shape-defining fields; 3: calendar_, steps_per_day_; 4: ar_coef_; 5: ar_weight_
    version = 5
    readable = (1, 2, 3, 4, 5)
    verified_since = 2
    fitted = (
        "n_features_in_", "mean_", "std_", "dtw_scale_", "image_size_", "best_epoch_", "best_score_",
        "interrupted_", "loss_history_", "prompt_ids_", "backbone_config_", "calendar_", "steps_per_day_",
        "ar_coef_", "ar_weight_",
    )
    shaped = ("history", "horizon", "n_features_in_", "image_size_")
    # Models saved before a parameter or fitted field existed: what they were fitted with.
    legacy_params = dict(calendar=None, output="level", head="lstm", temporal_encoder="lstm")
    legacy_fitted = dict(calendar_=None, steps_per_day_=None, ar_coef_=None)

    def params_to_json(self, model):
        params = super().params_to_json(model)
        if not isinstance(params["backbone"], (str, dict)):
            params["backbone"] = params["backbone"].to_dict()
        return params

    def upgrade(self, params, fitted):
        if "history_" in fitted:  # written before the epoch records were renamed
            fitted["loss_history_"] = fitted.pop("history_")
        for key, value in self.legacy_params.items():
            params.setdefault(key, value)
        for key, value in self.legacy_fitted.items():
            fitted.setdefault(key, value)
        if "ar_weight_" not in fitted:  # before version 5: the autoregression, if any, all of it
            fitted["ar_weight_"] = None if fitted["ar_coef_"] is None else 1.0
        return params, fitted

    def check_fitted(self, fitted, cfg_file):
        fitted = super().check_fitted(fitted, cfg_file)
        if fitted["calendar_"] and fitted["steps_per_day_"] is None:
            raise ValueError(f"{cfg_file}: calendar_ {fitted['calendar_']!r} needs steps_per_day_.")
        if fitted["image_size_"] < fitted["n_features_in_"]:
            raise ValueError(f"{cfg_file}: image_size_ {fitted['image_size_']} is below n_features_in_.")
        return fitted

    def build(self, model, fitted, network, folder):
        import torch
        from transformers import ViltConfig

        coef = fitted["ar_coef_"]
        # "change" may carry the autoregression it added after training (weighted), "level" never.
        if (model.output == "ar" and coef is None) or (model.output == "level" and coef is not None):
            raise ValueError(f"output {model.output!r} and ar_coef_ {'missing' if coef is None else 'given'} disagree.")
        if (coef is None) != (fitted["ar_weight_"] is None) or (model.output == "ar" and fitted["ar_weight_"] != 1):
            raise ValueError(f"ar_coef_ and ar_weight_ {fitted['ar_weight_']!r} disagree: both or neither.")
        if coef is not None:
            shape = (model.history - 1, model.horizon)
            coef = np.asarray(coef, dtype=np.float64)
            if coef.size != shape[0] * shape[1] or (coef.size and coef.shape != shape):
                raise ValueError(f"ar_coef_ has shape {coef.shape}; history and horizon need {shape}.")
            fitted["ar_coef_"] = coef.reshape(shape)

        from .network import load_backbone

        return model._make_network(
            load_backbone(ViltConfig.from_dict(fitted["backbone_config_"]))[0],
            torch.tensor(fitted["prompt_ids_"], dtype=torch.long),
            int(fitted["n_features_in_"]),
            int(fitted["image_size_"]),
            fitted["calendar_"],
            fitted["steps_per_day_"],
        )


class _TimeVLMSpec(_Spec):
    format = "timevlm-forecaster"
    estimator = "TimeVLMForecaster"
    an_estimator = "a TimeVLMForecaster"
    version = 1
    readable = (1,)
    verified_since = 1
    fitted = ("n_features_in_", "mean_", "std_", "best_epoch_", "best_score_", "interrupted_", "loss_history_")
    # What fixes the weights' shapes or what a forecast means: an edited config is refused.
    shaped = (
        "history", "horizon", "n_features_in_", "vlm", "image", "text", "memory", "d_model", "n_heads",
        "patch_len", "stride", "top_k", "memory_size", "norm_const", "periodicity", "description", "mean_", "std_",
    )

    def params_to_json(self, model):
        """A ``transformers`` config as ``backbone`` becomes ``{"transformers_config": its
        class's name, "values": its to_dict()}``; a model, its config's (its weights are
        in the weights file); a path, its text."""
        from transformers import PretrainedConfig, PreTrainedModel

        params = super().params_to_json(model)
        backbone = params["backbone"]
        if isinstance(backbone, PreTrainedModel):
            backbone = backbone.config
        if isinstance(backbone, PretrainedConfig):
            backbone = {"transformers_config": type(backbone).__name__, "values": backbone.to_dict()}
        elif isinstance(backbone, os.PathLike):
            backbone = os.fspath(backbone)
        params["backbone"] = backbone
        return params

    def params_from_json(self, params):
        backbone = params.get("backbone")
        if isinstance(backbone, dict):
            config_cls = self._config_class(params.get("vlm", "vilt"))
            if backbone.get("transformers_config") != config_cls.__name__ or not isinstance(backbone.get("values"), dict):
                raise ValueError(f"backbone must be a stored {config_cls.__name__}; got {backbone!r:.200}.")
            params = {**params, "backbone": config_cls.from_dict(backbone["values"])}
        return params

    @staticmethod
    def _config_class(kind):
        from .timevlm._backbones import _classes

        return _classes(kind)[0]

    def network_config(self, model):
        vlm = model.module_.vlm
        tokenizer = None if vlm.tokenizer is None else {"class": type(vlm.tokenizer).__name__}
        config = vlm.backbone.config
        return dict(vlm_config_class=type(config).__name__, vlm_config=config.to_dict(), tokenizer=tokenizer)

    def write_files(self, model, folder):
        tokenizer = model.module_.vlm.tokenizer
        if tokenizer is not None:
            tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))

    def build(self, model, fitted, network, folder):
        from .timevlm._backbones import VLMEncoder
        from .timevlm._vlm_loading import load_vlm

        config_cls = self._config_class(model.vlm)
        if not isinstance(network, dict) or network.get("vlm_config_class") != config_cls.__name__:
            raise ValueError(f"its network section must hold the {config_cls.__name__} of the vlm={model.vlm!r} model.")
        # A random VLM on the stored config, whose weights the weights file then replaces:
        # no download, whatever the backbone parameter names.
        vlm = load_vlm(model.vlm, config_cls.from_dict(network["vlm_config"]))
        if network.get("tokenizer") is not None:
            vlm = VLMEncoder(vlm.backbone, _saved_tokenizer(folder, network["tokenizer"]))
        return model._build_module(int(fitted["n_features_in_"]), vlm=vlm)


def _saved_tokenizer(folder, entry):
    """The tokenizer saved in ``folder/tokenizer``: a tokenizer class of transformers itself
    reading its data files (never a class or code named by the files)."""
    import transformers
    from transformers import PreTrainedTokenizerBase

    name = entry.get("class") if isinstance(entry, dict) else None
    cls = getattr(transformers, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, PreTrainedTokenizerBase)):
        raise ValueError(f"the tokenizer class {name!r} is not a tokenizer of transformers.")
    try:
        return cls.from_pretrained(str(folder / TOKENIZER_DIR), local_files_only=True)
    except Exception as exc:  # OSError, ValueError, the tokenizers library's own errors
        raise ValueError(f"the saved tokenizer in {folder / TOKENIZER_DIR} cannot be read ({exc}).") from exc


#: The spec of each format name.
SPECS = {spec.format: spec for spec in (_STVLMSpec(), _TimeVLMSpec())}


def spec_of(estimator_class):
    """The spec of the format ``estimator_class`` writes (its ``_saved_as``).

    Parameters
    ----------
    estimator_class : type
        A class with ``_saved_as``, e.g. :class:`~stvlm.STVLMForecaster`.

    Returns
    -------
    _Spec

    Examples
    --------
    >>> from stvlm import STVLMForecaster, TimeVLMForecaster
    >>> from stvlm._persistence_format import spec_of
    >>> spec_of(STVLMForecaster).format, spec_of(TimeVLMForecaster).format
    ('stvlm-forecaster', 'timevlm-forecaster')
    >>> spec_of(TimeVLMForecaster).fitted[:3]
    ('n_features_in_', 'mean_', 'std_')
    """
    name = getattr(estimator_class, "_saved_as", None)
    if name not in SPECS:
        raise TypeError(f"{getattr(estimator_class, '__name__', estimator_class)!r} cannot be saved or loaded.")
    return SPECS[name]
