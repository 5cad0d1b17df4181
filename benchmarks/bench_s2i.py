"""Benchmark the spatial-to-image (S2I) step of stvlm against DTW peers.

For each sensor count N (``--sizes``, default 170 307 883) and k = 12 steps, on one
batch of ``--windows`` windows shared by every implementation, it times (best of
``--repeats`` after a warm-up call, so numba compilation is excluded):

* stvlm: ``dtw_matrix`` float64 / float32, ``lagged_xcorr_matrix``,
  ``spectral_corr_matrix`` (float64 / float32), and all three channels
  ``correlation_channels(X, scale, dtype=float32 / float64)``, fresh and into a
  preallocated ``out=``;
* peers, all-pairs DTW of each window: tslearn ``cdist_dtw`` (n_jobs=1), dtaidistance
  ``dtw.distance_matrix_fast`` (C, parallel=False / True), sktime ``DtwDist`` (numba),
  aeon ``dtw_pairwise_distance`` (n_jobs=1 / all threads, run in a separate virtual
  environment through a subprocess).

Every peer's DTW is checked against stvlm float64 (max relative difference over the
off-diagonal pairs; the convention, sqrt of the summed squares or the squared sum, is
detected, not assumed). DTW throughput is reported as cells per second,
``n_windows * N(N-1)/2 * k^2 / time``, and as a fraction of this CPU's vector limit.

``--pems08-full`` adds the time and peak memory of
``SpatialToImageTransformer(dtype="float32").fit(X).transform(X)`` over every history
window of the PEMS08 tail (7,133 windows, 170 sensors), measured in a subprocess.

Windows: N <= 170 uses real PEMS08 windows (the first N sensors); N > 170 tiles the
170 real sensors, each extra copy of a sensor shifted by up to +/-6 steps in time,
scaled by a gain in [0.8, 1.2] and given 3 % Gaussian noise (seeded). Without the data
(or with ``--synthetic``) a seeded random walk with a daily profile is used instead.

Run from the repository root::

    python benchmarks/bench_s2i.py                       # defaults, a few minutes
    python benchmarks/bench_s2i.py --pems08-full --json bench_s2i.json
    python benchmarks/bench_s2i.py --sizes 20 --windows 2 --repeats 1   # smoke run

Absolute timings depend on the machine and its load: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
# Benchmark this checkout's stvlm, whatever is installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

K = 12
DEFAULT_SIZES = (170, 307, 883)
DEFAULT_AEON_VENV = "/opt/aeon-venv"
OPS_PER_CELL = 6  # subtract, square, min of 3 (2 ops), add, plus a load/blend: ~6 vector ops
VECTOR_OPS_PER_CYCLE = 2
N_PEMS08_SENSORS = 170


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ machine info
def cpu_info(clock_ghz=None):
    """CPU model, ISA flags, clock (GHz) and where the clock came from."""
    model, mhz, flags = platform.processor() or platform.machine(), [], set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = val.strip()
                elif key == "cpu MHz":
                    mhz.append(float(val))
                elif key == "flags" and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    if clock_ghz is not None:
        clock, source = float(clock_ghz), "--clock-ghz"
    elif mhz:
        clock, source = float(np.mean(mhz)) / 1000.0, "/proc/cpuinfo 'cpu MHz' (mean over cores)"
    else:
        clock, source = float("nan"), "unknown (pass --clock-ghz)"
    isa_bits = 512 if "avx512f" in flags else 256 if "avx2" in flags else 128
    isa = "avx512f" if isa_bits == 512 else "avx2" if isa_bits == 256 else "sse2 (no avx2 seen)"
    return {
        "model": model,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "isa": isa,
        "isa_bits": isa_bits,
        "clock_ghz": clock,
        "clock_source": source,
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def versions():
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("numpy", "numba", "scipy", "scikit-learn", "torch", "tslearn", "dtaidistance", "sktime"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        import stvlm

        out["stvlm"] = f"{stvlm.__version__} ({pathlib.Path(stvlm.__file__).parent})"
    except Exception as exc:  # pragma: no cover - reported, not fatal
        out["stvlm"] = f"import failed: {exc}"
    return out


def vector_limit(cpu, cores, bits):
    """Cells per second at the vector limit: cores * lanes * 2 ops/cycle * clock / 6 ops/cell."""
    lanes = cpu["isa_bits"] // bits
    return cores * lanes * VECTOR_OPS_PER_CYCLE * cpu["clock_ghz"] * 1e9 / OPS_PER_CELL, lanes


# ---------------------------------------------------------------------------- windows
def _pems08_series(synthetic):
    """(series (T, 170), description); a seeded random walk when the data is absent."""
    if not synthetic:
        try:
            from stvlm.datasets import data_home, load_pems

            path = data_home() / "pems08" / "pems08_flow_tail.npz"
            return load_pems(path), f"PEMS08 flow tail ({path})"
        except (FileNotFoundError, ValueError) as exc:
            log(f"PEMS08 data not available ({exc}); using the synthetic random walk.")
    rng = np.random.default_rng(12345)
    T, n = 7156, N_PEMS08_SENSORS
    t = np.arange(T)[:, None]
    phase = rng.uniform(-0.5, 0.5, size=n)
    base = rng.uniform(100, 400, size=n)
    daily = 0.55 + 0.45 * np.sin(2 * np.pi * (t / 288.0) + phase)
    walk = np.cumsum(rng.normal(0, 0.02, size=(T, n)), axis=0)
    walk -= np.linspace(0, 1, T)[:, None] * walk[-1]  # pin both ends: no long drift
    series = np.maximum(base * daily * np.exp(walk) + rng.normal(0, 5, size=(T, n)), 0.0)
    return series, "synthetic: seeded random walk x daily sine profile (no PEMS08 data)"


def make_bench_windows(series, N, n_windows, seed):
    """(n_windows, K, N) float64 windows and a description of how they were made."""
    T, n_real = series.shape
    shift = 6
    starts = np.linspace(shift, T - K - shift, n_windows).round().astype(int)
    if N <= n_real:
        X = np.stack([series[s : s + K, :N] for s in starts])
        return np.ascontiguousarray(X, dtype=np.float64), f"first {N} of {n_real} sensors, unmodified"
    rng = np.random.default_rng(seed + N)
    copies = -(-N // n_real)
    cols = []
    for c in range(copies):
        m = min(n_real, N - c * n_real)
        if c == 0:
            cols.append(np.stack([series[s : s + K, :m] for s in starts]))
            continue
        off = rng.integers(-shift, shift + 1, size=m)
        gain = rng.uniform(0.8, 1.2, size=m)
        sd = series.std(axis=0)[:m]
        rows = starts[:, None, None] + np.arange(K)[None, :, None] + off[None, None, :]
        base = series[rows, np.arange(m)[None, None, :]]
        noise = rng.normal(0.0, 1.0, size=base.shape) * 0.03 * sd
        cols.append(np.maximum(base * gain + noise, 0.0))
    X = np.concatenate(cols, axis=2)
    desc = (
        f"{n_real} sensors tiled x{copies}: copies shifted +/-{shift} steps, gain U(0.8, 1.2), "
        f"3 % noise (seed {seed + N})"
    )
    return np.ascontiguousarray(X, dtype=np.float64), desc


# ---------------------------------------------------------------------------- timing
def time_batch(fn, X, repeats):
    """Warm-up call, then best of ``repeats``; returns (seconds per window, first call s, result)."""
    t0 = time.perf_counter()
    fn(X)
    first = time.perf_counter() - t0
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(X)
        best = min(best, time.perf_counter() - t0)
    return best / X.shape[0], first, out


def time_peer(fn, S, repeats, budget):
    """Per-window peer timing within a budget of seconds.

    Warm-up on a tiny slice (compilation), then one full window (warm-up and cost
    estimate); then the best of up to ``repeats`` passes over up to all windows, reduced
    so that the timed passes take about ``budget`` seconds at most (at least 1 x 1).
    """
    fn(S[0, : min(8, S.shape[1])])
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


def rel_diff(a, ref):
    """Max relative difference over off-diagonal entries (floor: 1e-12 of the largest)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    N = ref.shape[-1]
    off = ~np.eye(N, dtype=bool)
    a, ref = a[..., off], ref[..., off]
    floor = max(np.abs(ref).max(initial=0.0) * 1e-12, np.finfo(np.float64).tiny)
    return float((np.abs(a - ref) / np.maximum(np.abs(ref), floor)).max(initial=0.0))


