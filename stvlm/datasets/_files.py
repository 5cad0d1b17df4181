"""Where the real data live, and the readers of PEMS series and road graphs."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from .._validation import check_positive_int, check_series

__all__ = ["ENV_VAR", "data_home", "load_adjacency", "load_pems"]

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


def load_adjacency(path, n_sensors=None, id_file=None, weighted=False, symmetric=True, *, n_nodes=None) -> np.ndarray:
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
    n_sensors : int, default=None
        Number of sensors (graph nodes). For edge lists it defaults to the number of
        ids in ``id_file``, else to the largest index + 1 (pass it when the last
        sensors have no edge). For a dense matrix it must equal the matrix size if
        given.
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
    n_nodes : int, default=None
        Deprecated name of ``n_sensors``.

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
        If the file cannot be parsed, an index is negative or not below ``n_sensors``,
        a sensor id is not in ``id_file``, ``weighted=True`` without a cost column,
        or a dense matrix is not square or does not match ``n_sensors``.

    Examples
    --------
    >>> import os, tempfile
    >>> from stvlm.datasets import load_adjacency
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = os.path.join(tmp, "distance.csv")
    ...     with open(f, "w") as fh:
    ...         _ = fh.write("from,to,cost\\n0,1,2.5\\n1,2,4.0\\n")
    ...     A = load_adjacency(f, n_sensors=4)
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
        import warnings

        warnings.warn("n_nodes was renamed n_sensors (n_nodes will be removed in stvlm 0.3).", FutureWarning, stacklevel=2)
        if n_sensors is not None:
            raise ValueError("pass n_sensors only (n_nodes is its deprecated name).")
        n_sensors = n_nodes
    if n_sensors is not None:
        n_sensors = check_positive_int(n_sensors, "n_sensors")
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
        if n_sensors is not None and n_sensors != A.shape[0]:
            raise ValueError(
                f"{str(path)!r} is a dense {A.shape[0]}x{A.shape[1]} matrix but n_sensors={n_sensors}."
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
        if n_sensors is None:
            n_sensors = len(mapping)
        elif n_sensors != len(mapping):
            raise ValueError(
                f"n_sensors={n_sensors} but id_file lists {len(mapping)} sensor ids."
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
    if n_sensors is None:
        if src.size == 0:
            raise ValueError(f"edge list {str(path)!r} has no edges; pass n_sensors.")
        n_sensors = int(max(src.max(), dst.max())) + 1
    top = int(max(src.max(), dst.max())) if src.size else -1
    if top >= n_sensors:
        raise ValueError(
            f"edge list {str(path)!r} refers to node {top}, but n_sensors={n_sensors} "
            f"(indices must lie in 0 ... {n_sensors - 1})."
        )
    if symmetric:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        if weighted:
            cost = np.concatenate([cost, cost])
    A = np.zeros((n_sensors, n_sensors), dtype=np.float64)
    if weighted:
        A.fill(np.inf)
        np.minimum.at(A, (src, dst), cost)
        A[np.isinf(A)] = 0.0
    else:
        A[src, dst] = 1.0
    return A
