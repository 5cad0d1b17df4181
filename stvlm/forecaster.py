"""STVLMForecaster: the ST-VLM network as a scikit-learn estimator.

Data path: the front door (:mod:`stvlm.data`) cuts windows, :mod:`stvlm.kernels`
makes each window's correlation image (once per fit while they fit in
``image_cache_mb``, else per batch), :mod:`stvlm.network` turns windows and images into
tokens and a forecast, and :mod:`stvlm.training` fits it. The shared estimator logic
(split, scaling, loop, predict, score) is in :mod:`stvlm._base`; saving in
:mod:`stvlm.persistence`; presets in :mod:`stvlm.presets`.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from ._base import BaseWindowForecaster
from ._calendar import CALENDAR_FORMS, CALENDARS, calendar_tensors, check_calendar, resolve_calendar
from ._device import autocast
from ._validation import check_positive_int, check_real
from ._window_images import batch_images, cache_images
from .kernels import SCALE_WINDOWS, fit_dtw_scale
from .persistence import _SaveLoadMixin
from .presets import DEFAULT_BACKBONE, MODEL_PRESETS, preset_params

__all__ = ["STVLMForecaster"]

_PAIRS_PER_PIECE = 1 << 22  # sensor pairs (N^2 x windows) per piece of a training batch


class STVLMForecaster(_SaveLoadMixin, BaseWindowForecaster):
    """ST-VLM: spatial-temporal forecasting with a vision-language model.

    Each window of ``history`` steps of ``N`` sensors becomes (i) a three-channel
    correlation image (DTW similarity, lagged cross-correlation, spectral
    correlation), (ii) a text prompt and (iii) one token per sensor. A ViLT
    backbone fuses them, with the image steering sensor-to-sensor attention in its
    first layer (SAF) and LoRA on query/key; a head (an MLP, or the paper's LSTM
    decoder) forecasts ``horizon`` steps.

    Parameters
    ----------
    history : int, default=12
        Input steps per window.
    horizon : int, default=12
        Steps to forecast.
    backbone : str, transformers.ViltConfig or dict, default="dandelin/vilt-b32-mlm"
        A hub name or local directory (``ViltModel.from_pretrained`` with its
        tokenizer), or a ``ViltConfig`` (or a dict of its arguments) for a
        randomly-initialised backbone with no download. Without network and cache,
        ``fit`` fails at once with a message naming both ways out.
    fusion : {"saf", None}, default="saf"
        ``None`` is the paper's "w/o SAF" ablation.
    finetune : {"lora", None}, default="lora"
        ``None`` is the paper's "w/o FT" ablation: backbone frozen, no LoRA.
    image : {"s2i", None}, default="s2i"
        ``None`` is the "w/o image" ablation: every window gets the same constant
        image (0.5 everywhere), which carries no structure (the SAF bias of a constant
        image is exactly zero).
    lora_r, lora_alpha : int, float, default=8, 16
        LoRA rank and scaling numerator.
    batch_size : int, default=32
        Windows per optimisation step. Larger than the training set: clipped to it
        with a warning.
    max_epochs : int, default=100
        Upper bound on training epochs.
    learning_rate : float, default=1e-3
        Adam learning rate.
    patience : int, default=30
        Early stopping: epochs without a better validation loss before stopping;
        the best weights are restored.
    lr_patience, lr_factor : int, float, default=10, 0.5
        ``ReduceLROnPlateau``'s patience and factor.
    lr_schedule : {"plateau", "cosine", "exponential"}, default="plateau"
        ``"plateau"``: ``ReduceLROnPlateau`` on the validation loss (``lr_patience``, ``lr_factor``);
        ``"cosine"``: the rate decays to near zero over ``max_epochs`` (:class:`stvlm.training.TrainingLoop`).
    ema_decay : float in [0, 1) or None, default=0.99
        Validation scores, and the fit keeps, a moving average of the weights (``ema_decay`` of
        :class:`~stvlm.training.TrainingLoop`; chosen on validation data). ``None``: the raw weights.
    min_steps_per_epoch : int or None, default=None
        An epoch is at least this many optimiser steps, a small training set passed over several
        times, each reshuffled; ``None``: one pass (the ``cpu`` preset too: 30 measured no better).
    validation_fraction : float, default=0.2
        Chronological share of the training windows held out for early stopping and
        the plateau schedule (the last ones). ``0`` disables validation: the training
        loss then drives both.
    image_size : int or None, default=None
        Side of the images fed to the backbone (a multiple of its patch size, at least
        the sensor count). ``None``: the backbone's ``image_size``, or the smallest
        multiple of the patch size that holds every sensor if that is larger.
    encoder_hidden : int, default=64
        Width of the temporal LSTM encoder (``temporal_encoder="lstm"``).
    temporal_encoder : {"lstm", "linear"}, default="lstm"
        Each sensor's token: the paper's LSTM over its window, or a linear map of the
        window (STID's projection, an extension; on pems08-tail better with very little
        data, worse with more: docs/results.md, "Session 27").
    decoder_hidden : int, default=128
        Width of the head: its MLP, or its LSTM with ``head="lstm"``.
    head : {"mlp", "lstm"}, default="mlp"
        ``"mlp"``: a residual MLP that reads out all ``horizon`` values at once (STID's
        readout, an extension beyond the paper, chosen on validation data);
        ``"lstm"``: the paper's LSTM decoder.
    null_value : float or None, default=0.0
        Target value treated as missing in the loss and in ``score`` (NaN always is).
    threshold : float or None, default=None
        Targets with ``|y| < threshold`` are missing too (the mask of
        :func:`stvlm.metrics.target_mask`, as in the metrics; e.g. ``1e-6`` on
        SZ-taxi).
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        ``"auto"``: bf16 autocast on CUDA, float32 on the CPU.
    image_cache_mb : float, default=1024
        Images of all training windows are computed once per fit (numba, CPU) and kept as
        float16 up to this many MB; beyond (and on a GPU) they are computed per batch.
    calendar : {"auto", None, "time-of-day", "time-of-day+day-of-week"}, default="auto"
        Learned embeddings of each window's time of day (and weekday), an extension
        beyond the paper (whose network sees no clock; the ``paper`` preset has
        ``None``). ``"auto"``: the time of day when the training windows carry it
        (a DataFrame's DatetimeIndex, ``steps_per_day`` and ``start``, or
        :class:`~stvlm.Windows`), else none; ``calendar_`` says which. A model fitted
        with a calendar forecasts windows that carry their time (:class:`~stvlm.Windows`,
        :func:`~stvlm.last_window`, ``Protocol.test_data()``).
    calendar_form : {"embedding", "tokens"}, default="embedding"
        How the calendar enters: added to every sensor token, or as text tokens between
        the prompt and the sensor tokens (chosen on validation: docs/results.md, "Calendar").
    steps_per_day : int or None, default=None
        Time-of-day slots of a bare series (288 for 5-minute data); a DataFrame's
        DatetimeIndex gives them itself.
    start : int, datetime-like or None, default=None
        Slot, or date and time, of a bare series' first row (with ``steps_per_day``);
        the weekday needs a date and time.
    output : {"change", "level", "ar"}, default="change"
        What the network forecasts (added back before the loss, which is in data units
        either way): each step's change from the window's last observed value, the
        values themselves, or what a linear autoregression misses (``ar_coef_``: least
        squares on the training windows, one for all sensors). The output layer starts
        at zero with ``"change"`` or ``"ar"``: training starts from the last value (the
        autoregression); ``"change"`` adds the autoregression after training, weighted
        (``ar_weight_``, a warning), where that lowers the validation loss by 1 % or more.
    random_state : int or None, default=None
        Seed of initialisation, shuffling and dropout; the same seed gives the same
        predictions on the CPU.
    verbose : int, default=1
        ``0`` silences the progress bars.
    callbacks : list of callable or None, default=None
        Called after every epoch as ``callback(model, record)`` with the epoch's
        record (see ``loss_history_``); a truthy return stops training.

    Attributes
    ----------
    network_ : stvlm.network.STVLMNetwork
        The trained network (best weights).
    n_features_in_ : int
        Number of sensors.
    mean_, std_ : float
        z-score statistics of the training part.
    ar_coef_ : ndarray of shape (history - 1, horizon) or None
        The autoregression (``[k, h]`` weighs ``x[k] - x[-1]`` in step ``h``), or None.
    ar_weight_ : float or None
        Its weight in the forecast: 1 with ``"ar"``, fitted in [0, 1] with ``"change"``.
    dtw_scale_ : float or None
        DTW similarity scale of the images (``None`` when fitted on images from a
        :class:`~stvlm.SpatialToImageTransformer`).
    calendar_ : str or None
        The calendar the network reads (``calendar`` with ``"auto"`` resolved).
    steps_per_day_ : int or None
        Its time-of-day slots.
    loss_history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss`` (masked MAE in original
        units; NaN without validation), ``lr`` and ``seconds``. (``history_`` is its
        deprecated name.)
    best_epoch_ : int
        Epoch (1-based) whose weights were restored; 0: the untrained model (the last
        value, the autoregression for ``"ar"``; plus ``ar_weight_`` of it for ``"change"``).
    best_score_ : float
        Negative masked MAE of the restored epoch (validation, else training).
    interrupted_ : bool
        Whether training was stopped with Ctrl-C (the best weights so far are kept).

    See Also
    --------
    stvlm.SpatialToImageTransformer : The image step, for use in a pipeline.
    stvlm.metrics.get_scorer : Masked MAE/RMSE/MAPE scorers for model selection.

    Notes
    -----
    **Inputs.** ``fit`` and ``score`` take a series ``(T, N)`` (numpy, or a DataFrame
    whose DatetimeIndex dates the windows; windows and targets are cut from it by
    :func:`stvlm.as_windows`), windows ``(n, history, N)`` with targets ``y``
    ``(n, horizon, N)``, a :class:`~stvlm.Windows`, or the output of
    :class:`~stvlm.SpatialToImageTransformer`, so that
    ``make_pipeline(SpatialToImageTransformer(), STVLMForecaster())`` works on a series
    and on windows. The transformer's ``history`` and ``horizon`` (used only when it
    cuts a series) must equal the forecaster's, or ``fit`` raises ``ValueError``.

    **Validation split.** The last ``validation_fraction`` of the training windows
    validate. When they come from a series (given directly or through the
    transformer), ``history + horizon - 1`` windows between the two parts are
    dropped, so no validation window shares a step with a training window. Windows
    given as ``(X, y)`` are taken as they are, without a gap: the forecaster cannot
    know whether they are consecutive.

    **Cross-validation without leakage.** A window and its targets span
    ``history + horizon`` consecutive steps. ``TimeSeriesSplit(n_splits, gap=g)``
    puts ``g`` samples between the last training sample and the first test sample;
    what a sample is depends on ``X``:

    * **A series** (``cross_val_score(model, series, cv=TimeSeriesSplit(5))``): the
      samples are time steps. Windows are cut inside the training rows and inside the
      test rows separately, so no training window shares a step with a test window:
      ``gap=0`` does not leak, and a positive gap only discards data. The first test
      window's history starts right after the last training row, as in deployment. A
      test fold of ``t >= history + horizon`` rows scores ``t - history - horizon + 1`` windows.
    * **Windows** (``X, y = make_windows(series, history, horizon)``,
      ``cross_val_score(model, X, y, cv=...)``): the samples are windows, and windows
      ``i`` and ``j`` share a step when ``|i - j| < history + horizon``. Use
      ``gap = history + horizon - 1`` windows: the first test window then starts after
      the last training window's last target (the series' split with ``gap=0``). A
      smaller gap leaks training targets (``gap < horizon - 1``) or training inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from transformers import ViltConfig
    >>> from stvlm import STVLMForecaster, make_windows
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(400)[:, None]
    >>> series = 100 + 50 * np.sin(2 * np.pi * t / 48 + rng.uniform(0, 1, 5)) + rng.normal(0, 5, (400, 5))
    >>> tiny = ViltConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                   intermediate_size=64, image_size=16, patch_size=8, vocab_size=500)
    >>> model = STVLMForecaster(history=12, horizon=6, backbone=tiny, max_epochs=2,
    ...                         batch_size=32, random_state=0, verbose=0)
    >>> model.fit(series[:300])
    STVLMForecaster(...)
    >>> X_test, y_test = make_windows(series[300:], history=12, horizon=6)
    >>> model.predict(X_test).shape
    (83, 6, 5)
    >>> bool(model.score(X_test, y_test) < 0)  # negative masked MAE
    True
    """

    _module_attr = "network_"
    _outputs = ("level", "change", "ar")

    def __init__(
        self,
        history=12,
        horizon=12,
        backbone=DEFAULT_BACKBONE,
        fusion="saf",
        finetune="lora",
        image="s2i",
        lora_r=8,
        lora_alpha=16,
        batch_size=32,
        max_epochs=100,
        learning_rate=1e-3,
        patience=30,
        lr_patience=10,
        lr_factor=0.5,
        lr_schedule="plateau",
        ema_decay=0.99,
        min_steps_per_epoch=None,
        validation_fraction=0.2,
        image_size=None,
        encoder_hidden=64,
        temporal_encoder="lstm",
        decoder_hidden=128,
        head="mlp",
        null_value=0.0,
        threshold=None,
        device="auto",
        precision="auto",
        image_cache_mb=1024,
        calendar="auto",
        calendar_form="embedding",
        steps_per_day=None,
        start=None,
        output="change",
        random_state=None,
        verbose=1,
        callbacks=None,
    ):
        self.history = history
        self.horizon = horizon
        self.backbone = backbone
        self.fusion = fusion
        self.finetune = finetune
        self.image = image
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor
        self.lr_schedule = lr_schedule
        self.ema_decay = ema_decay
        self.min_steps_per_epoch = min_steps_per_epoch
        self.validation_fraction = validation_fraction
        self.image_size = image_size
        self.encoder_hidden = encoder_hidden
        self.temporal_encoder = temporal_encoder
        self.decoder_hidden = decoder_hidden
        self.head = head
        self.null_value = null_value
        self.threshold = threshold
        self.device = device
        self.precision = precision
        self.image_cache_mb = image_cache_mb
        self.calendar = calendar
        self.calendar_form = calendar_form
        self.steps_per_day = steps_per_day
        self.start = start
        self.output = output
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    @classmethod
    def from_preset(cls, name, **overrides):
        """An estimator with a named configuration from :data:`stvlm.presets.MODEL_PRESETS`.

        Parameters
        ----------
        name : {"cpu", "paper"}
            ``"cpu"``: a tiny random ViLT (2 layers, width 64, 32-pixel patches) and a
            short schedule, for 2-core machines; ``"paper"``: pretrained ViLT-B/32
            with the paper's schedule.
        **overrides
            Any other constructor parameter.

        Returns
        -------
        STVLMForecaster

        Examples
        --------
        >>> from stvlm import STVLMForecaster
        >>> STVLMForecaster.from_preset("cpu", random_state=0).max_epochs
        50
        """
        return cls(**preset_params(name, **overrides))

    # ------------------------------------------------------------------ hooks
    def _check_model_params(self):
        if self.history < 2:
            raise ValueError(f"history must be >= 2 (correlation images need two steps); got {self.history}.")
        for name in ("lora_r", "encoder_hidden", "decoder_hidden"):
            check_positive_int(getattr(self, name), name)
        choices = dict(fusion=("saf", None), head=("mlp", "lstm"), temporal_encoder=("lstm", "linear"),
                       finetune=("lora", None), image=("s2i", None), precision=("auto", "fp32", "bf16"),
                       calendar=("auto", *CALENDARS), calendar_form=CALENDAR_FORMS)
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        check_real(self.image_cache_mb, "image_cache_mb", low=0)
        for name in ("image_size", "steps_per_day"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        if self.steps_per_day is None and self.start is not None:
            raise ValueError("start (the time of a bare series' first row) needs steps_per_day.")

    def _clock(self):
        return {} if self.steps_per_day is None else dict(steps_per_day=self.steps_per_day, start=self.start)

    def _setup(self, train, device):
        self.calendar_ = resolve_calendar(self.calendar, train)
        self.steps_per_day_ = train.steps_per_day if self.calendar_ else None
        # Images given by the transformer carry their own scale; constant images need none.
        if train.channels is not None or self.image is None:
            self.dtw_scale_ = None
            return
        # fit_dtw_scale reads at most 256 evenly spaced windows: impute only those.
        n = len(train)
        idx = np.unique(np.linspace(0, n - 1, min(n, SCALE_WINDOWS)).round().astype(int))
        self.dtw_scale_ = fit_dtw_scale(train.filled_batch(idx), check_input=False)

    def _build_module(self, n_sensors):
        from transformers import ViltConfig

        from .network import load_backbone, make_prompt, tokenize_prompt

        backbone = self.backbone
        if isinstance(backbone, dict):
            backbone = ViltConfig(**backbone)
        if isinstance(backbone, ViltConfig):
            backbone = copy.deepcopy(backbone)
        elif not isinstance(backbone, str):
            raise TypeError("backbone must be a hub name or local directory (str), a transformers.ViltConfig "
                            f"or a dict of ViltConfig arguments; got {type(backbone).__name__}.")
        model, tokenizer = load_backbone(backbone)
        patch = model.config.patch_size
        size = self.image_size
        if size is None:
            need = -(-n_sensors // patch) * patch
            size = max(model.config.image_size, need)
        elif size < n_sensors:
            raise ValueError(f"image_size={size} is smaller than the {n_sensors} sensors: each sensor needs a row "
                             f"and a column of the image. Use image_size >= {n_sensors} (a multiple of {patch}).")
        ids = tokenize_prompt(make_prompt(n_sensors, self.horizon), tokenizer, model.config.vocab_size)
        self.prompt_ids_ = ids.tolist()
        self.backbone_config_ = model.config.to_dict()
        self.image_size_ = int(size)
        # _setup resolves the calendar from the data; a network built without data has none.
        calendar, steps_per_day = getattr(self, "calendar_", None), getattr(self, "steps_per_day_", None)
        return self._make_network(model, ids, n_sensors, int(size), calendar, steps_per_day)

    def _make_network(self, model, prompt_ids, n_sensors, image_size, calendar=None, steps_per_day=None):
        """The network for a loaded backbone, from this estimator's parameters."""
        from .network import STVLMNetwork

        return STVLMNetwork(
            model, prompt_ids, n_sensors, self.history, self.horizon, fusion=self.fusion,
            finetune=self.finetune, lora_r=self.lora_r, lora_alpha=self.lora_alpha,
            encoder_hidden=self.encoder_hidden, decoder_hidden=self.decoder_hidden, image_size=image_size,
            calendar=calendar, steps_per_day=steps_per_day, calendar_form=self.calendar_form, head=self.head,
            temporal_encoder=self.temporal_encoder,
        )

    def _prepare(self, windows, device):
        """Compute all images once (CPU, numba) when they fit in ``image_cache_mb``."""
        if windows.channels is not None or device.type != "cpu" or self.image is None:
            return
        cache_images(windows, self.dtw_scale_, self.image_cache_mb)

    def _check_predict_data(self, windows):
        check_calendar(windows, getattr(self, "calendar_", None), getattr(self, "steps_per_day_", None))
        if windows.channels is None and self.dtw_scale_ is None and self.image is not None:
            raise ValueError(
                "this model was fitted on images from SpatialToImageTransformer; pass its "
                "output (CorrelationImages) to predict/score, not raw windows."
            )

    def _batch(self, windows, idx, device):
        # In window order: cached images are read from one array, front to back.
        return super()._batch(windows, np.sort(idx), device)

    def _inputs(self, windows, idx, device):
        import torch

        (x,) = super()._inputs(windows, idx, device)
        if self.image is None:  # the "w/o image" ablation
            images = torch.full((len(idx), 3, windows.n_sensors, windows.n_sensors), 0.5, device=device)
        else:
            images = batch_images(windows, idx, self.dtw_scale_, device)
        return (x, images, *calendar_tensors(windows, idx, getattr(self, "calendar_", None), device))

    def _output_layer(self, module):
        return module.head.out

    def _forward(self, module, inputs, device):
        with autocast(device, self.precision):
            return module(*inputs)

    def _micro_batch_size(self, batch_size):
        # Attention grows with N^2 per window (PEMS07's 883 sensors: ~7 GB for a batch of 32).
        # Beyond 2^22 sensor pairs per batch, run pieces whose gradients add up to the batch's.
        per_piece = max(1, _PAIRS_PER_PIECE // self.n_features_in_**2)
        return per_piece if per_piece < batch_size else None


def __getattr__(name):
    if name == "PRESETS":
        warnings.warn("stvlm.forecaster.PRESETS was renamed stvlm.presets.MODEL_PRESETS.", FutureWarning, 2)
        return MODEL_PRESETS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
