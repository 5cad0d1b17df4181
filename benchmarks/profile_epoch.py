"""Where an epoch of ST-VLM's ``cpu`` preset goes: torch's profiler over one epoch on
the first rows of pems08-tail, the operators that take the most time, and the seconds
of a whole epoch.

    python benchmarks/profile_epoch.py --rows 1200            # this checkout
    PYTHONPATH=/path/to/old/checkout python benchmarks/profile_epoch.py --rows 1200

Run it twice (before and after a change) on a quiet machine; the JSON it writes holds
the epoch's seconds and the top operators' self CPU times.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1200, help="rows of the fit period (1200: ~37 steps)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    ap.add_argument("--level", action="store_true", help="calendar=None, output='level' (the paper's network)")
    args = ap.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    import stvlm
    from stvlm import STVLMForecaster
    from stvlm.datasets import load_protocol

    p = load_protocol("pems08-tail")
    series = p.fit_series[: args.rows]

    def model():
        extra = dict(calendar=None, output="level") if args.level else {}
        try:
            return STVLMForecaster.from_preset("cpu", max_epochs=1, random_state=0, verbose=0, **extra)
        except TypeError:  # a checkout from before these parameters
            return STVLMForecaster.from_preset("cpu", max_epochs=1, random_state=0, verbose=0)

    model().fit(series[:400])  # warm-up: numba compilation, allocator
    t0 = time.perf_counter()
    m = model().fit(series)
    plain = time.perf_counter() - t0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model().fit(series)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    top = [dict(op=e.key, self_cpu_s=round(e.self_cpu_time_total / 1e6, 3),
                share=round(e.self_cpu_time_total / total, 3), calls=e.count) for e in events[: args.top]]
    result = dict(
        stvlm=stvlm.__file__, rows=args.rows, threads=torch.get_num_threads(),
        fit_seconds=round(plain, 2), epoch_seconds=round(m.loss_history_[0]["seconds"], 2), top=top,
    )
    print(f"{result['stvlm']}: fit {plain:.2f} s, epoch {result['epoch_seconds']} s ({args.rows} rows, "
          f"{result['threads']} threads)")
    for row in top:
        print(f"  {row['share']:6.1%}  {row['self_cpu_s']:7.3f} s  {row['calls']:5d}  {row['op']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
