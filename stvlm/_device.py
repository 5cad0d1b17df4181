"""Where the models run: device names and mixed precision, resolved in one place."""

from __future__ import annotations

import contextlib


def resolve_device(device):
    """``"cpu"`` for the CPU, else a ``torch.device``; ``"auto"`` picks CUDA when available.

    Imports torch only for a device other than the CPU, so the numba paths of the
    transformer stay free of it.
    """
    if device in (None, "cpu"):
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch device; got {device!r}.") from exc
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index is not None and dev.index >= count):
            raise ValueError(
                f"device={device!r}, but this machine has {count} CUDA device(s)"
                + (f" (cuda:0 ... cuda:{count - 1})" if count else "")
                + ": use device='cpu', or 'auto' to take CUDA when it is there."
            )
    return "cpu" if dev.type == "cpu" else dev


def torch_device(device):
    """The ``torch.device`` of an estimator's ``device`` parameter."""
    import torch

    return torch.device(resolve_device(device))


def autocast(device, precision):
    """bf16 autocast for ``precision="bf16"``, or ``"auto"`` on CUDA; else nothing."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16)


def own_rng(device):
    """Leave torch's global generators as they were before the fit (CPU, and the fit's GPU)."""
    import torch

    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)
