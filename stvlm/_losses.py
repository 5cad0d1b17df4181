"""The losses of the training loop: masked MAE and MSE, with the one mask rule."""

from __future__ import annotations

from .metrics import target_mask

__all__ = ["LOSSES", "masked_mae_loss", "masked_mse_loss"]

#: Losses of :class:`~stvlm.training.TrainingLoop`: masked mean absolute or squared error.
LOSSES = ("mae", "mse")


def _check_loss(value):
    if value not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {value!r}.")


def masked_mae_loss(pred, y, null_value=0.0, threshold=None):
    """Masked MAE of a batch, and how many targets it counts.

    Parameters
    ----------
    pred : torch.Tensor
        Forecasts in the units of the data.
    y : torch.Tensor
        Targets, same shape.
    null_value, threshold : float or None
        The masks of :func:`stvlm.metrics.target_mask`.

    Returns
    -------
    loss : torch.Tensor or None
        Mean absolute error over the kept targets; ``None`` when none is kept.
    n_valid : int

    Examples
    --------
    >>> import torch
    >>> from stvlm.training import masked_mae_loss
    >>> y = torch.tensor([1.0, 0.0, float("nan"), 4.0])
    >>> loss, n = masked_mae_loss(torch.tensor([2.0, 5.0, 1.0, 2.0]), y)
    >>> float(loss), n
    (1.5, 2)
    """
    import torch

    mask = target_mask(y, null_value, threshold)
    n_valid = int(mask.sum())
    if n_valid == 0:
        return None, 0
    return (pred - torch.where(mask, y, 0.0)).abs()[mask].mean(), n_valid


def masked_mse_loss(pred, y, null_value=0.0, threshold=None):
    """Masked MSE of a batch, and how many targets it counts (see :func:`masked_mae_loss`).

    Parameters
    ----------
    pred, y : torch.Tensor
        Forecasts and targets, same shape.
    null_value, threshold : float or None
        The masks of :func:`stvlm.metrics.target_mask`.

    Returns
    -------
    loss : torch.Tensor or None
    n_valid : int

    Examples
    --------
    >>> import torch
    >>> from stvlm.training import masked_mse_loss
    >>> loss, n = masked_mse_loss(torch.tensor([2.0, 5.0, 1.0, 2.0]), torch.tensor([1.0, 0.0, float("nan"), 4.0]))
    >>> float(loss), n
    (2.5, 2)
    """
    import torch

    mask = target_mask(y, null_value, threshold)
    n_valid = int(mask.sum())
    if n_valid == 0:
        return None, 0
    return (pred - torch.where(mask, y, 0.0)).square()[mask].mean(), n_valid
