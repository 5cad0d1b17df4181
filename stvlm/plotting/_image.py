"""The paper's Figure 4: the three channels of one window's correlation image."""

from __future__ import annotations

import numbers

import numpy as np

from ._common import CHANNEL_NAMES, _check_index, _check_sensor_ids, _pyplot, _tick_positions


# ------------------------------------------------------------------ correlation image
def _one_image(images, index, transformer):
    """The compact ``(3, N, N)`` image selected by the arguments of plot_correlation_image."""
    from ..images import CorrelationImages

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
