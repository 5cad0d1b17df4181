"""ETTh1 / ETTh2: where they are published, their loader and fetcher, the long-term protocol."""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_int
from ._fetch import RemoteFile, resolve
from ._protocol import Protocol

__all__ = ["ETT_DATASETS", "ETT_HORIZONS", "ett_protocol", "fetch_ett", "load_ett"]

_REPO = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/1d16c8f4f943005d613b5bc962e9eeb06058cf07/ETT-small"

#: sha256 of the original files of the ETDataset (ETT-small), CC BY-ND 4.0.
ETT_DATASETS = {
    "ETTh1": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
    "ETTh2": "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
}
_COLUMNS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
_ROWS = 17420
#: The horizons of the long-term protocol.
ETT_HORIZONS = (96, 192, 336, 720)
# Informer's month split: 12 months train, 4 validate, 4 test (30-day months, hourly rows).
_TRAIN_END, _VAL_END, _TEST_END = 12 * 30 * 24, 16 * 30 * 24, 20 * 30 * 24


def _canonical(name) -> str:
    for key in ETT_DATASETS:
        if str(name).lower() == key.lower():
            return key
    raise ValueError(f"unknown ETT dataset {name!r}; known: {', '.join(ETT_DATASETS)}.")


def _remote(name):
    return RemoteFile(
        url=f"{_REPO}/{name}.csv", relpath=f"ett/{name}.csv", checksum=("sha256", ETT_DATASETS[name]),
        description=f"{name}.csv of the ETDataset (ETT-small), {_ROWS} hourly rows",
    )


def _parse(path):
    import pandas as pd

    # round_trip: each value is exactly float() of its text (the default parser can be 1 ulp off).
    frame = pd.read_csv(path, parse_dates=["date"], index_col="date", float_precision="round_trip")
    if tuple(frame.columns) != _COLUMNS or len(frame) != _ROWS:
        raise ValueError(f"has columns {list(frame.columns)} and {len(frame)} rows; expected {list(_COLUMNS)}, {_ROWS}.")
    if frame.index.freq is None:
        frame = frame.asfreq("h")  # the files are exactly hourly; a gap would show as NaN
    if frame.isna().any().any() or len(frame) != _ROWS:
        raise ValueError("is not one reading per hour without gaps.")
    return frame.astype(np.float64)


def _check(path):
    try:
        _parse(path)
    except ValueError:
        raise  # already says what is wrong
    except Exception as exc:  # a csv pandas cannot parse
        raise ValueError(f"cannot be parsed as an ETT csv ({exc}).") from exc


def fetch_ett(name="ETTh1", *, data_dir=None, data_home=None, download_if_missing=True, timeout=60.0, verbose=1):
    """Get ETTh1 or ETTh2 as a DataFrame, downloading the original file once if needed.

    The file is looked for in ``data_dir`` (or the data folder, see
    :func:`~stvlm.datasets.data_home`), then in the download cache
    (:func:`get_data_home`), as ``ett/ETTh1.csv``; if neither has it, it is downloaded
    from the ETDataset repository (``zhouhaoyi/ETDataset`` at commit 1d16c8f), written
    atomically and checked against its sha256. The files are licensed CC BY-ND 4.0:
    cite Zhou et al., *Informer*, AAAI 2021; they are parsed, never altered.

    Parameters
    ----------
    name : {"ETTh1", "ETTh2"}, default="ETTh1"
        The dataset (case-insensitive).
    data_dir : str or path-like, default=None
        A folder that may already hold ``ett/<name>.csv``.
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
    pandas.DataFrame of shape (17420, 7)
        Hourly from 2016-07-01 00:00 (a ``DatetimeIndex`` named ``date``), columns
        HUFL, HULL, MUFL, MULL, LUFL, LULL, OT (the oil temperature), float64.

    Raises
    ------
    FetchError
        Offline, HTTP error, truncated download, or a file that is not the original.
    FileNotFoundError
        With ``download_if_missing=False`` when no copy is found.

    Examples
    --------
    >>> from stvlm.datasets import fetch_ett
    >>> try:                        # fetch_ett("ETTh1") downloads 2.6 MB once if no copy is found
    ...     frame = fetch_ett("ETTh1", download_if_missing=False)
    ... except FileNotFoundError:
    ...     frame = None
    >>> frame is None or (frame.shape, str(frame.index[0]), frame.columns[-1]) == ((17420, 7), "2016-07-01 00:00:00", "OT")
    True
    """
    name = _canonical(name)
    path = resolve(_remote(name), data_dir=data_dir, data_home=data_home, download_if_missing=download_if_missing,
                   check=_check, timeout=timeout, verbose=verbose)
    return _parse(path)