def check_convention(raw, ref):
    """Compare a peer's raw DTW output with stvlm float64 under both conventions.

    Returns (max relative difference, detected convention): ``sqrt-of-sum`` when the raw
    output matches, ``squared-sum`` when its square root does (then compared as sqrt).
    """
    d_raw = rel_diff(raw, ref)
    d_sqrt = rel_diff(np.sqrt(np.maximum(raw, 0.0)), ref)
    if d_raw <= d_sqrt:
        return d_raw, "sqrt of summed squares"
    return d_sqrt, "squared sum (sqrt taken)"


# ------------------------------------------------------------------------------ peers
def available_peers(selected, aeon_python):
    """name -> (callable on one (N, k) window or None, threads, why unavailable)."""
    peers = {}
    if "tslearn" in selected:
        try:
            from tslearn.metrics import cdist_dtw

            peers["tslearn cdist_dtw"] = (lambda s: cdist_dtw(s[:, :, None], n_jobs=1), 1, None)
        except ImportError as exc:
            peers["tslearn cdist_dtw"] = (None, 1, f"not installed ({exc})")
    if "dtaidistance" in selected:
        try:
            from dtaidistance import dtw as dd

            if not dd.try_import_c(verbose=False):
                raise ImportError("C library not compiled")
            omp = int(os.environ.get("OMP_NUM_THREADS", 0)) or _cores()
            peers["dtaidistance fast (C), parallel=False"] = (
                lambda s: dd.distance_matrix_fast(s, parallel=False), 1, None)
            peers["dtaidistance fast (C), parallel=True"] = (
                lambda s: dd.distance_matrix_fast(s, parallel=True), omp, None)
        except ImportError as exc:
            peers["dtaidistance fast (C)"] = (None, 1, f"not available ({exc})")
    if "sktime" in selected:
        fn, why = None, None
        try:  # sktime >= 0.2x / 1.x: the public pairwise transformer over numba distances
            from sktime.dists_kernels import DtwDist

            est = DtwDist()
            fn = lambda s: est.transform(s[:, None, :])  # noqa: E731
        except ImportError:
            try:  # older sktime
                from sktime.distances import pairwise_distance

                fn = lambda s: pairwise_distance(s[:, None, :], metric="dtw")  # noqa: E731
            except ImportError as exc:
                why = f"not installed ({exc})"
        peers["sktime DtwDist (numba)"] = (fn, 1, why)
    if "aeon" in selected:
        if aeon_python and pathlib.Path(aeon_python).exists():
            peers["aeon"] = ("subprocess", None, None)
        else:
            peers["aeon dtw_pairwise_distance"] = (
                None, 1, f"not installed (no {aeon_python}; run with --setup-aeon)")
    return peers


