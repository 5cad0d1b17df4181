"""Images on a Dask cluster and in a Zarr store (stvlm.image_store): equal to the
in-process images bit for bit, also when a worker dies in the middle of a run; a run that
cannot finish is a clear error and its store is never read as whole."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

from stvlm import SpatialToImageTransformer
from stvlm.image_store import open_images

distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def data():
    X = np.random.default_rng(0).gamma(2.0, 40.0, size=(40, 12, 9))
    X[3, 2:5, 4] = np.nan  # imputed the same way everywhere
    ref = SpatialToImageTransformer(chunk_size=5).fit(X).transform(X).channels  # in process, numba threads
    return X, ref


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _kill_plugin(marker, always=False):
    """A worker plugin that kills its worker process when a task starts.

    ``always=False``: once (it then leaves ``marker``); ``always=True``: as long as
    ``marker`` exists. Disarmed through the file, not by unregistering it, which would
    have to reach workers that may be restarting.
    """

    class KillWorker(distributed.WorkerPlugin):
        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and (marker.exists() if always else not marker.exists()):
                marker.touch()
                os._exit(1)

    return KillWorker()


def _unregister(client, name):
    with contextlib.suppress(Exception):  # a worker may be restarting; the plugin is disarmed anyway
        client.unregister_worker_plugin(name)


# ------------------------------------------------------------------ Zarr, in process
def test_write_images_equals_transform_and_reads_back_lazily(data, tmp_path):
    import dask.array as da

    X, ref = data
    s2i = SpatialToImageTransformer(chunk_size=7).fit(X)
    arr = s2i.write_images(X, tmp_path / "im.zarr")
    assert arr.chunks == (7, 3, 9, 9) and dict(arr.attrs)["complete"] is True
    back = open_images(tmp_path / "im.zarr")
    assert np.array_equal(back[:], ref) and np.array_equal(back[10:20], ref[10:20])
    lazy = da.from_zarr(back)
    assert lazy.chunks[0] == (7, 7, 7, 7, 7, 5) and np.array_equal(lazy[::3].compute(), ref[::3])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        s2i.write_images(X, tmp_path / "im.zarr")
    s2i.set_params(dtype="float16").write_images(X[:4], tmp_path / "im.zarr", overwrite=True)
    assert open_images(tmp_path / "im.zarr").dtype == np.float16


def test_open_images_refuses_what_is_not_a_whole_stvlm_array(tmp_path):
    import zarr

    other = zarr.open_array(store=str(tmp_path / "other.zarr"), mode="w", shape=(2, 3), dtype="f4")
    other[:] = 1
    with pytest.raises(ValueError, match="not an array written by stvlm"):
        open_images(tmp_path / "other.zarr")
    with pytest.raises(ValueError, match="holds no array"):
        open_images(tmp_path / "nothing-here.zarr")


# ------------------------------------------------------------------ on a cluster
def test_images_on_a_dask_cluster_are_bit_identical_even_when_a_worker_dies(data, cluster, tmp_path):
    from joblib import parallel_config

    X, ref = data
    s2i = SpatialToImageTransformer(chunk_size=5, n_jobs=2).fit(X)
    marker = tmp_path / "a-worker-was-killed"
    with distributed.Client(cluster) as client:
        client.register_plugin(_kill_plugin(marker), name="kill-once")
        try:
            with parallel_config(backend="dask"):
                arr = s2i.write_images(X, tmp_path / "im.zarr")
                out = s2i.transform(X)
        finally:
            _unregister(client, "kill-once")
    assert marker.exists()  # a worker did die in the middle of the run
    assert np.array_equal(open_images(tmp_path / "im.zarr")[:], ref) and arr.attrs["chunks_written"] == 8
    assert np.array_equal(out.channels, ref)


def test_a_worker_lost_for_good_is_a_clear_error_and_the_store_stays_incomplete(data, cluster, tmp_path):
    from joblib import parallel_config

    X, _ = data
    s2i = SpatialToImageTransformer(chunk_size=5, n_jobs=2).fit(X)
    cluster.scheduler.allowed_failures, before = 0, cluster.scheduler.allowed_failures
    armed = tmp_path / "armed"
    armed.touch()
    with distributed.Client(cluster) as client:
        client.register_plugin(_kill_plugin(armed, always=True), name="kill-always")
        try:
            with parallel_config(backend="dask"), pytest.raises(RuntimeError, match="KilledWorker") as err:
                s2i.write_images(X, tmp_path / "im.zarr")
            assert "marked incomplete" in str(err.value)
        finally:
            armed.unlink()
            _unregister(client, "kill-always")
            cluster.scheduler.allowed_failures = before
    with pytest.raises(ValueError, match="incomplete"):
        open_images(tmp_path / "im.zarr")
