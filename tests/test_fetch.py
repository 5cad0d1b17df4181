"""The fetchers (stvlm.datasets.fetch_pems / fetch_ett) against a local HTTP server on
127.0.0.1: success, cache hit, checksum mismatch, truncated download, 404, no network,
content checks, manual copies. Never the internet: every URL is rewritten to the server."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading

import numpy as np
import pandas as pd
import pytest

from stvlm.datasets import FetchError, fetch_ett, fetch_pems, get_data_home, load_protocol
from stvlm.datasets import _ett, _pems_full
from stvlm.datasets import load_adjacency
from stvlm.datasets._embedded import embedded_graph_path, embedded_series

TIMEOUT = 5.0  # seconds a fetch waits on the local server before giving up


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# ------------------------------------------------------------------ the server
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    log: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.log.append(self.path)
        kind, body = self.routes.get(self.path, ("404", b""))
        if kind == "404":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        # "truncated": announce the whole file, send half of it, close the connection.
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if kind == "truncated" else body)
        if kind == "truncated":
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    """A local server; ``server.serve(path, body, kind)`` publishes a file, ``server.log`` lists requests."""
    routes, log = {}, []
    handler = type("H", (_Handler,), {"routes": routes, "log": log})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.timeout = TIMEOUT
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    class S:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"

        @staticmethod
        def serve(path, body, kind="ok"):
            routes[path] = (kind, body)

    S.log = log
    try:
        yield S
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)
    assert len(log) <= 10  # each test makes a handful of requests at most


@pytest.fixture(scope="module")
def full_pems08():
    """A stand-in PEMS08.npz: random rows before row 10700, the real pems08-tail after."""
    rng = np.random.default_rng(0)
    tail = embedded_series("pems08-tail")
    data = rng.integers(0, 900, size=(17856, 170, 3)).astype(np.float64)
    data[10700:, :, 0] = tail
    buf = io.BytesIO()
    np.savez(buf, data=data)
    return data, buf.getvalue()


@pytest.fixture()
def pems08_site(server, full_pems08, monkeypatch, tmp_path):
    """The server publishes the stand-in PEMS08 and a graph; the registry points at it."""
    _, body = full_pems08
    graph = embedded_graph_path("pems08-tail").read_bytes()  # the real graph: its registry id stays
    server.serve("/PEMS08/PEMS08.npz", body)
    server.serve("/PEMS08/PEMS08.csv", graph)
    monkeypatch.setattr(_pems_full, "_REPO", server.url)
    entry = dict(_pems_full.PEMS_DATASETS["PEMS08"], sha1=git_sha1(body))
    monkeypatch.setitem(_pems_full.PEMS_DATASETS, "PEMS08", entry)
    empty = tmp_path / "no-local-copy"
    empty.mkdir()
    return dict(cache=tmp_path / "cache", local=empty, body=body)


def _fetch(site, **kw):
    return fetch_pems("PEMS08", data_dir=site["local"], data_home=site["cache"], timeout=TIMEOUT, verbose=0, **kw)


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------ PEMS
def test_fetch_pems_downloads_verifies_and_never_downloads_twice(pems08_site, server, full_pems08):
    flow = _fetch(pems08_site)
    np.testing.assert_array_equal(flow, full_pems08[0][:, :, 0])
    assert server.log == ["/PEMS08/PEMS08.npz"]
    cached = pems08_site["cache"] / "pems08" / "PEMS08.npz"
    assert cached.read_bytes() == pems08_site["body"]
    # Second call: read from the cache, no request.
    again, adjacency = _fetch(pems08_site, return_graph=True)
    np.testing.assert_array_equal(again, flow)
    assert server.log == ["/PEMS08/PEMS08.npz", "/PEMS08/PEMS08.csv"]  # only the graph was new
    np.testing.assert_array_equal(adjacency, load_adjacency(embedded_graph_path("pems08-tail"), n_sensors=170))
    _fetch(pems08_site, return_graph=True)
    assert len(server.log) == 2
    assert _leftovers(pems08_site["cache"]) == ["PEMS08.npz", "distance.csv"]  # no partial files


def test_full_pems08_protocol_has_the_canonical_split_and_the_tail_test_windows(pems08_site, full_pems08):
    _fetch(pems08_site)
    p = load_protocol("pems08", data_dir=pems08_site["cache"])
    tail = load_protocol("pems08-tail")
    # The canonical 6:2:2 windows of PEMS08: 10,700 / 3,566 / 3,567.
    assert p.test_start == 10700 + 3566 and p.test_X.shape == (3567, 12, 170)
    np.testing.assert_array_equal(p.test_X, tail.test_X)
    np.testing.assert_array_equal(p.test_y, tail.test_y)
    flow = full_pems08[0][:, :, 0]
    assert p.fit_series.shape[0] == 10700 + 3566 + 12
    assert p.n_train_rows == 10700 + 23 and p.mean == pytest.approx(flow[: 10700 + 23].mean())
    assert p.null_value == 0.0 and p.start_time == "2016-07-01T00:00" and p.first_time_index == 0
    assert p.val_series.shape[0] == 3566 + 12  # up to the first test target, as sz-taxi


def test_checksum_mismatch_is_an_error_and_leaves_no_file(pems08_site, server, monkeypatch):
    server.serve("/PEMS08/PEMS08.npz", pems08_site["body"][:-10] + b"0123456789")  # same size, other bytes
    with pytest.raises(FetchError, match="not the expected file") as err:
        _fetch(pems08_site)
    msg = str(err.value)
    assert server.url + "/PEMS08/PEMS08.npz" in msg and "pems08/PEMS08.npz" in msg and "git hash-object" in msg
    assert _leftovers(pems08_site["cache"]) == []


def test_truncated_download_is_an_error_and_leaves_no_file(pems08_site, server):
    server.serve("/PEMS08/PEMS08.npz", pems08_site["body"], kind="truncated")
    with pytest.raises(FetchError, match="truncated|broke off") as err:
        _fetch(pems08_site)
    assert server.url in str(err.value)
    assert _leftovers(pems08_site["cache"]) == []


def test_http_404_is_an_error_naming_the_url(pems08_site, server):
    server.serve("/PEMS08/PEMS08.npz", b"", kind="404")
    with pytest.raises(FetchError, match="404") as err:
        _fetch(pems08_site)
    assert f"{server.url}/PEMS08/PEMS08.npz" in str(err.value) and "put it at" in str(err.value)
    assert _leftovers(pems08_site["cache"]) == []


def test_no_network_is_an_error_naming_the_url_and_a_manual_copy(pems08_site, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(_pems_full, "_REPO", f"http://127.0.0.1:{port}")
    with pytest.raises(FetchError, match="no connection") as err:
        _fetch(pems08_site)
    assert f"127.0.0.1:{port}/PEMS08/PEMS08.npz" in str(err.value)
    assert str(pems08_site["cache"] / "pems08" / "PEMS08.npz") in str(err.value)


def test_a_pems08_whose_tail_is_not_the_embedded_one_is_refused(pems08_site, server, monkeypatch, full_pems08):
    data = full_pems08[0].copy()
    data[-1, 0, 0] += 1
    buf = io.BytesIO()
    np.savez(buf, data=data)
    server.serve("/PEMS08/PEMS08.npz", buf.getvalue())
    monkeypatch.setitem(_pems_full.PEMS_DATASETS, "PEMS08",
                        dict(_pems_full.PEMS_DATASETS["PEMS08"], sha1=git_sha1(buf.getvalue())))
    with pytest.raises(FetchError, match="not the embedded pems08-tail"):
        _fetch(pems08_site)
    assert _leftovers(pems08_site["cache"]) == []


def test_a_manual_copy_is_used_without_a_request_and_a_wrong_one_is_kept_and_reported(pems08_site, server):
    local = pems08_site["local"] / "pems08" / "PEMS08.npz"
    local.parent.mkdir()
    local.write_bytes(pems08_site["body"])
    assert _fetch(pems08_site).shape == (17856, 170)
    assert server.log == [] and not pems08_site["cache"].exists()  # no download, no cache folder made
    local.write_bytes(b"not a numpy file")
    with pytest.raises(FetchError, match="local copy"):
        _fetch(pems08_site)
    assert local.read_bytes() == b"not a numpy file"  # a user's file is never deleted
    assert server.log == []


def test_without_download_a_missing_file_says_how_to_fetch_it(pems08_site, server):
    with pytest.raises(FileNotFoundError, match="stvlm fetch"):
        _fetch(pems08_site, download_if_missing=False)
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_protocol("pems08", data_dir=pems08_site["local"])
    assert server.log == [] and not pems08_site["cache"].exists()  # reading creates no cache folder


def test_the_download_shows_a_progress_bar(pems08_site, capsys):
    fetch_pems("PEMS08", data_dir=pems08_site["local"], data_home=pems08_site["cache"], timeout=TIMEOUT, verbose=1)
    assert "download PEMS08.npz" in capsys.readouterr().err


def test_unknown_pems_name_and_bad_timeout(tmp_path):
    with pytest.raises(ValueError, match="known: PEMS03, PEMS04, PEMS07, PEMS08"):
        fetch_pems("PEMS05")
    with pytest.raises(ValueError, match="timeout must be a positive"):
        fetch_pems("PEMS07", data_dir=tmp_path, data_home=tmp_path / "cache", timeout=0)


# ------------------------------------------------------------------ ETT
def _fake_ett() -> bytes:
    index = pd.date_range("2016-07-01", periods=17420, freq="h", name="date")
    values = np.random.default_rng(1).normal(size=(17420, 7)).round(3)
    frame = pd.DataFrame(values, index=index, columns=["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"])
    return frame.to_csv().encode()


def test_fetch_ett_downloads_checks_sha256_and_parses(server, monkeypatch, tmp_path):
    body = _fake_ett()
    server.serve("/ETTh1.csv", body)
    monkeypatch.setattr(_ett, "_REPO", server.url)
    monkeypatch.setitem(_ett.ETT_DATASETS, "ETTh1", hashlib.sha256(body).hexdigest())
    (tmp_path / "empty").mkdir()
    frame = fetch_ett("etth1", data_dir=tmp_path / "empty", data_home=tmp_path / "cache", timeout=TIMEOUT, verbose=0)
    assert frame.shape == (17420, 7) and str(frame.index[-1]) == "2018-06-26 19:00:00"
    assert (tmp_path / "cache" / "ett" / "ETTh1.csv").read_bytes() == body
    fetch_ett("ETTh1", data_dir=tmp_path / "empty", data_home=tmp_path / "cache", timeout=TIMEOUT, verbose=0)
    assert server.log == ["/ETTh1.csv"]
    # A file with the right checksum but the wrong content is refused before it lands.
    bad = body.replace(b"HUFL", b"XXXX", 1)
    server.serve("/ETTh1.csv", bad)
    monkeypatch.setitem(_ett.ETT_DATASETS, "ETTh1", hashlib.sha256(bad).hexdigest())
    with pytest.raises(FetchError, match="columns"):
        fetch_ett("ETTh1", data_dir=tmp_path / "empty", data_home=tmp_path / "cache2", timeout=TIMEOUT, verbose=0)
    assert _leftovers(tmp_path / "cache2") == []


# ------------------------------------------------------------------ the cache folder
def test_get_data_home_env_var_default_and_creation(tmp_path, monkeypatch):
    monkeypatch.setenv("STVLM_CACHE_DIR", str(tmp_path / "from-env"))
    assert get_data_home() == (tmp_path / "from-env").resolve() and (tmp_path / "from-env").is_dir()
    monkeypatch.delenv("STVLM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert get_data_home() == (tmp_path / "xdg" / "stvlm").resolve()
    assert get_data_home(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(FetchError, match="STVLM_CACHE_DIR"):
        get_data_home(blocker / "sub")


@pytest.mark.parametrize(
    "name, sizes",
    [("PEMS03", (15711, 5237, 5237)), ("PEMS04", (10181, 3394, 3394)), ("PEMS07", (16921, 5640, 5640)),
     ("PEMS08", (10700, 3566, 3567))],
)
def test_full_pems_protocols_have_the_canonical_split_sizes(name, sizes, monkeypatch):
    T, N, _ = _pems_full.PEMS_DATASETS[name]["shape"]
    series = np.arange(T, dtype=np.float64)[:, None] + np.zeros((1, 2))  # row r holds r

    monkeypatch.setattr(_pems_full, "fetch_pems", lambda *a, **k: series)
    p = load_protocol(name.lower())
    n_train, n_val, n_test = sizes
    assert p.test_X.shape == (n_test, 12, 2) and p.test_start == n_train + n_val
    assert p.test_X[0, 0, 0] == n_train + n_val and p.test_y[-1, -1, 0] == T - 1  # the last row is tested
    assert p.fit_series.shape[0] == n_train + n_val + 12  # ends right before the first test target
    assert p.n_train_rows == n_train + 23 and p.mean == pytest.approx((n_train + 22) / 2)
    assert p.name == name.lower() and p.steps_per_day == 288 and p.null_value == 0.0


# ------------------------------------------------------------------ the command line
def test_cli_benchmark_fetches_a_missing_full_pems_once_and_scores_it(pems08_site, server, monkeypatch, tmp_path,
                                                                       capsys):
    from stvlm.benchmark import _read_rows
    from stvlm.cli import main

    monkeypatch.setenv("STVLM_CACHE_DIR", str(pems08_site["cache"]))
    out = tmp_path / "results"
    assert main(["benchmark", "--protocol", "pems08", "--no-download", "--models", "last-value",
                 "--results-dir", str(out), "--quiet"]) == 2
    assert "stvlm fetch" in capsys.readouterr().err and server.log == []
    assert main(["benchmark", "--protocol", "pems08", "--models", "last-value", "--results-dir", str(out),
                 "--quiet"]) == 0
    assert server.log == ["/PEMS08/PEMS08.npz"]
    row = _read_rows(out / "pems08.csv")[0]
    tail = load_protocol("pems08-tail")  # same test windows, so the same last-value figures
    assert float(row["MAE"]) == pytest.approx(tail.evaluate(np.repeat(tail.test_X[:, -1:], 12, axis=1))["MAE"])
    assert int(row["n_fit_rows"]) == 10700 + 3566 + 12


def test_cli_fetch(pems08_site, server, capsys):
    from stvlm.cli import main

    args = ["fetch", "PEMS08", "--data-home", str(pems08_site["cache"]), "--timeout", str(TIMEOUT)]
    assert main(args) == 0
    assert "PEMS08: 17856 steps x 170 series, verified" in capsys.readouterr().out
    assert "/PEMS08/PEMS08.npz" in server.log  # the graph may come from a data folder in reach
    assert main(["fetch", "PEMS05", "--quiet"]) == 2
    assert "unknown dataset" in capsys.readouterr().err
