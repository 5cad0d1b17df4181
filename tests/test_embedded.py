"""The embedded pems08-tail and SZ-taxi data: the package alone is enough.

Run by ``.ci/run`` a second time from an installed wheel with no data folder in reach
and ``STVLM_DATA_DIR`` unset; nothing here reads ``../shared``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from stvlm import datasets
from stvlm.datasets import _embedded, _files, load_adjacency, load_protocol


@pytest.fixture()
def no_data_folder(monkeypatch):
    """Nothing but the package: no $STVLM_DATA_DIR, no shared/data folder anywhere above."""
    monkeypatch.delenv("STVLM_DATA_DIR", raising=False)
    monkeypatch.setattr(_files, "_walk_up_candidates", lambda start: iter(()))
    with pytest.raises(FileNotFoundError):
        datasets.data_home()


def test_pems08_tail_protocol_runs_from_the_package_alone(no_data_folder):
    p = load_protocol("pems08-tail")
    assert p.fit_series.shape == (3578, 170) and p.test_X.shape == (3567, 12, 170)
    assert p.start_time == "2016-08-07T03:40" and p.first_time_index == 44
    assert round(p.mean, 2) == 232.44 and round(p.std, 2) == 147.80  # the data README's figures
    last = p.evaluate(np.repeat(p.test_X[:, -1:], 12, axis=1))
    # The data README's reference figures of the last-value forecast.
    assert (round(last["MAE"], 2), round(last["RMSE"], 2), round(last["MAPE"], 2)) == (25.28, 38.63, 15.62)


def test_sz_taxi_protocol_runs_from_the_package_alone(no_data_folder):
    p = load_protocol("sz-taxi")
    assert p.fit_series.shape == (2373, 156) and p.test_X.shape == (592, 12, 156)
    series = _embedded.embedded_series("sz-taxi")
    assert series.shape == (2976, 156) and series.dtype == np.float64
    # The data README: 24.8 % exact zeros, and float noise around 0 that is not a zero.
    assert round(float((series == 0).mean()) * 100, 1) == 24.8
    assert ((series > 0) & (series < 1e-6)).any()


def test_embedded_values_are_exact_flow_counts():
    flow = _embedded.embedded_series("pems08-tail")
    assert flow.shape == (7156, 170) and flow.dtype == np.float64
    assert flow.min() == 0 and flow.max() == 1147 and round(float(flow.mean()), 1) == 231.9
    assert np.array_equal(flow, np.round(flow))
    flow[0, 0] = -1.0  # each call gives a fresh copy: the package's copy is never changed
    assert _embedded.embedded_series("pems08-tail")[0, 0] != -1.0


def test_embedded_graphs_load():
    path = _embedded.embedded_graph_path("pems08-tail")
    rows = path.read_text().splitlines()
    assert rows[0] == "from,to,cost" and len(rows) == 1 + 295  # the benchmark's 295 edges
    A = load_adjacency(path, n_sensors=170, symmetric=False)
    pairs = {tuple(int(float(v)) for v in r.split(",")[:2]) for r in rows[1:]}
    assert A.shape == (170, 170) and A.sum() == len(pairs) and all(A[i, j] == 1 for i, j in pairs)
    S = load_adjacency(_embedded.embedded_graph_path("sz-taxi"))
    assert S.shape == (156, 156) and (S == S.T).all()


def test_env_var_folder_with_the_file_overrides_the_embedded_copy(tmp_path, monkeypatch):
    (tmp_path / "pems08").mkdir()
    mine = np.full((7156, 3, 1), 7.0)
    np.savez(tmp_path / "pems08" / "pems08_flow_tail.npz", data=mine)
    monkeypatch.setenv("STVLM_DATA_DIR", str(tmp_path))
    p = load_protocol("pems08-tail")
    assert p.fit_series.shape == (3578, 3) and (p.fit_series == 7.0).all()
    # ... and an explicit data_dir overrides too, here the same folder.
    monkeypatch.delenv("STVLM_DATA_DIR")
    assert load_protocol("pems08-tail", data_dir=tmp_path).fit_series.shape == (3578, 3)


def test_env_var_folder_without_the_file_falls_back_to_the_embedded_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("STVLM_DATA_DIR", str(tmp_path))  # e.g. a folder that only holds ett/
    assert load_protocol("pems08-tail").fit_series.shape == (3578, 170)


def test_explicit_data_dir_without_the_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="pems08_flow_tail.npz"):
        load_protocol("pems08-tail", data_dir=tmp_path)


def test_a_damaged_embedded_copy_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    shutil.copytree(_embedded._DIR, folder)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    manifest["pems08-tail"]["sha256"] = "0" * 64
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    (folder / "sz_taxi.npy.xz").write_bytes(b"garbage")
    monkeypatch.setattr(_embedded, "_DIR", folder)
    for f in (_embedded._read, _embedded._manifest):
        f.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="damaged"):
            _embedded.embedded_series("pems08-tail")
        with pytest.raises(RuntimeError, match="cannot be read"):
            _embedded.embedded_series("sz-taxi")
    finally:
        monkeypatch.undo()
        for f in (_embedded._read, _embedded._manifest):
            f.cache_clear()
    assert _embedded.embedded_series("pems08-tail").shape == (7156, 170)


def test_traffic_protocols_refuse_other_window_lengths():
    with pytest.raises(ValueError, match="12 steps in and 12 out"):
        load_protocol("pems08-tail", horizon=24)
    with pytest.raises(ValueError, match="unknown protocol"):
        load_protocol("pems09")
