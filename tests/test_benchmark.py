"""The benchmark runner, its results file and table, the console script, and the
protocol helpers it relies on (make_protocol, Protocol.series, Protocol.test_windows)."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

from stvlm import benchmark
from stvlm.benchmark import results_table, run
from stvlm.cli import main
from stvlm.datasets import load_protocol, make_protocol

TINY_STVLM = dict(
    backbone=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                  image_size=16, patch_size=8, vocab_size=500),
    encoder_hidden=8, decoder_hidden=8, max_epochs=1, batch_size=16,
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def small():
    """A 4-sensor protocol with a daily cycle of 24 slots, 6:2:2 split."""
    rng = np.random.default_rng(0)
    t = np.arange(24 * 20)
    series = 100 + 40 * np.sin(2 * np.pi * t / 24)[:, None] + rng.normal(0, 3, (t.size, 4))
    return make_protocol(series, name="small", steps_per_day=24)


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------- protocols
def test_make_protocol_reproduces_sz_taxi():
    sz = load_protocol("sz-taxi")
    again = make_protocol(sz.series(), steps_per_day=96)
    np.testing.assert_array_equal(again.fit_series, sz.fit_series)
    np.testing.assert_array_equal(again.test_X, sz.test_X)
    np.testing.assert_array_equal(again.test_y, sz.test_y)
    assert (again.mean, again.std, again.n_train_rows) == (sz.mean, sz.std, sz.n_train_rows)


def test_make_protocol_no_fitted_row_is_a_test_target(small):
    first_target = small.test_start + small.history
    assert small.fit_series.shape[0] == first_target
    np.testing.assert_array_equal(small.test_y[0, 0], small.series()[first_target])


def test_make_protocol_too_short():
    with pytest.raises(ValueError, match="too few to split 6:2:2"):
        make_protocol(np.ones((26, 2)))


def test_protocol_series_and_longer_test_windows():
    p = load_protocol("pems08-tail")
    from stvlm.datasets._embedded import embedded_series

    raw = embedded_series("pems08-tail")  # equal to the data folder's file (tests/test_datasets.py)
    np.testing.assert_array_equal(p.series(), raw)
    X = p.test_windows(30)
    for i in (0, 1000, len(X) - 1):
        r = p.test_start + i
        np.testing.assert_array_equal(X[i], raw[r + 12 - 30 : r + 12])
    with pytest.raises(ValueError, match="history must be in"):
        p.test_windows(p.test_start + 13)


# ---------------------------------------------------------------------- run
def test_run_pins_the_last_value_figures_and_resumes(tmp_path, monkeypatch):
    rows = run("pems08-tail", models=["last-value", "historical-average"], results_dir=tmp_path, verbose=0)
    by = {r["model"]: r for r in rows}
    assert round(float(by["last-value"]["MAE"]), 2) == 25.28
    assert round(float(by["last-value"]["RMSE"]), 2) == 38.63
    assert round(float(by["last-value"]["MAPE"]), 2) == 15.62
    assert round(float(by["historical-average"]["MAE"]), 2) == 32.47
    assert by["last-value"]["commit"] and float(by["last-value"]["peak_memory_mb"]) > 0

    calls = []
    monkeypatch.setattr(benchmark, "_one_run", lambda *a, **k: calls.append(a) or {})
    again = run("pems08-tail", models=["last-value", "historical-average"], results_dir=tmp_path, verbose=0)
    assert calls == [] and len(again) == 2  # finished rows are not recomputed
    assert len(read(tmp_path / "pems08-tail.csv")) == 2
    assert "| Last value | full | 25.28 |" in (tmp_path / "pems08-tail.md").read_text()


def test_run_settings_seeds_and_ablations(small, tmp_path):
    rows = run(
        small, models=["stid", "last-value"], settings=["full", "few-shot-0.5", "wo-saf"], seeds=[0, 1],
        results_dir=tmp_path, overrides={"stid": dict(max_epochs=2)}, verbose=0,
    )
    got = sorted((r["model"], r["setting"], r["seed"]) for r in rows)
    # STID: both seeds in both settings; last value once (deterministic); the ST-VLM
    # ablation applies to no other model.
    assert got == sorted(
        [("stid", s, seed) for s in ("full", "few-shot-0.5") for seed in ("0", "1")]
        + [("last-value", s, "0") for s in ("full", "few-shot-0.5")]
    )
    few = [r for r in rows if r["setting"] == "few-shot-0.5"]
    assert {int(r["n_fit_rows"]) for r in few} == {small.n_train_rows // 2}
    full = [r for r in rows if r["setting"] == "full"]
    assert {int(r["n_fit_rows"]) for r in full} == {small.fit_series.shape[0]}
    stid = [r for r in rows if r["model"] == "stid" and r["setting"] == "full"]
    assert stid[0]["MAE"] != stid[1]["MAE"]  # seeds differ
    assert int(stid[0]["epochs"]) == 2
    curves = sorted(p.name for p in (tmp_path / "small-curves").iterdir())
    assert "stid_cpu_full_seed0.json" in curves and len(curves) == 4


def test_run_stvlm_and_its_ablations(small, tmp_path):
    rows = run(
        small, models=["stvlm"], settings=["full", "wo-saf", "wo-ft"], results_dir=tmp_path,
        overrides={"stvlm": TINY_STVLM}, models_dir=tmp_path / "models", verbose=0,
    )
    assert sorted(r["setting"] for r in rows) == ["full", "wo-ft", "wo-saf"]
    assert all(np.isfinite(float(r["MAE"])) for r in rows)
    from stvlm import STVLMForecaster

    params = {s: STVLMForecaster.load(tmp_path / "models" / "small" / f"stvlm_cpu_{s}_seed0").get_params()
              for s in ("full", "wo-saf", "wo-ft")}
    assert (params["full"]["fusion"], params["full"]["finetune"]) == ("saf", "lora")
    assert params["wo-saf"]["fusion"] is None and params["wo-saf"]["finetune"] == "lora"
    assert params["wo-ft"]["finetune"] is None and params["wo-ft"]["fusion"] == "saf"
    assert params["full"]["max_epochs"] == 1  # the override reached the model


def test_run_a_users_file(tmp_path):
    rng = np.random.default_rng(0)
    f = tmp_path / "mine.npy"
    np.save(f, rng.normal(10, 1, (200, 3)))
    rows = run(str(f), models=["last-value", "seasonal-naive"], results_dir=tmp_path, steps_per_day=24, verbose=0)
    assert {r["protocol"] for r in rows} == {"mine"}
    assert (tmp_path / "mine.csv").exists()


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(models=["arima"]), "unknown model 'arima'"),
        (dict(settings=["few-shot-2"]), "unknown setting"),
        (dict(settings=["half"]), "unknown setting"),
        (dict(preset="tpu"), "preset must be"),
        (dict(seeds=[]), "at least one seed"),
        (dict(protocol="pems99"), "protocol must be one of"),
    ],
)
def test_run_bad_arguments(kw, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        run(**{"protocol": "pems08-tail", "results_dir": tmp_path, "verbose": 0, **kw})


def test_run_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run(str(tmp_path / "nope.npz"), models=["last-value"], results_dir=tmp_path, verbose=0)


# ---------------------------------------------------------------------- table
def _row(model, setting, seed, mae):
    r = dict(model=model, setting=setting, seed=seed, MAE=mae, RMSE=mae + 1, MAPE=5.0, fit_seconds=10.0,
             peak_memory_mb=100.0 + seed)
    r.update({f"{m}_h{h}": mae for m in ("MAE", "RMSE", "MAPE") for h in (3, 6, 12)})
    return r


def test_results_table_mean_std_and_order():
    rows = [_row("stvlm", "few-shot-0.1", 0, 20.0), _row("stid", "full", 0, 14.0), _row("stid", "full", 1, 15.0),
            _row("stid", "full", 2, 16.0), _row("stvlm", "full", 0, 18.0), _row("stvlm", "wo-ft", 0, 19.0)]
    lines = results_table(rows).splitlines()
    body = lines[2:]
    assert [ln.split("|")[1:3] for ln in body] == [
        [" ST-VLM ", " full "], [" STID-like MLP ", " full "], [" ST-VLM ", " few-shot 10 % "],
        [" ST-VLM ", " w/o FT "],
    ]
    stid = body[1].split("|")
    assert stid[3].strip() == f"{np.mean([14, 15, 16]):.2f} ± {np.std([14, 15, 16], ddof=1):.2f}"
    assert stid[-3].strip() == "102" and stid[-2].strip() == "3"  # peak memory is the max; seeds


# ---------------------------------------------------------------------- console script
def test_cli_writes_results(tmp_path, capsys):
    assert main(["benchmark", "--models", "last-value", "--results-dir", str(tmp_path), "--seeds", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "| Last value | full | 25.28 |" in out
    assert len(read(tmp_path / "pems08-tail.csv")) == 1


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main(["benchmark", "--models", "arima", "--results-dir", str(tmp_path), "--quiet"]) == 2
    assert "unknown model 'arima'" in capsys.readouterr().err


def test_python_dash_m_and_console_script_are_wired():
    out = subprocess.run([sys.executable, "-m", "stvlm", "benchmark", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--settings" in out.stdout
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "stvlm"]
    assert ep.value == "stvlm.cli:main"


def test_table_orders_follow_the_runners_names():
    from stvlm import _results_table
    from stvlm.benchmark import MODELS, SETTINGS

    assert tuple(_results_table._MODEL_NAMES) == MODELS
    assert [s for s in SETTINGS if not s.startswith("few-shot")] == list(_results_table._SETTING_NAMES)
