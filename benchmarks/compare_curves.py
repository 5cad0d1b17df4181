"""Best validation loss of the same runs in two folders of learning curves.

Used to weigh a change of the training rule on validation data only (never a test
window): each curve file names one run (model, preset, setting, seed, history,
horizon); the runs present in both folders are paired.

    python benchmarks/compare_curves.py benchmarks/results/timevlm-patience-3/etth1-curves \
        benchmarks/results/etth1-curves

The "after" side can also be a variant of ``tune.py``'s rows (which record the same
validation MSE per epoch), paired with the curve of the same model, setting, seed and
horizon:

    python benchmarks/compare_curves.py benchmarks/results/etth1-curves \
        --tuning benchmarks/results/tuning-ett.jsonl --variant dropout-0.3 --protocol etth1
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


def tuned(path, variant, protocol, history=512, preset="cpu"):
    """``{curve file name: (best validation loss, its epoch, epochs run)}`` of one
    variant's rows in a ``tune.py`` results file (long-term protocols)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        if r.get("variant") == variant and r.get("protocol") == protocol and "horizon" in r:
            name = f"{r['model']}_{preset}_{r['setting']}_seed{r['seed']}_L{history}_H{r['horizon']}.json"
            out[name] = (r["val_mse"], r["best_epoch"], r["epochs"])
    return out


def compare(before, after):
    """Rows ``(name, before, after)`` for the runs present in both: ``after`` is a curve
    folder or a dict from :func:`tuned`."""
    got = after if isinstance(after, dict) else {p.name: None for p in Path(after).glob("*.json")}
    names = sorted({p.name for p in Path(before).glob("*.json")} & set(got))
    return [(n, best(Path(before) / n), got[n] or best(Path(after) / n)) for n in names]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after", nargs="?", help="a curve folder (or give --tuning)")
    ap.add_argument("--tuning", help="a tune.py results file: the variant's rows are the after side")
    ap.add_argument("--variant")
    ap.add_argument("--protocol")
    ap.add_argument("--history", type=int, default=512)
    args = ap.parse_args(argv)
    if (args.after is None) == (args.tuning is None):
        raise SystemExit("give either an after folder or --tuning (with --variant and --protocol)")
    after = args.after if args.tuning is None else tuned(args.tuning, args.variant, args.protocol, args.history)
    rows = compare(args.before, after)
    if not rows:
        raise SystemExit(f"no run is in both {args.before} and {args.after or args.tuning}")
    print(f"{'run':<55} {'before (epoch/run)':>20} {'after (epoch/run)':>20} {'ratio':>7}")
    for name, (b, be, bn), (a, ae, an) in rows:
        print(f"{name[:-5]:<55} {b:>10.4f} ({be:>2}/{bn:>2}) {a:>10.4f} ({ae:>2}/{an:>2}) {a / b:>7.3f}")
    geo = math.exp(sum(math.log(a / b) for _, (b, *_), (a, *_) in rows) / len(rows))
    print(f"{len(rows)} runs; geometric mean of after / before: {geo:.3f}")


if __name__ == "__main__":
    main()
