"""Training curves: loss per epoch, learning rate, best epoch."""

from __future__ import annotations


import numpy as np

from ._common import _pyplot


# ------------------------------------------------------------------ training history
def _history_records(model_or_history):
    """``(records, best_epoch)`` from a fitted model, a list of dicts or a DataFrame."""
    best = None
    hist = model_or_history
    if hasattr(model_or_history, "get_params"):  # an estimator
        from sklearn.exceptions import NotFittedError

        if "loss_history_" not in vars(model_or_history):
            raise NotFittedError(
                f"this {type(model_or_history).__name__} is not fitted yet: it has no training "
                "history (loss_history_) to plot. Call fit first."
            )
        hist = model_or_history.loss_history_
        best = getattr(model_or_history, "best_epoch_", None)
    if hasattr(hist, "to_dict") and hasattr(hist, "columns"):  # a pandas DataFrame
        hist = hist.to_dict("records")
    try:
        records = [dict(r) for r in hist]
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "expected a fitted STVLMForecaster, its loss_history_ (a list of dicts with epoch, "
            f"train_loss, val_loss, lr) or a DataFrame of them; got {type(model_or_history).__name__}."
        ) from exc
    if not records:
        raise ValueError("the training history is empty: there is nothing to plot.")
    missing = {"train_loss"} - set().union(*records)
    if missing:
        raise ValueError(f"the training history has no {sorted(missing)[0]!r} entries; got keys {sorted(records[0])}.")
    return records, best


def plot_training_history(model_or_history, *, best_epoch=None, lr=True, log_loss=False, ax=None):
    """Plot training and validation loss per epoch, and the learning rate.

    Parameters
    ----------
    model_or_history : STVLMForecaster, list of dict or pandas.DataFrame
        A fitted model (its ``loss_history_`` and ``best_epoch_`` are used), or a
        history: one record per epoch with ``train_loss`` and optionally ``epoch``
        (default ``1, 2, ...``), ``val_loss`` and ``lr``.
    best_epoch : int, optional
        Epoch to mark as the restored best one (a dotted vertical line); default
        the model's ``best_epoch_``, none for a bare history.
    lr : bool, default=True
        Draw the learning rate on a twin y axis with a log scale.
    log_loss : bool, default=False
        Log scale for the loss axis.
    ax : matplotlib Axes, optional
        Draw into this; by default a new figure is made.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The loss axes: lines ``"train loss"``, ``"validation loss"`` (when the
        history has finite values) and ``"best epoch (k)"``. The learning rate
        (line ``"learning rate"``) is on a twin axes, the last of ``ax.figure.axes``.
        The legend lists the lines of both.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If given an estimator that is not fitted (a ``ValueError``).
    ValueError
        If the history is empty or has no ``train_loss``.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from stvlm.plotting import plot_training_history
    >>> history = [dict(epoch=e, train_loss=30 / e, val_loss=28 / e + e, lr=1e-3 / 2 ** (e // 3))
    ...            for e in range(1, 8)]
    >>> ax = plot_training_history(history, best_epoch=5)
    >>> [line.get_label() for line in ax.get_lines()]
    ['train loss', 'validation loss', 'best epoch (5)']
    >>> lr_ax = ax.figure.axes[-1]
    >>> lr_ax.get_yscale(), lr_ax.get_lines()[0].get_label()
    ('log', 'learning rate')
    >>> plt.close(ax.figure)

    With a fitted model (here a tiny one trained for two epochs):

    >>> import numpy as np
    >>> from stvlm import STVLMForecaster
    >>> series = np.random.default_rng(0).gamma(2.0, 20.0, size=(150, 3))
    >>> tiny = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    ...             intermediate_size=32, image_size=8, patch_size=8, vocab_size=200)
    >>> model = STVLMForecaster(horizon=3, backbone=tiny, max_epochs=2, encoder_hidden=8,
    ...                         decoder_hidden=8, random_state=0, verbose=0).fit(series)
    >>> ax = plot_training_history(model)
    >>> model.best_epoch_ == 0 or ax.get_lines()[-1].get_label() == f"best epoch ({model.best_epoch_})"
    True
    >>> plt.close(ax.figure)
    """
    records, model_best = _history_records(model_or_history)
    if best_epoch is None:
        best_epoch = model_best
    epochs = np.array([r.get("epoch", i + 1) for i, r in enumerate(records)], dtype=float)

    def column(key):
        return np.array([np.nan if r.get(key) is None else float(r[key]) for r in records], dtype=float)

    train, val = column("train_loss"), column("val_loss")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    handles = [ax.plot(epochs, train, color="C0", marker="o", markersize=4, label="train loss")[0]]
    if np.isfinite(val).any():
        handles.append(ax.plot(epochs, val, color="C1", marker="o", markersize=4, label="validation loss")[0])
    if best_epoch is not None and best_epoch > 0:
        handles.append(
            ax.axvline(best_epoch, color="C2", linestyle=":", linewidth=2, label=f"best epoch ({int(best_epoch)})")
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (masked MAE)")
    if log_loss:
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    rates = column("lr")
    if lr and np.isfinite(rates).any() and (rates[np.isfinite(rates)] > 0).all():
        lr_ax = ax.twinx()
        handles += lr_ax.step(
            epochs, rates, where="mid", color="0.4", linestyle="--", linewidth=1.2, label="learning rate"
        )
        lr_ax.set_yscale("log")
        lr_ax.set_ylabel("learning rate")
    ax.legend(handles=handles, loc="best")
    return ax
