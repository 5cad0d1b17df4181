"""Shared test setup.

Since session 23 a fit with ``output="change"`` adds the linear autoregression, weighted,
when that lowers its validation loss by 1 % or more (since session 24;
``BaseWindowForecaster._ar_blend``). On the small synthetic series these tests train for a
few epochs, it often does, and the tests of training, calendars, seeds, callbacks and
persistence would then check the autoregression instead of the network they are about. So
it is off for the whole session (in this process: subprocesses run the library as it is),
and the tests of it turn it back on with the ``ar_weighted`` fixture.
"""

from __future__ import annotations

import pytest

import stvlm._base
from stvlm._autoregression import fits_in_memory


@pytest.fixture(autouse=True, scope="session")
def _no_ar_weighting():
    patch = pytest.MonkeyPatch()
    patch.setattr(stvlm._base, "fits_in_memory", lambda history, horizon: False)
    yield
    patch.undo()


@pytest.fixture
def ar_weighted(monkeypatch):
    """The library's own weighted autoregression, for the tests that are about it."""
    monkeypatch.setattr(stvlm._base, "fits_in_memory", fits_in_memory)
