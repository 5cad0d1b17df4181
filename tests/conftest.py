"""Shared test setup.

Since session 23 a fit with ``output="change"`` keeps the linear autoregression when it
beats the trained network on the validation windows (``BaseWindowForecaster._ar_fallback``).
On the small synthetic series these tests train for a few epochs, it often does, and the
tests of training, calendars, seeds, callbacks and persistence would then check the
autoregression instead of the network they are about. So the fallback is off for the
whole session (in this process: subprocesses run the library as it is), and the tests of
the fallback itself turn it back on with the ``ar_fallback`` fixture.
"""

from __future__ import annotations

import pytest

import stvlm._base
from stvlm._autoregression import fits_in_memory


@pytest.fixture(autouse=True, scope="session")
def _no_ar_fallback():
    patch = pytest.MonkeyPatch()
    patch.setattr(stvlm._base, "fits_in_memory", lambda history, horizon: False)
    yield
    patch.undo()


@pytest.fixture
def ar_fallback(monkeypatch):
    """The library's own fallback, for the tests that are about it."""
    monkeypatch.setattr(stvlm._base, "fits_in_memory", fits_in_memory)
