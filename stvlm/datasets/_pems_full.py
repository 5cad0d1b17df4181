"""The full PEMS03/04/07/08 series: where they are published, their fetcher, their protocols."""

from __future__ import annotations

import numpy as np

from ._fetch import RemoteFile, resolve

__all__ = ["PEMS_DATASETS", "fetch_pems", "pems_protocol"]

# The PEMS benchmark files (STSGCN / ASTGCN) as the ASTGNN repository publishes them, at a
# fixed commit; the checksums are the files' git blob ids there. Its distance.csv edge lists
# are byte for byte those of the data folder.
_REPO = "https://raw.githubusercontent.com/guoshnBJTU/ASTGNN/9c2e19b98c4cedf1f35214d8789685b6381b3aad/data"

#: shape of ``data`` (T, N, C), first row's date, git blob ids of the series and its graph.
PEMS_DATASETS = {
    "PEMS03": dict(shape=(26208, 358, 1), start="2018-09-01T00:00",
                   sha1="b4487154fc9611a3bf9856b0aad34efa610ea8ae", graph_sha1="00dec00c904e85045f41fd5325eccbbbdf30e70d",
                   ids_sha1="4d5aacb57797d3d701a890e7a91d2f7458646531"),
    "PEMS04": dict(shape=(16992, 307, 3), start="2018-01-01T00:00",
                   sha1="a1a39eac4b86963b1ac22874fd1cc693eb642cd2", graph_sha1="2569623e29fa9685ae230246a20f31741ee6cf01"),
    "PEMS07": dict(shape=(28224, 883, 1), start="2017-05-01T00:00",
                   sha1="28c547f80eb8804d3e378168c80f77f82db2680a", graph_sha1="0a5a3bb0b5a1510fbe424fe7887f31ea2e178fbc"),
    "PEMS08": dict(shape=(17856, 170, 3), start="2016-07-01T00:00",
                   sha1="f5f3e84a00417573aa8487fe1e9e8cd13c6026c8", graph_sha1="cf11bea3ff4229d2d900fdcf1085828d25429c88"),
}
_TAIL_START = 10700  # row of the full PEMS08 series where the embedded pems08-tail begins


def _canonical(name) -> str:
    key = str(name).upper().replace("-", "").replace("_", "")
    if key.startswith("PEMSD"):
        key = "PEMS0" + key[5:]
    if key not in PEMS_DATASETS:
        raise ValueError(f"unknown PEMS dataset {name!r}; known: {', '.join(PEMS_DATASETS)}.")
    return key


def _remote(name):
    d = PEMS_DATASETS[name]
    return RemoteFile(
        url=f"{_REPO}/{name}/{name}.npz", relpath=f"{name.lower()}/{name}.npz", checksum=("git-sha1", d["sha1"]),
        description=f"{name}.npz, the {name} benchmark series, data of shape {d['shape']}",
    )


def _graph_remotes(name):
    d = PEMS_DATASETS[name]
    low = name.lower()
    out = [RemoteFile(
        url=f"{_REPO}/{name}/{name}.csv", relpath=f"{low}/distance.csv", checksum=("git-sha1", d["graph_sha1"]),
        description=f"the {name} road graph (edge list from,to,cost)", alternatives=(f"graphs/{low}_distance.csv",),
    )]
    if "ids_sha1" in d:
        out.append(RemoteFile(
            url=f"{_REPO}/{name}/{name}.txt", relpath=f"{low}/sensor_ids.txt", checksum=("git-sha1", d["ids_sha1"]),
            description=f"the {name} sensor ids", alternatives=(f"graphs/{low}_sensor_ids.txt",),
        ))
    return out


