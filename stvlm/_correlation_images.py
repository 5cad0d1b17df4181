"""``CorrelationImages``: the transformer's output, images together with their windows
(public as :class:`stvlm.CorrelationImages`)."""

from __future__ import annotations

import numpy as np

from .data import Windows


class CorrelationImages:
    """Correlation images together with the windows they came from (and their targets).

    The output of :meth:`SpatialToImageTransformer.transform`. It carries both, so that
    in ``make_pipeline(SpatialToImageTransformer(), STVLMForecaster())`` the forecaster
    receives the images and the series values it needs for its temporal tokens. When
    the transformer was given a series, the windows' targets come along too, so that
    the pipeline can fit and score on a series without ``y``.

    The images are stored compact, ``(n, 3, N, N)``, and padded with zeros at the
    bottom and right (top-left aligned) to ``image_size`` only when read through
    :attr:`images` or :meth:`padded`.

    Parameters
    ----------
    windows : ndarray of shape (n_windows, history, n_sensors)
        The windows as given to ``transform`` (NaN kept).
    channels : ndarray of shape (n_windows, 3, n_sensors, n_sensors)
        The compact images, values in ``[0, 1]``.
    image_size : int
        Side of the padded images; at least ``n_sensors``.
    targets : ndarray of shape (n_windows, horizon, n_sensors) or None, default=None
        The steps that follow each window, when the windows were cut from a series
        (``y`` of :func:`stvlm.make_windows`); ``None`` otherwise.
    from_series : bool, default=False
        Whether the windows are the consecutive windows (stride 1) cut from one
        series, in order. :class:`~stvlm.STVLMForecaster` then holds out its
        validation windows after the same gap as when it cuts a series itself.
    time_of_day, day_of_week, steps_per_day, timestamps : optional
        The time of each window's last history step, as in :class:`stvlm.Windows`
        (known when the series was a DataFrame with a DatetimeIndex).

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import SpatialToImageTransformer
    >>> X = np.random.default_rng(0).normal(size=(4, 12, 5))
    >>> out = SpatialToImageTransformer(image_size=8).fit_transform(X)
    >>> len(out), out.shape, out.windows.shape, out.targets
    (4, (4, 3, 8, 8), (4, 12, 5), None)
    >>> float(out.images[0, :, 5:, :].max())  # the padding is zero
    0.0
    >>> out[1:3].shape
    (2, 3, 8, 8)
    >>> np.asarray(out).shape, out.dtype  # the padded images, as an array
    ((4, 3, 8, 8), dtype('float32'))

    A series is cut into windows, and each window keeps its targets:

    >>> series = np.random.default_rng(0).normal(size=(30, 5))
    >>> out = SpatialToImageTransformer(history=12, horizon=3).fit_transform(series)
    >>> out.windows.shape, out.targets.shape, out.from_series
    ((16, 12, 5), (16, 3, 5), True)
    >>> out[2:4].targets.shape
    (2, 3, 5)
    """

    def __init__(
        self,
        windows,
        channels,
        image_size,
        targets=None,
        from_series=False,
        *,
        time_of_day=None,
        day_of_week=None,
        steps_per_day=None,
        timestamps=None,
    ):
        windows = np.asarray(windows)
        channels = np.asarray(channels)
        if channels.ndim != 4 or channels.shape[1] != 3 or channels.shape[2] != channels.shape[3]:
            raise ValueError(f"channels must have shape (n, 3, N, N); got {channels.shape}.")
        if windows.ndim != 3 or windows.shape[0] != channels.shape[0] or windows.shape[2] != channels.shape[2]:
            raise ValueError(
                f"windows {windows.shape} do not match channels {channels.shape}: "
                "expected (n, history, N) with the same n and N."
            )
        if image_size < channels.shape[2]:
            raise ValueError(f"image_size {image_size} is smaller than the sensor count {channels.shape[2]}.")
        if targets is not None:
            targets = np.asarray(targets)
            if targets.ndim != 3 or targets.shape[0] != windows.shape[0] or targets.shape[2] != windows.shape[2]:
                raise ValueError(
                    f"targets {targets.shape} do not match windows {windows.shape}: "
                    "expected (n, horizon, N) with the same n and N."
                )
        self.windows = windows
        self.channels = channels
        self.image_size = int(image_size)
        self.targets = targets
        self.from_series = bool(from_series)
        self.time_of_day = time_of_day
        self.day_of_week = day_of_week
        self.steps_per_day = steps_per_day
        self.timestamps = timestamps

    def __len__(self):
        return self.channels.shape[0]

    @property
    def shape(self):
        """Shape of :attr:`images`: ``(n_windows, 3, image_size, image_size)``."""
        return (len(self), 3, self.image_size, self.image_size)

    @property
    def dtype(self):
        """Dtype of the images."""
        return self.channels.dtype

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(images)``: the padded images, ``(n, 3, image_size, image_size)``."""
        out = self.padded()
        return out if dtype is None else out.astype(dtype, copy=False)

    @property
    def n_sensors(self):
        """Number of sensors ``N``."""
        return self.channels.shape[2]

    def __getitem__(self, index):
        """A subset of windows (an int, slice, mask or index array), targets included.

        ``from_series`` is kept only by a slice with step 1 (or an int), the subsets
        whose windows stay consecutive.
        """
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        consecutive = isinstance(index, slice) and index.step in (None, 1)

        def take(a):
            return None if a is None else a[index]

        return CorrelationImages(
            self.windows[index],
            self.channels[index],
            self.image_size,
            targets=take(self.targets),
            from_series=self.from_series and consecutive,
            time_of_day=take(self.time_of_day),
            day_of_week=take(self.day_of_week),
            steps_per_day=self.steps_per_day,
            timestamps=take(self.timestamps),
        )

    def to_windows(self, y=None):
        """The windows, targets, times and images as :class:`stvlm.Windows`.

        Parameters
        ----------
        y : array-like of shape (n_windows, horizon, n_sensors), optional
            Targets to use instead of :attr:`targets`.

        Returns
        -------
        Windows

        Examples
        --------
        >>> import numpy as np
        >>> from stvlm import SpatialToImageTransformer
        >>> images = SpatialToImageTransformer(history=4, horizon=2).fit_transform(np.random.rand(20, 3))
        >>> w = images.to_windows()
        >>> w.X.shape, w.y.shape, w.consecutive, w.channels is images.channels
        ((15, 4, 3), (15, 2, 3), True, True)
        """
        return Windows(
            self.windows, self.targets if y is None else y,
            time_of_day=self.time_of_day, day_of_week=self.day_of_week, steps_per_day=self.steps_per_day,
            timestamps=self.timestamps, consecutive=self.from_series, channels=self.channels,
        )

    def padded(self, index=slice(None)):
        """The images of ``index``, zero-padded to ``image_size`` (a new array)."""
        c = self.channels[index]
        if self.image_size == self.n_sensors:
            return np.array(c)
        out = np.zeros(c.shape[:2] + (self.image_size, self.image_size), dtype=c.dtype)
        out[..., : self.n_sensors, : self.n_sensors] = c
        return out

    @property
    def images(self):
        """All images zero-padded to ``image_size``: ``(n, 3, S, S)`` (materialised)."""
        return self.padded()

    def __repr__(self):
        return (
            f"CorrelationImages(n_windows={len(self)}, n_sensors={self.n_sensors}, "
            f"image_size={self.image_size}, dtype={self.channels.dtype}"
            + ("" if self.targets is None else f", horizon={self.targets.shape[1]}")
            + (", from_series=True" if self.from_series else "")
            + ")"
        )
