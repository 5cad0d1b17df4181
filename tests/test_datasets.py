"""Tests of stvlm.datasets: data folder lookup, loaders, and the benchmark protocols
pinned on the real data (skipped only where the data folder cannot be found)."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from stvlm import datasets
from stvlm.datasets import (
    PROTOCOLS,
    Protocol,
    data_home,
    load_adjacency,
    load_pems,
    load_protocol,
)
from stvlm.metrics import masked_mae
from stvlm.windows import make_windows


# --------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def home() -> pathlib.Path:
    try:
        return data_home()
    except FileNotFoundError as exc:  # only where the shared data folder is absent
        pytest.skip(f"real data not found: {exc}")


@pytest.fixture(scope="module")
def pems08():
    return load_protocol("pems08-tail")  # the embedded copy: no data folder needed


def _raw(name, rel):
    """The raw series: the data folder's file where one is in reach, else the embedded copy
    (the two are equal: test_embedded_copy_equals_the_data_folder_files)."""
    try:
        return np.load(data_home() / rel)["data"][:, :, 0]
    except FileNotFoundError:
        from stvlm.datasets._embedded import embedded_series

        return embedded_series(name)


@pytest.fixture(scope="module")
def pems08_raw():
    return _raw("pems08-tail", "pems08/pems08_flow_tail.npz")


@pytest.fixture(scope="module")
def sz():
    return load_protocol("sz-taxi")


@pytest.fixture(scope="module")
def sz_raw():
    return _raw("sz-taxi", "sz_taxi/sz_taxi.npz")


# -------------------------------------------------------------------- data_home
def test_data_home_explicit_dir(tmp_path):
    assert data_home(tmp_path) == tmp_path.resolve()
    assert data_home(str(tmp_path)) == tmp_path.resolve()


def test_data_home_explicit_missing_dir_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="STVLM_DATA_DIR"):
        data_home(tmp_path / "nope")


def test_data_home_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("STVLM_DATA_DIR", str(tmp_path))
    assert data_home() == tmp_path.resolve()


def test_data_home_finds_sibling_shared_data_from_cwd_and_module(tmp_path, monkeypatch):
    # CI layout: the repo cloned to <tmp>/x, the data at <tmp>/shared/data.
    (tmp_path / "shared" / "data").mkdir(parents=True)
    repo = tmp_path / "x"
    (repo / "stvlm").mkdir(parents=True)
    monkeypatch.delenv("STVLM_DATA_DIR", raising=False)
    monkeypatch.chdir(repo)
    assert data_home() == (tmp_path / "shared" / "data").resolve()
    # from the module's location alone (cwd somewhere unrelated)
    monkeypatch.setattr(datasets._files, "__file__", str(repo / "stvlm" / "datasets" / "_files.py"))
    monkeypatch.chdir("/")
    if pathlib.Path("/shared/data").is_dir():  # pragma: no cover
        pytest.skip("/shared/data exists on this machine")
    assert data_home() == (tmp_path / "shared" / "data").resolve()


def test_data_home_not_found_message(tmp_path, monkeypatch):
    monkeypatch.setenv("STVLM_DATA_DIR", str(tmp_path / "env_dir"))
    monkeypatch.setattr(
        datasets._files, "_walk_up_candidates", lambda start: iter([tmp_path / "a" / "shared" / "data"])
    )
    with pytest.raises(FileNotFoundError) as err:
        data_home()
    msg = str(err.value)
    assert "STVLM_DATA_DIR" in msg
    assert str(tmp_path / "env_dir") in msg
    assert str(tmp_path / "a" / "shared" / "data") in msg
    assert "STSGCN" in msg and "ASTGCN" in msg and "T-GCN" in msg


# -------------------------------------------------------------------- load_pems
def test_load_pems_3d_2d_and_feature(tmp_path):
    data = np.arange(60.0).reshape(5, 4, 3)
    f = tmp_path / "p.npz"
    np.savez(f, data=data)
    out = load_pems(f)
    assert out.shape == (5, 4) and out.dtype == np.float64
    np.testing.assert_array_equal(out, data[:, :, 0])
    np.testing.assert_array_equal(load_pems(f, feature=2), data[:, :, 2])
    g = tmp_path / "q.npz"
    np.savez(g, data=data[:, :, 1].astype(np.float32))
    np.testing.assert_array_equal(load_pems(g), data[:, :, 1])
    with pytest.raises(ValueError, match="feature must be 0"):
        load_pems(g, feature=1)


def test_load_pems_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_pems(tmp_path / "PEMS08.npz")
    assert str(tmp_path / "PEMS08.npz") in str(err.value)
    assert "STVLM_DATA_DIR" in str(err.value) and "STSGCN" in str(err.value)

    f = tmp_path / "bad_key.npz"
    np.savez(f, flow=np.ones((4, 3, 1)))
    with pytest.raises(ValueError, match="'data'") as err:
        load_pems(f)
    assert "flow" in str(err.value)

    f = tmp_path / "ndim.npz"
    np.savez(f, data=np.ones(4))
    with pytest.raises(ValueError, match=r"\(T, N, C\)"):
        load_pems(f)
    np.savez(f, data=np.ones((2, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"\(T, N, C\)"):
        load_pems(f)

    f = tmp_path / "ok.npz"
    np.savez(f, data=np.ones((4, 3, 2)))
    with pytest.raises(ValueError, match="out of range"):
        load_pems(f, feature=2)
    with pytest.raises(ValueError):
        load_pems(f, feature=-1)
    with pytest.raises(TypeError):
        load_pems(f, feature=1.0)

    f = tmp_path / "obj.npz"
    np.savez(f, data=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="pickle|could not read"):
        load_pems(f)

    f = tmp_path / "text.npz"
    f.write_text("not numpy")
    with pytest.raises(ValueError, match="could not read"):
        load_pems(f)


def test_load_pems_real(home, pems08_raw):
    out = load_pems(home / "pems08" / "pems08_flow_tail.npz")
    assert out.shape == (7156, 170)
    np.testing.assert_array_equal(out, pems08_raw)


# --------------------------------------------------------------- load_adjacency
def _write(path, text):
    path.write_text(text)
    return path


def test_adjacency_edge_list_binary_weighted_directed(tmp_path):
    f = _write(tmp_path / "d.csv", "from,to,cost\n0,1,2.0\n1,2,4.0\n1,0,1.5\n0,1,3.0\n")
    A = load_adjacency(f)
    np.testing.assert_array_equal(A, [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    W = load_adjacency(f, weighted=True, n_sensors=4)
    assert W.shape == (4, 4)
    assert W[0, 1] == W[1, 0] == 1.5  # smallest cost over duplicates and directions
    assert W[1, 2] == W[2, 1] == 4.0
    D = load_adjacency(f, weighted=True, symmetric=False)
    assert D[0, 1] == 2.0 and D[1, 0] == 1.5 and D[2, 1] == 0.0


def test_adjacency_formats_and_errors(tmp_path):
    # headerless dense matrix
    f = _write(tmp_path / "m.csv", "0,1,0\n0,0,2\n0,0,0\n")
    np.testing.assert_array_equal(load_adjacency(f, symmetric=False), [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(load_adjacency(f, weighted=True), [[0, 1, 0], [1, 0, 2], [0, 2, 0]])
    with pytest.raises(ValueError, match="n_sensors"):
        load_adjacency(f, n_sensors=4)
    # headerless edge list (not square, 3 columns)
    f = _write(tmp_path / "e.csv", "0,1,1.0\n1,2,1.0\n2,3,1.0\n3,4,1.0\n")
    assert load_adjacency(f).shape == (5, 5)
    # two-column edge list
    f = _write(tmp_path / "e2.csv", "from,to\n0,2\n")
    assert load_adjacency(f).sum() == 2.0
    with pytest.raises(ValueError, match="cost column"):
        load_adjacency(f, weighted=True)
    with pytest.raises(ValueError, match="n_sensors=2"):
        load_adjacency(f, n_sensors=2)
    f = _write(tmp_path / "neg.csv", "from,to\n-1,2\n")
    with pytest.raises(ValueError, match="non-negative integer"):
        load_adjacency(f)
    f = _write(tmp_path / "ids.csv", "from,to\n100,200\n")
    ids = _write(tmp_path / "ids.txt", "200\r\n100\r\n300\r\n")
    np.testing.assert_array_equal(load_adjacency(f, id_file=ids), [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    ids2 = _write(tmp_path / "ids2.txt", "100\n")
    with pytest.raises(ValueError, match="not listed"):
        load_adjacency(f, id_file=ids2)
    f = _write(tmp_path / "rag.csv", "0,1\n0,1,2\n")
    with pytest.raises(ValueError, match="different lengths"):
        load_adjacency(f)
    with pytest.raises(FileNotFoundError, match="STVLM_DATA_DIR"):
        load_adjacency(tmp_path / "missing.csv")


def test_adjacency_real_pems08(home):
    f = home / "pems08" / "distance.csv"
    assert len(f.read_text().strip().splitlines()) == 296  # header + 295 edge rows
    A = load_adjacency(f)
    assert A.shape == (170, 170)
    np.testing.assert_array_equal(A, A.T)
    assert set(np.unique(A)) == {0.0, 1.0}
    # 295 rows hold 18 exact duplicates and 3 edges listed in both directions:
    # 274 undirected edges -> 548 nonzeros; no self-loops, no isolated sensor.
    assert int((A != 0).sum()) == 548
    assert np.trace(A) == 0 and (A.sum(1) > 0).all()
    W = load_adjacency(f, weighted=True, n_sensors=170)
    np.testing.assert_array_equal(W != 0, A != 0)
    assert W[9, 153] == W[153, 9] == pytest.approx(310.6)


def test_adjacency_real_pems03_with_ids(home):
    g = home / "graphs"
    A = load_adjacency(g / "pems03_distance.csv", id_file=g / "pems03_sensor_ids.txt")
    assert A.shape == (358, 358)
    np.testing.assert_array_equal(A, A.T)
    # 547 edges, one a self-loop of sensor 314013 (kept on the diagonal): 546*2 + 1
    assert int((A != 0).sum()) == 1093
    assert np.trace(A) == 1.0
    # 314013 is node k where it sits in the id file
    ids = [i.strip() for i in (g / "pems03_sensor_ids.txt").read_text().split()]
    k = ids.index("314013")
    assert A[k, k] == 1.0


def test_adjacency_real_pems03_ids_needed(home):
    g = home / "graphs"
    # Without the id file the sensor ids would be read as indices up to 318844.
    with pytest.raises(ValueError, match="n_sensors"):
        load_adjacency(g / "pems03_distance.csv", n_sensors=358)


def test_adjacency_real_pems04_07(home):
    g = home / "graphs"
    A4 = load_adjacency(g / "pems04_distance.csv")
    A7 = load_adjacency(g / "pems07_distance.csv")
    assert A4.shape == (307, 307) and int((A4 != 0).sum()) == 680
    assert A7.shape == (883, 883) and int((A7 != 0).sum()) == 1732


def test_adjacency_real_sz_dense(home):
    f = home / "sz_taxi" / "sz_adj.csv"
    raw = np.loadtxt(f, delimiter=",")
    A = load_adjacency(f, symmetric=False)
    assert A.shape == (156, 156)
    np.testing.assert_array_equal(A, raw)
    S = load_adjacency(f)
    np.testing.assert_array_equal(S, np.maximum(raw, raw.T))
    np.testing.assert_array_equal(S, S.T)


# -------------------------------------------------------- pems08-tail protocol
def test_pems08_shapes_rows_and_stats(pems08, pems08_raw):
    p = pems08
    assert isinstance(p, Protocol) and p.name == "pems08-tail"
    assert p.fit_series.shape == (3578, 170) and p.fit_series.dtype == np.float64
    assert p.test_X.shape == (3567, 12, 170)
    assert p.test_y.shape == (3567, 12, 170)
    np.testing.assert_array_equal(p.fit_series, pems08_raw[:3578])
    np.testing.assert_array_equal(p.test_X[0], pems08_raw[3566:3578])
    np.testing.assert_array_equal(p.test_y[0], pems08_raw[3578:3590])
    np.testing.assert_array_equal(p.test_X[-1], pems08_raw[7132:7144])
    np.testing.assert_array_equal(p.test_y[-1], pems08_raw[7144:7156])
    assert p.test_start == 3566
    np.testing.assert_array_equal(p.test_rows[[0, -1]], [3566, 7132])
    assert p.mean == pytest.approx(232.44, abs=0.005)
    assert p.std == pytest.approx(147.80, abs=0.005)
    np.testing.assert_array_equal(p.train_series, p.fit_series)
    assert p.val_series is None
    assert p.steps_per_day == 288 and p.first_time_index == 44
    assert p.start_time == "2016-08-07T03:40"
    assert p.time_of_day(0) == 44 and p.time_of_day(288 - 44) == 0
    assert p.metric_kwargs == {"null_value": 0.0, "threshold": None, "mape_threshold": None}
    # nothing fitted is a test target
    assert p.fit_series.shape[0] <= p.test_start + p.history


def test_pems08_last_value_pin(pems08):
    """THE PROTOCOL PIN: last-value forecast, zeros masked (data/README.md)."""
    p = pems08
    y_pred = np.repeat(p.test_X[:, -1:, :], 12, axis=1)
    res = p.evaluate(y_pred)
    assert res["MAE"] == pytest.approx(25.28, abs=0.005)
    assert res["RMSE"] == pytest.approx(38.63, abs=0.005)
    assert res["MAPE"] == pytest.approx(15.62, abs=0.005)
    assert set(res["horizons"]) == {3, 6, 12}
    assert res["horizons"][3]["MAE"] < res["horizons"][6]["MAE"] < res["horizons"][12]["MAE"]
    assert res["horizons"][12]["MAE"] == pytest.approx(
        masked_mae(p.test_y[:, 11], y_pred[:, 11]), rel=1e-12
    )


def test_pems08_historical_average_pin(pems08):
    """Historical average by time of day: per sensor and time-of-day slot (288), the
    plain mean over the fit period, zeros included. Gives 32.4681, 50.4449, 23.9882 %;
    data/README.md quotes 32.47, 50.45, 23.99 % (its 50.45 is 50.4449 rounded via
    50.445). Averaging without the zeros gives 32.41, 50.37, 24.36 %: not it."""
    p = pems08
    slots = p.time_of_day(np.arange(p.fit_series.shape[0]))
    ha = np.stack([p.fit_series[slots == s].mean(axis=0) for s in range(p.steps_per_day)])
    target_rows = p.test_rows[:, None] + p.history + np.arange(p.horizon)[None, :]
    y_pred = ha[p.time_of_day(target_rows)]
    res = p.evaluate(y_pred)
    assert res["MAE"] == pytest.approx(32.4681, abs=1e-3)
    assert res["RMSE"] == pytest.approx(50.4449, abs=1e-3)
    assert res["MAPE"] == pytest.approx(23.9882, abs=1e-3)
    assert res["MAE"] == pytest.approx(32.47, abs=0.005)
    assert res["RMSE"] == pytest.approx(50.45, abs=0.006)
    assert res["MAPE"] == pytest.approx(23.99, abs=0.005)


def test_pems08_evaluate_shape_error(pems08):
    with pytest.raises(ValueError, match="shape of test_y"):
        pems08.evaluate(pems08.test_X[:, :6])


# ------------------------------------------------------------ sz-taxi protocol
def test_sz_taxi_split(sz, sz_raw):
    p = sz
    T, N = sz_raw.shape
    assert (T, N) == (2976, 156)
    n = T - 23
    n_train, n_val = int(0.6 * n), int(0.2 * n)
    assert (n, n_train, n_val, n - n_train - n_val) == (2953, 1771, 590, 592)
    assert p.test_X.shape == (592, 12, 156) and p.test_y.shape == (592, 12, 156)
    assert p.test_start == n_train + n_val == 2361
    X_all, y_all = make_windows(sz_raw, 12, 12)
    np.testing.assert_array_equal(p.test_X, X_all[n_train + n_val :])
    np.testing.assert_array_equal(p.test_y, y_all[n_train + n_val :])
    # no fitted row is a test target: fit_series ends right before the first test target
    assert p.fit_series.shape == (2373, 156)
    np.testing.assert_array_equal(p.fit_series, sz_raw[:2373])
    first_target_row = p.test_start + p.history
    assert p.fit_series.shape[0] <= first_target_row
    target_rows = p.test_rows[:, None] + p.history + np.arange(p.horizon)
    assert target_rows.min() == first_target_row
    # the training windows lie whole in the training part, which gives the scaling
    assert p.n_train_rows == n_train - 1 + 24 == 1794
    np.testing.assert_array_equal(p.train_series, sz_raw[:1794])
    assert p.mean == pytest.approx(sz_raw[:1794].mean())
    assert p.std == pytest.approx(sz_raw[:1794].std())
    # validation windows that do not touch test targets
    Xv, yv = make_windows(p.val_series, 12, 12)
    assert Xv.shape[0] == 579
    np.testing.assert_array_equal(Xv, X_all[n_train : n_train + 579])
    np.testing.assert_array_equal(yv, y_all[n_train : n_train + 579])
    assert p.steps_per_day == 96 and p.first_time_index == 0
    assert p.metric_kwargs == {"null_value": 0.0, "threshold": 1e-6, "mape_threshold": 1.0}


def test_sz_taxi_masks(sz):
    p = sz
    y_pred = np.repeat(p.test_X[:, -1:], 12, axis=1)
    res = p.evaluate(y_pred)
    t = p.test_y
    keep = np.abs(t) >= 1e-6
    assert res["MAE"] == pytest.approx(np.abs(y_pred - t)[keep].mean())
    keep1 = t >= 1.0
    assert res["MAPE"] == pytest.approx(100 * (np.abs(y_pred - t)[keep1] / t[keep1]).mean())
    assert 0 < res["MAPE"] < 100  # an exact ==0 mask would let MAPE explode


# --------------------------------------------------------------- protocol misc
def test_unknown_protocol():
    with pytest.raises(ValueError) as err:
        load_protocol("pems09")
    for name in PROTOCOLS:
        assert name in str(err.value)


def test_protocol_wrong_length_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="STSGCN"):
        load_protocol("pems08-tail", data_dir=tmp_path)
    os.makedirs(tmp_path / "sz_taxi")
    np.savez(tmp_path / "sz_taxi" / "sz_taxi.npz", data=np.ones((100, 3, 1)))
    with pytest.raises(ValueError, match="2976"):
        load_protocol("sz-taxi", data_dir=tmp_path)


def test_protocol_synthetic_is_frozen(tmp_path):
    os.makedirs(tmp_path / "sz_taxi")
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 60, size=(2976, 2, 1))
    np.savez(tmp_path / "sz_taxi" / "sz_taxi.npz", data=data)
    p = load_protocol("sz-taxi", data_dir=tmp_path)
    assert p.test_X.shape == (592, 12, 2)
    assert "sz-taxi" in repr(p)
    with pytest.raises(AttributeError):
        p.name = "x"


def test_n_nodes_is_the_deprecated_name_of_n_sensors(tmp_path):
    f = tmp_path / "edges.csv"
    f.write_text("from,to,cost\n0,1,1.0\n")
    with pytest.warns(FutureWarning, match="n_sensors"):
        A = load_adjacency(f, n_nodes=3)
    np.testing.assert_array_equal(A, load_adjacency(f, n_sensors=3))
    assert A.shape == (3, 3)


# ------------------------------------------------------------------ the embedded copy
def test_embedded_copy_equals_the_data_folder_files(home):
    from stvlm.datasets._embedded import embedded_graph_path, embedded_series

    assert np.array_equal(embedded_series("pems08-tail"), load_pems(home / "pems08" / "pems08_flow_tail.npz"))
    assert np.array_equal(embedded_series("sz-taxi"), load_pems(home / "sz_taxi" / "sz_taxi.npz"))
    assert embedded_graph_path("pems08-tail").read_bytes() == (home / "pems08" / "distance.csv").read_bytes()
    assert embedded_graph_path("sz-taxi").read_bytes() == (home / "sz_taxi" / "sz_adj.csv").read_bytes()


def test_protocols_from_the_embedded_copy_equal_those_from_the_files(home):
    for name in ("pems08-tail", "sz-taxi"):
        a, b = load_protocol(name), load_protocol(name, data_dir=home)
        for attr in ("fit_series", "test_X", "test_y"):
            np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
        assert (a.mean, a.std, a.start_time) == (b.mean, b.std, b.start_time)

