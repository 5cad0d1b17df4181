"""Time-VLM as a scikit-learn estimator on the shared base (front door, split, loop)."""

from __future__ import annotations

import copy

import numpy as np

from .._base import BaseWindowForecaster
from .._validation import check_positive_int, check_real
from ..persistence import _SaveLoadMixin

__all__ = ["TIMEVLM_PRESETS", "TimeVLMForecaster"]

#: Named configurations of :meth:`TimeVLMForecaster.from_preset`. ``"paper"``: the
#: paper's defaults (TIMEVLM.md, Tables 9-10) with pretrained CLIP-B/32 (the reference
#: scripts' choice for ETT) and the learnable image. ``"cpu"``: a tiny random ViLT and the
#: fixed image, whose VLM vectors are computed once per window, so that a fit of ETTh1
#: takes minutes on 2 cores, epochs of at least 30 steps for few-shot fits, patience 10 and
#: dropout 0.3 (each chosen on the ETT validation months; docs/timevlm.md).
TIMEVLM_PRESETS = {
    "paper": dict(
        vlm="clip", backbone=None, image="learnable", d_model=128, dropout=0.1, max_epochs=10, patience=3,
        min_steps_per_epoch=None,
    ),
    "cpu": dict(
        vlm="vilt", backbone="tiny", image="fixed", d_model=64, dropout=0.3, max_epochs=10, patience=10,
        batch_size=32, learning_rate=1e-3, min_steps_per_epoch=30,
    ),
}

_FEATURE_CHUNK = 256  # windows per VLM call when computing a fit's vectors once


