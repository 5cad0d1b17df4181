"""The numba kernels leave torch's thread count as they found it.

numba's OpenMP threading layer sets OpenMP's thread count to numba's own
(``NUMBA_NUM_THREADS``, all cores) at every parallel launch, and torch on the CPU reads
the same count: after the first image, a process limited to one torch thread
(``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``) trained on all cores, and two such
fits side by side oversubscribed the machine (found in session 21: 2 threads each on 2
cores, epochs 3-5x slower).
"""

from __future__ import annotations

import functools
import sys

__all__ = ["keeps_torch_threads"]


def keeps_torch_threads(kernel):
    """``kernel`` run with torch's thread count restored after it (when torch is loaded)."""

    @functools.wraps(kernel)
    def run(*args, **kwargs):
        torch = sys.modules.get("torch")
        if torch is None:
            return kernel(*args, **kwargs)
        threads = torch.get_num_threads()
        try:
            return kernel(*args, **kwargs)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    return run
