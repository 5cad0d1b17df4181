"""Time aeon's ``dtw_pairwise_distance`` on windows saved by ``bench_s2i.py``.

Runs inside the separate aeon virtual environment (aeon pins numpy/numba versions that
differ from the main environment), so it imports only numpy and aeon, never stvlm.

    python _aeon_worker.py --input windows.npy --out-dir DIR [--repeats 3]
        [--budget 15] [--threads 1,2]

``windows.npy`` holds ``(n_windows, N, k)`` float64 series (one row per sensor). For
each thread count the worker compiles on a tiny slice, runs one full window as a
warm-up (and to estimate the cost), then takes the best of ``repeats`` passes over as
many windows as fit in ``budget`` seconds. It saves the results of the timed windows
to ``DIR/aeon_t{threads}.npy`` (aeon's raw output: the *squared* DTW sum) and prints
one JSON line on stdout as its last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np


def _time_peer(fn, S, repeats, budget):
    """Best seconds per window, windows timed, repeats done, results of the timed windows."""
    fn(S[0, : min(8, S.shape[1])])  # compile / first-call overhead on a tiny slice
    t0 = time.perf_counter()
    fn(S[0])
    t_one = time.perf_counter() - t0
    n = S.shape[0]
    nw = n if t_one * n * repeats <= budget else max(1, int(budget // (t_one * repeats)))
    nw = min(nw, n)
    reps = repeats if t_one * nw * repeats <= budget else max(1, int(budget // (t_one * nw)))
    best, out = np.inf, None
    for _ in range(reps):
        t0 = time.perf_counter()
        res = [fn(S[w]) for w in range(nw)]
        best = min(best, time.perf_counter() - t0)
        out = res
    return best / nw, nw, reps, np.stack(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget", type=float, default=15.0)
    p.add_argument("--threads", default="1")
    args = p.parse_args(argv)

    warnings.simplefilter("ignore")  # aeon's numba emits NumbaTypeSafetyWarning on every call
    import aeon
    import numba
    from aeon.distances import dtw_pairwise_distance

    S = np.ascontiguousarray(np.load(args.input), dtype=np.float64)
    report = {
        "aeon": aeon.__version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "runs": [],
    }
    for threads in [int(t) for t in args.threads.split(",") if t.strip()]:

        def fn(s, _t=threads):
            return dtw_pairwise_distance(s, n_jobs=_t)

        t_first0 = time.perf_counter()
        fn(S[0, : min(8, S.shape[1])])
        first = time.perf_counter() - t_first0
        sec, nw, reps, res = _time_peer(fn, S, args.repeats, args.budget)
        path = f"{args.out_dir}/aeon_t{threads}.npy"
        np.save(path, res)
        report["runs"].append(
            {"threads": threads, "sec_per_window": sec, "windows": nw, "repeats": reps,
             "first_call_s": first, "result": path}
        )
    sys.stdout.flush()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