def load_ett(name="ETTh1", data_dir=None):
    """Read ETTh1 or ETTh2 from a local copy (never downloads); see :func:`fetch_ett`.

    Parameters
    ----------
    name : {"ETTh1", "ETTh2"}, default="ETTh1"
        The dataset (case-insensitive).
    data_dir : str or path-like, default=None
        Folder holding ``ett/<name>.csv``; ``None`` looks in the data folder
        (``$STVLM_DATA_DIR`` or ``../shared/data``), then in the download cache.

    Returns
    -------
    pandas.DataFrame of shape (17420, 7)
        As :func:`fetch_ett`; its ``DatetimeIndex`` dates the windows that
        :func:`stvlm.as_windows` cuts from it.

    Raises
    ------
    FileNotFoundError
        If no copy is found (the message says how to fetch one).
    FetchError
        If the copy found is not the original file (sha256).

    Examples
    --------
    >>> from stvlm.datasets import load_ett
    >>> try:
    ...     frame = load_ett("etth2")   # the data folder's ett/ETTh2.csv, or the download cache
    ... except FileNotFoundError:       # no copy here: fetch_ett("ETTh2") gets one
    ...     frame = None
    >>> frame is None or round(float(frame.loc["2016-07-01 01:00", "OT"]), 3) == 37.124
    True
    """
    return fetch_ett(name, data_dir=data_dir, download_if_missing=False, verbose=0)


def describe(name):
    """A sentence on an ETT dataset for a model's prompt (``None`` for other names).

    Parameters
    ----------
    name : str
        A protocol or dataset name.

    Returns
    -------
    str or None

    Examples
    --------
    >>> from stvlm.datasets._ett import describe
    >>> describe("etth1")[:40], describe("pems08-tail")
    ('Hourly readings of an electricity transf', None)
    """
    try:
        key = _canonical(name)
    except ValueError:
        return None
    return (
        f"Hourly readings of an electricity transformer in China ({key}): six power load features "
        "and the oil temperature, over two years."
    )


def ett_protocol(name, data_dir=None, *, history=96, horizon=96, download=False, verbose=1):
    """The long-term protocol of ETTh1 / ETTh2 (see :func:`load_protocol`)."""
    key = _canonical(name)
    history = check_positive_int(history, "history")
    horizon = check_positive_int(horizon, "horizon")
    if history + horizon > _TRAIN_END or horizon > _TEST_END - _VAL_END:
        raise ValueError(
            f"history={history} + horizon={horizon} do not fit the ETT split (12 months = {_TRAIN_END} rows to "
            f"train, 4 months = {_TEST_END - _VAL_END} rows to test); the protocol uses history 96 or 512 and "
            f"horizons {ETT_HORIZONS}."
        )
    frame = fetch_ett(key, data_dir=data_dir, download_if_missing=download, verbose=verbose)
    raw = frame.to_numpy()
    mean = raw[:_TRAIN_END].mean(axis=0)
    std = raw[:_TRAIN_END].std(axis=0)  # population std, as scikit-learn's StandardScaler
    z = (raw - mean) / std
    test_start = _VAL_END - history
    starts = np.arange(test_start, _TEST_END - history - horizon + 1)
    from ._protocols import _windows_at  # the one place protocols cut windows

    X, y = _windows_at(z, starts, history, horizon)
    fit = z[:_VAL_END].copy()
    return Protocol(
        name=key.lower(), fit_series=fit, test_X=X, test_y=y,
        mean=float(fit[:_TRAIN_END].mean()), std=float(fit[:_TRAIN_END].std()),
        steps_per_day=24, first_time_index=0, start_time="2016-07-01T00:00", test_start=test_start,
        n_train_rows=_TRAIN_END, val_series=z[_TRAIN_END - history : _VAL_END].copy(),
        null_value=None, threshold=None, mape_threshold=None, history=history, horizon=horizon,
        description=(
            f"{key} long-term: z-scored per variable with the statistics of rows [0, {_TRAIN_END}); train "
            f"[0, {_TRAIN_END}), validation [{_TRAIN_END} - L, {_VAL_END}), test [{_VAL_END} - L, {_TEST_END}); "
            f"{history} in, {horizon} out, {len(X)} test windows; MSE and MAE on z-scored values"
        ),
        metrics=("MSE", "MAE"), report_horizons=(), few_shot="windows",
        variable_mean=mean, variable_std=std, channels=_COLUMNS,
    )
