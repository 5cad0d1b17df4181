"""Benchmark runner: every model on a protocol, in the paper's settings, into a
resumable results file.

``stvlm benchmark`` (the console script) and :func:`run` do the same thing: for each
(model, setting, seed) they fit on the protocol's fit period (or its first few-shot
fraction), forecast the test windows, score them with the protocol's masks and append
one row to ``<results_dir>/<protocol>.csv``. A row already in that file is not
recomputed, so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BENCHMARK_PRESETS", "MODELS", "SETTINGS", "results_table", "run"]

# The models of a run, their presets and settings live in stvlm/_benchmark_models.py.
from ._benchmark_models import (  # noqa: E402, F401
    _ABLATIONS, _DETERMINISTIC, BENCHMARK_PRESETS, MODELS, SETTINGS, _applies, _fit_kwargs, _fit_rows, _make_model, _predict,
    _start,
)

COLUMNS = (
    "protocol", "model", "preset", "setting", "seed", "n_fit_rows",
    "MAE", "RMSE", "MAPE",
    "MAE_h3", "RMSE_h3", "MAPE_h3", "MAE_h6", "RMSE_h6", "MAPE_h6", "MAE_h12", "RMSE_h12", "MAPE_h12",
    "fit_seconds", "predict_seconds", "peak_memory_mb", "epochs", "best_epoch", "threads",
    "commit", "finished",
)
_KEY = ("protocol", "model", "preset", "setting", "seed")
#: Columns of the long-term protocols (ETT): one row per horizon, MSE and MAE on z-scored values.
LONG_TERM_COLUMNS = (
    "protocol", "model", "preset", "setting", "seed", "history", "horizon", "n_fit_rows", "MSE", "MAE",
    "fit_seconds", "predict_seconds", "peak_memory_mb", "epochs", "best_epoch", "threads", "commit", "finished",
)


def _long(p):
    return "MSE" in p.metrics


def _columns(p):
    return LONG_TERM_COLUMNS if _long(p) else COLUMNS


def _key_of(p):
    return _KEY + (("history", "horizon") if _long(p) else ())


# ---------------------------------------------------------------------- measuring
class _PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @staticmethod
    def _rss():
        try:
            import psutil

            return psutil.Process().memory_info().rss
        except ImportError:  # pragma: no cover - psutil is a test/bench extra
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def sample(self):
        """The resident memory now, counted in the peak (a reading taken between two
        samples of the thread could otherwise exceed the peak)."""
        rss = self._rss()
        with self._lock:
            self.peak = max(self.peak, rss)
        return rss

    def _loop(self):
        while not self._stop.wait(0.01):
            self.sample()

    def __enter__(self):
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()


def _commit():
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if not sha:
            return "unknown"
        # Only the package's own source counts: the results file this run appends to is
        # itself tracked, and must not mark every row "+dirty".
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
            cwd=here, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _one_run(protocol, model, preset, setting, seed, overrides, curves_dir, models_dir, source=None):
    import torch

    # Zero-shot: the full setting of the source protocol, scored on this one's test windows.
    fit_on = protocol if source is None else source
    series = _fit_rows(fit_on, setting if source is None else "full")
    est = _make_model(model, preset, setting, seed, fit_on, overrides)
    stem = f"{model}_{preset if model in BENCHMARK_PRESETS else '-'}_{setting}_seed{seed}" + (
        f"_L{protocol.history}_H{protocol.horizon}" if _long(protocol) else "")
    # Where this fit is saved: a zero-shot fit is the source protocol's full fit.
    fit_path = None if models_dir is None else (
        models_dir / protocol.name / stem if source is None
        else models_dir / source.name / stem.replace(f"_{setting}_", "_full_", 1))
    saved = None if fit_path is None or source is None else _saved_fit(fit_path, est)
    with _PeakRSS() as mem:
        t0 = time.perf_counter()
        if saved is None:
            est.fit(series, **_fit_kwargs(model, fit_on))
            fit_s, commit = time.perf_counter() - t0, _commit()
        else:
            est, fit_s, commit = saved
        t0 = time.perf_counter()
        y_pred = _predict(model, est, protocol)
        predict_s = time.perf_counter() - t0
    scores = protocol.evaluate(y_pred)
    hist = getattr(est, "loss_history_", None)
    row = dict(
        protocol=protocol.name, model=model, preset=preset if model in BENCHMARK_PRESETS else "-", setting=setting,
        seed=seed, n_fit_rows=series.shape[0], history=protocol.history, horizon=protocol.horizon,
        **{m: scores[m] for m in protocol.metrics},
        fit_seconds=round(fit_s, 2), predict_seconds=round(predict_s, 2),
        peak_memory_mb=round(mem.peak / 2**20, 1),
        epochs=len(hist) if hist is not None else "", best_epoch=getattr(est, "best_epoch_", ""),
        threads=torch.get_num_threads(), commit=commit, finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    for h, figures in scores["horizons"].items():
        for m, value in figures.items():
            row[f"{m}_h{h}"] = value
    if curves_dir is not None and hist:
        curves_dir.mkdir(parents=True, exist_ok=True)
        (curves_dir / f"{stem}.json").write_text(json.dumps(hist, indent=1, default=float))
    if fit_path is not None and saved is None:
        _save_fit(est, fit_path, fit_s, commit)
    return row


_FIT_RECORD = "benchmark_fit.json"  # beside a saved model: its fit's seconds and commit


def _save_fit(est, path, fit_seconds, commit):
    """Save a fitted model to the folder ``path`` with the record :func:`_saved_fit` reads."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(est, "save"):
        est.save(path)
    else:
        path.mkdir(parents=True, exist_ok=True)
        joblib.dump(est, path / "model.joblib")
    # Written last: a folder without it (a crash mid-save) is never reused.
    (path / _FIT_RECORD).write_text(json.dumps(dict(fit_seconds=round(fit_seconds, 2), commit=commit)))


