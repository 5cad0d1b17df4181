"""A diagnosis, not library code: where ST-VLM's validation error exceeds STID-like's on the
full fit period of pems08-tail. No test window is read.

Each model is fitted as the benchmark fits it (``cpu`` preset, one seed, the full fit
period); its forecasts of the fit's own validation windows (the last 20 % of its windows,
after the gap) are saved. ``--compare`` then splits both models' absolute errors (the
protocol's mask) by horizon step, by the sensor's mean flow (quintiles), by the hour of
the window's last input step, and by how far the truth moves from the last input value
(quintiles of |y - last|), and writes the table to ``--out``.

    python benchmarks/gap_breakdown.py --model stvlm --seed 0     # one fit, forecasts saved
    python benchmarks/gap_breakdown.py --model stid --seed 0
    python benchmarks/gap_breakdown.py --compare --seed 0
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from stvlm._benchmark_models import _fit_kwargs, _fit_rows
from stvlm.benchmark import _make_model, _start
from stvlm.data import as_windows, chronological_split
from stvlm.datasets import load_protocol
from stvlm.metrics import target_mask

SCRATCH = Path("/tmp/stvlm-gap-breakdown")


def validation_windows(p, history, horizon, fraction=0.2):
    w = as_windows(_fit_rows(p, "full"), history=history, horizon=horizon, steps_per_day=p.steps_per_day, start=_start(p))
    return chronological_split(w, fraction)[1]


def fit_and_save(model, seed, p):
    est = _make_model(model, "cpu", "full", seed, p, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(_fit_rows(p, "full"), **_fit_kwargs(model, p))
    val = validation_windows(p, est.history, est.horizon, est.validation_fraction)
    SCRATCH.mkdir(exist_ok=True)
    np.savez(SCRATCH / f"{model}_seed{seed}.npz", forecast=est.predict(val), best_epoch=est.best_epoch_)
    print(f"{model} seed {seed}: best epoch {est.best_epoch_}, validation MAE {-est.best_score_:.3f}", flush=True)


def _split(err_a, err_b, keep, labels, names):
    """Masked MAE of both models and their difference, per group label."""
    rows = []
    for g, name in enumerate(names):
        sel = keep & (labels == g)
        a, b = float(err_a[sel].mean()), float(err_b[sel].mean())
        rows.append(dict(group=name, share=round(float(sel.sum() / keep.sum()), 3), stvlm=round(a, 3),
                         stid=round(b, 3), gap=round(a - b, 3),
                         gap_share=round(float((err_a[sel] - err_b[sel]).sum() / (err_a[keep] - err_b[keep]).sum()), 3)))
    return rows


def compare(seed, p, out):
    fa, fb = (np.load(SCRATCH / f"{m}_seed{seed}.npz")["forecast"] for m in ("stvlm", "stid"))
    val = validation_windows(p, p.history, p.horizon)
    y, x = val.y, val.filled()
    keep = target_mask(y, p.null_value, p.threshold)
    ea, eb = np.abs(fa - y), np.abs(fb - y)
    shape = y.shape  # (windows, horizon, sensors)
    step = np.broadcast_to(np.arange(shape[1])[None, :, None], shape)
    level = x.mean(axis=(0, 1))
    q = np.searchsorted(np.quantile(level, [0.2, 0.4, 0.6, 0.8]), level)
    sensor_q = np.broadcast_to(q[None, None, :], shape)
    hour = (val.time_of_day * 24 // p.steps_per_day) // 4  # six 4-hour blocks of the last input step's day
    hour_b = np.broadcast_to(hour[:, None, None], shape)
    move = np.abs(y - x[:, -1:, :])
    mq = np.searchsorted(np.quantile(move[keep], [0.2, 0.4, 0.6, 0.8]), move)
    table = dict(
        protocol=p.name, seed=seed, stvlm=round(float(ea[keep].mean()), 3), stid=round(float(eb[keep].mean()), 3),
        by_step=_split(ea, eb, keep, step, [str(h + 1) for h in range(shape[1])]),
        by_sensor_flow=_split(ea, eb, keep, sensor_q, ["lowest 20 %", "20-40 %", "40-60 %", "60-80 %", "highest 20 %"]),
        by_hour=_split(ea, eb, keep, hour_b, [f"{4 * h:02d}-{4 * h + 4:02d} h" for h in range(6)]),
        by_move=_split(ea, eb, keep, mq, ["calmest 20 %", "20-40 %", "40-60 %", "60-80 %", "largest 20 %"]),
    )
    Path(out).write_text(json.dumps(table, indent=1) + "\n")
    print(f"validation MAE: ST-VLM {table['stvlm']}, STID-like {table['stid']}")
    for key in ("by_step", "by_sensor_flow", "by_hour", "by_move"):
        print(key)
        for r in table[key]:
            print(f"  {r['group']:>14}  share {r['share']:.3f}  ST-VLM {r['stvlm']:.3f}  STID {r['stid']:.3f}  "
                  f"gap {r['gap']:+.3f}  of the gap {r['gap_share']:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("stvlm", "stid"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gap-breakdown.json"))
    args = ap.parse_args(argv)
    p = load_protocol("pems08-tail")
    if args.compare:
        compare(args.seed, p, args.out)
    else:
        fit_and_save(args.model, args.seed, p)


if __name__ == "__main__":
    main()
