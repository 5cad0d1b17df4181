"""Loaders of the real traffic data and the benchmark protocols built on them.

The data are never part of the repository: they live in a ``shared/data`` folder
beside it (``<repo root>/../shared/data``) or wherever the environment variable
``STVLM_DATA_DIR`` points (see :func:`data_home`). The files:

* ``pems08/pems08_flow_tail.npz`` -- PEMS08 flow, the last 40 % of the series
  (7,156 five-minute steps, 170 sensors), and ``pems08/distance.csv``, its road graph;
* ``sz_taxi/sz_taxi.npz`` -- SZ-taxi speeds (2,976 fifteen-minute steps, 156 roads),
  and ``sz_taxi/sz_adj.csv``, its dense 0/1 adjacency;
* ``graphs/`` -- road-graph edge lists of PEMS03 (keyed by sensor ids), PEMS04 and
  PEMS07.

The PEMS files are the benchmark files published with STSGCN and ASTGCN
(``PEMS0X.npz`` with key ``data`` of shape ``(T, N, C)`` and ``distance.csv`` edge
lists); SZ-taxi is the dataset of the T-GCN paper.

:func:`load_protocol` builds the two benchmark protocols, ``"pems08-tail"`` and
``"sz-taxi"``, as :class:`Protocol` objects that hold the series a model may fit on,
the test windows and the masks to score them with.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_positive_int, check_series
from .metrics import horizon_metrics
from .windows import make_windows

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "data_home",
    "load_adjacency",
    "load_pems",
    "load_protocol",
    "make_protocol",
]

ENV_VAR = "STVLM_DATA_DIR"

_SOURCES = (
    "The PEMS files (PEMS0X.npz with key 'data' of shape (T, N, C), and distance.csv "
    "edge lists) are the PEMS benchmark files published with STSGCN / ASTGCN; the "
    "SZ-taxi files (sz_taxi.npz / sz_adj.csv) come from the SZ-taxi data of the T-GCN "
    "paper."
)


# --------------------------------------------------------------------------- data_home
def _walk_up_candidates(start: pathlib.Path):
    start = start.resolve()
    for p in (start, *start.parents):
        yield p / "shared" / "data"


def data_home(data_dir=None) -> pathlib.Path:
    """Locate the folder of the real traffic data.

    Parameters
    ----------
    data_dir : str or path-like, default=None
        Use this folder. It must exist: an explicit folder is never silently replaced
        by another one.

    Returns
    -------
    pathlib.Path
        The first of these that exists, resolved:

        1. ``data_dir``, if given (and then only it);
        2. the folder named by the environment variable ``STVLM_DATA_DIR``;
        3. a ``shared/data`` folder in the current working directory or one of its
           parents (so ``<repo root>/../shared/data`` is found from inside the repo);
        4. the same search, starting from the folder of this module.

    Raises
    ------
    FileNotFoundError
        If none exists. The message lists every place looked at, says that
        ``STVLM_DATA_DIR`` can be set, and where the files come from.

    Examples
    --------
    >>> import os, tempfile
    >>> from stvlm.datasets import data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     data_home(tmp) == __import__("pathlib").Path(tmp).resolve()
    True
    >>> try:
    ...     data_home("/no/such/folder")
    ... except FileNotFoundError as exc:
    ...     print("STVLM_DATA_DIR" in str(exc))
    True
    """
    looked = []
    if data_dir is not None:
        path = pathlib.Path(os.fspath(data_dir)).expanduser()
        if path.is_dir():
            return path.resolve()
        raise FileNotFoundError(
            f"data folder {str(path)!r} (given as data_dir) does not exist. Pass an "
            f"existing folder, or leave data_dir=None to use ${ENV_VAR} or a shared/data "
            f"folder beside the repository. {_SOURCES}"
        )
    env = os.environ.get(ENV_VAR)
    if env:
        path = pathlib.Path(env).expanduser()
        if path.is_dir():
            return path.resolve()
        looked.append(f"{path} (from ${ENV_VAR})")
    seen = set()
    for start in (pathlib.Path.cwd(), pathlib.Path(__file__).parent):
        for cand in _walk_up_candidates(start):
            if cand in seen:
                continue
            seen.add(cand)
            if cand.is_dir():
                return cand.resolve()
            looked.append(str(cand))
    raise FileNotFoundError(
        "could not find the stvlm data folder. Looked at: "
        + "; ".join(looked)
        + f". Set the environment variable {ENV_VAR} to the folder holding pems08/, "
        "sz_taxi/ and graphs/ (or pass data_dir=...), or put it at "
        f"<repository root>/../shared/data. {_SOURCES}"
    )


# --------------------------------------------------------------------------- load_pems
def load_pems(path, feature=0) -> np.ndarray:
    """Load one feature of a PEMS-style ``.npz`` series as a ``(T, N)`` float array.

    Parameters
    ----------
    path : str or path-like
        An ``.npz`` file with key ``data`` of shape ``(T, N, C)`` (the PEMS benchmark
        format: C = 3 features flow, occupancy, speed, or C = 1) or ``(T, N)``. A plain
        ``.npy`` array of those shapes is accepted too. Pickled objects are refused.
    feature : int, default=0
        Which of the ``C`` features to return (0 = flow in the PEMS files). Ignored,
        apart from having to be 0, for 2-D data.

    Returns
    -------
    ndarray of shape (T, N), float64
        The series, one column per sensor.

    Raises
    ------
    FileNotFoundError
        If the file does not exist; the message says where it was expected and where
        the PEMS files come from.
    ValueError
        If the file is not a numpy file, has no ``data`` key, holds an array that is
        not 2-D or 3-D, or if ``feature`` is out of range.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from stvlm.datasets import load_pems
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = os.path.join(tmp, "toy.npz")
    ...     np.savez(f, data=np.arange(24.0).reshape(4, 3, 2))
    ...     flow = load_pems(f)
    ...     second = load_pems(f, feature=1)
    >>> flow.shape, flow[0], second[0]
    ((4, 3), array([0., 2., 4.]), array([1., 3., 5.]))
    """
    path = pathlib.Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"PEMS data file not found: expected it at {str(path)!r}. The data folder is "
            f"found by stvlm.datasets.data_home() (set ${ENV_VAR} to point at it). "
            f"{_SOURCES}"
        )
    feature = check_positive_int(feature, "feature", minimum=0)
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # not a numpy file, or a pickled object array
        raise ValueError(
            f"could not read {str(path)!r} as a numpy .npz/.npy file without pickle: {exc}"
        ) from exc
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if "data" not in loaded.files:
                raise ValueError(
                    f"{str(path)!r} has no array named 'data' (it holds {loaded.files}); "
                    "PEMS .npz files store the series under the key 'data'."
                )
            try:
                arr = loaded["data"]
            except ValueError as exc:  # object array needing pickle
                raise ValueError(f"could not read 'data' of {str(path)!r}: {exc}") from exc
    else:
        arr = loaded
    if arr.ndim == 3:
        C = arr.shape[2]
        if feature >= C:
            raise ValueError(
                f"feature={feature} is out of range: {str(path)!r} holds {C} feature(s) "
                f"per sensor (data shape {arr.shape}), so feature must be in 0 ... {C - 1}."
            )
        arr = arr[:, :, feature]
    elif arr.ndim == 2:
        if feature != 0:
            raise ValueError(
                f"feature={feature} is out of range: {str(path)!r} holds a 2-D series "
                f"{arr.shape} with a single feature, so feature must be 0."
            )
    else:
        raise ValueError(
            f"'data' of {str(path)!r} must have shape (T, N, C) or (T, N); got {arr.shape}."
        )
    return check_series(arr, name=f"data of {path.name}")


# ---------------------------------------------------------------------- load_adjacency
def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_ids(id_file) -> dict:
    id_path = pathlib.Path(os.fspath(id_file)).expanduser()
    if not id_path.is_file():
        raise FileNotFoundError(f"sensor id file not found: {str(id_path)!r}.")
    ids = [line.strip() for line in id_path.read_text().splitlines()]
    ids = [i for i in ids if i]
    mapping = {}
    for k, i in enumerate(ids):
        key = _id_key(i)
        if key in mapping:
            raise ValueError(f"sensor id {i!r} appears twice in {str(id_path)!r}.")
        mapping[key] = k
    return mapping


def _id_key(token):
    """Normalise a sensor id ('313344', '313344.0', 313344) to one key."""
    token = str(token).strip()
    try:
        value = float(token)
    except ValueError:
        return token
    if value.is_integer():
        return str(int(value))
    return token


def load_adjacency(path, n_nodes=None, id_file=None, weighted=False, symmetric=True) -> np.ndarray:
    """Load a road graph as a dense ``(N, N)`` adjacency matrix.

    Two file formats are recognised by their first line:

    * **edge list with a header** (PEMS format, e.g. ``from,to,cost`` or
      ``from,to,distance``): one edge per row, the first two columns the end nodes
      (0-based indices, or sensor ids translated through ``id_file``), the optional
      third column its cost (a distance);
    * **dense matrix without a header** (e.g. SZ-taxi's ``sz_adj.csv``): ``N`` rows of
      ``N`` comma-separated numbers. A headerless file that is not square but has 2 or
      3 columns is read as an edge list without a header.

    Parameters
    ----------
    path : str or path-like
        The csv file.
    n_nodes : int, default=None
        Number of nodes. For edge lists it defaults to the number of ids in
        ``id_file``, else to the largest index + 1 (pass it when the last nodes have
        no edge). For a dense matrix it must equal the matrix size if given.
    id_file : str or path-like, default=None
        For edge lists keyed by sensor ids (PEMS03): a text file with one sensor id
        per line; the id on line ``k`` (0-based) becomes node ``k``.
    weighted : bool, default=False
        ``False``: an edge is a 1. ``True``: an edge holds its cost from the third
        column (raw distances, not similarities -- turn them into weights, e.g. with a
        Gaussian kernel, yourself); where an edge is listed more than once (in either
        direction when ``symmetric``) the smallest cost is kept; a cost of 0 (PEMS03's
        self-loop) leaves a 0, as if there were no edge. Dense matrices keep
        their values when ``True`` and become 0/1 (nonzero -> 1) when ``False``.
    symmetric : bool, default=True
        Make the matrix symmetric: an edge ``i -> j`` also sets ``j -> i``; a dense
        matrix ``A`` becomes ``max(A, A.T)``. ``False`` keeps the file's directions.

    Returns
    -------
    ndarray of shape (N, N), float64
        The adjacency matrix. Self-loops listed in the file are kept on the diagonal
        (PEMS03 lists one); no self-loops are added.

    Raises
    ------
    FileNotFoundError
        If ``path`` or ``id_file`` does not exist.
    ValueError
        If the file cannot be parsed, an index is negative or not below ``n_nodes``,
        a sensor id is not in ``id_file``, ``weighted=True`` without a cost column,
        or a dense matrix is not square or does not match ``n_nodes``.

    Examples
    --------
    >>> import os, tempfile
    >>> from stvlm.datasets import load_adjacency
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = os.path.join(tmp, "distance.csv")
    ...     with open(f, "w") as fh:
    ...         _ = fh.write("from,to,cost\\n0,1,2.5\\n1,2,4.0\\n")
    ...     A = load_adjacency(f, n_nodes=4)
    ...     W = load_adjacency(f, weighted=True)
    >>> A
    array([[0., 1., 0., 0.],
           [1., 0., 1., 0.],
           [0., 1., 0., 0.],
           [0., 0., 0., 0.]])
    >>> W[1]
    array([2.5, 0. , 4. ])
    """
    path = pathlib.Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"graph file not found: expected it at {str(path)!r}. The data folder is "
            f"found by stvlm.datasets.data_home() (set ${ENV_VAR} to point at it). "
            f"{_SOURCES}"
        )
    if n_nodes is not None:
        n_nodes = check_positive_int(n_nodes, "n_nodes")
    rows = [line.strip() for line in path.read_text().splitlines()]
    rows = [r for r in rows if r]
    if not rows:
        raise ValueError(f"graph file {str(path)!r} is empty.")
    tokens = [[t.strip() for t in r.split(",")] for r in rows]
    header = not all(_is_number(t) for t in tokens[0])
    body = tokens[1:] if header else tokens
    widths = {len(r) for r in body}
    if len(widths) > 1:
        raise ValueError(
            f"graph file {str(path)!r} has rows of different lengths {sorted(widths)}."
        )
    width = widths.pop() if widths else (len(tokens[0]) if header else 0)

    dense = not header and width == len(body)
    if dense and id_file is None:
        try:
            A = np.array([[float(t) for t in r] for r in body], dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"could not parse {str(path)!r} as a numeric matrix: {exc}") from exc
        if n_nodes is not None and n_nodes != A.shape[0]:
            raise ValueError(
                f"{str(path)!r} is a dense {A.shape[0]}x{A.shape[1]} matrix but n_nodes={n_nodes}."
            )
        if not np.isfinite(A).all():
            raise ValueError(f"{str(path)!r} holds non-finite values.")
        if not weighted:
            A = (A != 0).astype(np.float64)
        if symmetric:
            A = np.maximum(A, A.T)
        return A
    if not header and width not in (2, 3):
        raise ValueError(
            f"{str(path)!r} has no header and is not a square matrix ({len(body)} rows of "
            f"{width} values); expected a dense N x N matrix, or an edge list "
            "'from,to[,cost]'."
        )
    if width < 2:
        raise ValueError(
            f"edge list {str(path)!r} needs at least two columns (from, to); got {width}."
        )
    if weighted and width < 3:
        raise ValueError(
            f"weighted=True needs a cost column, but edge list {str(path)!r} has only "
            f"{width} columns."
        )

    if id_file is not None:
        mapping = _read_ids(id_file)
        if n_nodes is None:
            n_nodes = len(mapping)
        elif n_nodes != len(mapping):
            raise ValueError(
                f"n_nodes={n_nodes} but id_file lists {len(mapping)} sensor ids."
            )

        def _index(tok):
            key = _id_key(tok)
            if key not in mapping:
                raise ValueError(
                    f"sensor id {tok!r} of {str(path)!r} is not listed in the id file."
                )
            return mapping[key]
    else:

        def _index(tok):
            try:
                value = float(tok)
            except ValueError:
                raise ValueError(
                    f"node {tok!r} of {str(path)!r} is not a number; pass id_file= for "
                    "edge lists keyed by sensor ids."
                ) from None
            if not value.is_integer() or value < 0:
                raise ValueError(
                    f"node {tok!r} of {str(path)!r} is not a non-negative integer index."
                )
            return int(value)

    src = np.array([_index(r[0]) for r in body], dtype=np.int64)
    dst = np.array([_index(r[1]) for r in body], dtype=np.int64)
    if weighted:
        try:
            cost = np.array([float(r[2]) for r in body], dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"could not parse the costs of {str(path)!r}: {exc}") from exc
        if not np.isfinite(cost).all():
            raise ValueError(f"the costs of {str(path)!r} must be finite.")
    if n_nodes is None:
        if src.size == 0:
            raise ValueError(f"edge list {str(path)!r} has no edges; pass n_nodes.")
        n_nodes = int(max(src.max(), dst.max())) + 1
    top = int(max(src.max(), dst.max())) if src.size else -1
    if top >= n_nodes:
        raise ValueError(
            f"edge list {str(path)!r} refers to node {top}, but n_nodes={n_nodes} "
            f"(indices must lie in 0 ... {n_nodes - 1})."
        )
    if symmetric:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        if weighted:
            cost = np.concatenate([cost, cost])
    A = np.zeros((n_nodes, n_nodes), dtype=np.float64)
    if weighted:
        A.fill(np.inf)
        np.minimum.at(A, (src, dst), cost)
        A[np.isinf(A)] = 0.0
    else:
        A[src, dst] = 1.0
    return A


# ---------------------------------------------------------------------------- Protocol
@dataclass(frozen=True, eq=False, repr=False)
class Protocol:
    """A benchmark protocol: what a model may fit on, the test windows, the scoring.

    Built by :func:`load_protocol`. Rows are numbered along the protocol's series:
    row 0 is ``fit_series[0]``, and test window ``i`` has its history at rows
    ``test_start + i ... test_start + i + history - 1`` and its target at the next
    ``horizon`` rows.

    Attributes
    ----------
    name : str
        ``"pems08-tail"`` or ``"sz-taxi"``.
    fit_series : ndarray of shape (T_fit, N), float64
        Every row a model may fit on (training and early stopping). It ends right
        before the first test target, so no fitted row is a test target.
    test_X : ndarray of shape (n_test, history, N)
        Histories of the test windows.
    test_y : ndarray of shape (n_test, horizon, N)
        Targets of the test windows.
    mean, std : float
        Mean and (population) standard deviation over all values of the training
        part, ``train_series``; scale with these.
    steps_per_day : int
        288 for 5-minute PEMS data, 96 for 15-minute SZ-taxi data.
    first_time_index : int
        Time-of-day slot (``0 ... steps_per_day - 1``) of row 0.
    start_time : str
        Date and time of row 0 (ISO 8601, local time of the sensors).
    test_start : int
        Row of the first test history (``test_X[0, 0]``).
    n_train_rows : int
        ``train_series`` is ``fit_series[:n_train_rows]``.
    val_series : ndarray of shape (T_val, N) or None
        The part of ``fit_series`` the protocol sets aside for validation / early
        stopping (its last rows), or ``None`` where the protocol leaves that choice to
        the user (``pems08-tail``: split ``fit_series`` chronologically yourself).
    null_value : float or None
        True values equal to this are left out of every metric.
    threshold : float or None
        True values with ``|v| < threshold`` are left out of MAE and RMSE.
    mape_threshold : float or None
        True values with ``|v| < mape_threshold`` are left out of MAPE.
    history, horizon : int
        Window lengths (12 and 12).
    description : str
        One line on the protocol.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.datasets import load_protocol
    >>> p = load_protocol("pems08-tail")   # reads ../shared/data or STVLM_DATA_DIR
    >>> p.fit_series.shape, p.test_X.shape
    ((3578, 170), (3567, 12, 170))
    >>> last_value = np.repeat(p.test_X[:, -1:], 12, axis=1)
    >>> round(p.evaluate(last_value)["MAE"], 2)
    25.28
    """

    name: str
    fit_series: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    mean: float
    std: float
    steps_per_day: int
    first_time_index: int
    start_time: str
    test_start: int
    n_train_rows: int
    val_series: np.ndarray | None = None
    null_value: float | None = 0.0
    threshold: float | None = None
    mape_threshold: float | None = None
    history: int = 12
    horizon: int = 12
    description: str = field(default="")

    def __repr__(self):
        val = None if self.val_series is None else self.val_series.shape
        return (
            f"Protocol(name={self.name!r}, fit_series={self.fit_series.shape}, "
            f"val_series={val}, test_X={self.test_X.shape}, test_y={self.test_y.shape}, "
            f"mean={self.mean:.4g}, std={self.std:.4g}, steps_per_day={self.steps_per_day})"
        )

    @property
    def train_series(self) -> np.ndarray:
        """The training part, ``fit_series[:n_train_rows]``; ``mean``/``std`` are its."""
        return self.fit_series[: self.n_train_rows]

    @property
    def metric_kwargs(self) -> dict:
        """Masks of the protocol, as keywords of :func:`stvlm.metrics.horizon_metrics`."""
        return {
            "null_value": self.null_value,
            "threshold": self.threshold,
            "mape_threshold": self.mape_threshold,
        }

    @property
    def test_rows(self) -> np.ndarray:
        """Row of each test window's first history step, shape ``(n_test,)``."""
        return self.test_start + np.arange(self.test_X.shape[0])

    def time_of_day(self, rows) -> np.ndarray:
        """Time-of-day slot ``0 ... steps_per_day - 1`` of the given rows.

        Parameters
        ----------
        rows : int or array-like of int
            Rows of the protocol's series (row 0 = ``fit_series[0]``).

        Returns
        -------
        ndarray of int
            ``(first_time_index + rows) % steps_per_day``.
        """
        return (self.first_time_index + np.asarray(rows, dtype=np.int64)) % self.steps_per_day

    def test_data(self):
        """The test windows with their targets and the time of each window.

        Returns
        -------
        stvlm.Windows
            ``X = test_X``, ``y = test_y``, and each window's time of day (and day of
            week, date and time, from ``start_time``) at its last history step, so that
            models reading the clock get it through the data.

        Examples
        --------
        >>> from stvlm.datasets import load_protocol
        >>> w = load_protocol("pems08-tail").test_data()
        >>> w.X.shape, w.steps_per_day, int(w.time_of_day[0]), str(w.timestamps[0])[:16]
        ((3567, 12, 170), 288, 165, '2016-08-19T13:45')
        """
        from .data import Windows

        origin = self.test_rows + self.history - 1
        start = self.start_time or None
        slots = self.time_of_day(origin)
        dow = stamps = None
        if start:
            t0 = np.datetime64(start, "ns")
            stamps = t0 + origin * np.timedelta64(86_400 * 10**9 // self.steps_per_day, "ns")
            days = stamps.astype("datetime64[D]").astype(np.int64)
            dow = (days + 3) % 7  # 1970-01-01 was a Thursday
        return Windows(
            self.test_X, self.test_y, time_of_day=slots, day_of_week=dow, steps_per_day=self.steps_per_day,
            timestamps=stamps,
        )

    def series(self) -> np.ndarray:
        """The protocol's whole series: the fit period, then every test row.

        Returns
        -------
        ndarray of shape (T, N)
            Row ``r`` is row ``r`` of the protocol (``fit_series`` followed by the
            test targets), so ``series()[test_start + i : test_start + i + history]``
            is ``test_X[i]``.
        """
        tail = np.concatenate([self.test_y[:, 0], self.test_y[-1, 1:]], axis=0)
        return np.concatenate([self.fit_series, tail], axis=0)

    def test_windows(self, history) -> np.ndarray:
        """Histories of the test windows, ``history`` steps long instead of ``self.history``.

        Window ``i`` ends where ``test_X[i]`` ends, so it forecasts the same target
        ``test_y[i]``; it starts earlier (``history > self.history``) or later. For
        models that read further back, e.g. a seasonal naive forecast one day back.
        Every row it reads precedes the window's first target.

        Parameters
        ----------
        history : int
            Steps per window; at most ``test_start + self.history``.

        Returns
        -------
        ndarray of shape (n_test, history, N)
            A read-only view on one copy of the series (no memory per window).

        Examples
        --------
        >>> from stvlm.datasets import load_protocol
        >>> p = load_protocol("pems08-tail")
        >>> X = p.test_windows(288)
        >>> X.shape, bool((X[:, -12:] == p.test_X).all())
        ((3567, 288, 170), True)
        """
        from numpy.lib.stride_tricks import sliding_window_view

        history = int(history)
        first = self.test_start + self.history - history
        if history < 1 or first < 0:
            raise ValueError(
                f"history must be in [1, {self.test_start + self.history}] for protocol {self.name!r} "
                f"(the series starts {self.test_start + self.history} rows before the first target); got {history}."
            )
        rows = self.series()[first : first + self.test_X.shape[0] + history - 1]
        return sliding_window_view(rows, history, axis=0).transpose(0, 2, 1)

    def evaluate(self, y_pred, horizons=(3, 6, 12)) -> dict:
        """Score a forecast of the test windows with the protocol's masks.

        Parameters
        ----------
        y_pred : array-like of shape (n_test, horizon, N)
            Forecast of ``test_y``, in the units of the data (not scaled).
        horizons : iterable of int, default=(3, 6, 12)
            Forecast steps (1-based) to report on their own.

        Returns
        -------
        dict
            As :func:`stvlm.metrics.horizon_metrics`: ``{"MAE", "RMSE", "MAPE",
            "horizons": {3: {...}, 6: {...}, 12: {...}}}``, MAPE in percent.

        Raises
        ------
        ValueError
            If ``y_pred`` does not have the shape of ``test_y``, or holds NaN/inf
            where a target is scored.
        """
        y_pred = np.asarray(y_pred)
        if y_pred.shape != self.test_y.shape:
            raise ValueError(
                f"y_pred must have the shape of test_y {self.test_y.shape} for protocol "
                f"{self.name!r}; got {y_pred.shape}."
            )
        return horizon_metrics(self.test_y, y_pred, horizons, **self.metric_kwargs)


# ---------------------------------------------------------------------- load_protocol
PROTOCOLS = ("pems08-tail", "sz-taxi")

_PEMS08_ROWS = 7156
_PEMS08_FIT_END = 3578
_PEMS08_TEST_FIRST, _PEMS08_TEST_LAST = 3566, 7132
_SZ_ROWS = 2976


def _windows_at(series, starts, history, horizon):
    X, y = make_windows(series[starts[0] : starts[-1] + history + horizon], history, horizon)
    return X, y


def _pems08_tail(home: pathlib.Path) -> Protocol:
    f = home / "pems08" / "pems08_flow_tail.npz"
    data = load_pems(f, feature=0)
    if data.shape[0] != _PEMS08_ROWS:
        raise ValueError(
            f"{str(f)!r} has {data.shape[0]} rows; the pems08-tail protocol is defined on "
            f"the {_PEMS08_ROWS}-row tail of PEMS08."
        )
    start_time = "2016-08-07T03:40"
    try:
        with np.load(f, allow_pickle=False) as z:
            if "start_time" in z.files:
                start_time = str(z["start_time"])
    except ValueError:  # pragma: no cover - start_time is a plain string array
        pass
    t0 = np.datetime64(start_time, "m")
    minutes = int((t0 - t0.astype("datetime64[D]")).astype(int))
    fit = data[:_PEMS08_FIT_END].copy()
    starts = np.arange(_PEMS08_TEST_FIRST, _PEMS08_TEST_LAST + 1)
    X, y = _windows_at(data, starts, 12, 12)
    return Protocol(
        name="pems08-tail",
        fit_series=fit,
        test_X=X,
        test_y=y,
        mean=float(fit.mean()),
        std=float(fit.std()),
        steps_per_day=288,
        first_time_index=minutes // 5,
        start_time=start_time,
        test_start=_PEMS08_TEST_FIRST,
        n_train_rows=_PEMS08_FIT_END,
        val_series=None,
        null_value=0.0,
        threshold=None,
        mape_threshold=None,
        description=(
            "PEMS08 flow tail: fit on rows [0, 3578), test on the 3,567 canonical "
            "12-in/12-out test windows (histories at rows 3566 ... 7132); zeros masked."
        ),
    )


def _sz_taxi(home: pathlib.Path) -> Protocol:
    f = home / "sz_taxi" / "sz_taxi.npz"
    data = load_pems(f, feature=0)
    if data.shape[0] != _SZ_ROWS:
        raise ValueError(
            f"{str(f)!r} has {data.shape[0]} rows; the sz-taxi protocol is defined on the "
            f"{_SZ_ROWS}-row SZ-taxi series."
        )
    p = make_protocol(
        data, name="sz-taxi", steps_per_day=96, first_time_index=0, start_time="2015-01-01T00:00",
        null_value=0.0, threshold=1e-6, mape_threshold=1.0,
    )
    from dataclasses import replace

    return replace(p, description="SZ-taxi speeds: " + p.description
                   + "; MAE/RMSE mask |v| < 1e-6, MAPE over true speeds >= 1 km/h.")


def make_protocol(
    series,
    name="custom",
    *,
    steps_per_day=288,
    first_time_index=0,
    start_time="",
    history=12,
    horizon=12,
    null_value=0.0,
    threshold=None,
    mape_threshold=None,
):
    """Build a benchmark protocol from any series: a chronological 6:2:2 split of its windows.

    The rule is the one of ``sz-taxi`` (see :func:`load_protocol`): all windows of
    ``history`` steps in and ``horizon`` out are cut, the first 60 % train, the next
    20 % validate and the last 20 % test; ``fit_series`` ends right before the first
    test target, so nothing fitted is a test target; ``mean``/``std`` come from the rows
    the training windows cover.

    Parameters
    ----------
    series : array-like of shape (T, N)
        The whole series (e.g. from :func:`load_pems`).
    name : str, default="custom"
        Name recorded in results.
    steps_per_day : int, default=288
        Time-of-day slots.
    first_time_index : int, default=0
        Slot of row 0.
    start_time : str, default=""
        Date and time of row 0, for the record.
    history, horizon : int, default=12
        Window lengths.
    null_value, threshold, mape_threshold : float or None
        Masks of the metrics (see :class:`Protocol`).

    Returns
    -------
    Protocol

    Raises
    ------
    ValueError
        If the series is too short to give at least one window to each part.

    Examples
    --------
    >>> import numpy as np
    >>> from stvlm.datasets import make_protocol
    >>> p = make_protocol(np.arange(200.0).reshape(100, 2), steps_per_day=24)
    >>> p.fit_series.shape, p.test_X.shape
    ((73, 2), (16, 12, 2))
    """
    data = check_series(series)
    history = check_positive_int(history, "history")
    horizon = check_positive_int(horizon, "horizon")
    check_positive_int(steps_per_day, "steps_per_day")
    T = data.shape[0]
    n = T - history - horizon + 1
    n_train = int(np.floor(0.6 * n))
    n_val = int(np.floor(0.2 * n))
    if n_train < 1 or n_val < 1 or n - n_train - n_val < 1:
        raise ValueError(
            f"the series has {T} steps, {max(n, 0)} windows of {history} + {horizon} steps: too few "
            "to split 6:2:2 into training, validation and test windows (at least 5 windows are needed)."
        )
    test_start = n_train + n_val
    fit_end = test_start + history
    train_end = n_train - 1 + history + horizon
    fit = data[:fit_end].copy()
    starts = np.arange(test_start, n)
    X, y = _windows_at(data, starts, history, horizon)
    train = fit[:train_end]
    return Protocol(
        name=str(name),
        fit_series=fit,
        test_X=X,
        test_y=y,
        mean=float(np.nanmean(train)),
        std=float(np.nanstd(train)),
        steps_per_day=int(steps_per_day),
        first_time_index=int(first_time_index) % int(steps_per_day),
        start_time=str(start_time),
        test_start=test_start,
        n_train_rows=train_end,
        val_series=fit[n_train:].copy(),
        null_value=null_value,
        threshold=threshold,
        mape_threshold=mape_threshold,
        history=history,
        horizon=horizon,
        description=(
            f"{history}-in/{horizon}-out windows split 6:2:2 chronologically "
            f"({n_train}/{n_val}/{n - n_train - n_val})"
        ),
    )


def load_protocol(name, data_dir=None) -> Protocol:
    """Build a benchmark protocol from the real data.

    Parameters
    ----------
    name : {"pems08-tail", "sz-taxi"}
        The protocol.
    data_dir : str or path-like, default=None
        Data folder; ``None`` finds it with :func:`data_home`.

    Returns
    -------
    Protocol
        The fit series, test windows, scaling statistics and masks.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the known names), or the data file
        does not have the length the protocol is defined on.
    FileNotFoundError
        If the data folder or file is missing.

    Notes
    -----
    **pems08-tail** (``pems08/pems08_flow_tail.npz``, 7,156 rows, 170 sensors, flow
    = feature 0): ``fit_series`` is rows ``[0, 3578)``; the test windows are the
    3,567 windows (12 in, 12 out) whose histories start at rows ``3566 ... 7132``
    (the canonical PEMS08 test set), so test targets start at row 3578 and nothing a
    model fits on is a test target. ``mean``/``std`` are those of the whole fit period
    (232.44 and 147.80). MAE, RMSE and MAPE leave out true values equal to 0.
    ``val_series`` is ``None``: split the fit period chronologically yourself (e.g.
    its last 20 %) for early stopping. Row 0 is 2016-08-07 03:40, time-of-day slot 44
    of 288.

    **sz-taxi** (``sz_taxi/sz_taxi.npz``, T = 2,976 rows, 156 roads): all windows of
    12 steps in and 12 out are cut from the whole series, ``n = T - 23 = 2953``
    windows, window ``i`` with history rows ``[i, i + 12)`` and target rows
    ``[i + 12, i + 24)``. They are split chronologically 6:2:2 *by window*:

    * train: windows ``0 ... n_train - 1`` with ``n_train = floor(0.6 n) = 1771``;
    * validation: the next ``n_val = floor(0.2 n) = 590`` windows, ``1771 ... 2360``;
    * test: the rest, ``n - n_train - n_val = 592`` windows ``2361 ... 2952``.

    Because consecutive windows overlap, the last validation windows' targets
    would reach into the first test targets. So that nothing fitted is a test
    target, ``fit_series`` is rows ``[0, 2373)``: everything up to the first test
    target row ``2361 + 12``. It holds every training window whole; the training part
    ``train_series`` is rows ``[0, 1794)`` (the rows the training windows cover, history
    and horizon), and ``mean``/``std`` are computed on it only. ``val_series`` is rows
    ``[1771, 2373)``: cutting it with ``make_windows(val_series, 12, 12)`` gives the
    579 validation windows ``1771 ... 2349``; the last 11 validation windows, whose
    targets overlap test targets, are dropped. Row 0 is taken to be 2015-01-01 00:00
    (slot 0 of 96). MAE and RMSE leave out true values with ``|v| < 1e-6`` (zeros and
    float noise: no taxi passed); MAPE only counts true speeds ``>= 1`` km/h.

    Examples
    --------
    Self-contained, on a synthetic file of the right length (with the real data,
    just call ``load_protocol("pems08-tail")``):

    >>> import os, tempfile
    >>> import numpy as np
    >>> from stvlm.datasets import load_protocol
    >>> rng = np.random.default_rng(0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.makedirs(os.path.join(tmp, "pems08"))
    ...     flow = rng.poisson(200.0, size=(7156, 3, 1)).astype(float)
    ...     np.savez(os.path.join(tmp, "pems08", "pems08_flow_tail.npz"), data=flow)
    ...     p = load_protocol("pems08-tail", data_dir=tmp)
    >>> p.fit_series.shape, p.test_X.shape, p.test_y.shape
    ((3578, 3), (3567, 12, 3), (3567, 12, 3))
    >>> bool((p.test_X[0] == flow[3566:3578, :, 0]).all())
    True
    >>> last_value = np.repeat(p.test_X[:, -1:], 12, axis=1)
    >>> scores = p.evaluate(last_value)
    >>> sorted(scores), sorted(scores["horizons"])
    (['MAE', 'MAPE', 'RMSE', 'horizons'], [3, 6, 12])
    """
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}.")
    home = data_home(data_dir)
    if name == "pems08-tail":
        return _pems08_tail(home)
    return _sz_taxi(home)
