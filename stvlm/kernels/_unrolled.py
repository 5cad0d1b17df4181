"""DTW and lagged cross-correlation kernels unrolled for one history length.

The generic kernels in ``_numba`` serve any ``k``: their innermost loop runs over
partner series (the SIMD lanes) and the steps are outer loops, so every DP cell or lag
sum is stored to memory and loaded back. Here the source is written out for one ``k``:
the body of the loop over partners holds a partner's whole DP (``k*k`` cells) or all
its ``2k-1`` lag sums in registers, and LLVM vectorises that loop around it. At
``k = 12`` that is 1.3-1.4x faster for DTW and 2.1-2.4x for the cross-correlation
(docs/performance.md), with bit-identical results: the same operations in the same
order.

The price is compile time, which grows with ``k*k``: for one float type, DTW and
cross-correlation together take about 6 s for ``k = 8``, 17 s for ``k = 12`` and 31 s
for ``k = 16``. So these kernels serve only batches big enough to repay it
(``worth_unrolling``), and their source goes to a file that numba caches next to it: a
later process loads them in a fraction of a second.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

# Bump when the generated source changes, so stale cached modules are not reused.
_GEN_VERSION = 1
# Histories longer than this use the generic kernels: the body (and its compile time)
# grows with k*k.
MAX_HISTORY = 16
# Pairs (windows x sensor pairs) below which a batch uses the generic kernels: the
# first call of an unrolled kernel compiles for ~10 s where nothing is cached yet.
MIN_PAIRS = 200_000


def worth_unrolling(n: int, N: int, k: int) -> bool:
    """Whether a batch of ``n`` windows of ``N`` sensors and ``k`` steps uses these kernels."""
    return 2 <= k <= MAX_HISTORY and n * (N * (N - 1) // 2) >= MIN_PAIRS


def kernel_dir() -> Path:
    """Where the generated modules (and numba's cache of them) are written.

    ``STVLM_KERNEL_DIR`` if set, else ``stvlm-kernels`` under ``NUMBA_CACHE_DIR`` or
    the user's cache folder (``XDG_CACHE_HOME`` or ``~/.cache``), else
    ``stvlm-kernels-<uid>`` in the temporary folder. Code is imported from there, so a
    folder is used only when it is private, as Python and pip treat their caches: created
    with mode 0700, owned by this user, not writable by group or others, not a link.
    A folder that fails this is passed over; when none is left, a fresh private
    temporary folder serves (the kernels are then compiled again in the next process).
    """
    candidates = []
    if os.environ.get("STVLM_KERNEL_DIR"):
        candidates.append(Path(os.environ["STVLM_KERNEL_DIR"]))
    else:
        base = os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
        if not base:
            try:
                base = Path.home() / ".cache"
            except RuntimeError:  # no home folder (some containers)
                base = None
        if base:
            candidates.append(Path(base) / "stvlm-kernels")
    candidates.append(Path(tempfile.gettempdir()) / f"stvlm-kernels-{_uid()}")
    for d in candidates:
        if _private_dir(d):
            return d
    return Path(_fresh_private_dir())


@functools.lru_cache(maxsize=1)
def _fresh_private_dir():
    return tempfile.mkdtemp(prefix="stvlm-kernels-")  # mode 0700, new, ours


def _uid():
    return os.getuid() if hasattr(os, "getuid") else 0


def _private_dir(d: Path) -> bool:
    """Create ``d`` (mode 0700) if missing; whether it is safe to import code from."""
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(d)
    except OSError:
        return False
    import stat

    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return False
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return False
    if st.st_mode & 0o022:  # writable by group or others
        return False
    return os.access(d, os.W_OK)


@functools.lru_cache(maxsize=None)
def kernels(k: int):
    """The generated module for history ``k`` (written on first use, then imported)."""
    if not 2 <= k <= MAX_HISTORY:
        raise ValueError(f"unrolled kernels exist for histories 2..{MAX_HISTORY}; got {k}.")
    name = f"stvlm_s2i_k{k}_v{_GEN_VERSION}"
    path = kernel_dir() / f"{name}.py"
    text = source(k)
    if not path.exists() or path.is_symlink() or path.read_text() != text:
        # Write then rename: concurrent workers never import a half-written file.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    if path.read_text() != text:  # what is imported is what was generated, to the byte
        raise OSError(f"{path} changed while stvlm wrote it; not importing it.")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's cache locator looks the module up by name
    spec.loader.exec_module(module)
    return module


def source(k: int) -> str:
    """Python source of the module for history ``k``."""
    lines = [
        f'"""stvlm S2I kernels unrolled for k = {k}; generated by stvlm.kernels._unrolled."""',
        "import math",
        "from numba import njit, prange",
        "",
    ]
    lines += _dtw_source(k) + _xcorr_source(k)
    lines += _drivers("dtw", "Xt, out, c, sim_scale", "_dtw_row(Xt[w], u, out[w, c], sim_scale)", "1.0 if sim_scale > 0 else 0.0")
    lines += _drivers("xcorr", "Zt, flat, out, c", "_xcorr_row(Zt[w], u, out[w, c])", None)
    return "\n".join(lines) + "\n"


def _loads(k, arr):
    # The row's own values (scalars) and, per step, the partners' values from j0 on.
    out = []
    for t in range(k):
        out.append(f"    a{t} = {arr}[{t}, r]")
        out.append(f"    z{t} = {arr}[{t}, j0:]")
    out += ["    o = out_w[r, j0:]", "    for l in range(N - j0):"]
    out += [f"        b{t} = z{t}[l]" for t in range(k)]
    return out


def _dtw_source(k):
    # Same recurrence and order of operations as _numba._dtw_row: min over (up, left,
    # diagonal), then the squared difference added.
    L = [
        "@njit(cache=True, nogil=True)",
        "def _dtw_row(Xt, r, out_w, sim_scale):",
        "    N = Xt.shape[1]",
        "    j0 = r + 1",
    ]
    L += _loads(k, "Xt")
    for j in range(k):
        L.append(f"        d = a0 - b{j}")
        L.append(f"        p{j} = d * d" + (f" + p{j - 1}" if j else ""))
    for i in range(1, k):
        L.append(f"        d = a{i} - b0")
        L.append("        c0 = d * d + p0")
        for j in range(1, k):
            L += [
                f"        d = a{i} - b{j}",
                f"        m = p{j}",
                f"        m = c{j - 1} if c{j - 1} < m else m",
                f"        m = p{j - 1} if p{j - 1} < m else m",
                f"        c{j} = d * d + m",
            ]
        L += [f"        p{j} = c{j}" for j in range(k)]
    # exp does not vectorise: a loop of its own keeps the unrolled body single.
    L += [
        f"        o[l] = math.sqrt(p{k - 1})",
        "    if sim_scale > 0:",
        "        for l in range(N - j0):",
        "            o[l] = math.exp(-o[l] * sim_scale)",
        "",
    ]
    return L


def _xcorr_source(k):
    # Same sums (t ascending) and the same tie rule as _numba._xcorr_row.
    L = [
        "@njit(cache=True, nogil=True)",
        "def _xcorr_row(Zt, r, out_w):",
        "    N = Zt.shape[1]",
        "    j0 = r + 1",
    ]
    L += _loads(k, "Zt")
    for q, tau in enumerate(range(-(k - 1), k)):
        expr = " + ".join(f"a{t} * b{t + tau}" for t in range(max(0, -tau), min(k, k - tau)))
        if q == 0:
            L.append(f"        best = {expr}")
        else:
            L += [
                f"        v = {expr}",
                "        av = abs(v)",
                "        ab = abs(best)",
                "        best = v if (av > ab or (av == ab and v > best)) else best",
            ]
    L += ["        o[l] = min(1.0, max(-1.0, best))", ""]
    return L


def _drivers(kind, args, call, diag):
    # Work units pair row u with row N-1-u, as in _numba.
    first = args.split(",")[0]
    if diag is None:  # xcorr: 1 on the diagonal, 0 for flat series
        set_u = "    out[w, c, u, u] = 0.0 if flat[w, u] else 1.0"
        set_v = "        out[w, c, v, v] = 0.0 if flat[w, v] else 1.0"
    else:
        set_u = f"    out[w, c, u, u] = {diag}"
        set_v = f"        out[w, c, v, v] = {diag}"
    call_v = call.replace(", u,", ", v,")
    return [
        "@njit(cache=True, nogil=True)",
        f"def _{kind}_unit({args}, t, units):",
        f"    N = {first}.shape[2]",
        "    w = t // units",
        "    u = t % units",
        set_u,
        f"    {call}",
        "    v = N - 1 - u",
        "    if v != u:",
        set_v,
        f"        {call_v}",
        "",
        "@njit(cache=True, parallel=True)",
        f"def {kind}_batch({args}):",
        f"    n, _, N = {first}.shape",
        "    units = N // 2 + (N % 2)",
        "    for t in prange(n * units):",
        f"        _{kind}_unit({args}, t, units)",
        "",
        "@njit(cache=True, nogil=True)",
        f"def {kind}_batch_serial({args}):",
        f"    n, _, N = {first}.shape",
        "    units = N // 2 + (N % 2)",
        "    for t in range(n * units):",
        f"        _{kind}_unit({args}, t, units)",
        "",
    ]
