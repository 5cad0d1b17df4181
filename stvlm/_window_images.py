"""ST-VLM's images of a fit's windows: cached once per fit on the CPU, or made per batch.

Both call the public kernel functions of :mod:`stvlm.kernels`, the one place images are made.
"""

from __future__ import annotations

import numpy as np

from .kernels import correlation_channels, correlation_channels_torch

_IMAGE_CHUNK = 512  # windows per kernel call when caching a fit's images


def cache_images(windows, dtw_scale, cache_mb):
    """Set ``windows.channels`` to every window's image (float16, numba) when they take at
    most ``cache_mb`` MB; leave it unset otherwise."""
    n, N = len(windows), windows.n_sensors
    if n * 3 * N * N * 2 > cache_mb * 2**20:
        return
    X = windows.filled()
    out = np.empty((n, 3, N, N), dtype=np.float16)
    for s in range(0, n, _IMAGE_CHUNK):
        e = s + _IMAGE_CHUNK
        out[s:e] = correlation_channels(X[s:e], dtw_scale, dtype=np.float16, check_input=False)
    windows.channels = out


def batch_images(windows, idx, dtw_scale, device):
    """Images of windows ``idx`` as a float32 tensor on ``device``: from the cache, else
    computed (numba on the CPU, torch on a GPU)."""
    import torch

    if windows.channels is not None:
        return torch.as_tensor(np.asarray(windows.channels[idx], dtype=np.float32), device=device)
    if device.type == "cpu":
        images = correlation_channels(windows.filled_batch(idx), dtw_scale, check_input=False)
        return torch.as_tensor(images, device=device)
    return correlation_channels_torch(windows.filled_batch(idx), dtw_scale, device)
