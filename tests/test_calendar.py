"""The calendar (#12): each window's time of day and weekday reaching ST-VLM and STID,
and ``output="change"``: models that forecast the change from the last value."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from stvlm import STVLMForecaster, Windows, make_windows
from stvlm.baselines import LSTMForecaster, STIDForecaster
from stvlm.data import as_windows, last_window

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
            image_size=16, patch_size=8, vocab_size=500)
SPD = 48  # half-hour steps


def series(T=480, N=4, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    return 100 + 50 * np.sin(2 * np.pi * t / SPD + rng.uniform(0, 1, N)) + rng.normal(0, 3, (T, N))


def frame(values, start="2024-01-01"):
    return pd.DataFrame(values, index=pd.date_range(start, periods=len(values), freq="30min"))


def tiny(**kw):
    params = dict(history=12, horizon=6, backbone=TINY, max_epochs=2, batch_size=32, random_state=0, verbose=0)
    params.update(kw)
    return STVLMForecaster(**params)


# ---------------------------------------------------------------------- ST-VLM
def test_auto_calendar_follows_the_data():
    s = series()
    dated = tiny().fit(frame(s[:300]))
    assert (dated.calendar_, dated.steps_per_day_) == ("time-of-day", SPD)
    assert dated.network_.calendar_embedding is not None
    bare = tiny().fit(s[:300])
    assert bare.calendar_ is None and bare.network_.calendar_embedding is None
    by_clock = tiny(steps_per_day=SPD, start=0).fit(s[:300])
    assert by_clock.calendar_ == "time-of-day"
    paper = STVLMForecaster.from_preset("paper")
    assert paper.calendar is None and paper.output == "level"


def test_the_time_changes_the_forecast_and_dates_come_from_the_index():
    s = series()
    model = tiny(calendar="time-of-day+day-of-week", max_epochs=3).fit(frame(s[:300]))
    assert model.calendar_ == "time-of-day+day-of-week"
    window = last_window(frame(s[:400]), 12)
    later = Windows(window.X, time_of_day=(window.time_of_day + 12) % SPD, day_of_week=window.day_of_week,
                    steps_per_day=SPD)
    assert not np.allclose(model.predict(window), model.predict(later))
    # A bare series dated by steps_per_day and a start date gives the same windows' times.
    again = tiny(calendar="time-of-day+day-of-week", max_epochs=3, steps_per_day=SPD,
                 start="2024-01-01").fit(s[:300])
    np.testing.assert_allclose(again.predict(window), model.predict(window), rtol=1e-6)


@pytest.mark.parametrize("form", ["embedding", "tokens"])
def test_calendar_model_saves_loads_and_pickles(form, tmp_path):
    s = series()
    model = tiny(calendar_form=form, steps_per_day=SPD, start=pd.Timestamp("2024-01-01 00:00")).fit(s[:300])
    window = last_window(s[:400], 12, steps_per_day=SPD, start=0)
    again = STVLMForecaster.load(model.save(tmp_path / form))
    assert again.calendar_ == "time-of-day" and again.calendar_form == form
    assert again.start == "2024-01-01T00:00:00"  # a date is stored as ISO text
    np.testing.assert_array_equal(again.predict(window), model.predict(window))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(window), model.predict(window))


def test_files_from_before_the_calendar_load_as_what_they_were(tmp_path):
    s = series()
    model = tiny(calendar=None, output="level").fit(s[:300])
    X, _ = make_windows(s[300:], 12, 6)
    d = model.save(tmp_path / "old")
    config = json.loads((d / "stvlm_config.json").read_text())
    for key in ("calendar", "calendar_form", "steps_per_day", "start", "output"):
        del config["params"][key]
    del config["fitted"]["calendar_"], config["fitted"]["steps_per_day_"]
    config["format_version"] = 2
    (d / "stvlm_config.json").write_text(json.dumps(config))
    again = STVLMForecaster.load(d)
    assert again.output == "level" and again.calendar is None and again.calendar_ is None
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_calendar_errors_are_clear():
    s = series()
    with pytest.raises(ValueError, match="carry none"):
        tiny(calendar="time-of-day").fit(s[:300])
    with pytest.raises(ValueError, match="day of week"):  # a slot number gives no weekday
        tiny(calendar="time-of-day+day-of-week", steps_per_day=SPD, start=5).fit(s[:300])
    with pytest.raises(ValueError, match="calendar must be"):
        tiny(calendar="hour").fit(s[:300])
    with pytest.raises(ValueError, match="calendar_form"):
        tiny(calendar_form="words").fit(s[:300])
    with pytest.raises(ValueError, match="needs steps_per_day"):
        tiny(start=3).fit(s[:300])
    model = tiny().fit(frame(s[:300]))
    X, _ = make_windows(s[300:], 12, 6)
    with pytest.raises(ValueError, match="last_window"):  # bare windows: no time
        model.predict(X)
    with pytest.raises(ValueError, match="slots per day"):
        model.predict(Windows(X, time_of_day=np.zeros(len(X), int), steps_per_day=24))


# ---------------------------------------------------------------------- output="change"
@pytest.mark.parametrize("make", [
    lambda **kw: tiny(**kw),
    lambda **kw: STIDForecaster(history=12, horizon=6, steps_per_day=SPD, max_epochs=1, random_state=0, **kw),
    lambda **kw: LSTMForecaster(history=12, horizon=6, hidden_size=8, max_epochs=1, random_state=0, **kw),
], ids=["stvlm", "stid", "lstm"])
def test_change_output_starts_from_the_last_value(make):
    """Before training has moved the weights, output="change" repeats the last value
    (the zeroed output layer); output="level" does not."""
    s = series()
    X, _ = make_windows(s[300:], 12, 6)
    X = Windows(X, time_of_day=(300 + np.arange(len(X)) + 11) % SPD, steps_per_day=SPD)
    frozen = make(output="change", learning_rate=1e-12).fit(s[:300])
    last = np.repeat(X.X[:, -1:, :], 6, axis=1)
    np.testing.assert_allclose(frozen.predict(X), last, rtol=1e-5)
    level = make(output="level", learning_rate=1e-12).fit(s[:300])
    assert np.abs(level.predict(X) - last).mean() > 1.0
    with pytest.raises(ValueError, match="output must be"):
        make(output="delta").fit(s[:300])


def test_change_output_trains_and_beats_the_last_value_on_a_daily_profile():
    s = series(T=960)
    X, y = make_windows(s[720:], 12, 6)
    times = Windows(X, time_of_day=(720 + np.arange(len(X)) + 11) % SPD, steps_per_day=SPD)
    model = STIDForecaster(history=12, horizon=6, steps_per_day=SPD, max_epochs=30, random_state=0).fit(s[:720])
    naive = np.abs(np.repeat(X[:, -1:, :], 6, axis=1) - y).mean()
    assert np.abs(model.predict(times) - y).mean() < 0.5 * naive


# ---------------------------------------------------------------------- STID day of week
def test_stid_day_of_week():
    s = series()
    model = STIDForecaster(history=12, horizon=6, steps_per_day=SPD, dow_dim=4, max_epochs=2,
                           random_state=0).fit(frame(s[:300]))
    assert model.module_.dow_emb.shape == (7, 4)
    w = last_window(frame(s[:400]), 12)
    other = Windows(w.X, time_of_day=w.time_of_day, day_of_week=(w.day_of_week + 1) % 7, steps_per_day=SPD)
    assert not np.allclose(model.predict(w), model.predict(other))
    same = STIDForecaster(history=12, horizon=6, steps_per_day=SPD, dow_dim=4, max_epochs=2, random_state=0,
                          first_time_index="2024-01-01").fit(s[:300])
    np.testing.assert_allclose(same.predict(w), model.predict(w), rtol=1e-6)
    with pytest.raises(ValueError, match="day of week"):
        STIDForecaster(history=12, horizon=6, steps_per_day=SPD, dow_dim=4, max_epochs=1).fit(s[:300])
    with pytest.raises(TypeError, match="first_time_index"):
        STIDForecaster(steps_per_day=SPD, first_time_index=1.5, max_epochs=1).fit(s[:300])


@pytest.mark.parametrize("start", ["", "NaT"])
def test_a_start_that_reads_as_no_time_is_a_clear_error(start):
    # numpy reads "" as NaT; its arithmetic gave each row a made-up slot and weekday
    with pytest.raises(ValueError, match="not a date and time"):
        as_windows(series(T=40), history=12, horizon=3, steps_per_day=SPD, start=start)


def test_benchmark_dates_an_undated_protocol_by_its_first_slot():
    from stvlm.benchmark import _make_model, _start
    from stvlm.datasets import make_protocol

    p = make_protocol(series(), steps_per_day=SPD, first_time_index=7, history=12, horizon=3)
    assert p.start_time == "" and _start(p) == 7
    est = _make_model("stvlm", "cpu", "full", 0, p, {})
    assert est.start == 7 and est.steps_per_day == SPD
    dated = make_protocol(series(), steps_per_day=SPD, start_time="2024-01-01T00:00", history=12, horizon=3)
    assert _start(dated) == "2024-01-01T00:00"
