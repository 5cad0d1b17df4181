"""benchmarks/tune.py: the few-shot score on the full fit period's validation windows."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

from stvlm.datasets import make_protocol

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "tune.py"
HISTORY, HORIZON = 4, 3


@pytest.fixture(scope="module")
def tune():
    spec = importlib.util.spec_from_file_location("tune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Recorder:
    """An estimator stand-in: forecasts a constant and keeps the windows it was given."""

    history, horizon, validation_fraction, null_value, threshold = HISTORY, HORIZON, 0.2, 0.0, None

    def __init__(self, value):
        self.value = value
        self.seen = []

    def predict(self, windows):
        self.seen.append(windows)
        return np.full(windows.y.shape, self.value)


def test_later_validation_reads_the_fit_periods_held_out_windows(tune):
    rng = np.random.default_rng(0)
    series = rng.uniform(1, 10, size=(200, 3))
    p = make_protocol(series, steps_per_day=24, first_time_index=5, history=HISTORY, horizon=HORIZON)
    est = _Recorder(2.0)
    mae = tune._later_validation_mae(est, p)

    (windows,) = est.seen
    fit = p.fit_series
    n_all = len(fit) - HISTORY - HORIZON + 1
    n_val = len(windows.X)
    assert 0 < n_val < n_all * 0.3
    # the last n_val windows of the fit period, in order, each with its own clock
    starts = np.arange(n_all - n_val, n_all)
    np.testing.assert_array_equal(windows.X, np.stack([fit[s : s + HISTORY] for s in starts]))
    targets = np.stack([fit[s + HISTORY : s + HISTORY + HORIZON] for s in starts])
    np.testing.assert_array_equal(windows.y, targets)
    np.testing.assert_array_equal(windows.time_of_day, (5 + starts + HISTORY - 1) % 24)
    # nothing past the fit period (the test targets start right after it)
    assert starts[-1] + HISTORY + HORIZON == len(fit)
    assert mae == pytest.approx(np.abs(targets - 2.0).mean())


def test_later_validation_of_the_last_value_matches_the_naive_score(tune):
    rng = np.random.default_rng(1)
    p = make_protocol(rng.uniform(1, 10, size=(180, 2)), steps_per_day=24, history=HISTORY, horizon=HORIZON)

    class LastValue(_Recorder):
        def predict(self, windows):
            self.seen.append(windows)
            return np.repeat(windows.X[:, -1:, :], HORIZON, axis=1)

    est = LastValue(None)
    assert tune._later_validation_mae(est, p) == pytest.approx(tune._last_value_on_validation(est, p.fit_series))