def _saved_fit(path, est):
    """``(model, fit_seconds, commit)`` of the fit saved at ``path`` if it was made with
    ``est``'s parameters, else None: a zero-shot run scores the source's full fit, which
    is the same fit (same rows, validation, seed and parameters), instead of repeating it."""
    record = path / _FIT_RECORD
    if not record.is_file():
        return None
    if hasattr(est, "load"):
        saved = type(est).load(path)
    else:
        import joblib

        saved = joblib.load(path / "model.joblib")
    if type(saved) is not type(est) or repr(saved.get_params()) != repr(est.get_params()):
        return None
    info = json.loads(record.read_text())
    return saved, float(info["fit_seconds"]), str(info["commit"])


# ---------------------------------------------------------------------- results file
def _read_rows(path):
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _key(row, key=_KEY):
    return tuple(str(row.get(k, "")) for k in key)


def _append_row(path, row, columns=COLUMNS):
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in columns})


@dataclass
class _Plan:
    model: str
    setting: str
    seed: int
    protocol: object = None
    source: object = None  # the protocol a zero-shot setting fits on


def _load(protocol, data_dir, steps_per_day, history=None, horizons=None, download=True):
    """The protocols of a run: one, or one per horizon for the long-term protocols."""
    from .datasets import ETT_HORIZONS, LONG_TERM, PROTOCOLS, Protocol, load_pems, load_protocol, make_protocol

    if protocol in LONG_TERM:
        hs = ETT_HORIZONS if horizons is None else horizons
        return [load_protocol(protocol, data_dir, history=history, horizon=h, download=download) for h in hs]
    if horizons is not None and list(horizons) != [12]:
        raise ValueError(f"horizons= applies to the long-term protocols ({', '.join(LONG_TERM)}); got {horizons!r}.")
    if isinstance(protocol, Protocol):
        return [protocol]
    if protocol in PROTOCOLS:
        return [load_protocol(protocol, data_dir=data_dir, history=history, download=download)]
    path = Path(protocol)
    if path.suffix in (".npz", ".npy") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"data file {str(path)!r} does not exist.")
        return [make_protocol(load_pems(path), name=path.stem, steps_per_day=steps_per_day)]
    raise ValueError(
        f"protocol must be one of {', '.join(PROTOCOLS)}, a Protocol, or the path of a .npz/.npy "
        f"series (split 6:2:2); got {protocol!r}."
    )


