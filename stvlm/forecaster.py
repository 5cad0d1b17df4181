"""STVLMForecaster: the ST-VLM network and its training as a scikit-learn estimator.

Data path: a series is cut into windows, each window's correlation image is computed
(per batch, or once per fit while it fits in memory), the network turns windows and
images into tokens for the ViLT backbone, and the head returns the forecast.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import _as_float_array, check_positive_int, check_series, check_windows, impute_nonfinite
from .images import CorrelationImages, _progress, _resolve_device, correlation_channels, fit_dtw_scale
from .metrics import masked_mae
from .windows import make_windows

__all__ = ["STVLMForecaster", "PRESETS"]

# Same as stvlm.network.DEFAULT_BACKBONE, without importing torch with stvlm.
DEFAULT_BACKBONE = "dandelin/vilt-b32-mlm"

_FORMAT = "stvlm-forecaster"
_FORMAT_VERSION = 1
_CONFIG_FILE = "stvlm_config.json"
_WEIGHTS_FILE = "model.safetensors"

#: Named configurations. ``"cpu"`` is a tiny randomly-initialised ViLT that trains on
#: the ``pems08-tail`` fit period in minutes on 2 cores; ``"paper"`` is the paper's
#: setting (pretrained ViLT-B/32, up to 100 epochs).
PRESETS = {
    "cpu": dict(
        backbone=dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            patch_size=32,
            image_size=192,
            max_position_embeddings=40,
            vocab_size=1000,
        ),
        encoder_hidden=32,
        decoder_hidden=32,
        max_epochs=12,
        patience=5,
        lr_patience=2,
        learning_rate=2e-3,
    ),
    "paper": dict(backbone=DEFAULT_BACKBONE),
}


class _Data:
    """Windows, targets and (optionally) precomputed images of one split."""

    def __init__(self, X, y, channels=None):
        self.X = X
        self.y = y
        self.channels = channels

    def __len__(self):
        return self.X.shape[0]


class STVLMForecaster(RegressorMixin, BaseEstimator):
    """ST-VLM: spatial-temporal forecasting with a vision-language model.

    Each window of ``history`` steps of ``N`` sensors becomes (i) a three-channel
    correlation image (DTW similarity, lagged cross-correlation, spectral
    correlation), (ii) a text prompt and (iii) one LSTM token per sensor. A ViLT
    backbone fuses them, with the image steering sensor-to-sensor attention in its
    first layer (SAF) and LoRA on query/key; an LSTM head forecasts ``horizon`` steps.

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
    lora_r : int, default=8
        LoRA rank.
    lora_alpha : float, default=16
        LoRA scaling numerator.
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
    lr_patience : int, default=10
        ``ReduceLROnPlateau`` patience (the factor is ``lr_factor``).
    lr_factor : float, default=0.5
        Factor of ``ReduceLROnPlateau``.
    validation_fraction : float, default=0.2
        Chronological share of the training windows held out for early stopping and
        the plateau schedule (the last ones). ``0`` disables validation: the training
        loss then drives both.
    image_size : int or None, default=None
        Side of the images fed to the backbone (a multiple of its patch size, at least
        the sensor count). ``None``: the backbone's ``image_size``, or the smallest
        multiple of the patch size that holds every sensor if that is larger.
    encoder_hidden : int, default=64
        Width of the temporal LSTM encoder.
    decoder_hidden : int, default=64
        Width of the LSTM decoder head.
    null_value : float or None, default=0.0
        Target value treated as missing in the loss and in ``score`` (NaN always is).
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        ``"auto"``: bf16 autocast on CUDA, float32 on the CPU.
    image_cache_mb : float, default=1024
        Images of all training windows are computed once per fit (numba, CPU) and kept
        as float16 when they take at most this many MB; otherwise (and on a GPU, where
        the torch kernels are faster) they are computed per batch. Never a dense array
        that would not fit.
    random_state : int or None, default=None
        Seed of initialisation, shuffling and dropout; the same seed gives the same
        predictions on the CPU.
    verbose : int, default=1
        ``0`` silences the progress bars.

    Attributes
    ----------
    network_ : stvlm.network.STVLMNetwork
        The trained network (best weights).
    n_features_in_ : int
        Number of sensors.
    mean_, std_ : float
        z-score statistics of the training part.
    dtw_scale_ : float or None
        DTW similarity scale of the images (``None`` when fitted on images from a
        :class:`~stvlm.SpatialToImageTransformer`).
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss`` (masked MAE in original
        units; NaN without validation), ``lr`` and ``seconds``.
    best_epoch_ : int
        Epoch (1-based) whose weights were restored.
    interrupted_ : bool
        Whether training was stopped with Ctrl-C (the best weights so far are kept).

    See Also
    --------
    stvlm.SpatialToImageTransformer : The image step, for use in a pipeline.
    stvlm.metrics.get_scorer : Masked MAE/RMSE/MAPE scorers for model selection.

    Notes
    -----
    **Inputs.** ``fit`` and ``score`` take a series ``(T, N)`` (windows and targets are
    cut from it with :func:`stvlm.make_windows`), windows ``(n, history, N)`` with
    targets ``y`` ``(n, horizon, N)``, or the output of
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
      test rows separately, so no training window shares a step with a test window
      for any ``g >= 0``: ``gap=0`` does not leak. The first test window's history
      starts right after the last training row (as in deployment, where the model
      forecasts from the most recent past), and its first scored target lies
      ``history`` rows later. A positive gap only discards data. Each test fold
      needs at least ``history + horizon`` rows; a fold of ``t`` rows scores its
      ``t - history - horizon + 1`` windows.
    * **Windows** (``X, y = make_windows(series, history, horizon)``,
      ``cross_val_score(model, X, y, cv=...)``): the samples are windows, and windows
      ``i`` and ``j`` share a step when ``|i - j| < history + horizon``. Use
      ``gap = history + horizon - 1`` windows: the first test window then starts on
      the step after the last training window's last target (the same split as the
      series with ``gap=0``). With ``gap < horizon - 1`` the test targets were
      training targets (leakage); with ``horizon - 1 <= gap < history + horizon - 1``
      the test targets are unseen but the test windows' inputs were training steps.

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

    def __init__(
        self,
        history=12,
        horizon=12,
        backbone=DEFAULT_BACKBONE,
        fusion="saf",
        finetune="lora",
        lora_r=8,
        lora_alpha=16,
        batch_size=32,
        max_epochs=100,
        learning_rate=1e-3,
        patience=30,
        lr_patience=10,
        lr_factor=0.5,
        validation_fraction=0.2,
        image_size=None,
        encoder_hidden=64,
        decoder_hidden=64,
        null_value=0.0,
        device="auto",
        precision="auto",
        image_cache_mb=1024,
        random_state=None,
        verbose=1,
    ):
        self.history = history
        self.horizon = horizon
        self.backbone = backbone
        self.fusion = fusion
        self.finetune = finetune
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor
        self.validation_fraction = validation_fraction
        self.image_size = image_size
        self.encoder_hidden = encoder_hidden
        self.decoder_hidden = decoder_hidden
        self.null_value = null_value
        self.device = device
        self.precision = precision
        self.image_cache_mb = image_cache_mb
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ presets
    @classmethod
    def from_preset(cls, name, **overrides):
        """An estimator with a named configuration from :data:`PRESETS`.

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
        12
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known presets: {sorted(PRESETS)}.")
        params = copy.deepcopy(PRESETS[name])
        params.update(overrides)
        return cls(**params)

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # a series (T, N)
        tags.input_tags.three_d_array = True  # windows (n, history, N)
        tags.input_tags.allow_nan = True
        tags.target_tags.required = False  # y is cut from the series when X is 2-D
        tags.target_tags.multi_output = True
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        history = check_positive_int(self.history, "history")
        horizon = check_positive_int(self.horizon, "horizon")
        if history < 2:
            raise ValueError(f"history must be >= 2 (correlation images need two steps); got {history}.")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.max_epochs, "max_epochs")
        check_positive_int(self.patience, "patience")
        check_positive_int(self.lr_patience, "lr_patience")
        check_positive_int(self.lora_r, "lora_r")
        check_positive_int(self.encoder_hidden, "encoder_hidden")
        check_positive_int(self.decoder_hidden, "decoder_hidden")
        if self.fusion not in ("saf", None):
            raise ValueError(f"fusion must be 'saf' or None; got {self.fusion!r}.")
        if self.finetune not in ("lora", None):
            raise ValueError(f"finetune must be 'lora' or None; got {self.finetune!r}.")
        _check_real(self.learning_rate, "learning_rate", low=0, low_open=True)
        _check_real(self.lr_factor, "lr_factor", low=0, high=1, low_open=True, high_open=True)
        _check_real(self.validation_fraction, "validation_fraction", low=0, high=1, high_open=True)
        _check_real(self.image_cache_mb, "image_cache_mb", low=0)
        if self.image_size is not None:
            check_positive_int(self.image_size, "image_size")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16'; got {self.precision!r}.")
        if self.null_value is not None:
            _check_real(self.null_value, "null_value")
        return history, horizon

    def _split(self, X, y):
        """Turn fit's inputs into training and validation ``_Data``."""
        history, horizon = self.history, self.horizon
        channels = None
        images_gap = 0
        if isinstance(X, CorrelationImages):
            if X.from_series and X.targets is not None:
                _check_images_agree(X, history, horizon)
            channels = X.channels
            if y is None:
                if X.targets is None:
                    raise ValueError(
                        "y is required with images of windows from SpatialToImageTransformer: pass the "
                        "targets (n_windows, horizon, n_sensors) cut with make_windows, or give the "
                        "pipeline a series (T, n_sensors) so that the transformer cuts both."
                    )
                y = X.targets
            if X.from_series:
                # Consecutive windows of one series: the same gap as for a series below.
                images_gap = history + horizon - 1
            X = X.windows
        X = _as_float_array(X, "X")
        if getattr(X, "ndim", None) == 2 and y is None:
            series = check_series(X)
            _check_sensors_have_data(series)
            if series.shape[0] < history + horizon:
                raise ValueError(
                    f"the series has {series.shape[0]} steps; history + horizon = "
                    f"{history + horizon} are needed for one training window."
                )
            Xw, yw = make_windows(series, history, horizon)
            gap = history + horizon - 1  # validation windows share no row with training ones
        else:
            if getattr(X, "ndim", None) == 2:
                check_series(X)  # an empty or non-numeric X is the first thing to report
                raise ValueError(
                    "X is 2-D, so it is read as a series (T, n_sensors) and y must be None; "
                    "to pass y, give windows X of shape (n_windows, history, n_sensors)."
                )
            if getattr(X, "ndim", None) == 1:
                raise ValueError(
                    f"X is 1-D with shape {X.shape}; expected a series (T, n_sensors) or windows "
                    "(n_windows, history, n_sensors). Reshape your data: for a single sensor use X.reshape(-1, 1)."
                )
            if y is None:
                raise ValueError(
                    "y is required with windows X (n_windows, history, n_sensors); pass a "
                    "series (T, n_sensors) instead to have windows cut for you."
                )
            Xw = check_windows(X, dtype=np.float64)
            yw = _check_targets(y, Xw, horizon)
            if Xw.shape[1] != history:
                raise ValueError(f"X has windows of {Xw.shape[1]} steps but history={history}.")
            _check_sensors_have_data(Xw.reshape(-1, Xw.shape[2]))
            gap = images_gap
        n = Xw.shape[0]
        n_train, n_val = _split_sizes(n, self.validation_fraction, gap)
        train = _Data(Xw[:n_train], yw[:n_train], None if channels is None else channels[:n_train])
        val = None
        if n_val:
            s = n - n_val
            val = _Data(Xw[s:], yw[s:], None if channels is None else channels[s:])
        return train, val

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (T, n_sensors), (n_windows, history, n_sensors), or CorrelationImages
            A series, from which windows are cut (``y`` must be None) and whose
            last ``validation_fraction`` of windows (after a gap of
            ``history + horizon - 1`` windows, so no row is shared) validates; or
            windows with targets ``y``; or the output of
            :class:`~stvlm.SpatialToImageTransformer`: given a series, it carries the
            targets (``y`` may be None) and the validation windows follow the same
            gap as for a series; given windows, pass their targets ``y``. NaN/inf are
            masked in the loss and imputed (forward/backward fill) in the inputs.
        y : array-like of shape (n_windows, horizon, n_sensors), optional
            Targets of windows ``X``.

        Raises
        ------
        ValueError
            If images cut from a series by the transformer have another ``history`` or
            ``horizon`` than this forecaster, among other bad input.

        Returns
        -------
        self : STVLMForecaster
        """
        import torch

        self._check_params()
        device = _resolve_device(self.device)
        device = torch.device("cpu") if device == "cpu" else torch.device(device)
        train, val = self._split(X, y)
        n_sensors = train.X.shape[2]

        # z-score from the training part only (one mean and std over all sensors).
        values = train.X[np.isfinite(train.X)]
        self.mean_ = float(values.mean())
        std = float(values.std())
        self.std_ = std if std > 0 else 1.0
        self.n_features_in_ = n_sensors

        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)

        if train.channels is None:
            self.dtw_scale_ = fit_dtw_scale(train.X)
        else:
            self.dtw_scale_ = None
        self.network_ = self._build_network(n_sensors).to(device)
        self.image_size_ = self.network_.image_size
        batch_size = self.batch_size
        if batch_size > len(train):
            warnings.warn(
                f"batch_size={batch_size} is larger than the {len(train)} training windows; "
                f"using batches of {len(train)}.",
                UserWarning,
                stacklevel=2,
            )
            batch_size = len(train)
        self._maybe_cache_images(train, device)
        if val is not None:
            self._maybe_cache_images(val, device)

        net = self.network_
        params = [p for p in net.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.learning_rate)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.lr_factor, patience=self.lr_patience
        )
        trainable = {n for n, p in net.named_parameters() if p.requires_grad}
        best_state = _snapshot(net, trainable)
        best_loss, best_epoch, bad_epochs = math.inf, 0, 0
        self.history_ = []
        self.interrupted_ = False
        bar = _progress(self.max_epochs, self.verbose, "STVLM fit")
        try:
            for epoch in range(1, self.max_epochs + 1):
                t0 = time.perf_counter()
                net.train()
                order = rng.permutation(len(train))
                total, count = 0.0, 0
                for s in range(0, len(order), batch_size):
                    idx = np.sort(order[s : s + batch_size])
                    loss, n_valid = self._batch_loss(train, idx, device)
                    if n_valid == 0:
                        continue
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * n_valid
                    count += n_valid
                train_loss = total / count if count else math.nan
                val_loss = self._evaluate_loss(val, device, batch_size) if val is not None else math.nan
                monitor = val_loss if val is not None else train_loss
                scheduler.step(monitor)
                self.history_.append(
                    dict(
                        epoch=epoch,
                        train_loss=train_loss,
                        val_loss=val_loss,
                        lr=optimizer.param_groups[0]["lr"],
                        seconds=time.perf_counter() - t0,
                    )
                )
                if monitor < best_loss:
                    best_loss, best_epoch, bad_epochs = monitor, epoch, 0
                    best_state = _snapshot(net, trainable)
                else:
                    bad_epochs += 1
                bar.update(1)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}")
                if bad_epochs >= self.patience:
                    break
        except KeyboardInterrupt:
            self.interrupted_ = True
            warnings.warn(
                f"training interrupted after {len(self.history_)} epochs; keeping the best weights "
                f"so far (epoch {best_epoch}).",
                UserWarning,
                stacklevel=2,
            )
        finally:
            bar.close()
        net.load_state_dict(best_state, strict=False)
        net.eval()
        self.best_epoch_ = best_epoch
        self.best_score_ = -best_loss if math.isfinite(best_loss) else math.nan
        return self

    def _build_network(self, n_sensors):
        from transformers import ViltConfig

        from .network import load_backbone, make_prompt, tokenize_prompt

        backbone = self.backbone
        if isinstance(backbone, dict):
            backbone = ViltConfig(**backbone)
        if isinstance(backbone, ViltConfig):
            backbone = copy.deepcopy(backbone)
        elif not isinstance(backbone, str):
            raise TypeError(
                "backbone must be a hub name or local directory (str), a transformers.ViltConfig "
                f"or a dict of ViltConfig arguments; got {type(backbone).__name__}."
            )
        model, tokenizer = load_backbone(backbone)
        patch = model.config.patch_size
        size = self.image_size
        if size is None:
            need = -(-n_sensors // patch) * patch
            size = max(model.config.image_size, need)
        elif size < n_sensors:
            raise ValueError(
                f"image_size={size} is smaller than the {n_sensors} sensors: each sensor needs a row "
                f"and a column of the image. Use image_size >= {n_sensors} (a multiple of {patch})."
            )
        ids = tokenize_prompt(make_prompt(n_sensors, self.horizon), tokenizer, model.config.vocab_size)
        self.prompt_ids_ = ids.tolist()
        self.backbone_config_ = model.config.to_dict()
        return self._make_network(model, ids, n_sensors, int(size))

    def _make_network(self, model, prompt_ids, n_sensors, image_size):
        """The network for a loaded backbone, from this estimator's parameters."""
        from .network import STVLMNetwork

        return STVLMNetwork(
            model,
            prompt_ids,
            n_sensors,
            self.history,
            self.horizon,
            fusion=self.fusion,
            finetune=self.finetune,
            lora_r=self.lora_r,
            lora_alpha=self.lora_alpha,
            encoder_hidden=self.encoder_hidden,
            decoder_hidden=self.decoder_hidden,
            image_size=image_size,
        )

    # ------------------------------------------------------------------ batches
    def _maybe_cache_images(self, data, device):
        """Compute all images once (CPU, numba) when they fit in ``image_cache_mb``."""
        if data.channels is not None or device.type != "cpu":
            return
        n, N = data.X.shape[0], data.X.shape[2]
        if n * 3 * N * N * 2 > self.image_cache_mb * 2**20:
            return
        out = np.empty((n, 3, N, N), dtype=np.float16)
        step = 512
        for s in range(0, n, step):
            out[s : s + step] = correlation_channels(data.X[s : s + step], self.dtw_scale_, dtype=np.float16)
        data.channels = out

    def _images(self, data, idx, device):
        import torch

        if data.channels is not None:
            return torch.as_tensor(np.asarray(data.channels[idx], dtype=np.float32), device=device)
        if self.dtw_scale_ is None:
            raise ValueError(
                "this model was fitted on images from SpatialToImageTransformer; pass its "
                "output (CorrelationImages) to predict/score, not raw windows."
            )
        if device.type == "cpu":
            return torch.as_tensor(correlation_channels(data.X[idx], self.dtw_scale_), device=device)
        return _torch_images(data.X[idx], self.dtw_scale_, device)

    def _inputs(self, data, idx, device):
        import torch

        x = impute_nonfinite(np.ascontiguousarray(data.X[idx], dtype=np.float64))
        x = (x - self.mean_) / self.std_
        return torch.as_tensor(x, dtype=torch.float32, device=device), self._images(data, idx, device)

    def _autocast(self, device):
        import contextlib

        import torch

        use_bf16 = self.precision == "bf16" or (self.precision == "auto" and device.type == "cuda")
        if not use_bf16:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def _batch_loss(self, data, idx, device):
        """Masked MAE in original units over one batch, and its count of valid targets."""
        import torch

        x, images = self._inputs(data, idx, device)
        y = torch.as_tensor(np.asarray(data.y[idx], dtype=np.float32), device=device)
        with self._autocast(device):
            pred = self.network_(x, images)
        return _masked_mae_loss(pred.float() * self.std_ + self.mean_, y, self.null_value)

    def _evaluate_loss(self, data, device, batch_size):
        import torch

        self.network_.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(data), batch_size):
                idx = np.arange(s, min(len(data), s + batch_size))
                loss, n_valid = self._batch_loss(data, idx, device)
                if n_valid:
                    total += float(loss) * n_valid
                    count += n_valid
        return total / count if count else math.nan

    # ------------------------------------------------------------------ predict
    def _predict_data(self, X):
        check_is_fitted(self, "network_")
        channels = None
        if isinstance(X, CorrelationImages):
            channels, X = X.channels, X.windows
        X = _as_float_array(X, "X")
        if getattr(X, "ndim", None) == 2:
            raise ValueError(
                f"predict takes windows (n_windows, history, n_sensors); got a 2-D array {X.shape}. "
                "Cut windows with stvlm.make_windows, or forecast after the end of a series "
                "with model.predict(series[-history:][None])."
            )
        if getattr(X, "ndim", None) == 1:
            raise ValueError(f"X is 1-D with shape {X.shape}; expected windows (n_windows, history, n_sensors).")
        X = check_windows(X, dtype=np.float64)
        if X.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[2]} features, but STVLMForecaster is expecting {self.n_features_in_} features "
                f"as input (one per sensor: it was fitted with {self.n_features_in_} sensors)."
            )
        if X.shape[1] != self.history:
            raise ValueError(f"X has windows of {X.shape[1]} steps, but the model takes history={self.history}.")
        return _Data(X, None, channels)

    def predict(self, X):
        """Forecast the next ``horizon`` steps of each window.

        Parameters
        ----------
        X : array-like of shape (n_windows, history, n_sensors) or CorrelationImages
            Windows (NaN/inf imputed along time), or the transformer's output. A 2-D
            series is refused here; in ``make_pipeline(SpatialToImageTransformer(),
            STVLMForecaster())`` the transformer cuts a series ``(T, n_sensors)`` into
            its ``T - history - horizon + 1`` windows (those with a full target), so
            the pipeline's ``predict(series)`` returns the forecast of every one of
            them, in order: row ``i`` forecasts ``series[i + history : i + history +
            horizon]``. To forecast after the end of a series, pass its last
            ``history`` steps as one window, ``series[None, -history:]``.

        Returns
        -------
        y_pred : ndarray of shape (n_windows, horizon, n_sensors)
            Forecasts in the original units.
        """
        import torch

        data = self._predict_data(X)
        net = self.network_
        device = next(net.parameters()).device
        net.eval()
        out = np.empty((len(data), self.horizon, self.n_features_in_), dtype=np.float64)
        step = max(1, int(self.batch_size))
        with torch.no_grad():
            for s in range(0, len(data), step):
                idx = np.arange(s, min(len(data), s + step))
                x, images = self._inputs(data, idx, device)
                with self._autocast(device):
                    pred = net(x, images)
                out[idx] = pred.float().cpu().numpy() * self.std_ + self.mean_
        return out

    def score(self, X, y=None, sample_weight=None):
        """Negative masked MAE (higher is better), so that model selection needs no scorer.

        Parameters
        ----------
        X : array-like of shape (T, n_sensors), (n_windows, history, n_sensors) or CorrelationImages
            A series (windows and targets are cut from it; ``y`` must be None), or
            windows with targets ``y``, or the transformer's output (with ``y=None``
            when it was given a series: its targets are used).
        y : array-like of shape (n_windows, horizon, n_sensors), optional
        sample_weight : None
            Not supported; must be None.

        Returns
        -------
        score : float
            ``-masked_mae(y, predict(X), null_value=self.null_value)``.
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by STVLMForecaster.score.")
        check_is_fitted(self, "network_")
        if isinstance(X, CorrelationImages):
            if y is None and X.targets is not None:
                if X.from_series:
                    _check_images_agree(X, self.history, self.horizon)
                y = X.targets
        else:
            arr = _as_float_array(X, "X")
            if arr.ndim == 2 and y is None:
                X, y = make_windows(check_series(arr), self.history, self.horizon)
            else:
                X = arr
        if y is None:
            raise ValueError("y is required when X holds windows; pass a series (T, n_sensors) without y instead.")
        y = _check_targets(y, X.windows if isinstance(X, CorrelationImages) else np.asarray(X), self.horizon)
        return -masked_mae(y, self.predict(X), null_value=self.null_value)

    # ------------------------------------------------------------------ persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        net = state.get("network_")
        if net is not None and next(net.parameters()).device.type != "cpu":
            # A pickle must load on machines without the training GPU.
            state["network_"] = copy.deepcopy(net).cpu()
        return state

    def save(self, path):
        """Save a fitted model to a directory: safetensors weights and a JSON of parameters.

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
        from safetensors.torch import save_file

        check_is_fitted(self, "network_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = self.get_params(deep=False)
        backbone = params["backbone"]
        if not isinstance(backbone, (str, dict)):
            backbone = backbone.to_dict()
        params["backbone"] = backbone
        config = dict(
            format=_FORMAT,
            format_version=_FORMAT_VERSION,
            params=params,
            fitted=dict(
                n_features_in_=self.n_features_in_,
                mean_=self.mean_,
                std_=self.std_,
                dtw_scale_=self.dtw_scale_,
                image_size_=self.image_size_,
                best_epoch_=self.best_epoch_,
                best_score_=self.best_score_,
                interrupted_=self.interrupted_,
                history_=self.history_,
                prompt_ids_=self.prompt_ids_,
                backbone_config_=self.backbone_config_,
            ),
        )
        (path / _CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default))
        state = {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}
        save_file(state, str(path / _WEIGHTS_FILE), metadata={"format": _FORMAT})
        return path

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
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import ViltConfig

        from .network import load_backbone

        path = Path(path)
        cfg_file, weights_file = path / _CONFIG_FILE, path / _WEIGHTS_FILE
        if not cfg_file.is_file() or not weights_file.is_file():
            raise ValueError(
                f"{path} is not a saved STVLMForecaster: expected {_CONFIG_FILE} and {_WEIGHTS_FILE} in it."
            )
        try:
            config = json.loads(cfg_file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{cfg_file} is not valid JSON ({exc}); the file is corrupt.") from exc
        if not isinstance(config, dict) or config.get("format") != _FORMAT:
            raise ValueError(f"{cfg_file} is not an stvlm model file (no format marker {_FORMAT!r}).")
        if config.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{cfg_file} has format version {config.get('format_version')!r}; this stvlm reads version {_FORMAT_VERSION}."
            )
        try:
            params, fitted = dict(config["params"]), dict(config["fitted"])
            model = cls(**params)
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
            if key != "backbone_config_":
                setattr(model, key, value)
        model.backbone_config_ = fitted["backbone_config_"]
        model.network_ = net.to(device).eval()
        return model


