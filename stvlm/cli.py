"""The ``stvlm`` command line: ``stvlm benchmark ...`` (also ``python -m stvlm``)."""

from __future__ import annotations

import argparse
import sys


def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _build_parser():
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
                   help="pems08-tail, sz-taxi, or the path of a .npz/.npy series split 6:2:2 (default: pems08-tail)")
    b.add_argument("--models", type=_csv, default=list(MODELS),
                   help=f"comma-separated, from: {', '.join(MODELS)} (default: all)")
    b.add_argument("--settings", type=_csv, default=["full"],
                   help=f"comma-separated, from: {', '.join(SETTINGS)} or few-shot-<fraction> (default: full)")
    b.add_argument("--seeds", type=lambda t: [int(x) for x in _csv(t)], default=[0],
                   help="comma-separated seeds (default: 0)")
    b.add_argument("--preset", default="cpu", choices=["cpu", "gpu"])
    b.add_argument("--results-dir", default="benchmarks/results")
    b.add_argument("--data-dir", default=None, help="data folder (default: ../shared/data or STVLM_DATA_DIR)")
    b.add_argument("--steps-per-day", type=int, default=288, help="time-of-day slots of a user's file")
    b.add_argument("--max-epochs", type=int, default=None, help="override every trained model's max_epochs")
    b.add_argument("--models-dir", default=None, help="also save each fitted model here")
    b.add_argument("--no-curves", action="store_true", help="do not write the per-epoch learning curves")
    b.add_argument("--quiet", action="store_true")
    return parser


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
    if args.command == "benchmark":
        from .benchmark import run

        overrides = {}
        if args.max_epochs is not None:
            overrides = {m: dict(max_epochs=args.max_epochs) for m in ("stvlm", "stid", "lstm")}
        try:
            rows = run(
                args.protocol, models=args.models, settings=args.settings, seeds=args.seeds,
                preset=args.preset, results_dir=args.results_dir, data_dir=args.data_dir,
                steps_per_day=args.steps_per_day, overrides=overrides, save_curves=not args.no_curves,
                models_dir=args.models_dir, verbose=0 if args.quiet else 1,
            )
        except (ValueError, FileNotFoundError) as exc:
            print(f"stvlm benchmark: error: {exc}", file=sys.stderr)
            return 2
        if not args.quiet:
            from .benchmark import results_table

            print(results_table(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
