"""Time-VLM's text-augmented learner (TAL): one prompt per window, with its statistics."""

from __future__ import annotations

__all__ = ["DEFAULT_DESCRIPTION", "make_prompts"]

#: What a prompt says of the data when the user says nothing.
DEFAULT_DESCRIPTION = "A multivariate time series observed at regular steps."

_IMAGE_SENTENCES = {
    "fixed": "The image folds the series by its period and adds its spectrum and a coarser scale.",
    "learnable": "The image is made from the series by learned 1-D and 2-D convolutions.",
}


def make_prompts(x, *, history, horizon, description=None, transform="fixed"):
    """The prompt of each window: the task, its statistics, the image, the data.

    The reference code puts the statistics last and cuts the prompt to the backbone's
    text limit in *characters*, so that with ViLT (40 tokens) they never reach the
    model; here the task and the statistics come first and the tokenizer truncates
    the end, so the parts that vary from window to window always get through.

    Parameters
    ----------
    x : torch.Tensor of shape (B, L, C)
        Normalised windows; the statistics are of these values (all variables).
    history, horizon : int
    description : str, optional
        One sentence on the data (``None``: :data:`DEFAULT_DESCRIPTION`).
    transform : {"fixed", "learnable"}, default="fixed"
        How the image was made (one sentence says so).

    Returns
    -------
    list of str
        ``B`` prompts.

    Examples
    --------
    >>> import torch
    >>> from stvlm.timevlm import make_prompts
    >>> x = torch.tensor([[[0.0, 1.0], [2.0, -1.0], [3.0, 0.5]]])
    >>> make_prompts(x, history=3, horizon=2)[0][:118]
    'Forecast the next 2 steps using the past 3 steps. Input statistics: min -1.000, max 3.000, median 0.500, trend upward.'
    """
    flat = x.detach().float().flatten(1)
    low, high = flat.min(dim=1).values.tolist(), flat.max(dim=1).values.tolist()
    # torch.median takes the lower of the two middle values, as the reference code does.
    median = flat.median(dim=1).values.tolist()
    trend = (x[:, -1] - x[:, 0]).detach().float().sum(dim=1).tolist()  # the sum of all steps' changes
    tail = f"{_IMAGE_SENTENCES[transform]} {description or DEFAULT_DESCRIPTION}"
    return [
        f"Forecast the next {int(horizon)} steps using the past {int(history)} steps. Input statistics: "
        f"min {lo:.3f}, max {hi:.3f}, median {me:.3f}, trend {'upward' if tr > 0 else 'downward'}. {tail}"
        for lo, hi, me, tr in zip(low, high, median, trend)
    ]


def _check_description(description):
    if description is not None and not isinstance(description, str):
        raise TypeError(f"description must be None or a str; got {type(description).__name__}.")
    return description

