"""ETTh1 / ETTh2 and the long-term protocol, on the real CSVs read in place from the data
folder (../shared/data/ett; skipped only where that folder cannot be found). Expected
values are computed here from the CSV text with the csv module, independently of pandas
and of the loader."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from stvlm.baselines import SeasonalNaiveForecaster
from stvlm.benchmark import run
from stvlm.datasets import ETT_HORIZONS, FetchError, data_home, load_ett, load_protocol
from stvlm.datasets._ett import ett_protocol


@pytest.fixture(scope="module")
def home():
    try:
        folder = data_home()
    except FileNotFoundError as exc:  # only where the shared data folder is absent
        pytest.skip(f"real data not found: {exc}")
    if not (folder / "ett" / "ETTh1.csv").is_file():
        pytest.skip("the data folder has no ett/")
    return folder


def _raw(home, name):
    with open(home / "ett" / f"{name}.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [r[0] for r in rows[1:]], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


@pytest.mark.parametrize("name", ["ETTh1", "ETTh2"])
def test_load_ett_parses_the_original_file(home, name):
    header, dates, values = _raw(home, name)
    frame = load_ett(name)
    assert list(frame.columns) == header[1:] and header[-1] == "OT"
    assert frame.shape == values.shape == (17420, 7)
    np.testing.assert_array_equal(frame.to_numpy(), values)
    assert str(frame.index[0]) == dates[0] == "2016-07-01 00:00:00"
    assert str(frame.index[-1]) == dates[-1] == "2018-06-26 19:00:00"


@pytest.mark.parametrize("name", ["etth1", "etth2"])
@pytest.mark.parametrize("history, horizon", [(96, 96), (96, 720), (512, 336)])
def test_long_term_protocol_split_and_scaling(home, name, history, horizon):
    _, _, raw = _raw(home, name.replace("etth", "ETTh"))
    mean, std = raw[:8640].mean(axis=0), raw[:8640].std(axis=0)
    z = (raw - mean) / std
    p = load_protocol(name, history=history, horizon=horizon)
    n_test = 2881 - horizon
    assert p.test_X.shape == (n_test, history, 7) and p.test_y.shape == (n_test, horizon, 7)
    np.testing.assert_allclose(p.test_X[0], z[11520 - history : 11520], rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.test_y[-1], z[14400 - horizon : 14400], rtol=0, atol=1e-12)
    assert p.fit_series.shape == (11520, 7) and p.n_train_rows == 8640
    np.testing.assert_allclose(p.val_series, z[8640 - history : 11520], atol=1e-12)
    np.testing.assert_allclose(p.variable_mean, mean) and np.testing.assert_allclose(p.variable_std, std)
    np.testing.assert_allclose(p.train_series.mean(axis=0), 0, atol=1e-12)
    assert p.metrics == ("MSE", "MAE") and p.null_value is None and p.steps_per_day == 24
    # Few-shot: Time-LLM's rule, the first fraction of the training windows.
    for f in (0.05, 0.1):
        assert p.few_shot_series(f).shape[0] == math.floor((8640 - history) * f) + history


def test_last_value_and_seasonal_repeat_scores(home):
    _, _, raw = _raw(home, "ETTh1")
    z = (raw - raw[:8640].mean(axis=0)) / raw[:8640].std(axis=0)
    p = load_protocol("etth1", horizon=192)
    starts = np.arange(11520 - 96, 14400 - 96 - 192 + 1)
    y = np.stack([z[s + 96 : s + 96 + 192] for s in starts])
    last = np.stack([np.repeat(z[s + 95 : s + 96], 192, axis=0) for s in starts])
    scores = p.evaluate(np.repeat(p.test_X[:, -1:], 192, axis=1))
    assert scores["MSE"] == pytest.approx(np.mean((last - y) ** 2), rel=1e-12)
    assert scores["MAE"] == pytest.approx(np.mean(np.abs(last - y)), rel=1e-12)
    # The 24-hour repeat: step h takes the value 24 * ceil(h / 24) hours before it.
    season = np.stack([z[s + 96 - 24 + (np.arange(192) % 24)] for s in starts])
    pred = SeasonalNaiveForecaster(season=24, horizon=192).fit(p.fit_series).predict(p.test_X)
    np.testing.assert_allclose(pred, season, atol=1e-12)
    assert p.evaluate(pred)["MSE"] < scores["MSE"]


def test_benchmark_runs_each_horizon_and_resumes(home, tmp_path):
    rows = run("etth1", models=["last-value", "seasonal-naive"], results_dir=tmp_path, horizons=[96, 336], verbose=0)
    assert sorted((r["model"], int(r["horizon"])) for r in rows) == [
        ("last-value", 96), ("last-value", 336), ("seasonal-naive", 96), ("seasonal-naive", 336)]
    p = load_protocol("etth1", horizon=336)
    direct = p.evaluate(np.repeat(p.test_X[:, -1:], 336, axis=1))
    got = next(r for r in rows if r["model"] == "last-value" and int(r["horizon"]) == 336)
    assert float(got["MSE"]) == pytest.approx(direct["MSE"], rel=1e-12) and int(got["history"]) == 96
    header = (tmp_path / "etth1.csv").read_text().splitlines()[0]
    assert header.startswith("protocol,model,preset,setting,seed,history,horizon,n_fit_rows,MSE,MAE")
    again = run("etth1", models=["last-value"], results_dir=tmp_path, horizons=[96, 336, 720], verbose=0)
    assert len(again) == 5  # only H 720 of last value was new
    table = (tmp_path / "etth1.md").read_text()
    assert "H 96 (MSE / MAE)" in table and "H 720 (MSE / MAE)" in table and "| Last value | full |" in table
    few = run("etth1", models=["last-value"], settings=["few-shot-0.05"], results_dir=tmp_path, horizons=[96],
              verbose=0)
    assert int(next(r for r in few if r["setting"] == "few-shot-0.05")["n_fit_rows"]) == 427 + 96


def test_bad_ett_arguments(home):
    with pytest.raises(ValueError, match="known: ETTh1, ETTh2"):
        load_ett("ETTm1")
    with pytest.raises(ValueError, match="do not fit the ETT split"):
        ett_protocol("etth1", history=8000, horizon=720)
    with pytest.raises(ValueError, match="horizon must be"):
        load_protocol("etth2", horizon=0)
    with pytest.raises(ValueError, match="horizons= applies"):
        run("pems08-tail", models=["last-value"], horizons=[96], verbose=0)
    assert set(ETT_HORIZONS) == {96, 192, 336, 720}


def test_a_changed_ett_file_is_refused(home, tmp_path):
    (tmp_path / "ett").mkdir()
    text = (home / "ett" / "ETTh1.csv").read_text()
    (tmp_path / "ett" / "ETTh1.csv").write_text(text.replace("5.827", "5.828", 1))
    with pytest.raises(FetchError, match="sha256"):
        load_ett("ETTh1", data_dir=tmp_path)


def test_trained_models_fit_the_training_months_and_validate_on_informers(home, monkeypatch):
    """On ETT a trained model fits rows [0, 8640) (or the few-shot rows) and validates on
    the protocol's own validation months, dated, not on a split of its fit rows."""
    from stvlm._benchmark_models import _fit_kwargs, _fit_rows

    p = load_protocol("etth1", history=96, horizon=96)
    assert _fit_rows(p, "full").shape == (8640, 7)
    assert _fit_rows(p, "few-shot-0.05").shape == (427 + 96, 7)
    val = _fit_kwargs("dlinear", p)["validation_data"]
    np.testing.assert_array_equal(val.to_numpy(), p.val_series)
    assert str(val.index[0]) == "2017-06-22 00:00:00"  # row 8640 - 96 of hourly rows from 2016-07-01
    assert str(val.index[96]) == "2017-06-26 00:00:00"  # row 8640, the first validation month
    assert _fit_kwargs("last-value", p) == {}


