"""Plots of correlation images, forecasts and training curves (matplotlib).

Three functions, each drawing one kind of figure:

- :func:`plot_correlation_image`: the three channels of one window's correlation
  image side by side, with a shared colour bar and sensor ids on the axes (the
  paper's Figure 4);
- :func:`plot_forecast`: one sensor's history, its true future and one or more
  forecasts over the horizon;
- :func:`plot_training_history`: training and validation loss per epoch, the
  learning rate on a log-scaled twin axis, and the restored best epoch.

matplotlib is an optional dependency (``pip install "stvlm[plot]"``); it is imported
only when a function is called, so ``import stvlm.plotting`` always works.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["CHANNEL_NAMES", "plot_correlation_image", "plot_forecast", "plot_training_history"]

#: Names of the three image channels, in their order in the image.
CHANNEL_NAMES = ("DTW similarity", "lagged cross-correlation", "spectral correlation")


def _pyplot():
    """Import matplotlib.pyplot, or fail with the command that installs it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is installed for the tests
        raise ImportError(
            "stvlm.plotting needs matplotlib, which is not installed. Install the optional "
            'extra with `pip install "stvlm[plot]"` (or `pip install matplotlib`).'
        ) from exc
    return plt


def _check_index(index, n, name, what):
    """An int in ``[-n, n)``, returned as a non-negative position; else ValueError."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {index!r}.")
    index = int(index)
    if not -n <= index < n:
        raise ValueError(f"{name}={index} is out of range: there {'is' if n == 1 else 'are'} {n} {what} (0 ... {n - 1}).")
    return index % n


def _tick_positions(n, max_ticks):
    """Evenly stepped tick positions ``0, s, 2s, ...`` with at most ``max_ticks`` of them."""
    step = max(1, math.ceil(n / max_ticks))
    return np.arange(0, n, step)


def _check_sensor_ids(sensor_ids, n, name="sensor_ids"):
    if sensor_ids is None:
        return [str(i) for i in range(n)]
    ids = [str(s) for s in sensor_ids]
    if len(ids) != n:
        raise ValueError(f"{name} has {len(ids)} entries, but there are {n} sensors.")
    return ids


# ------------------------------------------------------------------ correlation image
def _one_image(images, index, transformer):
    """The compact ``(3, N, N)`` image selected by the arguments of plot_correlation_image."""
    from .images import CorrelationImages

    if transformer is not None:
        windows = np.asarray(images)
        if windows.ndim == 2:
            windows = windows[None]
        if windows.ndim != 3:
            raise ValueError(
                "with a transformer, images must be windows of shape (history, n_sensors) or "
                f"(n_windows, history, n_sensors); got an array of shape {np.shape(images)}."
            )
        i = _check_index(index, windows.shape[0], "index", "windows")
        return np.asarray(transformer.transform(windows[i : i + 1]).channels[0], dtype=np.float64)
    if isinstance(images, CorrelationImages):
        i = _check_index(index, len(images), "index", "images")
        return np.asarray(images.channels[i], dtype=np.float64)
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[1] != 3 or arr.shape[2] != arr.shape[3] or arr.shape[2] == 0:
        raise ValueError(
            "images must be a CorrelationImages, or an array of shape (3, N, N) or "
            f"(n_windows, 3, N, N); got shape {np.shape(images)}. To plot windows "
            "(n_windows, history, n_sensors), pass the fitted transformer too."
        )
    i = _check_index(index, arr.shape[0], "index", "images")
    return arr[i]


def plot_correlation_image(
    images,
    index=0,
    *,
    transformer=None,
    sensor_ids=None,
    channel_names=CHANNEL_NAMES,
    cmap="viridis",
    max_ticks=20,
    title=None,
    axes=None,
):
    """Plot the three channels of one window's correlation image (the paper's Figure 4).

    The DTW similarity, lagged cross-correlation and spectral correlation of every
    sensor pair are drawn side by side as ``N x N`` heat maps with one colour bar.
    Pixel ``(i, j)`` (row ``i``, column ``j``) is the pair of sensors ``i`` and ``j``.
    All values are in ``[0, 1]``, so the colour limits are fixed to ``0 ... 1``: colours
    mean the same in every channel and every plot.

    Parameters
    ----------
    images : CorrelationImages, array-like or windows
        What to draw, one of

        - the output of :meth:`SpatialToImageTransformer.transform
          <stvlm.SpatialToImageTransformer.transform>` (its compact ``N x N``
          images are drawn, without the zero padding);
        - an array of shape ``(3, N, N)`` (one image) or ``(n_windows, 3, N, N)``,
          drawn as given (pass ``images.channels``, not the padded ``images.images``,
          to leave the padding out);
        - with ``transformer``: windows of shape ``(history, N)`` or
          ``(n_windows, history, N)``; only the image of window ``index`` is computed.
    index : int, default=0
        Which window to draw (negative values count from the end).
    transformer : SpatialToImageTransformer, optional
        A fitted transformer that turns the windows ``images`` into images.
    sensor_ids : sequence of length N, optional
        Labels of the sensors on both axes; default ``0 ... N-1``.
    channel_names : sequence of 3 str, default=CHANNEL_NAMES
        Titles of the three panels.
    cmap : str or matplotlib colormap, default="viridis"
        Colour map of the heat maps.
    max_ticks : int, default=20
        At most this many sensor labels per axis (every ``ceil(N / max_ticks)``-th
        sensor, starting from the first), so that 170 sensors stay readable.
    title : str, optional
        Title above the three panels.
    axes : sequence of 3 matplotlib Axes, optional
        Draw into these; by default a new figure with three panels is made.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure; ``fig.axes[:3]`` are the three channels (each holding one image)
        and the colour bar's axes follow them.

    Raises
    ------
    ValueError
        If the array does not have the shape ``(3, N, N)`` or ``(n, 3, N, N)``,
        ``index`` is out of range, ``sensor_ids`` does not have ``N`` entries, or
        ``channel_names`` / ``axes`` do not have 3 entries.
    ImportError
        If matplotlib is not installed.

    See Also
    --------
    stvlm.SpatialToImageTransformer : computes the images.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from stvlm import SpatialToImageTransformer
    >>> from stvlm.plotting import plot_correlation_image
    >>> X = np.random.default_rng(0).normal(size=(4, 12, 5))        # 4 windows, 5 sensors
    >>> images = SpatialToImageTransformer().fit_transform(X)
    >>> fig = plot_correlation_image(images, index=2, sensor_ids=[101, 102, 103, 104, 105])
    >>> [ax.get_title() for ax in fig.axes[:3]]
    ['DTW similarity', 'lagged cross-correlation', 'spectral correlation']
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['101', '102', '103', '104', '105']
    >>> fig.axes[0].images[0].get_clim()
    (0.0, 1.0)
    >>> plt.close(fig)

    Windows and a fitted transformer work too; only the chosen window is transformed:

    >>> s2i = SpatialToImageTransformer().fit(X)
    >>> fig = plot_correlation_image(X, index=-1, transformer=s2i, title="last window")
    >>> fig.axes[0].images[0].get_array().shape
    (5, 5)
    >>> plt.close(fig)
    """
    img = _one_image(images, index, transformer)
    n = img.shape[1]
    ids = _check_sensor_ids(sensor_ids, n)
    channel_names = list(channel_names)
    if len(channel_names) != 3:
        raise ValueError(f"channel_names must have 3 entries; got {len(channel_names)}.")
    if isinstance(max_ticks, (bool, np.bool_)) or not isinstance(max_ticks, numbers.Integral) or max_ticks < 1:
        raise ValueError(f"max_ticks must be a positive integer; got {max_ticks!r}.")
    plt = _pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.6), layout="constrained")
        axes = list(axes)
    else:
        axes = list(np.ravel(axes))
        if len(axes) != 3:
            raise ValueError(f"axes must hold 3 matplotlib Axes; got {len(axes)}.")
        fig = axes[0].figure
    ticks = _tick_positions(n, max_ticks)
    labels = [ids[t] for t in ticks]
    im = None
    for c, ax in enumerate(axes):
        im = ax.imshow(img[c], cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", origin="upper")
        ax.set_title(channel_names[c])
        ax.set_xticks(ticks, labels=labels, rotation=90, fontsize="small" if len(ticks) > 10 else None)
        ax.set_yticks(ticks, labels=labels, fontsize="small" if len(ticks) > 10 else None)
        ax.set_xlabel("sensor")
        ax.set_ylabel("sensor")
    fig.colorbar(im, ax=axes, label="correlation level", shrink=0.85)
    if title is not None:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------ forecast
def _as_windows(a, name):
    """``(n, steps, N)`` float array from a 3-D array or a single 2-D window."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_windows, steps, n_sensors) or (steps, n_sensors); got {np.shape(a)}."
        )
    return arr


