"""Saving and loading a fitted :class:`~stvlm.STVLMForecaster` or
:class:`~stvlm.TimeVLMForecaster`: a folder with the weights as safetensors and the
parameters and fitted state as JSON.

Each estimator class writes its own format, named in the config (``"stvlm-forecaster"``,
``"timevlm-forecaster"``): ``load`` reads only its own class's folders and names the
class that reads another's. Nothing from the files is ever executed: no pickle, no
``torch.load``, no remote code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._device import resolve_device
from ._persistence_format import SPECS, spec_of

__all__ = ["load_forecaster", "save_forecaster"]

FORMAT = "stvlm-forecaster"  # STVLMForecaster's format; each class's is in _persistence_format.SPECS
FORMAT_VERSION = SPECS[FORMAT].version
CONFIG_FILE = "stvlm_config.json"
WEIGHTS_FILE = "model.safetensors"


class _SaveLoadMixin:
    """``save`` and ``load`` of an estimator (a folder of safetensors weights and a JSON of
    parameters); not public. A class names the format it writes in ``_saved_as``, a key
    of :data:`stvlm._persistence_format.SPECS`."""

    #: The format this class writes and reads.
    _saved_as = "stvlm-forecaster"

    def save(self, path):
        """Save a fitted model to a directory: safetensors weights and a JSON of parameters.

        ``callbacks`` are not saved (they are code); the loaded model has none. A
        :class:`~stvlm.TimeVLMForecaster` saves its whole network, the frozen VLM's
        weights and its tokenizer included: the folder loads offline.

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
            Directory written by :meth:`save` of this class.
        device : str, default="cpu"
            Where to put the network.

        Returns
        -------
        estimator
            An instance of this class, fitted.

        Raises
        ------
        ValueError
            If the directory does not hold a readable model of this class.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from stvlm import STVLMForecaster, TimeVLMForecaster
        >>> t = np.arange(200)
        >>> series = np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24)], axis=1)
        >>> model = TimeVLMForecaster(history=48, horizon=12, backbone="tiny", d_model=16, max_epochs=1,
        ...                           random_state=0, verbose=0).fit(series)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = model.save(d)
        ...     again = TimeVLMForecaster.load(d)
        ...     try:
        ...         STVLMForecaster.load(d)
        ...     except ValueError as exc:
        ...         print(str(exc).split(": ")[-1])
        load it with TimeVLMForecaster.load.
        >>> X = series[None, -48:]
        >>> bool(np.array_equal(model.predict(X), again.predict(X)))
        True
        """
        return load_forecaster(cls, path, device)


def save_forecaster(model, path):
    """Write ``model`` to the folder ``path`` (created if needed); return the path.

    Parameters
    ----------
    model : STVLMForecaster or TimeVLMForecaster
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

    spec = spec_of(type(model))
    check_is_fitted(model, model._module_attr)
    path = Path(path)
    from .distributed import is_main_process

    if not is_main_process():  # trained on several processes: they hold the same model; rank 0 writes it
        return path
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; save writes a folder (give a new or an existing folder's path).")
    params = spec.params_to_json(model)
    fitted = {name: getattr(model, name) for name in spec.fitted}
    shaped = {name: _meta_str(params[name] if name in params else fitted[name]) for name in spec.shaped}
    network = spec.network_config(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in full beside the target, then moved in place: a crash never leaves a
    # half-written model that load would accept.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        state = _state_for_file(getattr(model, model._module_attr).state_dict())
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": spec.format, **shaped})
        spec.write_files(model, tmp)
        config = dict(format=spec.format, format_version=spec.version, weights_sha256=_sha256(tmp / WEIGHTS_FILE))
        files = sorted(p for p in tmp.rglob("*") if p.is_file() and p.parent != tmp)
        if files:  # beside the weights (a tokenizer), each with its checksum
            config["files"] = {p.relative_to(tmp).as_posix(): _sha256(p) for p in files}
        config.update(params=params, fitted=fitted)
        if network is not None:
            config["network"] = network
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
        :class:`~stvlm.STVLMForecaster` or :class:`~stvlm.TimeVLMForecaster` (or a
        subclass): the class that saved the folder.
    path : str or Path
    device : str, default="cpu"

    Returns
    -------
    STVLMForecaster or TimeVLMForecaster

    Raises
    ------
    ValueError
        If the folder does not hold a readable model of ``estimator_class``.

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

    spec = spec_of(estimator_class)
    path = Path(path)
    cfg_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not cfg_file.is_file() or not weights_file.is_file():
        raise ValueError(
            f"{path} is not a saved {spec.estimator}: expected {CONFIG_FILE} and {WEIGHTS_FILE} in it."
        )
    try:
        config = json.loads(cfg_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{cfg_file} is not valid JSON ({exc}); the file is corrupt.") from exc
    written_as = config.get("format") if isinstance(config, dict) else None
    if written_as != spec.format:
        if isinstance(written_as, str) and written_as in SPECS:
            other = SPECS[written_as].estimator
            raise ValueError(
                f"{path} holds a model saved by {other}.save (format {written_as!r}), not "
                f"{spec.an_estimator}: load it with {other}.load."
            )
        raise ValueError(f"{cfg_file} is not an stvlm model file (no format marker {spec.format!r}).")
    version = config.get("format_version")
    if version not in spec.readable:
        raise ValueError(
            f"{cfg_file} has format version {version!r}; this stvlm reads versions {spec.readable} "
            f"of {spec.estimator}."
        )
    _verify_weights_file(config, weights_file, version, spec)
    _verify_files(config, path)
    try:
        params, fitted = spec.upgrade(dict(config["params"]), dict(config["fitted"]))
        fitted = spec.check_fitted(fitted, cfg_file)
        model = estimator_class(**spec.params_from_json(params))
        model._check_params()
        net = spec.build(model, fitted, config.get("network"), path)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{cfg_file} does not describe {spec.an_estimator}: {exc}") from exc
    try:
        state = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{weights_file} is not a readable safetensors file: {exc}") from exc
    bad = sorted(name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all())
    if bad:
        raise ValueError(f"{weights_file} holds NaN or infinite weights (in {bad[:3]}); the model is broken.")
    if version >= spec.verified_since:
        _check_shaped_fields(params, fitted, weights_file, spec)
    _match_dtypes(net, state)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{weights_file} does not match the saved configuration: {exc}") from exc
    for key in spec.fitted:  # the known fitted attributes only, never a method's name
        setattr(model, key, fitted[key])
    setattr(model, model._module_attr, net.to(resolve_device(device)).eval())
    return model


def _state_for_file(state):
    """The state dict on the CPU, contiguous, each tensor with storage of its own: tied
    weights (one tensor under two names) are written twice, as safetensors requires."""
    out, seen = {}, set()
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr and ptr in seen:
            t = t.clone()
        seen.add(ptr)
        out[name] = t
    return out


def _match_dtypes(net, state):
    """Give the network's tensors the stored floating dtypes (a VLM saved in half
    precision loads in half precision)."""
    for name, t in [*net.named_parameters(), *net.named_buffers()]:
        stored = state.get(name)
        if stored is not None and stored.is_floating_point() and t.is_floating_point() and stored.dtype != t.dtype:
            t.data = t.data.to(stored.dtype)


def _sha256(file):
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _move_into_place(tmp, path):
    """The files of ``tmp`` at ``path``: a folder rename, or the weights, any other files
    (a tokenizer folder), then the config.

    In an existing folder, other files stay; should the last replace never happen, the
    old config's checksum does not match the new weights, and load refuses them.
    """
    if not path.exists():
        os.replace(tmp, path)
        return
    stale = _listed_entries(path) - {entry.name for entry in tmp.iterdir()}
    os.replace(tmp / WEIGHTS_FILE, path / WEIGHTS_FILE)
    for entry in sorted(tmp.iterdir()):
        if entry.name in (WEIGHTS_FILE, CONFIG_FILE):
            continue
        target = path / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # a folder is replaced whole (a tokenizer's stale files go)
        os.replace(entry, target)
    os.replace(tmp / CONFIG_FILE, path / CONFIG_FILE)
    tmp.rmdir()
    for name in sorted(stale):  # what the replaced model had and this one has not (its tokenizer)
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists() or target.is_symlink():
            target.unlink()


def _listed_entries(path):
    """The folder entries holding the ``files`` that the config in ``path`` lists."""
    try:
        files = json.loads((path / CONFIG_FILE).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return set()
    if not isinstance(files, dict):
        return set()
    names = {str(name).split("/")[0] for name in files}
    return {n for n in names if n not in ("", ".", "..", WEIGHTS_FILE, CONFIG_FILE) and "\\" not in n}


def _verify_weights_file(config, weights_file, version, spec):
    if version < spec.verified_since:
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


def _verify_files(config, folder):
    """Each file listed in the config's ``files`` (inside the folder) with its sha256."""
    files = config.get("files", {})
    if not isinstance(files, dict):
        raise ValueError(f"{folder / CONFIG_FILE}: files must map file names to sha256 checksums.")
    root = folder.resolve()
    for name, expected in files.items():
        file = (folder / str(name)).resolve()
        if root not in file.parents:
            raise ValueError(f"{folder / CONFIG_FILE} lists {name!r}, which is not inside {folder}.")
        if not file.is_file():
            raise ValueError(f"{folder} misses {name}, which {CONFIG_FILE} lists: the folder is incomplete.")
        if _sha256(file) != expected:
            raise ValueError(
                f"{folder / name} does not match the sha256 recorded in {CONFIG_FILE}: it was changed or "
                "damaged after saving. Save the model again from its source."
            )


def _check_shaped_fields(params, fitted, weights_file, spec):
    from safetensors import safe_open

    with safe_open(str(weights_file), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format", spec.format) != spec.format:
        raise ValueError(f"{weights_file} holds the weights of another model (format {meta['format']!r}).")
    for name in spec.shaped:
        value = params[name] if name in params else fitted[name]
        if name in meta and _meta_str(value) != meta[name]:
            raise ValueError(
                f"{name} is {value!r} in {CONFIG_FILE}, but the weights were trained with {name}={meta[name]}: "
                "the config was edited after saving."
            )


def _meta_str(value):
    """``value`` as the weights file's metadata records it: the text of what JSON stores."""
    return str(json.loads(json.dumps(value, default=_json_default, allow_nan=True)))


def _json_default(obj):
    if isinstance(obj, np.ndarray):  # ar_coef_
        return obj.tolist()
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.datetime64) or hasattr(obj, "isoformat"):  # a date and time (start)
        return str(obj) if isinstance(obj, np.datetime64) else obj.isoformat()
    if isinstance(obj, (np.floating,)):
        return float(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in the model's JSON")