def test_benchmark_runs_time_vlm_its_ablations_and_the_baselines(home, tmp_path, monkeypatch):
    from stvlm import _benchmark_models as bm

    tiny = dict(d_model=8, n_heads=2, max_epochs=1, batch_size=256)
    monkeypatch.setitem(bm.BENCHMARK_PRESETS, "patchtst", {"cpu": dict(max_epochs=1, batch_size=256)})
    monkeypatch.setitem(bm.BENCHMARK_PRESETS, "dlinear", {"cpu": dict(max_epochs=1, batch_size=256)})
    rows = run("etth1", models=["timevlm", "dlinear", "patchtst", "last-value"], settings=["full", "wo-ral"],
               horizons=[96], results_dir=tmp_path, overrides={"timevlm": tiny}, verbose=0)
    got = sorted((r["model"], r["setting"]) for r in rows)
    # the ablation runs for Time-VLM only, and a deterministic model once
    assert got == [("dlinear", "full"), ("last-value", "full"), ("patchtst", "full"), ("timevlm", "full"),
                   ("timevlm", "wo-ral")]
    for r in rows:
        assert np.isfinite(float(r["MSE"])) and int(r["horizon"]) == 96
        if r["model"] != "last-value":
            assert int(r["n_fit_rows"]) == 8640  # the training months; validation comes from the protocol
    table = (tmp_path / "etth1.md").read_text()
    assert "Time-VLM" in table and "DLinear" in table and "PatchTST" in table


