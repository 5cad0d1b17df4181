"""STID-like MLP: each sensor's window, plus embeddings of the sensor and the time of
day, through a residual MLP (Shao et al., "Spatial-Temporal Identity", CIKM 2022)."""

from __future__ import annotations

import numbers

from .._validation import check_positive_int, check_real
from ._neural import _NeuralWindowForecaster, _windows_with_time

__all__ = ["STIDForecaster"]


class STIDForecaster(_NeuralWindowForecaster):
    """STID-like MLP with sensor and time-of-day embeddings.

    Per sensor, the ``history`` scaled values are projected to ``embed_dim``, joined
    with a learned embedding of the sensor (``node_dim``) and of the time-of-day slot
    of the window's last history step (``tod_dim``), passed through ``num_layers``
    residual two-layer MLP blocks and read out as ``horizon`` values. It is small, fast
    on a CPU, and the strongest simple peer in the field. Training follows
    :class:`~stvlm.STVLMForecaster`: masked MAE in original units, Adam,
    ``ReduceLROnPlateau``, early stopping on a chronological validation split, best
    weights restored, one z-score from the training part.

    Parameters
    ----------
    history : int, default=12
        Input steps per window.
    horizon : int, default=12
        Steps to forecast.
    steps_per_day : int, default=288
        Time-of-day slots (288 for 5-minute data, 96 for 15-minute data).
    first_time_index : int or datetime-like, default=0
        Slot (or date and time) of the first row of a bare series given to
        :meth:`fit` or :meth:`score` (a DataFrame's DatetimeIndex gives the slots
        itself); the weekday (``dow_dim > 0``) needs a date and time.
    embed_dim, node_dim, tod_dim : int, default=32
        Widths of the window projection and the two embeddings (STID's defaults).
        ``node_dim=0`` or ``tod_dim=0`` drops that embedding (STID's ablations); with
        ``tod_dim=0`` the windows need no time of day.
    dow_dim : int, default=0
        Width of a day-of-week embedding (STID's fourth input; 0: none). The windows
        must then carry their weekday: a DataFrame's DatetimeIndex, a date and time
        as ``first_time_index``, or :class:`stvlm.Windows` with ``day_of_week``.
    num_layers : int, default=3
        Residual MLP blocks.
    dropout : float, default=0.15
        Dropout inside each block.
    batch_size : int, default=32
        Windows per optimisation step.
    max_epochs : int, default=100
        Upper bound on epochs.
    learning_rate : float, default=2e-3
        Adam learning rate (STID's).
    weight_decay : float, default=1e-4
        Adam weight decay (STID's).
    patience : int, default=15
        Epochs without a better validation loss before stopping.
    lr_patience : int, default=5
        ``ReduceLROnPlateau`` patience.
    lr_factor : float, default=0.5
        ``ReduceLROnPlateau`` factor.
    lr_schedule : {"plateau", "cosine", "exponential"}, default="plateau"
        ``"plateau"``: ``ReduceLROnPlateau`` on the validation loss (``lr_patience``,
        ``lr_factor``). ``"cosine"``: the rate decays from ``learning_rate`` to near zero
        over ``max_epochs`` (:class:`stvlm.training.TrainingLoop`).
    ema_decay : float in [0, 1) or None, default=0.99
        Validation scores, and the fit keeps, a moving average of the weights
        (``ema_decay`` of :class:`~stvlm.training.TrainingLoop`, as ST-VLM's); ``None``:
        the raw weights.
    min_steps_per_epoch : int or None, default=None
        An epoch is at least this many optimiser steps: a small training set is passed over
        several times, each pass reshuffled. ``None``: one pass.
    validation_fraction : float, default=0.2
        Chronological share of the windows held out for early stopping (``0``: none).
    null_value : float or None, default=0.0
        Target value treated as missing in the loss and in ``score`` (NaN always is).
    threshold : float or None, default=None
        Targets with ``|y| < threshold`` are missing too (:func:`stvlm.metrics.target_mask`).
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"auto"`` or a torch device string.
    output : {"change", "level", "ar"}, default="change"
        What the network forecasts: each step's change from the window's last
        observed value (added back before the loss, so the loss and the forecasts are
        in data units either way), the values themselves, or (``"ar"``) what a linear
        autoregression misses: one set of coefficients for every sensor, fitted by
        least squares on the training windows before the network trains
        (``ar_coef_``), its forecast added back. With ``"change"`` (``"ar"``) the
        output layer starts at zero: the untrained model repeats the last value
        (forecasts the autoregression), and training starts from that forecast rather
        than from noise (chosen on validation data: docs/results.md, "Few-shot"). With
        ``"change"`` the autoregression is fitted after training and added to the
        network's forecast, or to the last value (the output layer zeroed), with one
        weight in [0, 1] fitted on the validation windows (``ar_weight_``, a warning) when
        that lowers their loss by 1 % or more (docs/results.md, "Session 24"; not tried
        when ``horizon * (history - 1) ** 2`` exceeds 2**24).
    random_state : int or None, default=None
        Seed of weights and batch order.
    verbose : int, default=0
        ``1`` shows a progress bar over epochs.
    callbacks : list of callable or None, default=None
        Called after every epoch as ``callback(model, record)``; a truthy return
        stops training.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    mean_, std_ : float
        z-score of the inputs (training windows).
    ar_coef_ : ndarray of shape (history - 1, horizon) or None
        The linear autoregression's coefficients (the change from the last value at each
        horizon step, from the other steps' differences to it): with ``output="ar"``, or
        with ``"change"`` where the fit added it; else None.
    ar_weight_ : float or None
        Its weight in the forecast: 1 with ``"ar"``, fitted in [0, 1] with ``"change"``.
    loss_history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss`` (MAE in data units), ``lr``,
        ``seconds``.
    best_epoch_ : int
        Epoch whose weights were kept (0: the untrained model, the last value, or the
        autoregression with ``"ar"``; with ``"change"`` plus ``ar_weight_`` of it).
    best_score_ : float
        Negative masked MAE of that epoch.
    interrupted_ : bool
        Whether Ctrl-C stopped training (the best weights so far are kept).
    n_features_in_ : int
        Sensors seen in ``fit``.

    Notes
    -----
    STID also embeds the day of week; here that is ``dow_dim``, off by default,
    because the benchmark fit periods hold 12 days (``pems08-tail``) or 3 weeks
    (``sz-taxi``), few to learn a weekday from (measured on validation data:
    docs/results.md, "Calendar"). The module is a plain ``torch.nn.Module`` and runs on any
    device.

    **Time.** The time of day reaches the model through the data: a bare series is
    dated by ``first_time_index``, a DataFrame by its DatetimeIndex, and windows by
    :class:`stvlm.Windows` (``time_of_day`` = slot of each window's last history step;
    a benchmark protocol's ``test_data()`` carries it). The ``time_of_day`` argument of
    ``fit`` and ``predict`` (slot of the *first* history step) is deprecated.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.baselines import STIDForecaster
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(400)
    >>> series = 10 + np.sin(2 * np.pi * t / 48)[:, None] + 0.1 * rng.standard_normal((400, 3))
    >>> model = STIDForecaster(history=6, horizon=3, steps_per_day=48, max_epochs=2,
    ...                        random_state=0).fit(series)
    >>> from stvlm import Windows
    >>> X = Windows(series[None, -6:], time_of_day=[(400 - 1) % 48], steps_per_day=48)
    >>> model.predict(X).shape
    (1, 3, 3)
    """

    _outputs = ("level", "change", "ar")

    def __init__(
        self,
        history=12,
        horizon=12,
        steps_per_day=288,
        first_time_index=0,
        embed_dim=32,
        node_dim=32,
        tod_dim=32,
        dow_dim=0,
        num_layers=3,
        dropout=0.15,
        batch_size=32,
        max_epochs=100,
        learning_rate=2e-3,
        weight_decay=1e-4,
        patience=15,
        lr_patience=5,
        lr_factor=0.5,
        lr_schedule="plateau",
        ema_decay=0.99,
        min_steps_per_epoch=None,
        validation_fraction=0.2,
        null_value=0.0,
        threshold=None,
        device="cpu",
        output="change",
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.history = history
        self.horizon = horizon
        self.steps_per_day = steps_per_day
        self.first_time_index = first_time_index
        self.embed_dim = embed_dim
        self.node_dim = node_dim
        self.tod_dim = tod_dim
        self.dow_dim = dow_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor
        self.lr_schedule = lr_schedule
        self.ema_decay = ema_decay
        self.min_steps_per_epoch = min_steps_per_epoch
        self.validation_fraction = validation_fraction
        self.null_value = null_value
        self.threshold = threshold
        self.device = device
        self.output = output
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    @property
    def _uses_time_of_day(self):
        return not isinstance(self.tod_dim, numbers.Integral) or self.tod_dim != 0

    @property
    def _uses_day_of_week(self):
        return not isinstance(self.dow_dim, numbers.Integral) or self.dow_dim != 0

    def _check_model_params(self):
        for name in ("embed_dim", "num_layers"):
            check_positive_int(getattr(self, name), name)
        for name in ("node_dim", "tod_dim", "dow_dim"):
            check_positive_int(getattr(self, name), name, minimum=0)
        check_real(self.dropout, "dropout", low=0, high=1, high_open=True)
        super()._check_model_params()

    def _build_module(self, n_sensors):
        from ._modules import STIDModule

        return STIDModule(
            self.history, self.horizon, n_sensors, self.steps_per_day, self.embed_dim,
            self.node_dim, self.tod_dim, self.num_layers, self.dropout, self.dow_dim,
        )

    def _output_layer(self, module):
        return module.head

    def fit(self, X, y=None, time_of_day=None, *, validation_data=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (T, n_sensors), DataFrame, (n_windows, history, n_sensors) or Windows
            A series (dated by its DatetimeIndex, else by ``first_time_index``), or
            windows with targets ``y`` that carry their time of day
            (:class:`stvlm.Windows`). The last ``validation_fraction`` of the windows
            validate (after a gap of ``history + horizon - 1`` windows for a series).
        y : array-like of shape (n_windows, horizon, n_sensors), optional
            Targets of windows ``X``.
        time_of_day : array-like of int, shape (n_windows,), optional
            Deprecated: the slot of each window's *first* history step, for bare
            windows. Use :class:`stvlm.Windows` instead.
        validation_data : DataFrame, Windows or (windows, targets), optional
            Held-out data to validate on instead of the split (see
            :meth:`stvlm.STVLMForecaster.fit`); dated, as the model reads the time of day.

        Returns
        -------
        self
        """
        if time_of_day is not None:  # deprecated: time comes with the data
            X, y = _windows_with_time(self, X, y, time_of_day, "fit"), None
        return super().fit(X, y, validation_data=validation_data)

    def predict(self, X, time_of_day=None):
        """Forecast the next ``horizon`` steps of each window.

        Parameters
        ----------
        X : Windows or array-like of shape (n_windows, history, n_sensors)
            Windows that carry their time of day (:class:`stvlm.Windows`; e.g.
            ``Protocol.test_data()``). Bare windows need ``tod_dim=0``.
        time_of_day : array-like of int, shape (n_windows,), optional
            Deprecated: the slot of each window's *first* history step.

        Returns
        -------
        y_pred : ndarray of shape (n_windows, horizon, n_sensors)
        """
        if time_of_day is not None:  # deprecated: time comes with the data
            X = _windows_with_time(self, X, None, time_of_day, "predict")
        return super().predict(X)
