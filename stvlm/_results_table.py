"""The Markdown table of benchmark results, mean ± std over seeds (public as
:func:`stvlm.benchmark.results_table`)."""

from __future__ import annotations

import numpy as np

_MODEL_NAMES = {
    "stvlm": "ST-VLM",
    "stid": "STID-like MLP",
    "lstm": "LSTM seq2seq",
    "last-value": "Last value",
    "historical-average": "Historical average",
    "seasonal-naive": "Seasonal naive (1 day)",
    "timevlm": "Time-VLM",
    "dlinear": "DLinear",
    "patchtst": "PatchTST",
}
_SETTING_NAMES = {
    "full": "full", "wo-saf": "w/o SAF", "wo-ft": "w/o FT", "wo-calendar": "w/o calendar", "wo-image": "w/o image",
    "wo-ral": "w/o RAL", "wo-val": "w/o VAL", "wo-tal": "w/o TAL", "zero-shot-etth1": "zero-shot from ETTh1",
    "zero-shot-etth2": "zero-shot from ETTh2",
}


def _setting_name(s):
    if s.startswith("few-shot-"):
        return f"few-shot {float(s[len('few-shot-'):]) * 100:g} %"
    return _SETTING_NAMES.get(s, s)


def _cell(values, digits=2):
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def _order(key):
    model, s = key
    if s == "full":
        so = (0, 0.0)
    elif s.startswith("few-shot-"):
        so = (1, float(s[len("few-shot-"):]))
    else:
        ablations = list(_SETTING_NAMES)
        so = (2, ablations.index(s) if s in ablations else 99)
    # Rows in the order of the runner's MODELS and SETTINGS, which the name tables follow.
    return so, list(_MODEL_NAMES).index(model) if model in _MODEL_NAMES else 99


def _long_term_table(rows, title):
    """One line per (model, setting): MSE / MAE at each horizon and their mean over horizons."""
    horizons = sorted({int(r["horizon"]) for r in rows})
    groups = {}
    for r in rows:
        key = (r["model"], r["setting"], int(r.get("history") or 0))
        groups.setdefault(key, {}).setdefault(int(r["horizon"]), []).append(r)
    lines = [f"**{title}**", ""] if title else []
    lines += [
        "| model | setting | input | " + " | ".join(f"H {h} (MSE / MAE)" for h in horizons)
        + " | mean (MSE / MAE) | seeds |",
        "|---|---|---|" + "---|" * (len(horizons) + 2),
    ]
    for k in sorted(groups, key=lambda k: (k[2], _order(k[:2]))):
        g = groups[k]
        cells, mse, mae = [], [], []
        for h in horizons:
            if h not in g:
                cells.append("-")
                continue
            a, b = [float(r["MSE"]) for r in g[h]], [float(r["MAE"]) for r in g[h]]
            cells.append(f"{_cell(a, 3)} / {_cell(b, 3)}")
            mse.append(np.mean(a))
            mae.append(np.mean(b))
        mean = f"{np.mean(mse):.3f} / {np.mean(mae):.3f}" if len(mse) == len(horizons) else "-"
        seeds = max(len(v) for v in g.values())
        lines.append(f"| {_MODEL_NAMES.get(k[0], k[0])} | {_setting_name(k[1])} | {k[2]} | " + " | ".join(cells)
                     + f" | {mean} | {seeds} |")
    return "\n".join(lines) + "\n"


def results_table(rows, title=None):
    """Markdown table of results rows, mean ± std over seeds, in the paper's layout.

    One line per (model, setting): MAE, RMSE and MAPE over all horizons, then MAE /
    RMSE / MAPE at horizons 3, 6 and 12, the fit time and peak memory, and the number
    of seeds. The standard deviation is the sample one (``ddof=1``). Rows of a
    long-term protocol (ETT, with ``MSE``) give one line per (model, setting) with
    MSE / MAE at each horizon and their mean over the horizons, as the papers report.

    Parameters
    ----------
    rows : list of dict
        Rows as :func:`run` returns them (or as read from its CSV file).
    title : str, default=None
        A heading line above the table.

    Returns
    -------
    str

    Examples
    --------
    >>> from stvlm.benchmark import results_table
    >>> rows = [dict(model="stid", setting="full", seed=s, MAE=m, RMSE=2 * m, MAPE=10.0,
    ...              fit_seconds=1.0, peak_memory_mb=100.0,
    ...              **{f"{k}_h{h}": m for k in ("MAE", "RMSE", "MAPE") for h in (3, 6, 12)})
    ...         for s, m in [(0, 14.0), (1, 16.0)]]
    >>> print(results_table(rows).splitlines()[2])
    | STID-like MLP | full | 15.00 ± 1.41 | 30.00 ± 2.83 | 10.00 ± 0.00 | 15.00 ± 1.41 / 15.00 ± 1.41 / 15.00 ± 1.41 | 15.00 ± 1.41 / 15.00 ± 1.41 / 15.00 ± 1.41 | 15.00 ± 1.41 / 15.00 ± 1.41 / 15.00 ± 1.41 | 1 | 100 | 2 |
    """
    if rows and str(rows[0].get("MSE", "")) not in ("", "None"):
        return _long_term_table(rows, title)
    groups = {}
    for r in rows:
        groups.setdefault((r["model"], r["setting"]), []).append(r)
    # Rows in the order of the runner's MODELS and SETTINGS, which the name tables follow.
    keys = sorted(groups, key=_order)
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    lines += [
        "| model | setting | MAE | RMSE | MAPE % | horizon 3 (MAE / RMSE / MAPE) | horizon 6 | horizon 12 "
        "| fit s | peak MB | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if title is None:
        lines = lines[-2:]
    for k in keys:
        g = groups[k]

        def col(name, g=g):
            return [float(r[name]) for r in g]

        hz = [" / ".join(_cell(col(f"{m}_h{h}")) for m in ("MAE", "RMSE", "MAPE")) for h in (3, 6, 12)]
        lines.append(
            f"| {_MODEL_NAMES.get(k[0], k[0])} | {_setting_name(k[1])} | {_cell(col('MAE'))} | {_cell(col('RMSE'))} "
            f"| {_cell(col('MAPE'))} | {hz[0]} | {hz[1]} | {hz[2]} | {np.mean(col('fit_seconds')):.0f} "
            f"| {np.max(col('peak_memory_mb')):.0f} | {len(g)} |"
        )
    return "\n".join(lines) + "\n"