def plot_forecast(
    y_true,
    y_pred,
    sensor=0,
    *,
    history=None,
    window=0,
    sensor_ids=None,
    null_value=0.0,
    ylabel="value",
    title=None,
    ax=None,
):
    """Plot one sensor's forecast against the truth (and its history) for one window.

    The x axis counts steps from the last observed one: the history occupies steps
    ``-history+1 ... 0`` and the forecast horizon steps ``1 ... horizon`` (shaded).

    Parameters
    ----------
    y_true : array-like of shape (n_windows, horizon, n_sensors) or (horizon, n_sensors)
        True future values, e.g. the ``y`` of :func:`stvlm.make_windows`.
    y_pred : array-like of the shape of ``y_true``, or dict of str to such arrays
        The forecast, e.g. ``model.predict(X)``. A dict draws several forecasts, one
        line each, labelled by its keys (e.g. ``{"ST-VLM": ..., "last value": ...}``).
    sensor : int, default=0
        Column of the sensor to draw.
    history : array-like of shape (n_windows, history, n_sensors) or (history, n_sensors), optional
        The input windows ``X``; drawn before the horizon when given.
    window : int, default=0
        Which window to draw (negative values count from the end).
    sensor_ids : sequence of length n_sensors, optional
        Sensor labels; the title names ``sensor_ids[sensor]`` (default: ``sensor``).
    null_value : float or None, default=0.0
        True (and history) values equal to this are missing readings, drawn as gaps,
        as the metrics mask them. ``None`` draws every value; NaN is always a gap.
    ylabel : str, default="value"
        Label of the y axis (e.g. ``"flow (vehicles / 5 min)"``).
    title : str, optional
        Axes title; default ``"sensor <id>, window <window>"``.
    ax : matplotlib Axes, optional
        Draw into this; by default a new figure is made.

    Returns
    -------
    ax : matplotlib.axes.Axes
        Its lines are, in order: ``"history"`` (when given), ``"truth"``, then one
        per forecast; the legend shows them.

    Raises
    ------
    ValueError
        If the shapes of ``y_true``, ``y_pred`` and ``history`` do not match, or
        ``sensor`` / ``window`` is out of range.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from stvlm import make_windows
    >>> from stvlm.baselines import LastValueForecaster
    >>> from stvlm.plotting import plot_forecast
    >>> series = 100 + 20 * np.sin(np.arange(60.0) / 4)[:, None] * np.ones((1, 3))
    >>> X, y = make_windows(series, history=12, horizon=6)
    >>> y_last = LastValueForecaster(horizon=6).fit(X).predict(X)
    >>> ax = plot_forecast(y, {"last value": y_last, "truth + 1": y + 1}, sensor=2,
    ...                    history=X, window=5, ylabel="flow")
    >>> [line.get_label() for line in ax.get_lines()]
    ['history', 'truth', 'last value', 'truth + 1']
    >>> ax.get_lines()[1].get_xdata().tolist()
    [1, 2, 3, 4, 5, 6]
    >>> ax.get_title(), ax.get_ylabel()
    ('sensor 2, window 5', 'flow')
    >>> plt.close(ax.figure)
    """
    truth = _as_windows(y_true, "y_true")
    preds = y_pred if isinstance(y_pred, dict) else {"forecast": y_pred}
    if not preds:
        raise ValueError("y_pred is an empty dict; give at least one forecast.")
    preds = {str(k): _as_windows(v, f"y_pred[{k!r}]" if isinstance(y_pred, dict) else "y_pred") for k, v in preds.items()}
    for name, p in preds.items():
        if p.shape != truth.shape:
            raise ValueError(
                f"the forecast {name!r} has shape {p.shape}, but y_true has {truth.shape}; they must match."
            )
    n, horizon, n_sensors = truth.shape
    past = None
    if history is not None:
        past = _as_windows(history, "history")
        if past.shape[0] != n or past.shape[2] != n_sensors:
            raise ValueError(
                f"history has shape {past.shape}, but y_true has {truth.shape}: expected "
                f"({n}, history, {n_sensors})."
            )
    w = _check_index(window, n, "window", "windows")
    s = _check_index(sensor, n_sensors, "sensor", "sensors")
    ids = _check_sensor_ids(sensor_ids, n_sensors)

    def gaps(v):
        v = v.copy()
        if null_value is not None:
            v[v == null_value] = np.nan
        return v

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    steps = np.arange(1, horizon + 1)
    if past is not None:
        k = past.shape[1]
        ax.plot(np.arange(-k + 1, 1), gaps(past[w, :, s]), color="0.45", marker=".", label="history")
    ax.plot(steps, gaps(truth[w, :, s]), color="black", marker="o", markersize=4, label="truth")
    for i, (name, p) in enumerate(preds.items()):
        ax.plot(steps, p[w, :, s], color=f"C{i}", marker="s", markersize=3.5, linestyle="--", label=name)
    ax.axvspan(0.5, horizon + 0.5, color="C0", alpha=0.07, linewidth=0)
    ax.set_xlabel("step (0 = last observed)")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else f"sensor {ids[s]}, window {w}")
    ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    return ax


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
    >>> ax.get_lines()[-1].get_label() == f"best epoch ({model.best_epoch_})"
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
