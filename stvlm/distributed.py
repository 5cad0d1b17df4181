"""Training on several processes or GPUs with ``torch.distributed`` (launched by ``torchrun``).

Launch the script that fits with ``torchrun``, and call :func:`init` before ``fit``::

    torchrun --nproc-per-node 4 train.py          # train.py: stvlm.distributed.init(); model.fit(series)

Once a process group is up, every estimator of stvlm trains data-parallel through its
one training loop (:class:`stvlm.training.TrainingLoop`): each process draws the same
shuffled batches (the same ``random_state``), takes its share of each batch, and the
gradients are summed across processes weighted by how many targets each share kept, so
that each optimiser step is the step of the whole batch on one process. Validation losses
are summed the same way, so early stopping, the plateau schedule, the best weights and
Ctrl-C (``torchrun`` forwards it to every process) decide the same on every rank; only
rank 0 shows progress and writes files (``save``, benchmark rows).
"""

from __future__ import annotations

import os

__all__ = ["init", "is_main_process", "rank", "world_size"]


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank() -> int:
    """This process's rank in the process group (0 without one).

    Examples
    --------
    >>> from stvlm.distributed import rank
    >>> rank()
    0
    """
    dist = _dist()
    return dist.get_rank() if dist else 0


def world_size() -> int:
    """How many processes train together (1 without a process group).

    Examples
    --------
    >>> from stvlm.distributed import world_size
    >>> world_size()
    1
    """
    dist = _dist()
    return dist.get_world_size() if dist else 1


def is_main_process() -> bool:
    """Whether this process writes files and shows progress (rank 0, or no process group).

    Examples
    --------
    >>> from stvlm.distributed import is_main_process
    >>> is_main_process()
    True
    """
    return rank() == 0


def init(backend=None, **kwargs):
    """Join the process group that ``torchrun`` set up (``RANK``, ``WORLD_SIZE``, ...).

    Parameters
    ----------
    backend : {"nccl", "gloo"} or None, default=None
        ``None``: ``"nccl"`` when CUDA is available, else ``"gloo"`` (CPU processes).
        With CUDA, each process takes the GPU ``LOCAL_RANK``, so ``device="auto"`` or
        ``"cuda"`` means that GPU.
    **kwargs
        Passed to ``torch.distributed.init_process_group`` (e.g. ``init_method``,
        ``rank``, ``world_size`` when not launched by ``torchrun``).

    Returns
    -------
    int
        The world size.

    Raises
    ------
    RuntimeError
        If neither ``torchrun``'s environment nor ``init_method`` / ``rank`` /
        ``world_size`` say how to reach the other processes.

    Examples
    --------
    >>> import tempfile, os
    >>> import torch.distributed as dist
    >>> from stvlm import distributed
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     n = distributed.init("gloo", init_method="file://" + os.path.join(tmp, "pg"), rank=0, world_size=1)
    ...     dist.destroy_process_group()
    >>> n
    1
    """
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return dist.get_world_size()
    if "init_method" not in kwargs and "MASTER_ADDR" not in os.environ:
        raise RuntimeError(
            "no process group to join: launch the script with torchrun (e.g. `torchrun --nproc-per-node 2 "
            "train.py`), or pass init_method=, rank= and world_size=."
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend, **kwargs)
    return dist.get_world_size()


def all_reduce_sum(values):
    """Sum a list of floats over all processes (the list itself without a process group)."""
    dist = _dist()
    if dist is None:
        return list(values)
    import torch

    t = torch.tensor(list(values), dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def sum_gradients(params):
    """Sum the gradients of ``params`` over all processes, in one collective."""
    dist = _dist()
    if dist is None:
        return
    import torch

    grads = []
    for p in params:
        if p.grad is None:  # a parameter this share did not reach: it adds nothing
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(module):
    """Start every process from rank 0's weights."""
    dist = _dist()
    if dist is None:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)