def _checker(name):
    shape = PEMS_DATASETS[name]["shape"]

    def check(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                if "data" not in z.files:
                    raise ValueError(f"holds no array 'data' (it holds {z.files}).")
                data = z["data"]
        except Exception as exc:  # noqa: BLE001 - not a zip, a bad zip, a pickled array: all "not this file"
            raise ValueError(f"cannot be read as a PEMS .npz file ({exc}).") from exc
        if data.shape != shape or data.dtype.kind not in "fiu":
            raise ValueError(f"holds data of shape {data.shape}, dtype {data.dtype}; expected {shape}, real numbers.")
        if name == "PEMS08":
            from ._embedded import embedded_series

            if not np.array_equal(data[_TAIL_START:, :, 0], embedded_series("pems08-tail")):
                raise ValueError("its flow at rows 10700-17855 is not the embedded pems08-tail data.")

    return check


def fetch_pems(name="PEMS08", feature=0, *, return_graph=False, data_dir=None, data_home=None,
               download_if_missing=True, timeout=60.0, verbose=1):
    """Get a full PEMS benchmark series (PEMS03, 04, 07, 08), downloading it once if needed.

    The file is looked for in ``data_dir`` (or the data folder, see
    :func:`~stvlm.datasets.data_home`), then in the download cache
    (:func:`get_data_home`), as ``pems0X/PEMS0X.npz``; if neither has it, it is
    downloaded from the ASTGNN repository at a fixed commit (the PEMS files of STSGCN /
    ASTGCN), written atomically and verified: its git blob id, the shape of ``data``,
    and for PEMS08 that rows 10700-17855 equal the embedded ``pems08-tail``.

    Parameters
    ----------
    name : {"PEMS03", "PEMS04", "PEMS07", "PEMS08"}, default="PEMS08"
        The dataset (``"pems08"`` and ``"PEMSD8"`` are accepted too).
    feature : int, default=0
        The feature to return: 0 = flow (PEMS04/08 also hold 1 = occupancy, 2 = speed).
    return_graph : bool, default=False
        Also return the road graph as a dense 0/1 adjacency (fetched the same way).
    data_dir : str or path-like, default=None
        A folder that may already hold the file (``None``: ``$STVLM_DATA_DIR`` or a
        ``shared/data`` folder, if any).
    data_home : str or path-like, default=None
        The download cache (see :func:`get_data_home`).
    download_if_missing : bool, default=True
        ``False`` raises ``FileNotFoundError`` instead of downloading.
    timeout : float, default=60.0
        Seconds without an answer before the download gives up.
    verbose : int, default=1
        ``1``: a tqdm bar while downloading.

    Returns
    -------
    series : ndarray of shape (T, N), float64
        One column per sensor, one row per 5 minutes, from midnight of the first day
        (PEMS03 2018-09-01, PEMS04 2018-01-01, PEMS07 2017-05-01, PEMS08 2016-07-01).
    adjacency : ndarray of shape (N, N)
        Only with ``return_graph=True``.

    Raises
    ------
    FetchError
        Offline, HTTP error, truncated download, or a file that is not the expected
        one; the message names the URL and where to put a manual copy.
    FileNotFoundError
        With ``download_if_missing=False`` when no copy is found.

    Examples
    --------
    >>> from stvlm.datasets import fetch_pems
    >>> try:                                   # downloads 20-100 MB once, then reads the cache
    ...     flow = fetch_pems("PEMS08", download_if_missing=False)
    ... except FileNotFoundError:
    ...     flow = None
    >>> flow is None or flow.shape == (17856, 170)
    True
    """
    from ._files import load_adjacency, load_pems

    name = _canonical(name)
    kw = dict(data_dir=data_dir, data_home=data_home, download_if_missing=download_if_missing,
              timeout=timeout, verbose=verbose)
    path = resolve(_remote(name), check=_checker(name), **kw)
    series = load_pems(path, feature=feature)
    if not return_graph:
        return series
    graph, *ids = [resolve(r, **kw) for r in _graph_remotes(name)]
    return series, load_adjacency(graph, n_sensors=series.shape[1], id_file=ids[0] if ids else None)


def pems_protocol(name, data_dir=None, *, download=False, verbose=1):
    """The canonical protocol of a full PEMS series (see :func:`load_protocol`)."""
    from dataclasses import replace

    from ._protocols import split_protocol

    name = _canonical(name)
    series = fetch_pems(name, data_dir=data_dir, download_if_missing=download, verbose=verbose)
    n = series.shape[0] - 23
    n_test, n_train = round(0.2 * n), round(0.6 * n)  # the DCRNN / BasicTS rule
    p = split_protocol(
        series, n_train, n - n_train - n_test, name=name.lower(), steps_per_day=288, first_time_index=0,
        start_time=PEMS_DATASETS[name]["start"], null_value=0.0,
    )
    return replace(p, description=f"{name} flow, canonical 6:2:2 (round rule), zeros masked: " + p.description)