class TimeVLMForecaster(_SaveLoadMixin, BaseWindowForecaster):
    """Time-VLM (Zhong et al., ICML 2025): a frozen vision-language model's view of each
    window, fused with a learned temporal memory, for multivariate forecasting.

    Each window is normalised per variable (RevIN, ``norm_const``); the retrieval-
    augmented learner (RAL) embeds channel-independent patches, adds what it retrieves
    from a memory of past patches and what self-attention pools over them, and makes a
    memory forecast; the vision-augmented learner (VAL) draws the window as an image;
    the text-augmented learner (TAL) writes a prompt with its statistics; a frozen VLM
    (ViLT, CLIP or BLIP-2) pools a vision and a text vector; a gate mixes the memory
    forecast with the multimodal one. See ``docs/method.md`` and
    :class:`~stvlm.timevlm.TimeVLMNetwork`.

    With the fixed image (``image="fixed"``) nothing before the frozen VLM trains, so its
    vectors are computed once per training and validation window and each epoch costs
    only the memory and fusion layers.

    Parameters
    ----------
    history : int, default=512
        Input steps per window (the paper's ``seq_len``).
    horizon : int, default=96
        Steps to forecast.
    vlm : {"vilt", "clip", "blip2"}, default="vilt"
        The kind of frozen vision-language model.
    backbone : None, "tiny", str, path, config or model, default=None
        ``None``: the kind's pretrained checkpoint (:data:`~stvlm.timevlm.DEFAULT_VLMS`),
        loaded with ``from_pretrained`` from the Hugging Face cache (downloaded once
        where allowed); a hub name or a local folder; a ``transformers`` config of the
        kind (a random model); ``"tiny"``: :func:`~stvlm.timevlm.tiny_vlm_config`.
    image : {"fixed", "learnable"} or None, default="fixed"
        VAL's series-to-image transform; ``None`` leaves out the image (the "w/o VAL"
        ablation).
    text : bool, default=True
        ``False`` leaves out the prompt's vector (the "w/o TAL" ablation).
    memory : bool, default=True
        ``False`` leaves out RAL's local and global memory (the "w/o RAL" ablation).
    d_model : int, default=128
        Width of patches, memory and fusion.
    n_heads : int, default=4
        Heads of the memory's self-attention and of the cross-attention.
    patch_len, stride : int, default=16, 8
        Patches of RAL (the window's end is padded by ``stride`` steps).
    top_k : int, default=5
        Memory entries each series retrieves.
    memory_size : int, default=100
        Pooled patch vectors the memory holds.
    dropout : float, default=0.1
    norm_const : float, default=0.4
        RevIN divides each window by ``std / norm_const``.
    periodicity : int, default=24
        Steps per period of the data (24 for hourly data), for the image.
    description : str, optional
        A sentence on the data for the prompt.
    loss : {"mse", "mae"}, default="mse"
        Minimised and monitored on validation windows (the paper trains on MSE).
    batch_size : int, default=32
    max_epochs : int, default=10
    learning_rate : float, default=1e-3
    weight_decay : float, default=0.0
    min_steps_per_epoch : int or None, default=30
        An epoch is at least this many steps: a training set of fewer batches is
        passed over several times per epoch (:class:`stvlm.training.TrainingLoop`), so
        that a few-shot fit of a few batches is validated after comparable training and
        is not stopped by ``max_epochs`` before it has learnt; no effect on a training
        set of 30 batches or more. ``None``: one pass per epoch (the paper). 30 was
        chosen on the ETT validation months (docs/timevlm.md).
    ema_decay : float in [0, 1) or None, default=None
        A moving average of the weights validated and kept (``ema_decay`` of
        :class:`~stvlm.training.TrainingLoop`); ``None``: the raw weights (its ETT
        figures were measured so).
    patience : int, default=10
        Epochs without a better validation loss before stopping. The best epoch's
        weights are kept either way; with the default cosine schedule and 10 epochs,
        10 means the rate decays to its end, which scored better on the ETT
        validation months than stopping after 3 (docs/timevlm.md).
    lr_schedule : {"cosine", "plateau", "exponential"}, default="cosine"
        ``"cosine"`` decays the rate to near zero over ``max_epochs``; ``"exponential"``
        multiplies it by ``lr_factor`` after every epoch (the reference code's halving);
        ``"plateau"`` uses ``lr_patience`` and ``lr_factor``.
    lr_patience : int, default=1
    lr_factor : float, default=0.5
    validation_fraction : float, default=0.2
        Chronological share of the windows held out for early stopping.
    null_value : float or None, default=None
        Target value treated as missing (NaN always is).
    threshold : float or None, default=None
        Targets with ``|y| < threshold`` are missing too.
    local_files_only : bool or None, default=None
        For a hub name: never download when ``True``.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"auto"`` or a torch device string.
    random_state : int or None, default=None
    verbose : int, default=1
    callbacks : list of callable, optional
        Called after every epoch as ``callback(estimator, record)``; truthy stops.

    Attributes
    ----------
    module_ : TimeVLMNetwork
        The fitted network (the VLM inside it frozen).
    mean_, std_ : float
        Scaling of the inputs (one mean and standard deviation over all variables).
    loss_history_ : list of dict
        One record per epoch.
    best_epoch_ : int
    best_score_ : float
        Minus the best validation loss.
    interrupted_ : bool
    n_features_in_ : int
        Variables seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import TimeVLMForecaster
    >>> t = np.arange(400)
    >>> series = np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24)], axis=1)
    >>> model = TimeVLMForecaster(history=48, horizon=12, backbone="tiny", d_model=16, max_epochs=1,
    ...                           random_state=0, verbose=0).fit(series)
    >>> model.predict(series[None, -48:]).shape
    (1, 12, 2)
    """

    _module_attr = "module_"
    _saved_as = "timevlm-forecaster"  # the format of save and load (stvlm.persistence)

    def __init__(
        self,
        history=512,
        horizon=96,
        *,
        vlm="vilt",
        backbone=None,
        image="fixed",
        text=True,
        memory=True,
        d_model=128,
        n_heads=4,
        patch_len=16,
        stride=8,
        top_k=5,
        memory_size=100,
        dropout=0.1,
        norm_const=0.4,
        periodicity=24,
        description=None,
        loss="mse",
        batch_size=32,
        max_epochs=10,
        learning_rate=1e-3,
        weight_decay=0.0,
        min_steps_per_epoch=30,
        ema_decay=None,
        patience=10,
        lr_schedule="cosine",
        lr_patience=1,
        lr_factor=0.5,
        validation_fraction=0.2,
        null_value=None,
        threshold=None,
        local_files_only=None,
        device="cpu",
        random_state=None,
        verbose=1,
        callbacks=None,
    ):
        self.history = history
        self.horizon = horizon
        self.vlm = vlm
        self.backbone = backbone
        self.image = image
        self.text = text
        self.memory = memory
        self.d_model = d_model
        self.n_heads = n_heads
        self.patch_len = patch_len
        self.stride = stride
        self.top_k = top_k
        self.memory_size = memory_size
        self.dropout = dropout
        self.norm_const = norm_const
        self.periodicity = periodicity
        self.description = description
        self.loss = loss
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.min_steps_per_epoch = min_steps_per_epoch
        self.ema_decay = ema_decay
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor
        self.validation_fraction = validation_fraction
        self.null_value = null_value
        self.threshold = threshold
        self.local_files_only = local_files_only
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    @classmethod
    def from_preset(cls, name, **overrides):
        """An estimator with a named configuration of :data:`TIMEVLM_PRESETS`.

        Parameters
        ----------
        name : {"cpu", "paper"}
        **overrides
            Any other constructor parameter.

        Returns
        -------
        TimeVLMForecaster

        Examples
        --------
        >>> from stvlm import TimeVLMForecaster
        >>> TimeVLMForecaster.from_preset("cpu", horizon=192).get_params()["image"]
        'fixed'
        """
        if name not in TIMEVLM_PRESETS:
            raise ValueError(f"unknown preset {name!r}; known presets: {sorted(TIMEVLM_PRESETS)}.")
        return cls(**{**copy.deepcopy(TIMEVLM_PRESETS[name]), **overrides})

    # ------------------------------------------------------------------ hooks
    def _check_model_params(self):
        from ._backbones import DEFAULT_VLMS

        if self.vlm not in DEFAULT_VLMS:
            raise ValueError(f"vlm must be one of {tuple(DEFAULT_VLMS)}; got {self.vlm!r}.")
        from ._images import IMAGE_TRANSFORMS

        if self.image is not None and self.image not in IMAGE_TRANSFORMS:
            raise ValueError(f"image must be one of {IMAGE_TRANSFORMS} or None; got {self.image!r}.")
        for name in ("text", "memory"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False; got {getattr(self, name)!r}.")
        for name in ("d_model", "n_heads", "patch_len", "stride", "top_k", "memory_size", "periodicity"):
            check_positive_int(getattr(self, name), name)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}.")
        if self.patch_len > self.history:
            raise ValueError(f"patch_len={self.patch_len} is longer than the window (history={self.history}).")
        check_real(self.dropout, "dropout", low=0, high=1, high_open=True)
        check_real(self.norm_const, "norm_const", low=0, low_open=True)
        if self.description is not None and not isinstance(self.description, str):
            raise TypeError(f"description must be None or a str; got {type(self.description).__name__}.")

    def _load_vlm(self):
        from ._vlm_loading import load_vlm, tiny_vlm_config

        backbone = tiny_vlm_config(self.vlm) if isinstance(self.backbone, str) and self.backbone == "tiny" else self.backbone
        return load_vlm(self.vlm, backbone, local_files_only=self.local_files_only)

    def _build_module(self, n_sensors, vlm=None):
        """The network; ``vlm``: a built VLM (load's, from a saved folder) in place of ``backbone``'s."""
        from ._network import TimeVLMNetwork

        return TimeVLMNetwork(
            self._load_vlm() if vlm is None else vlm, history=self.history, horizon=self.horizon,
            d_model=self.d_model, n_heads=self.n_heads,
            patch_len=self.patch_len, stride=self.stride, top_k=self.top_k, memory_size=self.memory_size,
            dropout=self.dropout, norm_const=self.norm_const, image=self.image, text=self.text, memory=self.memory,
            periodicity=self.periodicity, description=self.description,
        )

    def _prepare(self, windows, device):
        """The VLM's vectors of every window, once, when nothing before the VLM trains."""
        import torch

        module = self.module_
        if not module.features_are_fixed:
            return
        X = windows.filled()
        out = []
        with torch.no_grad():
            for s in range(0, len(X), _FEATURE_CHUNK):
                x = torch.as_tensor((X[s : s + _FEATURE_CHUNK] - self.mean_) / self.std_, dtype=torch.float32,
                                    device=device)
                out.append(module.vlm_features(module.normalise(x)[0]))
        windows._vlm_features = torch.cat(out)

    def _inputs(self, windows, idx, device):
        (x,) = super()._inputs(windows, idx, device)
        cached = getattr(windows, "_vlm_features", None)
        if cached is None:
            return (x,)
        return (x, cached[np.asarray(idx)].to(device))
