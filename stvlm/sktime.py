"""sktime interface: ST-VLM and Time-VLM as sktime forecasters.

:class:`STVLMSktimeForecaster` and :class:`TimeVLMSktimeForecaster` are thin
:class:`sktime.forecasting.base.BaseForecaster` faces of :class:`stvlm.STVLMForecaster`
and :class:`stvlm.TimeVLMForecaster`: ``fit`` trains the engine on the series ``y`` (one
column per variable), ``predict`` feeds it the last ``history`` rows. Everything else
(windows, network, training loop) is the engine's, so an sktime user gets the same model
as a scikit-learn user, and ``evaluate``, ``ForecastingBenchmark``, pipelines and tuners
of sktime work on them. What both faces do is in ``stvlm/_sktime_base.py``.

Importing this module needs sktime; ``import stvlm`` does not.
"""

from __future__ import annotations

__all__ = ["STVLMSktimeForecaster", "TimeVLMSktimeForecaster"]
__author__ = ["stvlm developers"]

from ._sktime_base import WindowSktimeForecaster, store_params
from .forecaster import STVLMForecaster
from .presets import DEFAULT_BACKBONE
from .timevlm import TimeVLMForecaster


class STVLMSktimeForecaster(WindowSktimeForecaster):
    """ST-VLM forecaster for sktime: one model over all sensors of a network.

    Wraps :class:`stvlm.STVLMForecaster` (same parameters, same training) for
    sktime's interface. ``y`` is a ``pd.DataFrame`` with one column per sensor
    (a ``pd.Series`` or a one-column frame is a network of one sensor). ``fit``
    needs the forecasting horizon: the engine is trained to forecast
    ``horizon = max(fh)`` steps from windows of ``history`` steps cut from ``y``.
    ``predict`` feeds the engine the last ``history`` rows seen (in ``fit`` or in
    later ``update`` calls) and returns the steps that ``fh`` asks for.

    Panels and hierarchical data are broadcast by sktime: one model per series.
    Exogenous ``X`` is ignored. Missing values (NaN) in ``y`` are allowed: the
    engine leaves them out of the loss and fills them along time in its inputs.

    Parameters
    ----------
    history : int, default=12
        Input steps per window, at least 2.
    backbone : str, transformers.ViltConfig or dict, default="dandelin/vilt-b32-mlm"
        Hub name or local directory of a pretrained ViLT, or a ``ViltConfig`` (or a
        dict of its arguments) for a randomly-initialised backbone with no download.
    fusion : {"saf", None}, default="saf"
        ``None``: the paper's "w/o SAF" ablation.
    finetune : {"lora", None}, default="lora"
        ``None``: the paper's "w/o FT" ablation (backbone frozen, no LoRA).
    image : {"s2i", None}, default="s2i"
        ``None``: the "w/o image" ablation (a constant image for every window).
    lora_r, lora_alpha : int, float, default=8, 16
        LoRA rank and scaling numerator.
    batch_size : int, default=32
        Windows per optimisation step (clipped, with a warning, to the number of
        training windows).
    max_epochs : int, default=100
        Upper bound on training epochs.
    learning_rate : float, default=1e-3
        Adam learning rate.
    patience : int, default=30
        Early-stopping patience in epochs; the best weights are restored.
    lr_patience, lr_factor : int, float, default=10, 0.5
        ``ReduceLROnPlateau`` patience and factor (``lr_schedule="plateau"``).
    lr_schedule : {"plateau", "cosine", "exponential"}, default="plateau"
        Or a cosine decay to near zero over ``max_epochs``.
    ema_decay : float in [0, 1) or None, default=0.99
        A moving average of the weights is validated and kept; ``None``: the raw weights.
    min_steps_per_epoch : int or None, default=None
        Least optimiser steps an epoch (a small training set is passed over again); ``None``: one pass.
    validation_fraction : float, default=0.2
        Chronological share of the training windows held out for early stopping;
        ``0`` trains on all windows (the training loss then drives early stopping).
    image_size : int or None, default=None
        Side of the backbone's images; ``None`` lets the engine choose.
    encoder_hidden : int, default=64
        Width of the temporal LSTM encoder.
    temporal_encoder : {"lstm", "linear"}, default="lstm"
        Each sensor's token: the paper's LSTM over its window, or a linear map of it.
    decoder_hidden : int, default=128
        Width of the head: its MLP, or its LSTM with ``head="lstm"``.
    head : {"mlp", "lstm"}, default="mlp"
        A residual MLP reading out every step at once, or the paper's LSTM decoder.
    null_value : float or None, default=0.0
        Target value treated as missing in the training loss (NaN always is).
    threshold : float or None, default=None
        Targets with ``|y| < threshold`` are missing too.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        ``"auto"``: bf16 autocast on CUDA, float32 on the CPU.
    image_cache_mb : float, default=1024
        Memory budget for precomputed training images.
    calendar : {"auto", None, "time-of-day", "time-of-day+day-of-week"}, default="auto"
        The windows' time reaching the network (an extension beyond the paper);
        ``"auto"``: the time of day when ``y`` has a DatetimeIndex (or
        ``steps_per_day`` and ``start`` are given).
    calendar_form : {"embedding", "tokens"}, default="embedding"
        Added to every sensor token, or as text tokens of their own.
    steps_per_day : int or None, default=None
        Time-of-day slots of a ``y`` without a DatetimeIndex.
    start : int, datetime-like or None, default=None
        Slot, or date and time, of the first row of such a ``y``.
    output : {"change", "level", "ar"}, default="change"
        Forecast the change from each window's last value, the values, or what a
        linear autoregression fitted on the training windows misses
        (:class:`~stvlm.STVLMForecaster`).
    random_state : int or None, default=None
        Seed of initialisation and shuffling (the same forecasts on the CPU).
    verbose : int, default=1
        ``0`` silences the progress bars.
    callbacks : list of callable or None, default=None
        Called after every training epoch as ``callback(engine, record)``; a truthy return stops training.

    Attributes
    ----------
    forecaster_ : stvlm.STVLMForecaster
        The fitted engine, with ``horizon = horizon_``.
    horizon_ : int
        Steps the engine forecasts: the largest step of ``fh`` at fit time.

    See Also
    --------
    stvlm.STVLMForecaster : the scikit-learn estimator this class wraps.

    Notes
    -----
    The training series must hold at least ``history + horizon`` rows (one
    window); when ``validation_fraction > 0`` holds out at least one window, the
    held-out windows are separated from the training ones by a gap of
    ``history + horizon - 1`` windows, so more rows are needed. ``fit`` raises a
    ``ValueError`` that says how many.

    ``update`` does not retrain, whatever ``update_params``: the new rows are
    stored, the cutoff moves, and the next ``predict`` starts from the new last
    window (as the scikit-learn engine forecasts any window it is given). To
    refit on a schedule, wrap the forecaster in
    ``sktime.forecasting.stream.UpdateRefitsEvery``, or use ``evaluate(...,
    strategy="refit")`` (the default).

    The rows seen are kept by the forecaster itself, so sktime's ``remember_data`` config (a
    second copy in ``_y``/``_X``) is off by default, as it will be from sktime 1.3 on.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from stvlm.sktime import STVLMSktimeForecaster
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(120)[:, None]
    >>> y = pd.DataFrame(
    ...     100 + 30 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 3, 4))
    ...     + rng.normal(0, 3, (120, 4)),
    ...     index=pd.date_range("2016-08-07 03:40", periods=120, freq="5min"),
    ...     columns=["s0", "s1", "s2", "s3"],
    ... )
    >>> tiny = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...             intermediate_size=64, image_size=16, patch_size=8, vocab_size=500)
    >>> forecaster = STVLMSktimeForecaster(history=12, backbone=tiny, max_epochs=2,
    ...                                    random_state=0, verbose=0)
    >>> forecaster.fit(y, fh=[1, 2, 3])
    STVLMSktimeForecaster(...)
    >>> y_pred = forecaster.predict()
    >>> y_pred.shape
    (3, 4)
    >>> str(y_pred.index[0])
    '2016-08-07 13:40:00'
    """

    _engine = STVLMForecaster
    _tags = {"python_dependencies": ["torch", "transformers", "peft"]}

    def __init__(
        self,
        history=12,
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
        store_params(self, locals())
        super().__init__()

    @classmethod
    def from_preset(cls, name, **overrides):
        """A forecaster with a named configuration from :data:`stvlm.presets.MODEL_PRESETS`.

        Parameters
        ----------
        name : {"cpu", "paper"}
            ``"cpu"``: a tiny random ViLT and a short schedule, for small machines;
            ``"paper"``: pretrained ViLT-B/32 with the paper's schedule.
        **overrides
            Any other constructor parameter.

        Returns
        -------
        STVLMSktimeForecaster

        Examples
        --------
        >>> from stvlm.sktime import STVLMSktimeForecaster
        >>> STVLMSktimeForecaster.from_preset("cpu", random_state=0).max_epochs
        50
        """
        return cls._from_preset(name, overrides)

    # ------------------------------------------------------------------ testing
    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Return testing parameter settings for the estimator.

        Tiny random ViLT backbones that train in well under a second on a CPU on the
        short series of sktime's estimator checks.

        Parameters
        ----------
        parameter_set : str, default="default"
            Name of the set of test parameters to return. There are no special sets.

        Returns
        -------
        params : list of dict
            Parameters to create testing instances of the class.
        """
        tiny = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                    image_size=16, patch_size=8, vocab_size=500)
        common = dict(backbone=tiny, max_epochs=1, validation_fraction=0, batch_size=16, encoder_hidden=8,
                      decoder_hidden=8, device="cpu", verbose=0, random_state=0)
        return [
            dict(common, history=3),
            # the paper's ablations: no SAF, no fine-tuning
            dict(common, history=4, fusion=None, finetune=None, learning_rate=1e-2),
        ]


class TimeVLMSktimeForecaster(WindowSktimeForecaster):
    """Time-VLM forecaster for sktime: one model over all variables of a series.

    Wraps :class:`stvlm.TimeVLMForecaster` (same parameters but ``horizon``, same
    training) for sktime's interface, as :class:`STVLMSktimeForecaster` wraps ST-VLM.
    ``y`` is a ``pd.DataFrame`` with one column per variable (a ``pd.Series`` is one
    variable). ``fit`` needs the forecasting horizon: the engine is trained to forecast
    ``horizon = max(fh)`` steps from windows of ``history`` steps cut from ``y``;
    ``predict`` feeds it the last ``history`` rows seen (in ``fit`` or in later
    ``update`` calls) and returns the steps that ``fh`` asks for.

    Panels and hierarchical data are broadcast by sktime: one model per series.
    Exogenous ``X`` is ignored. Missing values (NaN) in ``y`` are left out of the loss
    and filled along time in the inputs.

    Parameters
    ----------
    history : int, default=512
        Input steps per window (the paper's ``seq_len``).
    vlm : {"vilt", "clip", "blip2"}, default="vilt"
        The kind of frozen vision-language model.
    backbone : None, "tiny", str, path, config or model, default=None
        ``None``: the kind's pretrained checkpoint; a hub name or a local folder; a
        ``transformers`` config of the kind (a random model); ``"tiny"``: a tiny random
        model (:func:`~stvlm.timevlm.tiny_vlm_config`), for tests and small machines.
    image : {"fixed", "learnable"} or None, default="fixed"
        The series-to-image transform; ``None``: the "w/o VAL" ablation.
    text : bool, default=True
        ``False``: the "w/o TAL" ablation (no prompt).
    memory : bool, default=True
        ``False``: the "w/o RAL" ablation (no local and global memory).
    d_model, n_heads : int, default=128, 4
        Width of patches, memory and fusion; heads of their attention.
    patch_len, stride : int, default=16, 8
        Patches of the memory learner (``patch_len <= history``).
    top_k, memory_size : int, default=5, 100
        Memory entries each series retrieves; pooled patch vectors the memory holds.
    dropout, norm_const : float, default=0.1, 0.4
        Dropout; RevIN divides each window by ``std / norm_const``.
    periodicity : int, default=24
        Steps per period of the data (24 for hourly data), for the image.
    description : str, optional
        A sentence on the data for the prompt.
    loss : {"mse", "mae"}, default="mse"
        Minimised and monitored on validation windows.
    batch_size, max_epochs : int, default=32, 10
    learning_rate, weight_decay : float, default=1e-3, 0.0
    min_steps_per_epoch : int or None, default=30
        Least optimiser steps an epoch (a small training set is passed over again); ``None``: one pass.
    ema_decay : float in [0, 1) or None, default=None
        A moving average of the weights validated and kept; ``None``: the raw weights.
    patience : int, default=10
        Epochs without a better validation loss before stopping (the best epoch is
        kept); 10, the epoch cap, lets the cosine rate decay to its end.
    lr_schedule : {"cosine", "plateau", "exponential"}, default="cosine"
    lr_patience, lr_factor : int, float, default=1, 0.5
        ``ReduceLROnPlateau`` patience and factor (``lr_schedule="plateau"``).
    validation_fraction : float, default=0.2
        Chronological share of the training windows held out for early stopping;
        ``0`` trains on all windows.
    null_value, threshold : float or None, default=None
        Target value treated as missing (NaN always is); targets with
        ``|y| < threshold`` are missing too.
    local_files_only : bool or None, default=None
        For a hub name: never download when ``True``.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"auto"`` or a torch device string.
    random_state : int or None, default=None
        A fixed seed gives the same forecasts on the CPU.
    verbose : int, default=1
        ``0`` silences the progress bars.
    callbacks : list of callable, optional
        Called after every epoch as ``callback(engine, record)``; truthy stops.

    Attributes
    ----------
    forecaster_ : stvlm.TimeVLMForecaster
        The fitted engine, with ``horizon = horizon_``.
    horizon_ : int
        Steps the engine forecasts: the largest step of ``fh`` at fit time.

    See Also
    --------
    stvlm.TimeVLMForecaster : the scikit-learn estimator this class wraps.
    STVLMSktimeForecaster : the same face for ST-VLM.

    Notes
    -----
    As for :class:`STVLMSktimeForecaster`: ``y`` needs at least ``history +
    max(fh)`` rows (more to hold out validation windows; ``fit`` says how many); a
    ``predict`` beyond the fitted horizon raises a ``ValueError``; ``update`` stores the
    new rows and moves the cutoff without retraining; ``remember_data`` is off.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from stvlm.sktime import TimeVLMSktimeForecaster
    >>> t = np.arange(200)[:, None]
    >>> y = pd.DataFrame(np.sin(2 * np.pi * t / 24 + np.array([0.0, 1.0])), columns=["a", "b"],
    ...                  index=pd.date_range("2016-07-01", periods=200, freq="h"))
    >>> forecaster = TimeVLMSktimeForecaster(history=48, backbone="tiny", d_model=16, max_epochs=1,
    ...                                      random_state=0, verbose=0)
    >>> forecaster.fit(y, fh=[1, 2, 3, 4, 5, 6])
    TimeVLMSktimeForecaster(...)
    >>> y_pred = forecaster.predict()
    >>> y_pred.shape
    (6, 2)
    >>> str(y_pred.index[0])
    '2016-07-09 08:00:00'
    """

    _engine = TimeVLMForecaster

    def __init__(
        self,
        history=512,
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
        store_params(self, locals())
        super().__init__()

    @classmethod
    def from_preset(cls, name, **overrides):
        """A forecaster with a named configuration from :data:`stvlm.timevlm.TIMEVLM_PRESETS`.

        Parameters
        ----------
        name : {"cpu", "paper"}
            ``"cpu"``: a tiny random ViLT and the fixed image, for small machines;
            ``"paper"``: pretrained CLIP-B/32 and the learnable image.
        **overrides
            Any other constructor parameter.

        Returns
        -------
        TimeVLMSktimeForecaster

        Examples
        --------
        >>> from stvlm.sktime import TimeVLMSktimeForecaster
        >>> TimeVLMSktimeForecaster.from_preset("cpu", history=96).backbone
        'tiny'
        """
        return cls._from_preset(name, overrides)

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Return testing parameter settings for the estimator.

        Tiny random VLMs and memories that train in hundredths of a second on sktime's checks.

        Parameters
        ----------
        parameter_set : str, default="default"
            Name of the set of test parameters to return. There are no special sets.

        Returns
        -------
        params : list of dict
            Parameters to create testing instances of the class.
        """
        common = dict(backbone="tiny", d_model=8, n_heads=2, max_epochs=1, batch_size=16, validation_fraction=0,
                      device="cpu", verbose=0, random_state=0)
        return [
            dict(common, history=4, patch_len=2, stride=1),
            # the other VLM kind, the learnable image, and the "w/o RAL" ablation
            dict(common, history=4, patch_len=4, stride=2, vlm="clip", image="learnable", memory=False),
        ]
