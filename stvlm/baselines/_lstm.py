"""Sequence-to-sequence LSTM: the classic recurrent peer of traffic forecasting."""

from __future__ import annotations

from .._validation import check_positive_int, check_real
from ._neural import _NeuralWindowForecaster

__all__ = ["LSTMForecaster"]


class LSTMForecaster(_NeuralWindowForecaster):
    """Encoder-decoder LSTM, shared by all sensors.

    Each sensor's window is one sequence: an encoder LSTM reads the ``history``
    scaled values, and a decoder LSTM, started from the encoder's state and the last
    observed value, forecasts ``horizon`` steps, feeding each forecast back as its next
    input (at training time too, so training and prediction run the same way). The
    weights are shared by all sensors, so the model knows nothing of the road graph
    or the sensor's identity: it is the purely temporal peer. Training follows
    :class:`~stvlm.STVLMForecaster` (masked MAE in original units, Adam,
    ``ReduceLROnPlateau``, early stopping, best weights restored).

    Parameters
    ----------
    history : int, default=12
        Input steps per window.
    horizon : int, default=12
        Steps to forecast.
    hidden_size : int, default=64
        Width of both LSTMs.
    num_layers : int, default=1
        Layers of each LSTM.
    dropout : float, default=0.0
        Dropout between LSTM layers (used when ``num_layers > 1``).
    batch_size : int, default=32
        Windows per optimisation step (each holds ``n_sensors`` sequences).
    max_epochs : int, default=100
        Upper bound on epochs.
    learning_rate : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
        Adam weight decay.
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

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.baselines import LSTMForecaster
    >>> rng = np.random.default_rng(0)
    >>> series = 10 + np.sin(np.arange(300) / 5)[:, None] + 0.1 * rng.standard_normal((300, 2))
    >>> model = LSTMForecaster(history=6, horizon=3, hidden_size=8, max_epochs=2,
    ...                        random_state=0).fit(series)
    >>> model.predict(series[None, -6:]).shape
    (1, 3, 2)
    """

    _outputs = ("level", "change", "ar")

    def __init__(
        self,
        history=12,
        horizon=12,
        hidden_size=64,
        num_layers=1,
        dropout=0.0,
        batch_size=32,
        max_epochs=100,
        learning_rate=1e-3,
        weight_decay=0.0,
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
        self.hidden_size = hidden_size
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

    def _check_model_params(self):
        check_positive_int(self.hidden_size, "hidden_size")
        check_positive_int(self.num_layers, "num_layers")
        check_real(self.dropout, "dropout", low=0, high=1, high_open=True)

    def _output_layer(self, module):
        return module.out

    def _build_module(self, n_sensors):
        from ._modules import Seq2SeqLSTM

        return Seq2SeqLSTM(self.horizon, self.hidden_size, self.num_layers, self.dropout)
