"""Images too large for memory: computed chunk by chunk (on a Dask cluster if one is set)
into a Zarr array on disk or object storage, and read back lazily.

A PEMS07-size series (883 sensors, 28,224 steps) has 28k windows whose compact
``3 x 883 x 883`` float32 images take 263 GB. :func:`write_images` never holds more than
the chunks in flight: each chunk of ``chunk_size`` windows is computed where
``joblib.parallel_config`` sends it (threads, processes, or the workers of a
``dask.distributed`` cluster with ``backend="dask"``) and written to the store as it
arrives. The store is marked complete only after its last chunk; :func:`open_images`
refuses a store that is not, so a run that failed half-way (a worker lost for good, a
full disk, Ctrl-C) is never read as a whole.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["open_images", "write_images"]

_FORMAT = "stvlm-correlation-images/1"


def _zarr():
    try:
        import zarr
    except ImportError as exc:  # pragma: no cover - zarr is an optional dependency
        raise ImportError(
            "writing images to a store needs zarr: pip install 'stvlm[dask]' (or pip install zarr)."
        ) from exc
    return zarr


def write_images(transformer, X, store, *, overwrite=False):
    """Compute the correlation images of ``X`` chunk by chunk into a Zarr array.

    Parameters
    ----------
    transformer : SpatialToImageTransformer
        A fitted transformer; its ``chunk_size`` sets the store's chunks and its
        ``n_jobs`` / ``joblib.parallel_config`` where they are computed.
    X : array-like of shape (n_windows, history, n_sensors) or (T, n_sensors)
        Windows, or a series cut into windows as :meth:`~SpatialToImageTransformer.transform` does.
    store : str, path-like or zarr store
        Where the array goes (a folder, or any store zarr accepts, e.g. an fsspec URL).
    overwrite : bool, default=False
        Replace an existing array at ``store``; otherwise an existing one is an error.

    Returns
    -------
    zarr.Array of shape (n_windows, 3, n_sensors, n_sensors)
        The compact images (pad them to ``image_size`` when read, as
        :class:`~stvlm.CorrelationImages` does), chunked by ``chunk_size`` windows, with
        attributes ``complete`` (True), ``dtw_scale``, ``image_size``, ``history``.

    Raises
    ------
    FileExistsError
        If ``store`` already holds an array and ``overwrite`` is False.
    ValueError
        As :meth:`~SpatialToImageTransformer.transform`.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from stvlm import SpatialToImageTransformer
    >>> from stvlm.image_store import open_images
    >>> X = np.random.default_rng(0).normal(size=(10, 12, 4))
    >>> s2i = SpatialToImageTransformer(chunk_size=4).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     arr = s2i.write_images(X, tmp + "/images.zarr")
    ...     back = open_images(tmp + "/images.zarr")
    ...     same = bool(np.array_equal(back[:], s2i.transform(X).channels))
    >>> arr.shape, arr.chunks, same
    ((10, 3, 4, 4), (4, 3, 4, 4), True)
    """
    zarr = _zarr()
    check_is_fitted(transformer, "dtw_scale_")
    w, filled, device = transformer._checked_windows(X)
    n, _, N = w.X.shape
    dtype = np.dtype(transformer.dtype)
    try:
        arr = zarr.open_array(
            store=store, mode="w" if overwrite else "w-", shape=(n, 3, N, N),
            chunks=(min(n, transformer.chunk_size), 3, N, N), dtype=dtype, fill_value=np.nan,
        )
    except (FileExistsError, zarr.errors.ContainsArrayError, zarr.errors.ContainsGroupError) as exc:
        raise FileExistsError(f"{store!r} already holds an array or group; pass overwrite=True to replace it.") from exc
    arr.attrs.update(
        format=_FORMAT, complete=False, chunks_written=0, dtw_scale=float(transformer.dtw_scale_),
        image_size=int(transformer.image_size_), history=int(transformer.history_), n_sensors=int(N),
    )
    done, total = 0, -(-n // arr.chunks[0])
    try:
        for s, e, chunk in transformer._chunks(filled, device):
            arr[s:e] = chunk
            done += 1
            arr.attrs["chunks_written"] = done
    except Exception as exc:
        raise RuntimeError(
            f"computing the images failed after {done} of {total} chunks ({type(exc).__name__}: {exc}); the "
            f"array at {store!r} is marked incomplete and open_images refuses it. Run write_images again "
            "with overwrite=True."
        ) from exc
    if done != total:  # pragma: no cover - the generator yields every chunk or raises
        raise RuntimeError(f"only {done} of {total} chunks of images were computed; the store is incomplete.")
    arr.attrs.update(complete=True)
    return arr


def open_images(store):
    """Open images written by :func:`write_images`, lazily, after checking they are complete.

    Parameters
    ----------
    store : str, path-like or zarr store
        Where :func:`write_images` wrote them.

    Returns
    -------
    zarr.Array
        Read-only; slice it (``arr[i:j]``) or wrap it in ``dask.array.from_zarr``.

    Raises
    ------
    ValueError
        If the store holds no stvlm images, or a run that did not finish (the message
        says how many chunks were written).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from stvlm import SpatialToImageTransformer
    >>> from stvlm.image_store import open_images
    >>> X = np.random.default_rng(0).normal(size=(6, 12, 3))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = SpatialToImageTransformer().fit(X).write_images(X, tmp + "/im.zarr")
    ...     open_images(tmp + "/im.zarr").shape
    (6, 3, 3, 3)
    """
    zarr = _zarr()
    try:
        arr = zarr.open_array(store=store, mode="r")
    except (FileNotFoundError, zarr.errors.NodeTypeValidationError, KeyError) as exc:
        raise ValueError(f"{store!r} holds no array of correlation images ({exc}).") from exc
    attrs = dict(arr.attrs)
    if attrs.get("format") != _FORMAT:
        raise ValueError(f"{store!r} is not an array written by stvlm's write_images.")
    if not attrs.get("complete"):
        total = -(-arr.shape[0] // arr.chunks[0])
        raise ValueError(
            f"the images at {store!r} are incomplete: the run that wrote them did not finish "
            f"({attrs.get('chunks_written', 0)} of {total} chunks recorded). Write them again."
        )
    return arr
