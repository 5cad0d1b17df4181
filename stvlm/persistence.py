"""Saving and loading a fitted :class:`~stvlm.STVLMForecaster`: a folder with the
weights as safetensors and the parameters and fitted state as JSON.

Nothing from the files is ever executed: no pickle, no ``torch.load``, no remote code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["load_forecaster", "save_forecaster"]

FORMAT = "stvlm-forecaster"
FORMAT_VERSION = 1
CONFIG_FILE = "stvlm_config.json"
WEIGHTS_FILE = "model.safetensors"

# The fitted attributes written beside the parameters.
_FITTED = (
    "n_features_in_", "mean_", "std_", "dtw_scale_", "image_size_", "best_epoch_", "best_score_",
    "interrupted_", "loss_history_", "prompt_ids_", "backbone_config_",
)


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
    path.mkdir(parents=True, exist_ok=True)
    params = model.get_params(deep=False)
    if not isinstance(params["backbone"], (str, dict)):
        params["backbone"] = params["backbone"].to_dict()
    params["callbacks"] = None  # code is not data: a loaded model has no callbacks
    config = dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        params=params,
        fitted={name: getattr(model, name) for name in _FITTED},
    )
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default))
    state = {k: v.detach().cpu().contiguous() for k, v in model.network_.state_dict().items()}
    save_file(state, str(path / WEIGHTS_FILE), metadata={"format": FORMAT})
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
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{cfg_file} has format version {config.get('format_version')!r}; this stvlm reads version {FORMAT_VERSION}."
        )
    try:
        params, fitted = dict(config["params"]), dict(config["fitted"])
        if "history_" in fitted:  # written before the epoch records were renamed
            fitted["loss_history_"] = fitted.pop("history_")
        model = estimator_class(**params)
        vilt_config = ViltConfig.from_dict(fitted["backbone_config_"])
        net = model._make_network(
            load_backbone(vilt_config)[0],
            torch.tensor(fitted["prompt_ids_"], dtype=torch.long),
            int(fitted["n_features_in_"]),
            int(fitted["image_size_"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{cfg_file} does not describe an STVLMForecaster: {exc}") from exc
    try:
        state = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{weights_file} is not a readable safetensors file: {exc}") from exc
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{weights_file} does not match the saved configuration: {exc}") from exc
    for key, value in fitted.items():
        setattr(model, key, value)
    model.network_ = net.to(device).eval()
    return model


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in the model's JSON")
