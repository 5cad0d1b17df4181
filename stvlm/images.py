"""Windows -> correlation images: the spatial-to-image (S2I) step of ST-VLM.

Each window of ``N`` sensors becomes a ``3 x N x N`` image: a DTW similarity, a lagged
cross-correlation and an amplitude-spectrum correlation, each mapped to ``[0, 1]``.
The images are kept compact (``N x N``) and padded to the image size only when read,
so a whole dataset's images never have to exist padded at once.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._correlation_images import CorrelationImages
from ._device import resolve_device
from ._progress import progress
from ._validation import check_n_jobs, check_positive_int
from .data import as_windows
from .kernels import correlation_channels, fit_dtw_scale

__all__ = ["CorrelationImages", "SpatialToImageTransformer", "correlation_channels", "fit_dtw_scale"]

_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16}


class SpatialToImageTransformer(TransformerMixin, BaseEstimator):
    """Turn windows of sensor series into ST-VLM's three-channel correlation images.

    For each window ``(history, N)`` the transformer computes, over all sensor pairs,
    the DTW similarity, the signed maximum lagged cross-correlation and the Pearson
    correlation of amplitude spectra (see :func:`stvlm.dtw_matrix`,
    :func:`stvlm.lagged_xcorr_matrix`, :func:`stvlm.spectral_corr_matrix`), maps each
    to ``[0, 1]`` and stacks them into a ``3 x N x N`` image, zero-padded at the bottom
    and right to ``image_size``.

    ``X`` is either windows ``(n_windows, history, N)``, used as they are, or a series
    ``(T, N)``, which is first cut into its ``T - history - horizon + 1`` consecutive
    windows with :func:`stvlm.make_windows` (their targets are kept in the output), so
    that ``make_pipeline(SpatialToImageTransformer(), STVLMForecaster())`` fits, predicts
    and scores on a series as well as on windows.

    Parameters
    ----------
    history : int, default=12
        Steps per window cut from a series. Used only for 2-D (series) input; windows
        keep their own length. Must equal the forecaster's ``history`` in a pipeline.
    horizon : int, default=12
        Steps after each window cut from a series that are kept as its targets. Used
        only for 2-D (series) input. Must equal the forecaster's ``horizon`` in a
        pipeline.
    image_size : int or None, default=None
        Side of the output images. ``None`` uses the sensor count seen in ``fit``.
        Must be at least the sensor count.
    dtype : {"float32", "float16", "float64"}, default="float32"
        Dtype of the images; float16 halves their memory.
    n_jobs : int or None, default=None
        ``None``: the numba kernels run in this process on numba's thread pool (all
        cores unless ``NUMBA_NUM_THREADS`` says otherwise), the fastest choice on one
        machine. An integer (``-1`` for all cores) dispatches chunks of
        ``chunk_size`` windows through ``joblib.Parallel`` with single-threaded
        kernels in each worker; threads by default, or whatever backend
        ``joblib.parallel_config`` sets (processes, or a Dask cluster).
    chunk_size : int, default=256
        Windows per chunk of work (and per progress-bar step).
    device : str, default="cpu"
        ``"cpu"`` uses the numba kernels; ``"cuda"`` (or another torch device) the
        batched torch kernels on that device; ``"auto"`` picks CUDA when available.
    verbose : int, default=0
        ``> 0`` shows a tqdm progress bar over chunks.

    Attributes
    ----------
    n_features_in_ : int
        Number of sensors seen in ``fit``.
    history_ : int
        Window length seen in ``fit`` (``history`` when fitted on a series).
    image_size_ : int
        Side of the output images.
    dtw_scale_ : float
        Median off-diagonal DTW distance over (up to 256 evenly spaced) training
        windows; a distance ``d`` becomes the similarity ``exp(-d / dtw_scale_)``, so
        train and test images share one scale.

    See Also
    --------
    stvlm.STVLMForecaster : The forecaster that consumes the images.
    stvlm.make_windows : How a series is cut into windows and targets.

    Notes
    -----
    NaN and inf in the windows are imputed along time before any channel is computed
    (forward fill, then backward fill; an all-missing sensor is flat), so images never
    contain NaN. Flat series (constant or reading 0 throughout) have correlation 0
    (pixel 0.5) with every sensor, including themselves.

    After the fitted DTW scale, all three channels are invariant to one affine
    rescaling ``a * x + b`` (``a > 0``) of the whole dataset, so raw and z-scored
    windows give the same images, for any finite data (docs/reliability.md: the
    windows are rescaled by an exact power of two before the kernels).

    A series gives one image per window that has a full target, so the output has
    ``T - history - horizon + 1`` rows, not ``T``: the last ``horizon`` steps of the
    series are only targets. To forecast beyond the end of a series, pass its last
    ``history`` steps as one window, ``series[None, -history:]``.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm import SpatialToImageTransformer, make_windows
    >>> series = np.random.default_rng(0).gamma(2.0, 50.0, size=(200, 6))
    >>> X, y = make_windows(series, history=12, horizon=12)
    >>> s2i = SpatialToImageTransformer(image_size=8).fit(X)
    >>> out = s2i.transform(X)
    >>> out.shape
    (177, 3, 8, 8)
    >>> bool((out.images[:, 0].diagonal(axis1=1, axis2=2)[:, :6] == 1).all())
    True

    A series is cut into windows first; the images are the same and the targets
    come along:

    >>> out_series = s2i.transform(series)
    >>> out_series.shape, out_series.targets.shape
    ((177, 3, 8, 8), (177, 12, 6))
    >>> bool(np.array_equal(out_series.channels, out.channels))
    True
    """

    def __init__(
        self,
        history=12,
        horizon=12,
        image_size=None,
        dtype="float32",
        n_jobs=None,
        chunk_size=256,
        device="cpu",
        verbose=0,
    ):
        self.history = history
        self.horizon = horizon
        self.image_size = image_size
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size
        self.device = device
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # a series (T, N), cut into windows
        tags.input_tags.three_d_array = True  # windows (n, history, N)
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        # The images' dtype is the ``dtype`` parameter, whatever the input's.
        tags.transformer_tags.preserves_dtype = []
        return tags

    def _check_params(self):
        history = check_positive_int(self.history, "history")
        if history < 2:
            raise ValueError(f"history must be >= 2 (correlation images need two steps); got {history}.")
        check_positive_int(self.horizon, "horizon")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}; got {self.dtype!r}.")
        check_n_jobs(self.n_jobs)
        check_positive_int(self.chunk_size, "chunk_size")
        if self.image_size is not None:
            check_positive_int(self.image_size, "image_size")
        return resolve_device(self.device)

    def _windows(self, X):
        """:class:`~stvlm.Windows` of ``X``: windows as given, or cut from a series."""
        w = as_windows(X, history=self.history, horizon=self.horizon, require_targets=False, any_history=True)
        if w.history < 2:
            raise ValueError(
                f"X has history {w.history}; at least 2 time steps per window are needed "
                "(correlations and DTW of a single step carry no information)."
            )
        return w

    def fit(self, X, y=None):
        """Learn the sensor count, window length, image size and DTW scale.

        Parameters
        ----------
        X : array-like of shape (n_windows, history, n_sensors) or (T, n_sensors)
            Training windows, or a series that is cut into windows of ``history``
            steps (each followed by ``horizon`` target steps, see
            :func:`stvlm.make_windows`).
        y : None
            Ignored.

        Returns
        -------
        self : SpatialToImageTransformer
        """
        device = self._check_params()
        X = self._windows(X).filled()
        n, k, N = X.shape
        size = N if self.image_size is None else self.image_size
        if size < N:
            raise ValueError(
                f"image_size={size} is smaller than the {N} sensors: an image needs one "
                f"row and column per sensor. Use image_size >= {N} (or None)."
            )
        self.dtw_scale_ = fit_dtw_scale(X, device, check_input=False)
        self.n_features_in_ = N
        self.history_ = k
        self.image_size_ = int(size)
        return self

    def transform(self, X):
        """Compute the images of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_windows, history, n_sensors) or (T, n_sensors)
            Windows with the sensor count and length seen in ``fit``, or a series with
            the sensor count seen in ``fit``, cut into its ``T - history - horizon + 1``
            windows (stride 1) and their targets.

        Returns
        -------
        images : CorrelationImages
            The images (``images.images`` is ``(n, 3, image_size, image_size)``)
            together with the windows; for a series also their targets
            (``images.targets``, ``(n, horizon, n_sensors)``) and
            ``images.from_series=True``.
        """
        check_is_fitted(self, "dtw_scale_")
        w, filled, device = self._checked_windows(X)
        channels = self._channels(filled, device)
        return CorrelationImages(
            w.X, channels, self.image_size_, targets=w.y, from_series=w.consecutive,
            time_of_day=w.time_of_day, day_of_week=w.day_of_week, steps_per_day=w.steps_per_day,
            timestamps=w.timestamps,
        )

    def write_images(self, X, store, *, overwrite=False):
        """Compute the images of ``X`` chunk by chunk into a Zarr array (see :func:`stvlm.image_store.write_images`).

        For data whose images do not fit in memory: nothing but the chunks in flight is
        held, and with ``joblib.parallel_config(backend="dask")`` (and ``n_jobs`` set)
        the chunks are computed on a ``dask.distributed`` cluster.

        Parameters
        ----------
        X : array-like of shape (n_windows, history, n_sensors) or (T, n_sensors)
            As for :meth:`transform`.
        store : str, path-like or zarr store
            Where the array goes.
        overwrite : bool, default=False
            Replace an existing array at ``store``.

        Returns
        -------
        zarr.Array of shape (n_windows, 3, n_sensors, n_sensors)
            The compact images, marked complete; read them with
            :func:`stvlm.image_store.open_images`.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from stvlm import SpatialToImageTransformer
        >>> X = np.random.default_rng(0).normal(size=(5, 12, 3))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     arr = SpatialToImageTransformer().fit(X).write_images(X, tmp + "/im.zarr")
        ...     complete = arr.attrs["complete"]
        >>> arr.shape, complete
        ((5, 3, 3, 3), True)
        """
        from .image_store import write_images

        return write_images(self, X, store, overwrite=overwrite)

    def _checked_windows(self, X):
        """The windows of ``X`` checked against the fit, imputed, and the device."""
        device = self._check_params()
        w = self._windows(X)
        n, k, N = w.X.shape
        if N != self.n_features_in_:
            raise ValueError(
                f"X has {N} features, but SpatialToImageTransformer is expecting {self.n_features_in_} features "
                f"as input (one per sensor: it was fitted with {self.n_features_in_} sensors)."
            )
        if k != self.history_:
            raise ValueError(f"X has windows of {k} steps, but the transformer was fitted on {self.history_}.")
        return w, w.filled(), device

    def _chunks(self, X, device):
        """``(start, end, images)`` of each chunk of windows, in order, computed where joblib says."""
        dtype = _DTYPES[self.dtype]
        n = X.shape[0]
        bounds = [(s, min(n, s + self.chunk_size)) for s in range(0, n, self.chunk_size)]
        bar = progress(len(bounds), self.verbose, "S2I images")
        try:
            if self.n_jobs is None or str(device) != "cpu":
                for s, e in bounds:
                    yield s, e, correlation_channels(X[s:e], self.dtw_scale_, dtype=dtype, device=device,
                                                     check_input=False)
                    bar.update(1)
            else:
                from joblib import Parallel, delayed

                # In order: a lost worker's chunk is recomputed by the backend (Dask reschedules
                # it) or the whole call raises; a chunk is never skipped. Each chunk travels
                # inside its task, in a tuple: joblib's Dask backend would scatter a bare array to
                # one worker, and losing that worker would lose the data with it.
                tasks = [((X[s:e],), self.dtw_scale_, dtype) for s, e in bounds]
                client = _dask_client()
                if client is not None:
                    jobs = _on_dask(client, tasks)
                else:
                    jobs = Parallel(n_jobs=check_n_jobs(self.n_jobs), prefer="threads", return_as="generator")(
                        delayed(_worker_channels)(*t) for t in tasks
                    )
                for (s, e), chunk in zip(bounds, jobs):
                    yield s, e, chunk
                    bar.update(1)
        finally:
            bar.close()

    def _channels(self, X, device):
        dtype = _DTYPES[self.dtype]
        n = X.shape[0]
        out = np.empty((n, 3, X.shape[2], X.shape[2]), dtype=dtype)
        if (self.n_jobs is None or str(device) != "cpu") and dtype in (np.float32, np.float64):
            # In process: the kernels write straight into the output (float16 goes via a copy).
            bar = progress(-(-n // self.chunk_size), self.verbose, "S2I images")
            for s in range(0, n, self.chunk_size):
                e = min(n, s + self.chunk_size)
                correlation_channels(
                    X[s:e], self.dtw_scale_, dtype=dtype, device=device, out=out[s:e], check_input=False
                )
                bar.update(1)
            bar.close()
            return out
        for s, e, chunk in self._chunks(X, device):
            out[s:e] = chunk
        return out


def _dask_client():
    """The client of joblib's active Dask backend (``parallel_config(backend="dask")``), if any."""
    from joblib.parallel import get_active_backend

    backend = get_active_backend()[0]
    return getattr(backend, "client", None) if type(backend).__name__ == "DaskDistributedBackend" else None


def _on_dask(client, tasks):
    """Chunks computed on the cluster of joblib's Dask backend, yielded in order.

    Submitted to the backend's client directly, a few per worker thread at a time: joblib's
    own Dask dispatch (1.5) never returns when every worker that tried a task died, while a
    future raises ``KilledWorker`` once the scheduler gives the task up.
    """
    from collections import deque

    ahead = 2 * max(1, sum(client.nthreads().values()))
    pending, it = deque(), iter(tasks)
    for t in it:
        pending.append(client.submit(_worker_channels, *t, pure=False))
        if len(pending) >= ahead:
            break
    while pending:
        yield pending.popleft().result()
        for t in it:
            pending.append(client.submit(_worker_channels, *t, pure=False))
            break


def _worker_channels(packed, scale, dtype):
    """One chunk ``(X,)`` inside a joblib worker: single-threaded kernels and BLAS."""
    from threadpoolctl import threadpool_limits

    (X,) = packed
    with threadpool_limits(1):
        return correlation_channels(X, scale, dtype=dtype, serial=True, check_input=False)
