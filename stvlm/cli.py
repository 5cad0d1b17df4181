"""The ``stvlm`` command line: ``stvlm benchmark ...``, ``stvlm fetch ...`` (also ``python -m stvlm``)."""

from __future__ import annotations

import argparse
import sys


def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _build_parser():
    from ._benchmark_models import LONG_TERM_MODELS, TRAFFIC_MODELS
    from .benchmark import MODELS, SETTINGS

    parser = argparse.ArgumentParser(prog="stvlm", description="ST-VLM forecasting tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "benchmark",
        help="run models on a benchmark protocol; resumable results in <results-dir>/<protocol>.csv",
        description=(
            "Fit each model on the protocol's fit period (or a few-shot fraction of it), forecast "
            "the test windows and append one row per (model, setting, seed) to "
            "<results-dir>/<protocol>.csv; rows already there are skipped. Also writes "
            "<results-dir>/<protocol>.md, a Markdown table (mean ± std over seeds)."
        ),
    )
    b.add_argument("--protocol", default="pems08-tail",
                   help="pems08-tail, sz-taxi, pems03/04/07/08, etth1, etth2, or the path of a .npz/.npy series "
                        "split 6:2:2 (default: pems08-tail)")
    b.add_argument("--history", type=int, default=None, help="input length of etth1/etth2 (default: 96)")
    b.add_argument("--horizons", type=lambda t: [int(x) for x in _csv(t)], default=None,
                   help="comma-separated horizons of etth1/etth2 (default: 96,192,336,720)")
    b.add_argument("--no-download", action="store_true",
                   help="do not fetch a missing full PEMS or ETT file (by default it is downloaded once, verified)")
    b.add_argument("--models", type=_csv, default=None,
                   help=f"comma-separated, from: {', '.join(MODELS)} (default: {', '.join(TRAFFIC_MODELS)}; "
                        f"on etth1/etth2: {', '.join(LONG_TERM_MODELS)})")
    b.add_argument("--settings", type=_csv, default=["full"],
                   help=f"comma-separated, from: {', '.join(SETTINGS)} or few-shot-<fraction> (default: full)")
    b.add_argument("--seeds", type=lambda t: [int(x) for x in _csv(t)], default=[0],
                   help="comma-separated seeds (default: 0)")
    b.add_argument("--preset", default="cpu", choices=["cpu", "gpu"])
    b.add_argument("--results-dir", default="benchmarks/results")
    b.add_argument("--data-dir", default=None, help="data folder (default: ../shared/data or STVLM_DATA_DIR)")
    b.add_argument("--steps-per-day", type=int, default=288, help="time-of-day slots of a user's file")
    b.add_argument("--max-epochs", type=int, default=None, help="override every trained model's max_epochs")
    b.add_argument("--models-dir", default=None,
                   help="also save each fitted model here (<dir>/<protocol>/...); a zero-shot run scores a saved full fit")
    b.add_argument("--no-curves", action="store_true", help="do not write the per-epoch learning curves")
    b.add_argument("--quiet", action="store_true")
    f = sub.add_parser(
        "fetch",
        help="download and verify datasets into the cache (stvlm.datasets.get_data_home)",
        description="Fetch PEMS03/04/07/08 (with their road graphs) and ETTh1/ETTh2 once: verified, atomic, cached.",
    )
    f.add_argument("datasets", type=_csv, help="comma-separated, from: PEMS03, PEMS04, PEMS07, PEMS08, ETTh1, ETTh2")
    f.add_argument("--data-home", default=None, help="the download cache (default: $STVLM_CACHE_DIR or ~/.cache/stvlm)")
    f.add_argument("--timeout", type=float, default=60.0)
    f.add_argument("--quiet", action="store_true")
    return parser


def _fetch(args):
    from .datasets import PEMS_DATASETS, fetch_ett, fetch_pems

    for name in args.datasets:
        kw = dict(data_home=args.data_home, timeout=args.timeout, verbose=0 if args.quiet else 1)
        if name.upper().replace("-", "") in PEMS_DATASETS:
            series = fetch_pems(name, return_graph=True, **kw)[0]
        elif name.lower() in ("etth1", "etth2"):
            series = fetch_ett(name, **kw)
        else:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join([*PEMS_DATASETS, 'ETTh1', 'ETTh2'])}.")
        if not args.quiet:
            print(f"{name}: {series.shape[0]} steps x {series.shape[1]} series, verified")


def main(argv=None):
    """Entry point of the ``stvlm`` console script.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    int
        Exit status.

    Examples
    --------
    >>> import tempfile
    >>> from stvlm.cli import main
    >>> with tempfile.TemporaryDirectory() as out:
    ...     status = main(["benchmark", "--models", "last-value", "--results-dir", out, "--quiet"])
    >>> status
    0
    """
    args = _build_parser().parse_args(argv)
    if args.command == "fetch":
        from .datasets import FetchError

        try:
            _fetch(args)
        except (ValueError, FileNotFoundError, FetchError) as exc:
            print(f"stvlm fetch: error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "benchmark":
        from ._benchmark_models import _DETERMINISTIC, LONG_TERM_MODELS, MODELS, TRAFFIC_MODELS
        from .benchmark import run

        overrides = {}
        if args.max_epochs is not None:
            overrides = {m: dict(max_epochs=args.max_epochs) for m in MODELS if m not in _DETERMINISTIC}
        models = args.models or list(LONG_TERM_MODELS if args.protocol in ("etth1", "etth2") else TRAFFIC_MODELS)
        try:
            rows = run(
                args.protocol, models=models, settings=args.settings, seeds=args.seeds,
                preset=args.preset, results_dir=args.results_dir, data_dir=args.data_dir,
                steps_per_day=args.steps_per_day, overrides=overrides, save_curves=not args.no_curves,
                models_dir=args.models_dir, verbose=0 if args.quiet else 1,
                history=args.history, horizons=args.horizons, download=not args.no_download,
            )
        except (ValueError, FileNotFoundError, OSError) as exc:  # OSError: a failed download
            print(f"stvlm benchmark: error: {exc}", file=sys.stderr)
            return 2
        if not args.quiet:
            from .benchmark import results_table

            print(results_table(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