def run(
    protocol="pems08-tail",
    models=("stvlm", "stid", "lstm", "last-value", "historical-average", "seasonal-naive"),
    settings=("full",),
    seeds=(0,),
    preset="cpu",
    results_dir="benchmarks/results",
    *,
    data_dir=None,
    steps_per_day=288,
    overrides=None,
    save_curves=True,
    models_dir=None,
    verbose=1,
    history=None,
    horizons=None,
    download=True,
):
    """Run models on a protocol in the given settings and seeds; append to the results file.

    Parameters
    ----------
    protocol : str or Protocol, default="pems08-tail"
        A name of :data:`stvlm.datasets.PROTOCOLS` (``"pems08-tail"``, ``"sz-taxi"``,
        ``"pems03"`` ... ``"pems08"``, ``"etth1"``, ``"etth2"``), a
        :class:`~stvlm.datasets.Protocol`, or the path of a user's ``.npz``/``.npy``
        series (split 6:2:2 by :func:`~stvlm.datasets.make_protocol`). A long-term
        protocol (ETT) runs once per horizon and scores MSE and MAE on z-scored values.
    models : sequence of str
        Names from :data:`MODELS`.
    settings : sequence of str, default=("full",)
        Names from :data:`SETTINGS`: ``"full"`` fits on the whole fit period,
        ``"few-shot-<f>"`` on its first fraction ``f`` of the training part (any
        ``f`` in (0, 1]), ``"wo-saf"``, ``"wo-ft"``, ``"wo-calendar"``, ``"wo-image"`` are ST-VLM's ablations (skipped for
        the other models).
    seeds : sequence of int, default=(0,)
        Seeds of the trained models; deterministic models run for the first only.
    preset : {"cpu", "gpu"}, default="cpu"
        Hyper-parameters of the trained models (:data:`BENCHMARK_PRESETS`).
    results_dir : str or path-like, default="benchmarks/results"
        Folder of ``<protocol>.csv``, ``<protocol>.md`` and learning curves.
    data_dir : str or path-like, default=None
        Data folder for the named protocols.
    steps_per_day : int, default=288
        Slots per day of a user's file.
    overrides : dict, default=None
        Per-model keyword overrides, e.g. ``{"stvlm": {"max_epochs": 30}}``. They are
        not part of a row's key: use another ``results_dir`` for another configuration.
    save_curves : bool, default=True
        Write each trained model's per-epoch losses to
        ``<results_dir>/<protocol>-curves/<model>_<preset>_<setting>_seed<k>.json``.
    models_dir : str or path-like, default=None
        Also save each fitted model there, as ``<models_dir>/<protocol>/<stem>/`` (the
        estimator's ``save``, joblib otherwise; the stem is the learning curve's). A
        zero-shot setting then scores the source protocol's saved full fit when its
        parameters match, instead of repeating that fit: the row gets the fit's seconds
        and commit.
    verbose : int, default=1
        ``1``: a tqdm bar over runs and a line per finished run.
    history : int, default=None
        Input length of a long-term protocol (96 when None; the papers use 96 or 512).
    horizons : sequence of int, default=None
        Horizons of a long-term protocol (all of 96, 192, 336, 720 when None).
    download : bool, default=True
        Fetch the full PEMS or ETT file of a named protocol once if no copy is found
        (:func:`~stvlm.datasets.fetch_pems`, :func:`~stvlm.datasets.fetch_ett`: cached,
        verified); ``False`` raises ``FileNotFoundError`` instead.

    Returns
    -------
    list of dict
        Every row of the results file for this protocol and preset, finished earlier or
        now.

    Raises
    ------
    ValueError
        For an unknown model, setting, preset or protocol.

    Examples
    --------
    >>> import tempfile
    >>> from stvlm.benchmark import run, results_table
    >>> with tempfile.TemporaryDirectory() as out:
    ...     rows = run("pems08-tail", models=["last-value"], results_dir=out, verbose=0)
    ...     again = run("pems08-tail", models=["last-value"], results_dir=out, verbose=0)
    >>> round(float(rows[0]["MAE"]), 2), len(again)
    (25.28, 1)
    """
    models = [models] if isinstance(models, str) else list(models)
    settings = [settings] if isinstance(settings, str) else list(settings)
    seeds = [seeds] if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    for m in models:
        if m not in MODELS:
            raise ValueError(f"unknown model {m!r}; known models: {', '.join(MODELS)}.")
    for s in settings:
        if s in SETTINGS:
            continue
        ok = s.startswith("few-shot-")
        if ok:
            try:
                ok = 0 < float(s[len("few-shot-"):]) <= 1
            except ValueError:
                ok = False
        if not ok:
            raise ValueError(f"unknown setting {s!r}; known settings: {', '.join(SETTINGS)} (or few-shot-<fraction>).")
    if preset not in ("cpu", "gpu"):
        raise ValueError(f"preset must be 'cpu' or 'gpu'; got {preset!r}.")
    if not seeds:
        raise ValueError("seeds must hold at least one seed.")
    overrides = dict(overrides or {})
    protocols = _load(protocol, data_dir, steps_per_day, history, horizons, download)
    p = protocols[0]
    key, columns = _key_of(p), _columns(p)
    results_dir = Path(results_dir)
    csv_path = results_dir / f"{p.name}.csv"
    done = {_key(r, key) for r in _read_rows(csv_path)}

    from .distributed import is_main_process

    sources = {}
    for s in settings:
        if s.startswith("zero-shot-"):
            if s == f"zero-shot-{p.name}":
                raise ValueError(f"{s} on {p.name} fits and tests on the same data: that is the full setting.")
            sources[s] = {q.horizon: q for q in _load(s[len("zero-shot-"):], data_dir, steps_per_day, history,
                                                       [q.horizon for q in protocols], download)}
    plan = []
    for q in protocols:
        for m in models:
            for s in settings:
                if not _applies(m, s):
                    continue
                source = sources[s][q.horizon] if s in sources else None
                if source is not None and m not in _DETERMINISTIC:
                    plan += [_Plan(m, s, seed, q, source) for seed in seeds]
                    continue
                if m not in _DETERMINISTIC and _fit_rows(q, s).shape[0] < q.history + q.horizon:
                    # A few-shot part shorter than one window (ETT, 5 %, H 720): nothing to train
                    # on, as in the papers' tables, which leave these cells empty.
                    if verbose and is_main_process():
                        print(f"{m} {s}: skipped, {_fit_rows(q, s).shape[0]} rows hold no window of "
                              f"{q.history} + {q.horizon} steps", flush=True)
                    continue
                for seed in seeds[:1] if m in _DETERMINISTIC else seeds:
                    plan.append(_Plan(m, s, seed, q))

    def planned_key(x):
        row = dict(protocol=p.name, model=x.model, preset=preset if x.model in BENCHMARK_PRESETS else "-",
                   setting=x.setting, seed=x.seed, history=x.protocol.history, horizon=x.protocol.horizon)
        return _key(row, key)

    todo = [x for x in plan if planned_key(x) not in done]
    from ._progress import progress

    bar = progress(len(todo), verbose if is_main_process() else 0, f"benchmark {p.name}")
    try:
        for x in todo:
            row = _one_run(
                x.protocol, x.model, preset, x.setting, x.seed, overrides,
                results_dir / f"{p.name}-curves" if save_curves else None,
                None if models_dir is None else Path(models_dir), source=x.source,
            )
            if is_main_process():  # on several processes, one row per run
                _append_row(csv_path, row, columns)
            bar.update(1)
            if verbose and is_main_process():
                figures = "  ".join(f"{m} {row[m]:.4g}" for m in x.protocol.metrics)
                where = f" H {x.protocol.horizon}" if _long(p) else ""
                print(f"{x.model:<18} {x.setting:<14} seed {x.seed}{where}: {figures}  fit {row['fit_seconds']:.0f} s",
                      flush=True)
    finally:
        bar.close()
    rows = [r for r in _read_rows(csv_path) if r["preset"] in (preset, "-")]
    if is_main_process():
        (results_dir / f"{p.name}.md").write_text(results_table(rows, title=f"{p.name}, preset {preset}"))
    return rows


# The Markdown table of results rows lives in stvlm/_results_table.py.
from ._results_table import results_table  # noqa: E402


def __getattr__(name):
    if name == "PRESETS":
        import warnings

        warnings.warn(
            "stvlm.benchmark.PRESETS was renamed BENCHMARK_PRESETS (model presets: stvlm.presets.MODEL_PRESETS).",
            FutureWarning,
            stacklevel=2,
        )
        return BENCHMARK_PRESETS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