# ---------------------------------------------------------------------- helpers
def _split_sizes(n, validation_fraction, gap):
    """Training and validation window counts of a chronological split with a gap."""
    n_val = int(math.floor(n * validation_fraction))
    n_train = n - n_val - (gap if n_val else 0)
    if n_val and n_train < 1:
        raise ValueError(
            f"only {n} windows: too few to hold out validation_fraction="
            f"{validation_fraction} (plus a gap of {gap} windows between the parts). "
            "Give a longer series or set validation_fraction=0."
        )
    return n_train, n_val


def _masked_mae_loss(pred, y, null_value):
    """Masked MAE (NaN and ``null_value`` targets left out) and the count of scored targets."""
    import torch

    mask = torch.isfinite(y)
    if null_value is not None:
        mask &= y != null_value
    n_valid = int(mask.sum())
    if n_valid == 0:
        return None, 0
    return (pred - torch.where(mask, y, 0.0)).abs()[mask].mean(), n_valid


def _check_real(value, name, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number; got {value!r}.")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}; got {value}.")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}; got {value}.")


def _check_targets(y, X, horizon):
    y = check_windows(y, name="y", min_history=1, dtype=np.float64)
    if y.shape[0] != X.shape[0] or y.shape[2] != X.shape[2]:
        raise ValueError(f"y has shape {y.shape}, but X has {X.shape}: expected ({X.shape[0]}, horizon, {X.shape[2]}).")
    if y.shape[1] != horizon:
        raise ValueError(f"y has {y.shape[1]} steps per window, but horizon={horizon}.")
    return y