def test_zero_shot_fits_on_the_other_dataset(home, tmp_path, monkeypatch):
    from stvlm import _benchmark_models as bm
    from stvlm.baselines import DLinearForecaster

    monkeypatch.setitem(bm.BENCHMARK_PRESETS, "dlinear", {"cpu": dict(max_epochs=1, batch_size=256)})
    fitted = []
    fit = DLinearForecaster.fit

    def spy(self, X, y=None, **kw):
        fitted.append((np.asarray(X)[0].copy(), kw["validation_data"].to_numpy()[0].copy()))
        return fit(self, X, y, **kw)

    monkeypatch.setattr(DLinearForecaster, "fit", spy)
    rows = run("etth2", models=["dlinear", "last-value"], settings=["zero-shot-etth1"], horizons=[96],
               results_dir=tmp_path, verbose=0)
    assert [(r["model"], r["setting"]) for r in rows] == [("dlinear", "zero-shot-etth1")]
    source, target = load_protocol("etth1", horizon=96), load_protocol("etth2", horizon=96)
    np.testing.assert_array_equal(fitted[0][0], source.fit_series[0])  # ETTh1's rows train ...
    np.testing.assert_array_equal(fitted[0][1], source.val_series[0])  # ... and validate
    assert float(rows[0]["MSE"]) > 0 and rows[0]["protocol"] == "etth2" and int(rows[0]["n_fit_rows"]) == 8640
    assert not np.array_equal(source.test_X[0], target.test_X[0])
    with pytest.raises(ValueError, match="that is the full setting"):
        run("etth1", models=["dlinear"], settings=["zero-shot-etth1"], horizons=[96], results_dir=tmp_path)


def test_zero_shot_scores_the_saved_full_fit_instead_of_repeating_it(home, tmp_path, monkeypatch):
    from stvlm import _benchmark_models as bm
    from stvlm.baselines import DLinearForecaster
    from stvlm.timevlm import TimeVLMForecaster

    monkeypatch.setitem(bm.BENCHMARK_PRESETS, "dlinear", {"cpu": dict(max_epochs=1, batch_size=256)})
    tiny = {"timevlm": dict(d_model=8, n_heads=2, max_epochs=1, batch_size=256)}
    kw = dict(models=["dlinear", "timevlm"], horizons=[96], overrides=tiny, verbose=0)
    models = tmp_path / "models"
    full = {r["model"]: r for r in run("etth1", results_dir=tmp_path / "a", models_dir=models, **kw)}
    assert (models / "etth1" / "timevlm_cpu_full_seed0_L96_H96" / "benchmark_fit.json").is_file()
    fits = []

    def counting(cls):
        fit = cls.fit
        monkeypatch.setattr(cls, "fit", lambda self, *a, **k: fits.append(cls.__name__) or fit(self, *a, **k))

    counting(DLinearForecaster)
    counting(TimeVLMForecaster)
    reused = run("etth2", settings=["zero-shot-etth1"], results_dir=tmp_path / "a", models_dir=models, **kw)
    assert fits == []  # both models came from the full run's folders
    fresh = run("etth2", settings=["zero-shot-etth1"], results_dir=tmp_path / "b", **kw)
    assert sorted(fits) == ["DLinearForecaster", "TimeVLMForecaster"]
    fresh = {r["model"]: r for r in fresh}
    for r in reused:
        assert float(r["MSE"]) == float(fresh[r["model"]]["MSE"])  # the same fit, scored the same
        assert r["fit_seconds"] == full[r["model"]]["fit_seconds"] and r["commit"] == full[r["model"]]["commit"]
    # other parameters: the saved fit is not that model's, so it is fitted anew
    fits.clear()
    other = dict(kw, models=["dlinear"], overrides={"dlinear": dict(learning_rate=0.01)})
    run("etth2", settings=["zero-shot-etth1"], results_dir=tmp_path / "c", models_dir=models, **other)
    assert fits == ["DLinearForecaster"]
