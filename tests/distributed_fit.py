"""Fit the same tiny ST-VLM twice under torchrun (launched by tests/test_distributed.py):
once to the end, once stopped by Ctrl-C (a callback raising KeyboardInterrupt) in epoch 2.

    torchrun --standalone --nproc-per-node 2 tests/distributed_fit.py OUT_DIR
"""

from __future__ import annotations

import sys


def series():
    import numpy as np

    return np.random.default_rng(3).gamma(2.0, 30.0, size=(100, 5))  # 39 training windows, 15 validating


def model(**kw):
    from stvlm import STVLMForecaster

    backbone = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                    image_size=16, patch_size=8, vocab_size=500)
    # batch 19: batches of 19, 19 and 1 window, so one process's share of the last is empty.
    # ema_decay 0.5: the averaged weights, shared over the processes, move far from the raw ones.
    params = dict(backbone=backbone, max_epochs=3, batch_size=19, learning_rate=3e-3, ema_decay=0.5, random_state=0,
                  verbose=0)
    return STVLMForecaster(**{**params, **kw})


def interrupt_in_epoch_2(owner, record):
    if record["epoch"] == 2:
        raise KeyboardInterrupt


def main(out):
    import pathlib
    import warnings

    import numpy as np
    import torch

    from stvlm import distributed

    torch.set_num_threads(1)
    distributed.init("gloo")
    rank = distributed.rank()
    data = series()
    full = model().fit(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stopped = model(callbacks=[interrupt_in_epoch_2]).fit(data)
    out = pathlib.Path(out)
    full.save(out / f"model-saved-by-rank{rank}")  # only rank 0 writes
    np.savez(
        out / f"rank{rank}.npz",
        world=distributed.world_size(),
        pred=full.predict(data[None, -12:]),
        train=[r["train_loss"] for r in full.loss_history_],
        val=[r["val_loss"] for r in full.loss_history_],
        stopped_pred=stopped.predict(data[None, -12:]),
        stopped_epochs=len(stopped.loss_history_),
        warned=any("interrupted" in str(w.message) for w in caught),
    )


if __name__ == "__main__":
    main(sys.argv[1])