def run_aeon(aeon_python, S, repeats, budget, threads):
    """Time aeon in its own venv on the same windows; returns a list of run dicts."""
    with tempfile.TemporaryDirectory(prefix="bench_s2i_aeon_") as tmp:
        inp = pathlib.Path(tmp) / "windows.npy"
        np.save(inp, S)
        env = dict(os.environ, NUMBA_NUM_THREADS=str(max(threads)))
        env.pop("PYTHONPATH", None)
        cmd = [aeon_python, str(HERE / "_aeon_worker.py"), "--input", str(inp), "--out-dir", tmp,
               "--repeats", str(repeats), "--budget", str(budget),
               "--threads", ",".join(str(t) for t in threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"aeon worker failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        for run in report["runs"]:
            run["raw"] = np.load(run.pop("result"))
        return report


def setup_aeon(venv):
    """Create ``venv`` and install aeon into it (aeon pins its own numpy/numba)."""
    venv = pathlib.Path(venv)
    py = venv / "bin" / "python"
    if not py.exists():
        log(f"creating {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing aeon into {venv} ...")
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "aeon"], check=True)
    subprocess.run([str(py), "-c", "import aeon, numpy, numba; print('aeon', aeon.__version__, "
                    "'numpy', numpy.__version__, 'numba', numba.__version__)"], check=True)
    return str(py)


def _cores():
    import numba

    return numba.get_num_threads()


# ----------------------------------------------------------------------- the workers
def worker_compile():
    """First calls in a fresh process (the caller sets NUMBA_CACHE_DIR): JSON on stdout."""
    t0 = time.perf_counter()
    import stvlm
    from stvlm.images import correlation_channels

    out = {"import stvlm": time.perf_counter() - t0}
    X = np.random.default_rng(0).normal(size=(2, K, 16))
    Xbig = np.random.default_rng(0).normal(size=(16, K, 170))
    calls = [
        ("dtw_matrix float64", lambda: stvlm.dtw_matrix(X, dtype=np.float64)),
        ("dtw_matrix float32", lambda: stvlm.dtw_matrix(X, dtype=np.float32)),
        ("lagged_xcorr_matrix float64", lambda: stvlm.lagged_xcorr_matrix(X, dtype=np.float64)),
        ("lagged_xcorr_matrix float32", lambda: stvlm.lagged_xcorr_matrix(X, dtype=np.float32)),
        ("spectral_corr_matrix float64", lambda: stvlm.spectral_corr_matrix(X, dtype=np.float64)),
        ("correlation_channels float32", lambda: correlation_channels(X, 1.0, dtype=np.float32)),
        ("correlation_channels float64", lambda: correlation_channels(X, 1.0, dtype=np.float64)),
        # A batch big enough for the kernels unrolled for k = 12 (generated, then compiled).
        ("correlation_channels float32, unrolled k = 12", lambda: correlation_channels(Xbig, 1.0, dtype=np.float32)),
    ]
    for name, fn in calls:
        t0 = time.perf_counter()
        fn()
        out[name] = time.perf_counter() - t0
    print(json.dumps(out))


