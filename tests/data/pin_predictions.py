"""Write tests/data/pinned_predictions.npz: the reference of test_refactor_pins.py.

Run once, on the commit *before* the estimator layer was rebuilt (69bd9a4, issue #11),
from a checkout of that commit:

    git worktree add /tmp/pin 69bd9a4 && cd /tmp/pin && python tests/data/pin_predictions.py OUT.npz

It uses that commit's API (time_of_day passed to STID's predict). The case is the one
test_refactor_pins.py rebuilds: the first 420 rows of the pems08-tail fit period, its
first 6 sensors, tiny models, 3 epochs, seed 0, on the CPU.
"""

import sys

import numpy as np
import torch

from stvlm import STVLMForecaster, make_windows
from stvlm.baselines import LSTMForecaster, STIDForecaster
from stvlm.datasets import load_protocol


def main():
    torch.set_num_threads(1)
    p = load_protocol("pems08-tail")
    series = p.fit_series[:420, :6]
    fit_rows, test_rows = series[:300], series[300:]
    X_test, _ = make_windows(test_rows, 12, 12)
    first_slot = (p.first_time_index + 300) % 288  # slot of test_rows[0]
    tod_test = (first_slot + np.arange(X_test.shape[0])) % 288  # first history step of each window

    TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                image_size=16, patch_size=8, vocab_size=500)
    stvlm = STVLMForecaster(backbone=TINY, max_epochs=3, batch_size=16, encoder_hidden=16, decoder_hidden=16,
                            random_state=0, verbose=0).fit(fit_rows)
    stid = STIDForecaster(steps_per_day=288, first_time_index=p.first_time_index, max_epochs=3, batch_size=16,
                          random_state=0).fit(fit_rows)
    lstm = LSTMForecaster(hidden_size=16, max_epochs=3, batch_size=16, random_state=0).fit(fit_rows)
    np.savez(
        sys.argv[1],
        stvlm=stvlm.predict(X_test),
        stid=stid.predict(X_test, tod_test),
        lstm=lstm.predict(X_test),
        stvlm_val=np.array([r["val_loss"] for r in stvlm.history_]),
        stid_val=np.array([r["val_loss"] for r in stid.history_]),
        lstm_val=np.array([r["val_loss"] for r in lstm.history_]),
    )


if __name__ == "__main__":
    main()