def _check_images_agree(images, history, horizon):
    """Images cut from a series by the transformer must match the forecaster's windows."""
    k, h = images.windows.shape[1], images.targets.shape[1]
    if (k, h) != (history, horizon):
        raise ValueError(
            f"the images were cut from a series by SpatialToImageTransformer(history={k}, horizon={h}), "
            f"but STVLMForecaster has history={history}, horizon={horizon}: give both steps the same "
            f"history and horizon, e.g. make_pipeline(SpatialToImageTransformer(history={history}, "
            f"horizon={horizon}), STVLMForecaster(history={history}, horizon={horizon}))."
        )


def _check_sensors_have_data(values):
    dead = np.flatnonzero(~np.isfinite(values).any(axis=0))
    if dead.size:
        shown = dead[:10].tolist()
        raise ValueError(
            f"sensors {shown}{' ...' if dead.size > 10 else ''} have no finite value in the training data "
            "(all NaN/inf): there is nothing to learn or forecast for them. Drop these columns first."
        )


def _torch_images(X, dtw_scale, device):
    from .images import torch_images
    from .kernels import _prepare, _series, _torch_call

    S = _series(_prepare(X, np.float64)[0])
    d, r, p = (_torch_call(kind, S, np.float32, device) for kind in ("dtw", "xcorr", "spectral"))
    return torch_images(d, r, p, dtw_scale)


def _snapshot(net, names):
    return {k: v.detach().clone() for k, v in net.state_dict().items() if k in names}


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in the model's JSON")