def _rss_bytes():
    try:
        import psutil

        return psutil.Process().memory_info().rss, "psutil"
    except ImportError:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), "/proc/self/statm"
        except OSError:
            return None, "unavailable"


def _peak_rss_bytes():
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
    except ImportError:  # Windows
        try:
            import psutil

            return psutil.Process().memory_info().peak_wset
        except (ImportError, AttributeError):
            return None


def worker_pems08(max_windows, synthetic):
    """Fit + transform every PEMS08 history window; JSON on stdout."""
    import gc

    from stvlm import SpatialToImageTransformer, make_windows

    series, source = _pems08_series(synthetic)
    X, _y = make_windows(series, K, K)
    n_all = X.shape[0]
    if max_windows:
        X = X[:max_windows]
    SpatialToImageTransformer(dtype="float32").fit(X[:8]).transform(X[:8])  # warm-up / compile
    gc.collect()
    rss0, rss_source = _rss_bytes()
    peak0 = _peak_rss_bytes()
    t0 = time.perf_counter()
    s2i = SpatialToImageTransformer(dtype="float32").fit(X)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = s2i.transform(X)
    t_tr = time.perf_counter() - t0
    peak1 = _peak_rss_bytes()
    rep = {
        "source": source,
        "windows_available": n_all,
        "windows": int(X.shape[0]),
        "sensors": int(X.shape[2]),
        "fit_s": t_fit,
        "transform_s": t_tr,
        "total_s": t_fit + t_tr,
        "windows_per_s": X.shape[0] / t_tr,
        "output_mb": out.channels.nbytes / 2**20,
        "output_dtype": str(out.channels.dtype),
        "input_mb": X.nbytes / 2**20,
        "rss_before_mb": None if rss0 is None else rss0 / 2**20,
        "peak_rss_mb": None if peak1 is None else peak1 / 2**20,
        "rss_source": rss_source + " (baseline) + getrusage ru_maxrss (peak)",
    }
    if rss0 is not None and peak1 is not None:
        rep["peak_increase_mb"] = (peak1 - rss0) / 2**20
        rep["peak_is_upper_bound"] = bool(peak0 is not None and peak1 <= peak0)
    print(json.dumps(rep))


def _run_worker(args_list, env=None):
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), *args_list]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO))
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args_list} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_compile():
    """Cold compile (empty NUMBA_CACHE_DIR) and cache load (same dir again), in subprocesses."""
    tmp = tempfile.mkdtemp(prefix="bench_s2i_numba_cache_")
    try:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        cold = _run_worker(["--_worker", "compile"], env)
        warm = _run_worker(["--_worker", "compile"], env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"cold": cold, "cache_load": warm}


# ---------------------------------------------------------------------------- report
def fmt_ms(sec):
    return "—" if sec is None else f"{sec * 1e3:.3g}" if sec * 1e3 < 100 else f"{sec * 1e3:.0f}"


