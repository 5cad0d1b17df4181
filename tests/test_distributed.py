"""Training on two CPU processes (torchrun, gloo) equals training on one: the same
losses and the same model, within float32 rounding; Ctrl-C keeps the same best weights on
every rank; only rank 0 writes."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
from _scripts import load_script

HERE = pathlib.Path(__file__).resolve().parent
# The processes run the library as it is, output="change"'s weighted autoregression
# included (tests/conftest.py turns it off in this process): the one-process reference too.
pytestmark = pytest.mark.usefixtures("ar_weighted")


@pytest.fixture(scope="module")
def script():
    return load_script(HERE / "distributed_fit.py")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(HERE / "distributed_fit.py"), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]


def test_two_processes_train_the_model_of_one(script, two_processes):
    import torch

    _, ranks = two_processes
    torch.set_num_threads(1)
    data = script.series()
    one = script.model().fit(data)
    assert all(int(r["world"]) == 2 for r in ranks)
    # The ranks hold the same model ...
    np.testing.assert_array_equal(ranks[0]["pred"], ranks[1]["pred"])
    # ... and it is the model of one process, up to float32 summation order.
    np.testing.assert_allclose(ranks[0]["train"], [r["train_loss"] for r in one.loss_history_], rtol=1e-5)
    np.testing.assert_allclose(ranks[0]["val"], [r["val_loss"] for r in one.loss_history_], rtol=1e-5)
    np.testing.assert_allclose(ranks[0]["pred"], one.predict(data[None, -12:]), rtol=1e-4)


def test_ctrl_c_keeps_the_same_best_weights_on_every_rank(script, two_processes):
    _, ranks = two_processes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = script.model(callbacks=[script.interrupt_in_epoch_2]).fit(script.series())
    for r in ranks:
        assert bool(r["warned"]) and int(r["stopped_epochs"]) == 2 == len(one.loss_history_)
    np.testing.assert_array_equal(ranks[0]["stopped_pred"], ranks[1]["stopped_pred"])
    np.testing.assert_allclose(ranks[0]["stopped_pred"], one.predict(script.series()[None, -12:]), rtol=1e-4)


def test_only_rank_0_writes(two_processes):
    out, _ = two_processes
    assert (out / "model-saved-by-rank0").is_dir() and not (out / "model-saved-by-rank1").exists()


def test_init_without_a_launcher_says_how_to_launch(monkeypatch):
    from stvlm import distributed

    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        distributed.init()
    assert distributed.world_size() == 1 and distributed.rank() == 0
