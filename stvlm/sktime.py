"""sktime interface: ST-VLM as an sktime forecaster.

:class:`STVLMSktimeForecaster` is a thin :class:`sktime.forecasting.base.BaseForecaster`
around :class:`stvlm.STVLMForecaster`: ``fit`` trains the engine on the series ``y``
(one column per sensor), ``predict`` feeds it the last ``history`` rows. Everything
else (windows, images, network, training loop) is the engine's, so an sktime user gets
the same model as a scikit-learn user, and ``evaluate``, ``ForecastingBenchmark``,
pipelines and tuners of sktime work on it.

Importing this module needs sktime; ``import stvlm`` does not.
"""

from __future__ import annotations

import inspect

__all__ = ["STVLMSktimeForecaster"]
__author__ = ["stvlm developers"]

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster

from .data import last_window, rows_needed, split_sizes
from .forecaster import STVLMForecaster
from .presets import DEFAULT_BACKBONE, preset_params

# Every engine parameter but horizon (which fh sets in fit), in the engine's order.
_ENGINE_PARAMS = tuple(p for p in inspect.signature(STVLMForecaster.__init__).parameters if p not in ("self", "horizon"))


class STVLMSktimeForecaster(BaseForecaster):
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
    lr_schedule : {"plateau", "cosine"}, default="plateau"
        Or a cosine decay to near zero over ``max_epochs``.
    validation_fraction : float, default=0.2
        Chronological share of the training windows held out for early stopping;
        ``0`` trains on all windows (the training loss then drives early stopping).
    image_size : int or None, default=None
        Side of the backbone's images; ``None`` lets the engine choose.
    encoder_hidden : int, default=64
        Width of the temporal LSTM encoder.
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
    output : {"change", "level"}, default="change"
        Forecast the change from each window's last value, or the values.
    random_state : int or None, default=None
        Seed of initialisation and shuffling; a fixed seed gives the same
        forecasts on the CPU.
    verbose : int, default=1
        ``0`` silences the progress bars.
    callbacks : list of callable or None, default=None
        Called after every training epoch as ``callback(engine, record)``; a truthy
        return stops training.

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

    The rows seen are kept by the forecaster itself, so sktime's ``remember_data``
    config (a second copy of all data in ``_y``/``_X``) is off by default, as it will
    be for every forecaster from sktime 1.3 on.

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

    _tags = {
        # packaging info
        # --------------
        "authors": ["stvlm developers"],
        "maintainers": ["stvlm developers"],
        # the engine imports these lazily, in fit/predict
        "python_dependencies": ["torch", "transformers", "peft"],
        # estimator type
        # --------------
        # one model over all sensors; a univariate y is a network of one sensor
        "capability:multivariate": True,
        "y_inner_mtype": "pd.DataFrame",
        "X_inner_mtype": "pd.DataFrame",
        # X is accepted and ignored
        "capability:exogenous": False,
        # the network is built for horizon = max(fh), so fh is needed in fit
        "requires-fh-in-fit": True,
        # forecasts start after the cutoff; sktime refuses in-sample fh itself
        "capability:insample": False,
        "capability:pred_int": False,
        "capability:pred_int:insample": False,
        # NaN are masked in the loss and filled along time in the inputs
        "capability:missing_values": True,
        # _update keeps the last window current (no retraining)
        "capability:update": True,
        # stochastic training, deterministic (on the CPU) given random_state
        "property:randomness": "derandomized",
        "capability:random_state": True,
        "fit_is_empty": False,
    }

    # The forecaster keeps the rows it needs in self._cur_y (see _fit/_update), so
    # sktime's own copy of all data in self._y/self._X is off by default (sktime 1.3's
    # default, adopted early: no double storage, no FutureWarning about the change).
    # set_config(remember_data=True) still turns it on.
    _config = {"remember_data": False}
    # BaseForecaster.__init__ defines _y/_X only when remember_data is on at
    # construction; keep them defined for a later set_config(remember_data=True).
    _y = None
    _X = None

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
        validation_fraction=0.2,
        image_size=None,
        encoder_hidden=64,
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
        self.validation_fraction = validation_fraction
        self.image_size = image_size
        self.encoder_hidden = encoder_hidden
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
        30
        """
        return cls(**preset_params(name, **overrides))

    # ------------------------------------------------------------------ engine
    def _make_engine(self, horizon):
        """The scikit-learn engine with this forecaster's parameters."""
        params = {name: getattr(self, name) for name in _ENGINE_PARAMS}
        return STVLMForecaster(horizon=horizon, **params)

    @staticmethod
    def _steps(fh, cutoff):
        """Relative steps (1-based, ints) of ``fh`` from ``cutoff``."""
        return np.asarray(fh.to_relative(cutoff).to_numpy(), dtype=np.int64)

    # ------------------------------------------------------------------ fit
    def _fit(self, y, X=None, fh=None):
        """Train the engine on ``y`` for ``horizon = max(fh)`` steps.

        Parameters
        ----------
        y : pd.DataFrame of shape (T, n_sensors)
        X : ignored
        fh : ForecastingHorizon
            Out-of-sample steps; their maximum is the engine's horizon.

        Returns
        -------
        self
        """
        steps = self._steps(fh, self.cutoff)
        if steps.min() < 1:
            # sktime refuses in-sample fh before _fit (capability:insample is
            # False); this guards direct calls.
            raise NotImplementedError(
                f"{type(self).__name__} can not perform in-sample prediction: fh must only "
                f"hold steps after the cutoff; got relative steps {steps.tolist()}."
            )
        horizon = int(steps.max())
        engine = self._make_engine(horizon)
        history, horizon = engine._check_params()
        n_rows = len(y)
        if n_rows < history + horizon:
            raise ValueError(
                f"{type(self).__name__} needs at least history + horizon = {history + horizon} "
                f"rows of y for one training window (history={history}, horizon={horizon}, the "
                f"largest step of fh); got {n_rows}. Give a longer series, a shorter fh or a "
                "smaller history."
            )
        try:  # the engine's split rule, on the windows this series gives
            split_sizes(n_rows - history - horizon + 1, self.validation_fraction, history + horizon - 1)
        except ValueError:
            needed = rows_needed(history, horizon, self.validation_fraction)
            raise ValueError(
                f"{type(self).__name__} needs at least {needed} rows of y to hold out "
                f"validation_fraction={self.validation_fraction} of the windows (history="
                f"{history}, horizon={horizon}, and a gap of {history + horizon - 1} windows "
                f"between training and validation windows); got {n_rows}. Give a longer "
                "series, or set validation_fraction=0 to train on all windows."
            ) from None
        # The frame itself, so that a DatetimeIndex dates the windows (stvlm.as_windows).
        engine.fit(pd.DataFrame(y.to_numpy(dtype=np.float64, na_value=np.nan), index=y.index, columns=y.columns))
        self.forecaster_ = engine
        self.horizon_ = horizon
        # Rows seen so far, kept current by _update; predict reads its tail. (sktime's
        # own self._y is not used: it is not stored under remember_data=False.)
        self._cur_y = y
        return self

    # ------------------------------------------------------------------ predict
    def _predict(self, fh, X=None):
        """Forecast from the last ``history`` rows seen.

        Parameters
        ----------
        fh : ForecastingHorizon
            Out-of-sample steps, at most ``horizon_`` after the cutoff.
        X : ignored

        Returns
        -------
        y_pred : pd.DataFrame
            Index ``fh.to_absolute_index(cutoff)``, the columns of ``y``.
        """
        steps = self._steps(fh, self.cutoff)
        if steps.min() < 1 or steps.max() > self.horizon_:
            raise ValueError(
                f"{type(self).__name__} was fitted to forecast steps 1 to {self.horizon_} "
                f"after the cutoff; fh asks for relative steps {steps.tolist()}. Refit with "
                "the forecasting horizon you need."
            )
        y = self._cur_y
        tail = y.iloc[-self.history :]
        frame = pd.DataFrame(tail.to_numpy(dtype=np.float64, na_value=np.nan), index=tail.index)
        window = last_window(frame, self.history)  # dated by a DatetimeIndex, if y has one
        forecast = self.forecaster_.predict(window)[0]  # (horizon, n_sensors)
        return pd.DataFrame(
            forecast[steps - 1],
            index=fh.to_absolute_index(self.cutoff),
            columns=y.columns,
        )

    # ------------------------------------------------------------------ update
    def _update(self, y, X=None, update_params=True):
        """Store the new rows; the network is not retrained.

        The cutoff is moved by sktime; the next ``predict`` forecasts from the new
        last ``history`` rows. ``update_params`` is accepted but does not retrain
        (see Notes of the class).

        Parameters
        ----------
        y : pd.DataFrame
            New rows (rows at an index seen before replace the old ones).
        X : ignored
        update_params : bool, default=True
            Ignored.

        Returns
        -------
        self
        """
        from sktime.datatypes import update_data

        self._cur_y = update_data(self._cur_y, y)
        return self

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
        common = dict(
            backbone=tiny,
            max_epochs=1,
            validation_fraction=0,
            batch_size=16,
            encoder_hidden=8,
            decoder_hidden=8,
            device="cpu",
            verbose=0,
            random_state=0,
        )
        return [
            dict(common, history=3),
            # the paper's ablations: no SAF, no fine-tuning
            dict(common, history=4, fusion=None, finetune=None, learning_rate=1e-2),
        ]
