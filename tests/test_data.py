"""The data front door (stvlm.data): what a user passes -> windows, targets, times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stvlm import SpatialToImageTransformer, Windows, as_windows, make_windows
from stvlm.data import chronological_split, rows_needed, slots_of_rows, split_sizes


def frame(T=60, freq="15min", start="2024-03-03 22:00", N=2):
    idx = pd.date_range(start, periods=T, freq=freq)
    return pd.DataFrame(np.arange(T * N, dtype=float).reshape(T, N), index=idx)


def test_dataframe_with_datetime_index_gives_window_times():
    df = frame()
    w = as_windows(df, history=4, horizon=2)
    X, y = make_windows(df.to_numpy(), 4, 2)
    np.testing.assert_array_equal(w.X, X)
    np.testing.assert_array_equal(w.y, y)
    assert w.steps_per_day == 96 and w.consecutive
    # Window i's last history step is row i + 3; written out from the index by hand.
    last = df.index[np.arange(len(w)) + 3]
    np.testing.assert_array_equal(w.time_of_day, last.hour * 4 + last.minute // 15)
    np.testing.assert_array_equal(w.day_of_week, last.dayofweek)
    np.testing.assert_array_equal(w.timestamps, last.to_numpy())
    # 2024-03-03 is a Sunday: 22:45 is slot 91 of day 6, and Monday begins at window 5.
    assert (w.time_of_day[0], w.day_of_week[0], w.time_of_day[5], w.day_of_week[5]) == (91, 6, 0, 0)


def test_bare_array_gets_no_times_without_error():
    w = as_windows(np.ones((30, 3)), history=5, horizon=2)
    assert w.time_of_day is None and w.day_of_week is None and w.timestamps is None
    assert w.X.shape == (24, 5, 3)


def test_bare_array_with_steps_per_day_and_start():
    w = as_windows(np.ones((30, 3)), history=5, horizon=2, steps_per_day=24, start=22)
    np.testing.assert_array_equal(w.time_of_day, (22 + 4 + np.arange(24)) % 24)
    assert w.day_of_week is None
    w = as_windows(np.ones((30, 3)), history=5, horizon=2, steps_per_day=24, start="2024-03-03 22:00")
    np.testing.assert_array_equal(w.time_of_day, (22 + 4 + np.arange(24)) % 24)
    # Window i ends at row i + 4, Sunday 22:00 + (i + 4) h: Monday 02:00 ... Tuesday 01:00.
    assert w.day_of_week[0] == 0 and w.day_of_week[21] == 0 and w.day_of_week[22] == 1 and w.day_of_week[-1] == 1
    assert str(w.timestamps[0])[:16] == "2024-03-04T02:00"


def test_index_resolution_can_be_chosen_and_odd_steps_have_no_slots():
    w = as_windows(frame(freq="15min"), history=4, horizon=2, steps_per_day=24)
    assert w.steps_per_day == 24 and w.time_of_day[0] == 22  # 22:45 is in hour 22
    weekly = as_windows(frame(freq="7D"), history=4, horizon=2)
    assert weekly.time_of_day is None and weekly.day_of_week is not None
    tz = frame().tz_localize("Europe/Berlin")
    np.testing.assert_array_equal(as_windows(tz, history=4, horizon=2).time_of_day,
                                  as_windows(frame(), history=4, horizon=2).time_of_day)


def test_bad_time_input_is_a_clear_error():
    with pytest.raises(ValueError, match="start needs steps_per_day"):
        as_windows(np.ones((30, 3)), history=5, horizon=2, start=3)
    with pytest.raises(TypeError, match="start must be an int"):
        as_windows(np.ones((30, 3)), history=5, horizon=2, steps_per_day=24, start=[1])
    with pytest.raises(ValueError, match="increase strictly"):
        as_windows(frame().iloc[::-1], history=4, horizon=2)
    with pytest.raises(ValueError, match="time_of_day must lie in"):
        Windows(np.ones((2, 3, 1)), time_of_day=[0, 24], steps_per_day=24)
    with pytest.raises(ValueError, match="needs steps_per_day"):
        Windows(np.ones((2, 3, 1)), time_of_day=[0, 1])
    with pytest.raises(ValueError, match="shape"):
        Windows(np.ones((2, 3, 1)), day_of_week=[0])


def test_windows_with_targets_and_wrong_shapes():
    X, y = make_windows(np.ones((30, 3)), 5, 2)
    w = as_windows(X, y, history=5, horizon=2)
    assert not w.consecutive and w.time_of_day is None
    with pytest.raises(ValueError, match="y is required"):
        as_windows(X, history=5, horizon=2)
    assert as_windows(X, history=5, horizon=2, require_targets=False).y is None
    with pytest.raises(ValueError, match="windows of 5 steps, but history=4"):
        as_windows(X, y, history=4, horizon=2)
    with pytest.raises(ValueError, match="y has 2 steps per window, but horizon=3"):
        as_windows(X, y, history=5, horizon=3)
    with pytest.raises(ValueError, match="y must be None"):
        as_windows(np.ones((30, 3)), y, history=5, horizon=2)
    with pytest.raises(ValueError, match="too short to cut one window"):
        as_windows(np.ones((6, 3)), history=5, horizon=2)


def test_transformer_keeps_the_times_and_the_forecaster_reads_them():
    df = frame(T=80, N=3)
    images = SpatialToImageTransformer(history=4, horizon=2).fit_transform(df)
    w = as_windows(df, history=4, horizon=2)
    np.testing.assert_array_equal(images.time_of_day, w.time_of_day)
    np.testing.assert_array_equal(images[3:6].day_of_week, w.day_of_week[3:6])
    back = as_windows(images, history=4, horizon=2)
    np.testing.assert_array_equal(back.time_of_day, w.time_of_day)
    assert back.consecutive and back.channels is images.channels


def test_one_split_rule():
    w = as_windows(np.arange(248.0).reshape(124, 2), history=12, horizon=12)
    train, val = chronological_split(w, 0.2)
    assert (len(train), len(val)) == (58, 20)
    # No validation window shares a row with a training window.
    assert train.X[-1, 0, 0] / 2 + 12 + 12 - 1 < val.X[0, 0, 0] / 2
    X, y = make_windows(np.ones((124, 2)), 12, 12)
    train, val = chronological_split(as_windows(X, y, history=12, horizon=12), 0.2)
    assert (len(train), len(val)) == (81, 20)  # windows given as they are: no gap
    assert split_sizes(10, 0.0, gap=5) == (10, 0)
    with pytest.raises(ValueError, match="too few to hold out"):
        split_sizes(20, 0.2, gap=23)
    # rows_needed is the first length from which the split succeeds.
    for h, f, frac in [(3, 2, 0.2), (12, 12, 0.2), (6, 4, 0.5)]:
        need = rows_needed(h, f, frac)
        for T in range(need, need + 30):
            chronological_split(as_windows(np.ones((T, 1)), history=h, horizon=f), frac)
        with pytest.raises(ValueError):
            chronological_split(as_windows(np.ones((need - 1, 1)), history=h, horizon=f), frac)


def test_filled_imputes_once_and_slicing_keeps_everything():
    X = np.ones((4, 5, 2))
    X[1, 2, 0] = np.nan
    w = Windows(X, time_of_day=[0, 1, 2, 3], steps_per_day=4)
    f = w.filled()
    assert f is w.filled() and np.isfinite(f).all() and np.isnan(w.X[1, 2, 0])
    sub = w[1:3]
    assert sub.time_of_day.tolist() == [1, 2] and np.isfinite(sub.filled()).all()


def test_slots_of_rows():
    np.testing.assert_array_equal(slots_of_rows(frame(T=5), 96), [88, 89, 90, 91, 92])  # 22:00 ... 23:00
    assert slots_of_rows(np.ones((5, 1)), 96) is None


# ------------------------------------------------------------------ large data
@pytest.fixture()
def tiny_large(monkeypatch):
    """Make every dataset "large" (views, per-batch imputation, chunked statistics)."""
    import stvlm.data
    import stvlm.data._windows

    for module in (stvlm.data, stvlm.data._windows):
        monkeypatch.setattr(module, "LARGE", 10)
    monkeypatch.setattr(stvlm.data._windows, "_chunks", _small_chunks)


def _small_chunks(a, values=None):
    return (a[s : s + 7] for s in range(0, a.shape[0], 7))  # several chunks even for small data


def test_large_series_become_read_only_views_with_the_same_values(tiny_large):
    series = np.random.default_rng(0).normal(size=(60, 3))
    series[5, 1] = np.nan
    w = as_windows(series, history=4, horizon=2)
    X, y = make_windows(series, 4, 2)
    np.testing.assert_array_equal(w.X, X)
    np.testing.assert_array_equal(w.y, y)
    assert not w.X.flags.writeable and not w.y.flags.writeable and w.X.base is not None
    series[0, 0] = 99.0  # the views are of a private copy: the user's array is not aliased
    assert w.X[0, 0, 0] != 99.0
    idx = np.array([5, 2, 3])
    np.testing.assert_array_equal(w.filled_batch(idx), Windows(X, y).filled()[idx])
    assert w._filled is None  # nothing imputed as a whole


def test_large_data_train_the_model_of_small_data(tiny_large, monkeypatch):
    from stvlm.baselines import LSTMForecaster

    series = np.random.default_rng(1).gamma(2.0, 20.0, size=(90, 4))
    series[10:14, 2] = np.nan
    params = dict(history=6, horizon=3, hidden_size=8, max_epochs=3, batch_size=16, random_state=0, verbose=0)
    large = LSTMForecaster(**params).fit(series)
    monkeypatch.undo()
    small = LSTMForecaster(**params).fit(series)
    assert large.mean_ == pytest.approx(small.mean_, rel=1e-12) and large.std_ == pytest.approx(small.std_, rel=1e-12)
    X, _ = make_windows(series, 6, 3)
    np.testing.assert_allclose(large.predict(X), small.predict(X), rtol=1e-6)


def test_chunked_checks_refuse_what_the_whole_checks_refuse(tiny_large):
    from stvlm.data._windows import MAX_ABS_VALUE, check_sensors_have_data, check_value_range

    X = np.random.default_rng(0).normal(size=(30, 4, 3))
    X[:, :, 1] = np.nan
    with pytest.raises(ValueError, match=r"sensors \[1\]"):
        check_sensors_have_data(Windows(X))
    X[:, :, 1] = 0.0
    X[25, 2, 2] = 2 * MAX_ABS_VALUE
    with pytest.raises(ValueError, match="X holds values up to 2e"):
        check_value_range(Windows(X))
