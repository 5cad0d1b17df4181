"""Saving and loading a fitted :class:`~stvlm.STVLMForecaster`: a folder with the
weights as safetensors and the parameters and fitted state as JSON.

Nothing from the files is ever executed: no pickle, no ``torch.load``, no remote code.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._calendar import CALENDARS
from ._device import resolve_device

__all__ = ["load_forecaster", "save_forecaster"]

FORMAT = "stvlm-forecaster"
FORMAT_VERSION = 3  # 2: the weights' sha256 and shape-defining fields; 3: calendar_, steps_per_day_
_READABLE_VERSIONS = (1, 2, 3)
CONFIG_FILE = "stvlm_config.json"
WEIGHTS_FILE = "model.safetensors"

# The fitted attributes written beside the parameters; load sets these and no others.
_FITTED = (
    "n_features_in_", "mean_", "std_", "dtw_scale_", "image_size_", "best_epoch_", "best_score_",
    "interrupted_", "loss_history_", "prompt_ids_", "backbone_config_", "calendar_", "steps_per_day_",
)
# Models saved before a parameter or fitted field existed: what they were fitted with.
_LEGACY_PARAMS = dict(calendar=None, output="level", head="lstm")
_LEGACY_FITTED = dict(calendar_=None, steps_per_day_=None)
# What fixes the weights' shapes and meaning, recorded inside the weights file too (whose
# sha256 the config holds), so that an edited config is caught.
_SHAPED = ("history", "horizon", "n_features_in_", "image_size_")


class _SaveLoadMixin:
    """``save`` and ``load`` of :class:`~stvlm.STVLMForecaster` (a folder of safetensors
    weights and a JSON of parameters); not public."""

    def save(self, path):
        """Save a fitted model to a directory: safetensors weights and a JSON of parameters.

        ``callbacks`` are not saved (they are code); the loaded model has none.

        Parameters
        ----------
        path : str or Path
            Directory to create (or overwrite files in).

        Returns
        -------
        path : Path

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from stvlm import STVLMForecaster
        >>> series = np.random.default_rng(0).gamma(2, 20, size=(120, 4))
        >>> cfg = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        ...            intermediate_size=64, image_size=16, patch_size=8, vocab_size=500)
        >>> model = STVLMForecaster(backbone=cfg, max_epochs=1, random_state=0, verbose=0).fit(series)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = model.save(d)
        ...     again = STVLMForecaster.load(d)
        >>> X = series[None, -12:]
        >>> bool(np.array_equal(model.predict(X), again.predict(X)))
        True
        """
        return save_forecaster(self, path)

    @classmethod
    def load(cls, path, device="cpu"):
        """Load a model saved with :meth:`save`; never executes code from the files.

        Parameters
        ----------
        path : str or Path
            Directory written by :meth:`save`.
        device : str, default="cpu"
            Where to put the network.

        Returns
        -------
        STVLMForecaster

        Raises
        ------
        ValueError
            If the directory does not hold a readable stvlm model.
        """
        return load_forecaster(cls, path, device)


def save_forecaster(model, path):
    """Write ``model`` to the folder ``path`` (created if needed); return the path.

    Parameters
    ----------
    model : STVLMForecaster
        A fitted model.
    path : str or Path

    Returns
    -------
    Path

    Examples
    --------
    See :meth:`stvlm.STVLMForecaster.save`, which calls this.

    >>> from stvlm.persistence import CONFIG_FILE, WEIGHTS_FILE
    >>> CONFIG_FILE, WEIGHTS_FILE
    ('stvlm_config.json', 'model.safetensors')
    """
    from safetensors.torch import save_file

    check_is_fitted(model, "network_")
    path = Path(path)
    from .distributed import is_main_process

    if not is_main_process():  # trained on several processes: they hold the same model; rank 0 writes it
        return path
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; save writes a folder (give a new or an existing folder's path).")
    params = model.get_params(deep=False)
    if not isinstance(params["backbone"], (str, dict)):
        params["backbone"] = params["backbone"].to_dict()
    params["callbacks"] = None  # code is not data: a loaded model has no callbacks
    shaped = {name: str(params[name] if name in params else getattr(model, name)) for name in _SHAPED}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in full beside the target, then moved in place: a crash never leaves a
    # half-written model that load would accept.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.network_.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT, **shaped})
        config = dict(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            weights_sha256=_sha256(tmp / WEIGHTS_FILE),
            params=params,
            fitted={name: getattr(model, name) for name in _FITTED},
        )
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default, allow_nan=True))
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_forecaster(estimator_class, path, device="cpu"):
    """Read a model written by :func:`save_forecaster` into a new ``estimator_class``.

    Parameters
    ----------
    estimator_class : type
        :class:`~stvlm.STVLMForecaster` (or a subclass).
    path : str or Path
    device : str, default="cpu"

    Returns
    -------
    STVLMForecaster

    Raises
    ------
    ValueError
        If the folder does not hold a readable stvlm model.

    Examples
    --------
    >>> import tempfile
    >>> from stvlm import STVLMForecaster
    >>> from stvlm.persistence import load_forecaster
    >>> with tempfile.TemporaryDirectory() as d:
    ...     try:
    ...         load_forecaster(STVLMForecaster, d)
    ...     except ValueError as exc:
    ...         print(str(exc).endswith("expected stvlm_config.json and model.safetensors in it."))
    True
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import ViltConfig

    from .network import load_backbone

    path = Path(path)
    cfg_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not cfg_file.is_file() or not weights_file.is_file():
        raise ValueError(
            f"{path} is not a saved STVLMForecaster: expected {CONFIG_FILE} and {WEIGHTS_FILE} in it."
        )
    try:
        config = json.loads(cfg_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{cfg_file} is not valid JSON ({exc}); the file is corrupt.") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{cfg_file} is not an stvlm model file (no format marker {FORMAT!r}).")
    version = config.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise ValueError(
            f"{cfg_file} has format version {version!r}; this stvlm reads versions {_READABLE_VERSIONS}."
        )
    _verify_weights_file(config, weights_file, version)
    try:
        params, fitted = dict(config["params"]), dict(config["fitted"])
        if "history_" in fitted:  # written before the epoch records were renamed
            fitted["loss_history_"] = fitted.pop("history_")
        for key, value in _LEGACY_PARAMS.items():
            params.setdefault(key, value)
        for key, value in _LEGACY_FITTED.items():
            fitted.setdefault(key, value)
        fitted = _check_fitted(fitted, cfg_file)
        model = estimator_class(**params)
        model._check_params()
        vilt_config = ViltConfig.from_dict(fitted["backbone_config_"])
        net = model._make_network(
            load_backbone(vilt_config)[0],
            torch.tensor(fitted["prompt_ids_"], dtype=torch.long),
            int(fitted["n_features_in_"]),
            int(fitted["image_size_"]),
            fitted["calendar_"],
            fitted["steps_per_day_"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{cfg_file} does not describe an STVLMForecaster: {exc}") from exc
    try:
        state = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{weights_file} is not a readable safetensors file: {exc}") from exc
    bad = sorted(name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all())
    if bad:
        raise ValueError(f"{weights_file} holds NaN or infinite weights (in {bad[:3]}); the model is broken.")
    if version >= 2:
        _check_shaped_fields(params, fitted, weights_file)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{weights_file} does not match the saved configuration: {exc}") from exc
    for key in _FITTED:  # the known fitted attributes only, never a method's name
        setattr(model, key, fitted[key])
    model.network_ = net.to(resolve_device(device)).eval()
    return model


def _sha256(file):
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _move_into_place(tmp, path):
    """The files of ``tmp`` at ``path``: a folder rename, or the weights then the config.

    In an existing folder, other files stay; should the second replace never happen, the
    old config's checksum does not match the new weights, and load refuses them.
    """
    if not path.exists():
        os.replace(tmp, path)
        return
    os.replace(tmp / WEIGHTS_FILE, path / WEIGHTS_FILE)
    os.replace(tmp / CONFIG_FILE, path / CONFIG_FILE)
    tmp.rmdir()


def _verify_weights_file(config, weights_file, version):
    if version < 2:
        import warnings

        warnings.warn(
            f"{weights_file.parent} was saved by an older stvlm, without a checksum of its weights: "
            "they cannot be verified. Save the model again to add one.",
            UserWarning,
            stacklevel=4,
        )
        return
    expected = config.get("weights_sha256")
    if not isinstance(expected, str) or _sha256(weights_file) != expected:
        raise ValueError(
            f"{weights_file} does not match the sha256 recorded in {CONFIG_FILE}: the weights were "
            "changed or damaged after saving. Save the model again from its source."
        )


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
}


def _check_fitted(fitted, cfg_file):
    unknown = sorted(set(fitted) - set(_FITTED))
    if unknown:
        raise ValueError(f"{cfg_file}: unknown fitted fields {unknown}; the file was not written by stvlm.")
    for name in _FITTED:
        if name not in fitted:
            raise ValueError(f"{cfg_file}: the fitted field {name!r} is missing.")
        ok, what = _RULES[name]
        if not ok(fitted[name]):
            raise ValueError(f"{cfg_file}: fitted field {name!r} must be {what}; got {fitted[name]!r}.")
    if fitted["calendar_"] and fitted["steps_per_day_"] is None:
        raise ValueError(f"{cfg_file}: calendar_ {fitted['calendar_']!r} needs steps_per_day_.")
    if fitted["image_size_"] < fitted["n_features_in_"]:
        raise ValueError(f"{cfg_file}: image_size_ {fitted['image_size_']} is below n_features_in_.")
    return fitted


def _check_shaped_fields(params, fitted, weights_file):
    from safetensors import safe_open

    with safe_open(str(weights_file), framework="pt") as f:
        meta = f.metadata() or {}
    for name in _SHAPED:
        value = params[name] if name in params else fitted[name]
        if name in meta and str(value) != meta[name]:
            raise ValueError(
                f"{name} is {value!r} in {CONFIG_FILE}, but the weights were trained with {name}={meta[name]}: "
                "the config was edited after saving."
            )


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.datetime64) or hasattr(obj, "isoformat"):  # a date and time (start)
        return str(obj) if isinstance(obj, np.datetime64) else obj.isoformat()
    if isinstance(obj, (np.floating,)):
        return float(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in the model's JSON")
