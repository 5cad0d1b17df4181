"""What the moving average of the weights costs an epoch of the cpu preset (session 17).

Fits ST-VLM's ``cpu`` preset on the first 1,200 rows of the pems08-tail fit period for 3
epochs, with ``ema_decay=None`` and ``0.99`` alternately, twice, on one thread, and prints
each epoch's seconds, their medians and the ratio (with / without). Run it on a quiet
machine (``uptime``); the result is in docs/results.md ("pems08-tail").

    OMP_NUM_THREADS=1 python benchmarks/bench_ema_epoch.py
"""

from __future__ import annotations

import numpy as np


def main():
    import torch

    from stvlm import STVLMForecaster
    from stvlm.datasets import load_protocol

    torch.set_num_threads(1)
    p = load_protocol("pems08-tail")
    series = p.fit_series[:1200]
    seconds = {None: [], 0.99: []}
    for _ in range(2):
        for ema in seconds:
            model = STVLMForecaster.from_preset(
                "cpu", max_epochs=3, verbose=0, random_state=0, ema_decay=ema,
                steps_per_day=p.steps_per_day, start=p.start_time or p.first_time_index,
            )
            model.fit(series)
            seconds[ema] += [r["seconds"] for r in model.loss_history_]
    for ema, values in seconds.items():
        print(f"ema_decay={ema}: median epoch {np.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"ratio with / without: {np.median(seconds[0.99]) / np.median(seconds[None]):.3f}")


if __name__ == "__main__":
    main()