def fmt_diff(d):
    return "—" if d is None else "0" if d == 0 else f"{d:.1e}"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description="Benchmark stvlm's S2I kernels against DTW peers.")
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="sensor counts N")
    p.add_argument("--windows", type=int, default=16, help="windows per batch")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", action="store_true", help="use the random-walk windows even if PEMS08 exists")
    p.add_argument("--peers", default="tslearn,dtaidistance,sktime,aeon",
                   help="comma-separated peers to time, or 'none'")
    p.add_argument("--max-peer-seconds", type=float, default=15.0,
                   help="budget of timed seconds per peer and N: fewer windows/repeats beyond it")
    p.add_argument("--aeon-python", default=os.environ.get("AEON_PYTHON", f"{DEFAULT_AEON_VENV}/bin/python"),
                   help="python of the aeon venv (env AEON_PYTHON)")
    p.add_argument("--setup-aeon", action="store_true", help=f"create the aeon venv first ({DEFAULT_AEON_VENV})")
    p.add_argument("--aeon-venv", default=DEFAULT_AEON_VENV, help="venv folder for --setup-aeon")
    p.add_argument("--clock-ghz", type=float, default=None, help="override the clock for the vector limit")
    p.add_argument("--no-compile-time", action="store_true", help="skip the numba compile/cache-load section")
    p.add_argument("--pems08-full", action="store_true", help="also transform every PEMS08 tail window")
    p.add_argument("--pems08-max-windows", type=int, default=0, help="cap the --pems08-full windows (smoke tests)")
    p.add_argument("--json", default=None, help="write all results to this JSON file")
    p.add_argument("--_worker", choices=["compile", "pems08"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._worker == "compile":
        return worker_compile()
    if args._worker == "pems08":
        return worker_pems08(args.pems08_max_windows, args.synthetic)

    if args.setup_aeon:
        args.aeon_python = setup_aeon(args.aeon_venv)

    warnings.simplefilter("ignore", category=UserWarning)
    import numba

    import stvlm
    from stvlm.images import _robust_scale, correlation_channels

    cores = numba.get_num_threads()
    cpu = cpu_info(args.clock_ghz)
    vers = versions()
    selected = {s.strip() for s in args.peers.split(",")} if args.peers != "none" else set()
    peers = available_peers(selected, args.aeon_python)
    aeon_threads = sorted({1, cores})

    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(sorted({f"{i['internal_api']} ({i.get('prefix', '?')}) × {i['num_threads']} threads"
                                 for i in threadpool_info()}))
    except ImportError:
        blas = "threadpoolctl not installed"

    load_start = _loadavg()
    series, data_source = _pems08_series(args.synthetic)
    results = {"load_average_start": load_start, "machine": cpu, "versions": vers, "numba_threads": cores, "blas": blas,
               "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
               "data_source": data_source, "sizes": {}}

    compile_rep = None
    if not args.no_compile_time:
        log("measuring numba compile / cache-load time in subprocesses ...")
        try:
            compile_rep = measure_compile()
        except RuntimeError as exc:
            compile_rep = {"error": str(exc)}
        results["compile"] = compile_rep

    for N in args.sizes:
        X, how = make_bench_windows(series, N, args.windows, args.seed)
        n = X.shape[0]
        S = np.ascontiguousarray(X.transpose(0, 2, 1))  # (n, N, k) for the peers
        cells = N * (N - 1) / 2 * K * K
        log(f"N = {N}: {how}")
        rows = {}

        def add(name, sec, *, threads, dtype="float64", kind="other", windows=n, repeats=args.repeats,
                diff=None, diff_kind=None, note="", convention=None, first=None):
            rows[f"{name} [{dtype}]"] = {"name": name, "sec_per_window": sec, "threads": threads, "dtype": dtype, "kind": kind,
                          "windows": windows, "repeats": repeats, "diff": diff, "diff_kind": diff_kind,
                          "note": note, "convention": convention, "first_call_s": first}

        # --- stvlm
        sec, first, D64 = time_batch(lambda A: stvlm.dtw_matrix(A, backend="numba", dtype=np.float64), X,
                                     args.repeats)
        add("stvlm dtw_matrix", sec, threads=cores, kind="dtw", first=first, diff=0.0, diff_kind="ref")
        sec, first, D32 = time_batch(lambda A: stvlm.dtw_matrix(A, backend="numba", dtype=np.float32), X,
                                     args.repeats)
        add("stvlm dtw_matrix", sec, threads=cores, dtype="float32", kind="dtw", first=first,
            diff=rel_diff(D32, D64), diff_kind="rel vs f64")
        if cores > 1:  # the same kernels on one numba thread, to compare with single-threaded peers
            numba.set_num_threads(1)
            try:
                for dt, name in ((np.float64, "float64"), (np.float32, "float32")):
                    sec, first, D1 = time_batch(lambda A, d=dt: stvlm.dtw_matrix(A, backend="numba", dtype=d), X,
                                                args.repeats)
                    add("stvlm dtw_matrix, 1 thread", sec, threads=1, dtype=name, kind="dtw", first=first,
                        diff=rel_diff(D1, D64), diff_kind="rel vs f64")
                del D1
            finally:
                numba.set_num_threads(cores)
        scale = _robust_scale(D64[:, ~np.eye(N, dtype=bool)])
        refs = {}
        for fname, fn in (("stvlm lagged_xcorr_matrix", stvlm.lagged_xcorr_matrix),
                          ("stvlm spectral_corr_matrix", stvlm.spectral_corr_matrix),
                          ("stvlm correlation_channels (3 ch.)",
                           lambda A, dtype: correlation_channels(A, scale, dtype=dtype))):
            for dt in (np.float64, np.float32):
                sec, first, R = time_batch(lambda A, f=fn, d=dt: f(A, dtype=d), X, args.repeats)
                if dt is np.float64:
                    refs[fname] = R
                    add(fname, sec, threads=cores, first=first)
                else:
                    d = float(np.abs(R.astype(np.float64) - refs[fname]).max())
                    add(fname, sec, threads=cores, dtype="float32", first=first, diff=d, diff_kind="abs vs f64",
                        note=f"max abs diff vs f64 {d:.1e}")
        del D32, refs
        # The same into one preallocated array (as the transformer fills its result): no
        # fresh result to map and fault in on every call.
        for dt, name in ((np.float64, "float64"), (np.float32, "float32")):
            buf = np.empty((n, 3, N, N), dtype=dt)
            sec, first, _ = time_batch(lambda A, d=dt, o=buf: correlation_channels(A, scale, dtype=d, out=o), X,
                                       args.repeats)
            add("stvlm correlation_channels (3 ch.), out=", sec, threads=cores, dtype=name, first=first,
                note="into a preallocated array")
            del buf

        # --- peers
        for pname, (fn, threads, why) in peers.items():
            if fn is None:
                add(pname, None, threads=threads, kind="dtw", note=why)
                continue
            if fn == "subprocess":
                log(f"  aeon (subprocess, {args.aeon_python}) ...")
                try:
                    rep = run_aeon(args.aeon_python, S, args.repeats, args.max_peer_seconds, aeon_threads)
                except (RuntimeError, OSError, ValueError) as exc:
                    add("aeon dtw_pairwise_distance", None, threads=1, kind="dtw", note=f"failed: {exc}")
                    continue
                results.setdefault("aeon_env", {k: rep[k] for k in ("aeon", "numpy", "numba", "numba_threads")})
                for run in rep["runs"]:
                    diff, conv = check_convention(run["raw"], D64[: run["windows"]])
                    add(f"aeon dtw_pairwise_distance, n_jobs={run['threads']}", run["sec_per_window"],
                        threads=run["threads"], kind="dtw", windows=run["windows"], repeats=run["repeats"],
                        diff=diff, diff_kind="rel vs stvlm f64", convention=conv,
                        note=f"aeon {rep['aeon']}, separate venv")
                continue
            log(f"  {pname} ...")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sec, nw, reps, raw = time_peer(fn, S, args.repeats, args.max_peer_seconds)
            diff, conv = check_convention(raw, D64[:nw])
            add(pname, sec, threads=threads, kind="dtw", windows=nw, repeats=reps, diff=diff,
                diff_kind="rel vs stvlm f64", convention=conv)
            del raw
        results["sizes"][N] = {"windows_source": how, "n_windows": n, "cells_per_window": cells, "rows": rows,
                               "dtw_scale": scale}
        del D64

    # --- derived numbers
    for N, res in results["sizes"].items():
        cells = res["cells_per_window"]
        for name, r in res["rows"].items():
            if r["kind"] == "dtw" and r["sec_per_window"]:
                limit, lanes = vector_limit(cpu, r["threads"], 32 if r["dtype"] == "float32" else 64)
                r["cells_per_s"] = cells / r["sec_per_window"]
                r["vector_limit_cells_per_s"] = limit
                r["fraction_of_limit"] = r["cells_per_s"] / limit
        ours = res["rows"]["stvlm dtw_matrix [float64]"]["sec_per_window"]
        ours32 = res["rows"]["stvlm dtw_matrix [float32]"]["sec_per_window"]
        peer_rows = {k: v for k, v in res["rows"].items()
                     if v["kind"] == "dtw" and not k.startswith("stvlm") and v["sec_per_window"]}
        sp = {"stvlm_f64_s": ours, "stvlm_f32_s": ours32}
        one = res["rows"].get("stvlm dtw_matrix, 1 thread [float64]")
        ours1 = one["sec_per_window"] if one else None
        if one:
            sp["stvlm_f64_1thread_s"] = ours1
        ts = peer_rows.get("tslearn cdist_dtw [float64]")
        if ts:
            sp["tslearn_s"] = ts["sec_per_window"]
            sp["speedup_f64_vs_tslearn"] = ts["sec_per_window"] / ours
            sp["speedup_f32_vs_tslearn"] = ts["sec_per_window"] / ours32
            if ours1:
                sp["speedup_f64_1thread_vs_tslearn"] = ts["sec_per_window"] / ours1
        if peer_rows:
            fastest = min(peer_rows, key=lambda k: peer_rows[k]["sec_per_window"])
            sp["fastest_peer"] = peer_rows[fastest]["name"]
            sp["fastest_peer_s"] = peer_rows[fastest]["sec_per_window"]
            sp["speedup_f64_vs_fastest"] = sp["fastest_peer_s"] / ours
            sp["speedup_f32_vs_fastest"] = sp["fastest_peer_s"] / ours32
        res["speedups"] = sp

    pems = None
    if args.pems08_full:
        log("PEMS08 full transform in a subprocess ...")
        wargs = ["--_worker", "pems08", "--pems08-max-windows", str(args.pems08_max_windows)]
        if args.synthetic:
            wargs.append("--synthetic")
        try:
            pems = _run_worker(wargs)
        except RuntimeError as exc:
            pems = {"error": str(exc)}
        results["pems08_full"] = pems

    results["numba_threading_layer"] = _threading_layer()
    results["load_average_end"] = _loadavg()
    print(render(results, cpu, cores, vers, blas, compile_rep, pems, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=_json_default)
        log(f"wrote {args.json}")
    return results


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def render(results, cpu, cores, vers, blas, compile_rep, pems, args):
    out = []
    w = out.append
    w("# S2I benchmark: stvlm vs DTW peers\n")
    w(f"- CPU: {cpu['model']}; {cpu['logical_cpus']} logical CPUs ({cpu['affinity_cpus']} usable); "
      f"avx2={cpu['avx2']}, avx512f={cpu['avx512f']}")
    w(f"- numba threads: {cores} (threading layer: {_threading_layer()}); BLAS: {blas}; "
      f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    la0, la1 = results.get("load_average_start"), results.get("load_average_end")
    if la0 is not None:
        # Only the start says whether others were using the machine: by the end, the
        # load average includes this benchmark's own threads.
        busy = la0[0] > 0.5 * (cpu["affinity_cpus"] or 1)
        w(f"- load average (1 min) at start / end: {la0[0]:.2f} / {la1[0] if la1 else float('nan'):.2f}"
          " (the end includes this run's own threads)"
          + (" — **the machine was busy at the start: multi-threaded timings are unreliable (a descheduled "
             "thread stalls every parallel region); rerun when it is quiet**" if busy else ""))
    w("- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if k != "stvlm"))
    w(f"- stvlm: {vers['stvlm']}")
    if "aeon_env" in results:
        e = results["aeon_env"]
        w(f"- aeon venv: aeon {e['aeon']}, numpy {e['numpy']}, numba {e['numba']} ({args.aeon_python})")
    w(f"- windows: k = {K} steps, {args.windows} windows per batch, best of {args.repeats} after a warm-up "
      f"call; data: {results['data_source']}")
    for N, res in results["sizes"].items():
        w(f"  - N = {N}: {res['windows_source']}")
    lim64, lanes64 = vector_limit(cpu, cores, 64)
    lim32, lanes32 = vector_limit(cpu, cores, 32)
    w(f"- vector limit = cores × lanes × {VECTOR_OPS_PER_CYCLE} vector ops/cycle × clock / {OPS_PER_CELL} "
      f"ops per cell, lanes = {cpu['isa_bits']}-bit ({cpu['isa']}) / 64 (f64) or / 32 (f32); clock "
      f"{cpu['clock_ghz']:.3f} GHz from {cpu['clock_source']}; cores = the row's threads (numba's "
      f"thread count, {cores}, for stvlm): "
      f"{cores} × {lanes64} × {VECTOR_OPS_PER_CYCLE} × {cpu['clock_ghz']:.3f} GHz / {OPS_PER_CELL} = "
      f"{lim64 / 1e9:.2f} G cells/s in f64 ({lim64 / 1e9 / cores:.2f} per core), {lim32 / 1e9:.2f} in f32")
    w("- DTW cells per window = N(N−1)/2 · k²; cells/s = windows · cells / time; "
      "% of vector limit uses the limit for the row's dtype and thread count.")
    w("- Timings vary with the machine and its load: compare ratios within one run only.\n")

    # Table 1: ms per window, implementations × N
    sizes = list(results["sizes"])
    names = list(dict.fromkeys(k for N in sizes for k in results["sizes"][N]["rows"]))
    w("## Milliseconds per window\n")
    rows = []
    for name in names:
        r0 = next(results["sizes"][N]["rows"][name] for N in sizes if name in results["sizes"][N]["rows"])
        cells = []
        for N in sizes:
            r = results["sizes"][N]["rows"].get(name)
            if r is None or r["sec_per_window"] is None:
                cells.append("—")
                continue
            mark = "" if r["windows"] == results["sizes"][N]["n_windows"] and r["repeats"] == args.repeats \
                else f" ({r['windows']} win × {r['repeats']})"
            cells.append(fmt_ms(r["sec_per_window"]) + mark)
        note = r0["note"] or ""
        if r0["convention"]:
            note = (note + "; " if note else "") + r0["convention"]
        rows.append([r0["name"], r0["dtype"], r0["threads"], *cells, note])
    w(markdown_table(["implementation", "dtype", "threads", *[f"N = {N}" for N in sizes], "note"], rows))
    w("\n(n win × r): a slow peer timed on fewer windows/repeats to stay within "
      f"--max-peer-seconds = {args.max_peer_seconds:g} s.\n")

    # Table 2: DTW throughput and correctness
    w("## DTW throughput and agreement with stvlm float64\n")
    rows = []
    for N in sizes:
        for name, r in results["sizes"][N]["rows"].items():
            if r["kind"] != "dtw":
                continue
            if r["sec_per_window"] is None:
                rows.append([N, r["name"], r["dtype"], r["threads"], "—", "—", "—", "—", r["note"]])
                continue
            thr = f"{r['cells_per_s'] / 1e9:.3f}" if "cells_per_s" in r else ""
            frac = f"{100 * r['fraction_of_limit']:.1f} %" if "fraction_of_limit" in r else ""
            check = fmt_diff(r["diff"]) + (f" ({r['diff_kind']})" if r["diff_kind"] not in (None, "ref") else "")
            if r["diff_kind"] == "ref":
                check = "reference"
            elif r["diff_kind"] == "rel vs stvlm f64" and r["dtype"] == "float64":
                check += " ✓" if r["diff"] <= 1e-9 else " ✗ (> 1e-9)"
            rows.append([N, r["name"], r["dtype"], r["threads"], f"{r['windows']}",
                         fmt_ms(r["sec_per_window"]), thr, frac, check])
    w(markdown_table(["N", "implementation", "dtype", "threads", "windows timed", "ms/window",
                      "G cells/s", "% of vector limit", "max diff vs stvlm f64"], rows))
    w("\nRelative differences are over off-diagonal pairs; peers returning the squared sum "
      "(detected) are compared after a square root; ✓ marks float64 peers within 1e-9.\n")

    # Table 3: speed-ups
    w("## Speed-ups of stvlm DTW (same run)\n")
    rows = []
    for N in sizes:
        sp = results["sizes"][N]["speedups"]
        ts1 = sp.get("speedup_f64_1thread_vs_tslearn")
        rows.append([N, fmt_ms(sp["stvlm_f64_s"]), fmt_ms(sp["stvlm_f32_s"]),
                     fmt_ms(sp.get("stvlm_f64_1thread_s")),
                     fmt_ms(sp.get("tslearn_s")),
                     f"{sp['speedup_f64_vs_tslearn']:.3g}× / {sp['speedup_f32_vs_tslearn']:.3g}×"
                     + (f" / {ts1:.3g}×" if ts1 else "")
                     if "tslearn_s" in sp else "—",
                     sp.get("fastest_peer", "—"), fmt_ms(sp.get("fastest_peer_s")),
                     f"{sp['speedup_f64_vs_fastest']:.3g}× / {sp['speedup_f32_vs_fastest']:.3g}×"
                     if "fastest_peer" in sp else "—"])
    w(markdown_table(["N", "stvlm f64 ms", "stvlm f32 ms", "stvlm f64 1-thread ms", "tslearn ms",
                      "vs tslearn (f64 / f32 / f64 1 thread)",
                      "fastest peer", "its ms", "vs fastest peer (f64 / f32)"], rows))
    w("")

    if compile_rep:
        w("## numba start-up (fresh processes, calls in this order, k = 12, 2 windows of N = 16; "
          "the last row 16 windows of N = 170)\n")
        if "error" in compile_rep:
            w(f"failed: {compile_rep['error']}\n")
        else:
            cold, warm = compile_rep["cold"], compile_rep["cache_load"]
            rows = [[k, f"{cold[k]:.2f}", f"{warm[k]:.2f}"] for k in cold]
            rows.append(["total", f"{sum(cold.values()):.2f}", f"{sum(warm.values()):.2f}"])
            w(markdown_table(["first call", "cold compile s (empty NUMBA_CACHE_DIR)", "cache load s"], rows))
            w("\nA first call compiles only the kernels not yet compiled in that process (later "
              "rows reuse earlier ones). The last row generates and compiles the DTW and "
              "cross-correlation kernels unrolled for k = 12, which batches of at least "
              "200 000 sensor pairs use; its cache-load time is what a later process pays.\n")

    if pems:
        w("## PEMS08 tail: every history window through SpatialToImageTransformer(dtype='float32')\n")
        if "error" in pems:
            w(f"failed: {pems['error']}\n")
        else:
            inc = pems.get("peak_increase_mb")
            inc_s = "—" if inc is None else (f"≤ {inc:.0f}" if pems.get("peak_is_upper_bound") else f"{inc:.0f}")
            rows = [[pems["windows"], pems["sensors"], f"{pems['fit_s']:.2f}", f"{pems['transform_s']:.2f}",
                     f"{pems['total_s']:.2f}", f"{pems['windows_per_s']:.0f}", f"{pems['output_mb']:.0f}",
                     inc_s]]
            w(markdown_table(["windows", "sensors", "fit s", "transform s", "total s", "windows/s (transform)",
                              "images MB (float32)", "peak RSS increase MB"], rows))
            capped = "" if pems["windows"] == pems["windows_available"] else \
                f" (capped from {pems['windows_available']} by --pems08-max-windows)"
            w(f"\nData: {pems['source']}{capped}. Input windows {pems['input_mb']:.0f} MB; "
              f"memory: {pems['rss_source']}, measured in a subprocess after a warm-up, "
              "increase over the resident size before fit.\n")
    return "\n".join(out)


def _loadavg():
    try:
        return list(os.getloadavg())
    except (OSError, AttributeError):
        return None


def _threading_layer():
    try:
        import numba

        return numba.threading_layer()
    except (ValueError, ImportError):
        return "not started"


if __name__ == "__main__":
    main()
