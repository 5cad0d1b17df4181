"""Seconds per epoch of ST-VLM's ``cpu`` preset on the whole pems08-tail fit period, to
compare two checkouts on one machine (run alternately, alone):

    PYTHONPATH=/path/to/old/checkout python benchmarks/epoch_seconds.py
    PYTHONPATH=. python benchmarks/epoch_seconds.py --no-average

``--no-average`` fits with ``ema_decay=None`` (for checkouts from before the moving
average, which lack the parameter), so that only the code differs. The series is fitted
undated, as ``benchmarks/profile_epoch.py`` fits it: without the time-of-day embedding,
one addition per sensor token, so an epoch costs what the benchmark's does (session 18:
24.4 s here, 24.4 s median in the benchmark's dated fit). Prints one JSON line: the
checkout, the fit's seconds and each epoch's.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--no-average", action="store_true", help="ema_decay=None")
    args = ap.parse_args(argv)

    import torch

    import stvlm
    from stvlm import STVLMForecaster
    from stvlm.datasets import load_protocol

    series = load_protocol("pems08-tail").fit_series
    extra = dict(ema_decay=None) if args.no_average else {}
    t0 = time.perf_counter()
    model = STVLMForecaster.from_preset("cpu", max_epochs=args.epochs, random_state=0, verbose=0, **extra)
    model.fit(series)
    print(json.dumps(dict(
        stvlm=stvlm.__file__, threads=torch.get_num_threads(), fit_seconds=round(time.perf_counter() - t0, 1),
        epoch_seconds=[round(r["seconds"], 2) for r in model.loss_history_], **extra,
    )), flush=True)


if __name__ == "__main__":
    main()
