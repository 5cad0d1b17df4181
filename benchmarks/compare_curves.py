"""Best validation loss of the same runs in two folders of learning curves.

Used to weigh a change of the training rule on validation data only (never a test
window): each curve file names one run (model, preset, setting, seed, history,
horizon); the runs present in both folders are paired.

    python benchmarks/compare_curves.py benchmarks/results/timevlm-patience-3/etth1-curves \
        benchmarks/results/etth1-curves
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def best(path):
    """(best validation loss, its epoch, epochs run) of one curve file."""
    curve = json.loads(Path(path).read_text())
    losses = [row["val_loss"] for row in curve]
    i = min(range(len(losses)), key=losses.__getitem__)
    return losses[i], i + 1, len(losses)


def compare(before, after):
    """Rows ``(name, before, after)`` for the curve files present in both folders."""
    names = sorted({p.name for p in Path(before).glob("*.json")} & {p.name for p in Path(after).glob("*.json")})
    return [(n, best(Path(before) / n), best(Path(after) / n)) for n in names]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    args = ap.parse_args(argv)
    rows = compare(args.before, args.after)
    if not rows:
        raise SystemExit(f"no curve file is in both {args.before} and {args.after}")
    print(f"{'run':<55} {'before (epoch/run)':>20} {'after (epoch/run)':>20} {'ratio':>7}")
    for name, (b, be, bn), (a, ae, an) in rows:
        print(f"{name[:-5]:<55} {b:>10.4f} ({be:>2}/{bn:>2}) {a:>10.4f} ({ae:>2}/{an:>2}) {a / b:>7.3f}")
    geo = math.exp(sum(math.log(a / b) for _, (b, *_), (a, *_) in rows) / len(rows))
    print(f"{len(rows)} runs; geometric mean of after / before: {geo:.3f}")


if __name__ == "__main__":
    main()
