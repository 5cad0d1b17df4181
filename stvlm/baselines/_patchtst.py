"""PatchTST: each channel's window cut into patches, read by a Transformer encoder (Nie
et al., "A Time Series is Worth 64 Words: Long-term Forecasting with Transformers",
ICLR 2023)."""

from __future__ import annotations


from .._base import BaseWindowForecaster
from .._validation import check_positive_int, check_real
from ._dlinear import _check_bool

__all__ = ["PatchTSTForecaster"]

_NORMS = ("batch", "layer")


def n_patches(history, patch_len, stride):
    """Patches of a window of ``history`` steps padded at its end by ``stride`` copies
    of its last value: ``(history - patch_len) // stride + 2``."""
    return (history - patch_len) // stride + 2


class PatchTSTForecaster(BaseWindowForecaster):
    """PatchTST: channel-independent patches through a Transformer encoder.

    Every channel's window is one sequence (the weights are shared by all channels,
    which never mix). It is normalised by its own mean and standard deviation
    (RevIN), padded at its end by ``stride`` copies of its last value, and cut into
    patches of ``patch_len`` steps every ``stride`` steps. Each patch is embedded
    linearly, a learned positional embedding (initialised in ±0.02) is added,
    ``n_layers`` post-norm Transformer encoder layers (GELU) read the patches, and a
    linear head maps all of them, flattened, to the ``horizon`` values, de-normalised
    with the window's statistics. Training is the shared loop of every stvlm model
    (Adam, a learning-rate schedule, early stopping on a chronological validation
    split, best weights restored, one z-score from the training part).

    Parameters
    ----------
    history : int, default=96
        Input steps per window (at least ``patch_len``).
    horizon : int, default=96
        Steps to forecast.
    patch_len, stride : int, default=16, 8
        Steps per patch, and between the starts of consecutive patches (the paper's).
    d_model, n_heads, n_layers, d_ff : int, default=16, 4, 3, 128
        Width of the patch embedding and the encoder, attention heads (they must
        divide ``d_model``), encoder layers, and width of each layer's feed-forward
        block (the paper's ETTh1 / ETTh2 setting).
    dropout : float, default=0.3
        Dropout after the positional embedding, in the feed-forward blocks and on
        the residual branches (the paper's ETTh1 / ETTh2 setting).
    norm : {"batch", "layer"}, default="batch"
        Normalisation in the encoder layers: ``BatchNorm1d`` over the patches (the
        paper's) or ``LayerNorm``.
    revin, revin_affine : bool, default=True, False
        Normalise each window and channel by its own mean and standard deviation and
        de-normalise the forecast (RevIN); with a learned scale and shift per channel
        (the paper's scripts: RevIN without them).
    batch_size : int, default=128
        Windows per optimisation step (the paper's; each holds ``n_sensors`` sequences).
    max_epochs : int, default=20
        Upper bound on epochs (ours; the paper trains up to 100).
    learning_rate : float, default=1e-3
        Adam learning rate (ours; the paper's is 1e-4 over up to 100 epochs).
    weight_decay : float, default=0.0
        Adam weight decay (none in the paper).
    min_steps_per_epoch : int or None, default=None
        An epoch is at least this many steps: a training set of fewer batches is
        passed over several times per epoch (:class:`stvlm.training.TrainingLoop`).
        ``None``: one pass per epoch.
    ema_decay : float in [0, 1) or None, default=None
        A moving average of the weights validated and kept (``ema_decay`` of
        :class:`~stvlm.training.TrainingLoop`); ``None``: the raw weights (its ETT
        figures were measured so).
    patience : int, default=3
        Epochs without a better validation loss before stopping (ours; the paper: 20).
    lr_patience, lr_factor : int, float, default=1, 0.5
        ``ReduceLROnPlateau`` patience and factor (with ``lr_schedule="plateau"``).
    lr_schedule : {"plateau", "cosine", "exponential"}, default="cosine"
        ``"cosine"``: the rate decays from ``learning_rate`` to near zero over
        ``max_epochs`` (the paper's one-cycle schedule without its warm-up).
        ``"plateau"``: ``ReduceLROnPlateau`` on the validation loss.
    validation_fraction : float, default=0.2
        Chronological share of the windows held out for early stopping (``0``: none).
    loss : {"mse", "mae"}, default="mse"
        Training loss, in data units (the paper trains on MSE).
    null_value : float or None, default=None
        Target value treated as missing in the loss and in ``score`` (NaN always is);
        None: only NaN (the ETT series have no missing readings).
    threshold : float or None, default=None
        Targets with ``|y| < threshold`` are missing too (:func:`stvlm.metrics.target_mask`).
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"auto"`` or a torch device string.
    output : {"level", "change"}, default="level"
        What the network forecasts: the values (the paper), or each step's change from
        the window's last value, added back before the loss (RevIN then rescales the
        change without shifting it). With ``"change"`` the head starts at zero, so the
        untrained model repeats the last value.
    random_state : int or None, default=None
        Seed of weights, dropout and batch order.
    verbose : int, default=0
        ``1`` shows a progress bar over epochs.
    callbacks : list of callable or None, default=None
        Called after every epoch as ``callback(model, record)``; a truthy return
        stops training.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network: scaled windows ``(B, history, N)`` to scaled forecasts
        ``(B, horizon, N)``.
    mean_, std_ : float
        z-score of the inputs (training windows).
    loss_history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``lr``, ``seconds``.
    best_epoch_, best_score_ : int, float
        Epoch whose weights were kept, and its negative monitored loss.
    interrupted_ : bool
        Whether Ctrl-C stopped training (the best weights so far are kept).
    n_features_in_ : int
        Channels seen in ``fit``.

    Notes
    -----
    The paper's (its ETTh1 / ETTh2 scripts): every architecture default, batches of
    128 and MSE. Its attention also adds each layer's scores to the next layer's
    ("residual attention"); here each layer is ``torch.nn.MultiheadAttention``. Ours,
    for a CPU: at most 20 epochs, patience 3, Adam at 1e-3 with a cosine decay (the
    paper: 1e-4 in a one-cycle schedule, up to 100 epochs, patience 20), one z-score
    over all channels before RevIN, and ``history=96`` (PatchTST/42 reads 336 steps).

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.baselines import PatchTSTForecaster
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(400)
    >>> series = np.sin(2 * np.pi * t / 24)[:, None] + 0.1 * rng.standard_normal((400, 3))
    >>> model = PatchTSTForecaster(history=48, horizon=12, max_epochs=2, random_state=0).fit(series)
    >>> model.predict(series[None, -48:]).shape
    (1, 12, 3)
    """

    def __init__(
        self,
        history=96,
        horizon=96,
        *,
        patch_len=16,
        stride=8,
        d_model=16,
        n_heads=4,
        n_layers=3,
        d_ff=128,
        dropout=0.3,
        norm="batch",
        revin=True,
        revin_affine=False,
        batch_size=128,
        max_epochs=20,
        learning_rate=1e-3,
        weight_decay=0.0,
        min_steps_per_epoch=None,
        ema_decay=None,
        patience=3,
        lr_patience=1,
        lr_factor=0.5,
        lr_schedule="cosine",
        validation_fraction=0.2,
        loss="mse",
        null_value=None,
        threshold=None,
        device="cpu",
        output="level",
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.history = history
        self.horizon = horizon
        self.patch_len = patch_len
        self.stride = stride
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.d_ff = d_ff
        self.dropout = dropout
        self.norm = norm
        self.revin = revin
        self.revin_affine = revin_affine
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.min_steps_per_epoch = min_steps_per_epoch
        self.ema_decay = ema_decay
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.loss = loss
        self.null_value = null_value
        self.threshold = threshold
        self.device = device
        self.output = output
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    def _check_model_params(self):
        patch_len = check_positive_int(self.patch_len, "patch_len")
        if patch_len > self.history:
            raise ValueError(f"patch_len must be at most history ({self.history}); got {patch_len}.")
        check_positive_int(self.stride, "stride")
        for name in ("n_layers", "d_ff"):
            check_positive_int(getattr(self, name), name)
        d_model = check_positive_int(self.d_model, "d_model")
        n_heads = check_positive_int(self.n_heads, "n_heads")
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model ({d_model}); got {n_heads}.")
        check_real(self.dropout, "dropout", low=0, high=1, high_open=True)
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}; got {self.norm!r}.")
        _check_bool(self.revin, "revin")
        _check_bool(self.revin_affine, "revin_affine")

    def _build_module(self, n_sensors):
        from ._long_term_modules import PatchTSTModule

        return PatchTSTModule(
            self.history, self.horizon, n_sensors, patch_len=self.patch_len, stride=self.stride,
            d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers, d_ff=self.d_ff,
            dropout=self.dropout, norm=self.norm, revin=bool(self.revin), affine=bool(self.revin_affine),
            change=self._output() == "change",
        )

    def _output_layer(self, module):
        return module.head
