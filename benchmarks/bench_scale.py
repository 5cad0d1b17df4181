"""Scale: images of a PEMS04-size series on this machine, and host memory at PEMS07 size.

    python benchmarks/bench_scale.py images   # 307 sensors x 16,992 steps: every image, to Zarr
    python benchmarks/bench_scale.py memory   # 883 x 28,224: peak memory of the fit's data path

``images`` makes all 16,969 three-channel images of a synthetic PEMS04-size series (gamma
flow, the data's shape) with ``SpatialToImageTransformer.write_images`` into a Zarr store
(float16, 9.6 GB of images would not fit comfortably in memory as one array), and records
the seconds, windows per second and the peak resident memory of the process.

``memory`` builds, for a synthetic PEMS07-size series, the windows and targets through the
data front door (read-only views of one copy of the series) and a batch, then fits the cpu
preset of ``STVLMForecaster`` on it for the first ``--epoch-batches K`` optimiser steps
(fit-time statistics, the DTW scale, the network, K steps of images made per batch and
micro-batches), and records the resident memory after each stage and the peak. Every
step of an epoch does the same work on other windows, so the peak over the first steps is
the epoch's; a whole epoch (705 steps at this size) takes hours on 2 cores.
``--epoch-batches -1`` fits one whole epoch, validation included (with ``--steps 500``: a
whole epoch at PEMS07's 883 sensors in minutes); ``0`` skips the fit.

Each run appends one JSON line to ``benchmarks/results/scale.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from stvlm.benchmark import _commit, _PeakRSS  # noqa: E402 - the runner's memory sampler and commit

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "scale.jsonl"


def _series(T, N, seed=0):
    rng = np.random.default_rng(seed)
    day = np.sin(np.arange(T) * 2 * np.pi / 288)[:, None]
    return rng.gamma(2.0, 50.0, size=(T, N)) * (1.2 + day)


def images(T=16992, N=307, chunk_size=256):
    from stvlm import SpatialToImageTransformer

    series = _series(T, N)
    with tempfile.TemporaryDirectory() as tmp, _PeakRSS() as mem:
        t0 = time.perf_counter()
        s2i = SpatialToImageTransformer(dtype="float16", chunk_size=chunk_size).fit(series[:2000])
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        arr = s2i.write_images(series, os.path.join(tmp, "images.zarr"))
        seconds = time.perf_counter() - t0
        n = arr.shape[0]
    return dict(task="images", n_sensors=N, steps=T, windows=n, fit_seconds=fit_s, seconds=seconds,
                windows_per_second=n / seconds, image_gb=n * 3 * N * N * 2 / 1e9,
                peak_rss_mb=mem.peak / 2**20)


def memory(T=28224, N=883, epoch_batches=0):
    from stvlm import STVLMForecaster
    from stvlm.data import as_windows, chronological_split

    stages, steps = {}, []
    with _PeakRSS() as mem:
        series = _series(T, N)
        stages["series"] = mem.sample() / 2**20
        w = as_windows(series, history=12, horizon=12)
        stages["windows"] = mem.sample() / 2**20
        train, val = chronological_split(w, 0.2)
        train.filled_batch(np.arange(32))
        stages["split_and_a_batch"] = mem.sample() / 2**20
        del w, train, val
        if epoch_batches:
            import torch

            # Stop after K optimiser steps of the first epoch (a whole epoch takes hours here).
            original = torch.optim.Adam.step

            def counted(self, *a, **k):
                steps.append(time.perf_counter())
                if 0 < epoch_batches < len(steps):
                    raise KeyboardInterrupt
                return original(self, *a, **k)

            est = STVLMForecaster.from_preset("cpu", max_epochs=1, verbose=0)
            torch.optim.Adam.step = counted
            t0 = time.perf_counter()
            try:
                est.fit(series)
            except KeyboardInterrupt:
                pass
            finally:
                torch.optim.Adam.step = original
            stages["after_steps"] = mem.sample() / 2**20
            stages["optimiser_steps"] = min(len(steps), epoch_batches) if epoch_batches > 0 else len(steps)
            stages["whole_epoch"] = epoch_batches < 0 and bool(getattr(est, "loss_history_", None))
            if stages["whole_epoch"]:
                stages["epoch_seconds"] = est.loss_history_[0]["seconds"]
            stages["micro_batch_size"] = est._micro_batch_size(est.batch_size)
            stages["seconds_to_first_step"] = steps[0] - t0 if steps else None
            stages["seconds_per_step"] = (steps[-1] - steps[0]) / (len(steps) - 1) if len(steps) > 1 else None
    return dict(task="memory", n_sensors=N, steps=T, epoch_batches=epoch_batches,
                stage=stages, peak_rss_mb=mem.peak / 2**20, target_mb=6 * 1024)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["images", "memory"])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--sensors", type=int, default=None)
    parser.add_argument("--epoch-batches", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to scale.jsonl")
    args = parser.parse_args(argv)
    import torch

    kw = {k: v for k, v in dict(T=args.steps, N=args.sensors).items() if v is not None}
    row = images(**kw) if args.task == "images" else memory(epoch_batches=args.epoch_batches, **kw)
    row.update(threads=torch.get_num_threads(), cpus=os.cpu_count(), machine=platform.processor() or platform.machine(),
               commit=_commit(), finished=time.strftime("%FT%T"))
    print(json.dumps(row, indent=1))
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(row) + "\n")
    return row


if __name__ == "__main__":
    main()
