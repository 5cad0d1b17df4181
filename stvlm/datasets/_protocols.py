"""The two benchmark protocols on the real data, and the 6:2:2 rule for any series."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from .._validation import check_positive_int, check_series
from ..windows import make_windows
from ._files import ENV_VAR, data_home, load_pems
from ._protocol import Protocol

__all__ = ["PROTOCOLS", "load_protocol", "make_protocol"]


# ---------------------------------------------------------------------- load_protocol
#: Every named protocol: the two on the embedded data, the full PEMS series (once fetched)
#: and the long-term ETT protocols.
PROTOCOLS = ("pems08-tail", "sz-taxi", "pems03", "pems04", "pems07", "pems08", "etth1", "etth2")
#: Protocols scored on several horizons, one result per horizon (long-term forecasting).
LONG_TERM = ("etth1", "etth2")

_PEMS08_ROWS = 7156
_PEMS08_FIT_END = 3578
_PEMS08_TEST_FIRST, _PEMS08_TEST_LAST = 3566, 7132
_SZ_ROWS = 2976


def _windows_at(series, starts, history, horizon):
    X, y = make_windows(series[starts[0] : starts[-1] + history + horizon], history, horizon)
    return X, y


def _embedded_or_file(name, data_dir):
    """The series of an embedded dataset: from ``data_dir`` if given (it must hold the file),
    from ``$STVLM_DATA_DIR`` if that folder holds it, else the copy inside the package."""
    from ._embedded import embedded_info, embedded_series

    info = embedded_info(name)
    env = os.environ.get(ENV_VAR)
    if data_dir is not None:
        f = data_home(data_dir) / info["source"]
    elif env and (pathlib.Path(env).expanduser() / info["source"]).is_file():
        f = pathlib.Path(env).expanduser() / info["source"]
    else:
        return embedded_series(name), info["start_time"], "the embedded copy"
    start_time = info["start_time"]
    if f.is_file():
        with np.load(f, allow_pickle=False) as z:
            if "start_time" in z.files:
                start_time = str(z["start_time"])
    return load_pems(f, feature=0), start_time, str(f)


def _pems08_tail(data_dir) -> Protocol:
    data, start_time, f = _embedded_or_file("pems08-tail", data_dir)
    if data.shape[0] != _PEMS08_ROWS:
        raise ValueError(
            f"{f!r} has {data.shape[0]} rows; the pems08-tail protocol is defined on "
            f"the {_PEMS08_ROWS}-row tail of PEMS08."
        )
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


def _sz_taxi(data_dir) -> Protocol:
    data, _, f = _embedded_or_file("sz-taxi", data_dir)
    if data.shape[0] != _SZ_ROWS:
        raise ValueError(
            f"{f!r} has {data.shape[0]} rows; the sz-taxi protocol is defined on the "
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
    n = data.shape[0] - history - horizon + 1
    return split_protocol(
        data, int(np.floor(0.6 * n)), int(np.floor(0.2 * n)), name=name, steps_per_day=steps_per_day,
        first_time_index=first_time_index, start_time=start_time, history=history, horizon=horizon,
        null_value=null_value, threshold=threshold, mape_threshold=mape_threshold,
    )


def split_protocol(series, n_train, n_val, *, name, steps_per_day, first_time_index=0, start_time="",
                   history=12, horizon=12, null_value=0.0, threshold=None, mape_threshold=None):
    """A protocol of the first ``n_train`` windows, the next ``n_val``, and the rest to test."""
    data = check_series(series)
    check_positive_int(steps_per_day, "steps_per_day")
    T = data.shape[0]
    n = T - history - horizon + 1
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


def load_protocol(name, data_dir=None, *, history=None, horizon=None, download=False) -> Protocol:
    """Build a benchmark protocol from the real data.

    Parameters
    ----------
    name : {"pems08-tail", "sz-taxi", "pems03", "pems04", "pems07", "pems08", "etth1", "etth2"}
        The protocol.
    data_dir : str or path-like, default=None
        Data folder. ``None``: ``pems08-tail`` and ``sz-taxi`` read the copy embedded in
        the package, unless ``$STVLM_DATA_DIR`` holds the file; the others look in the
        data folder (:func:`data_home`), then in the download cache
        (:func:`get_data_home`). An explicit ``data_dir`` must hold the file.
    history, horizon : int, default=None
        Window lengths of the ETT protocols (default 96 and 96; the protocol's horizons
        are 96, 192, 336 and 720, its inputs 96 or 512). The traffic protocols are
        12 in / 12 out: ``None`` or 12 only.
    download : bool, default=False
        Fetch a full PEMS or ETT file that is not found (:func:`fetch_pems`,
        :func:`fetch_ett`) instead of raising ``FileNotFoundError``.

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

    **pems03, pems04, pems07, pems08** (the full series of :func:`fetch_pems`, flow):
    all ``n = T - 23`` windows of 12 in and 12 out, split chronologically with the
    canonical rule of DCRNN / BasicTS, ``n_test = round(0.2 n)``,
    ``n_train = round(0.6 n)``, the rest validates; ``fit_series`` ends before the first
    test target; scaling statistics from the rows the training windows cover; zeros
    masked. Its test windows are the canonical test sets (for PEMS08, the same 3,567
    windows as ``pems08-tail``).

    **etth1, etth2** (the long-term protocol of Informer / Time-LLM / Time-VLM): each
    variable is z-scored with the statistics of the training rows ``[0, 8640)``, and
    every series of the protocol (``fit_series``, ``test_X``, ``test_y``) holds the
    z-scored values; ``variable_mean`` / ``variable_std`` turn them back. Training rows
    ``[0, 8640)``, validation ``val_series`` = rows ``[8640 - L, 11520)``, test windows
    of ``L`` in and ``H`` out in rows ``[11520 - L, 14400)`` (``2881 - H`` windows);
    ``fit_series`` is rows ``[0, 11520)``. :meth:`Protocol.evaluate` reports MSE and MAE
    on the z-scored values, nothing masked; few-shot settings take the first fraction
    of the training windows.

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
    if name in LONG_TERM:
        from ._ett import ett_protocol

        return ett_protocol(name, data_dir, history=96 if history is None else history,
                            horizon=96 if horizon is None else horizon, download=download)
    for value, what in ((history, "history"), (horizon, "horizon")):
        if value is not None and value != 12:
            raise ValueError(f"protocol {name!r} is defined on 12 steps in and 12 out; got {what}={value!r}.")
    if name == "pems08-tail":
        return _pems08_tail(data_dir)
    if name == "sz-taxi":
        return _sz_taxi(data_dir)
    from ._pems_full import pems_protocol

    return pems_protocol(name, data_dir, download=download)
