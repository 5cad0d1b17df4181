"""benchmarks/gpu_check.py runs end to end on the CPU at tiny sizes, so that it is known
to work the day a GPU is at hand."""

from __future__ import annotations

import json
import math
import pathlib

import pytest
from _scripts import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    return load_script(SCRIPT)


def test_gpu_check_tiny_on_the_cpu_records_every_section(gpu_check, tmp_path):
    out = tmp_path / "check.json"
    assert gpu_check.main(["--tiny", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["errors"] == {} and report["skipped"] == []
    images = report["sections"]["images"]
    assert [r["n_sensors"] for r in images] == [5, 7]
    for r in images:
        for key in ("torch_s_per_window", "numba_s_per_window", "tslearn_dtw_s_per_window"):
            assert math.isfinite(r[key]) and r[key] > 0
        assert r["max_abs_diff_torch_vs_numba"] < 1e-5  # the two kernels make the same images
    steps = report["sections"]["train_step"]
    assert [s["precision"] for s in steps] == ["fp32", "bf16"] and all(s["seconds_per_step"] > 0 for s in steps)
    epoch = report["sections"]["epoch"]
    assert epoch["fit_rows"] == 300 and math.isfinite(epoch["val_loss"]) and epoch["epoch_seconds"] > 0
    assert report["total_seconds"] >= sum(report["section_seconds"].values())


def test_gpu_check_skips_sections_past_its_budget_and_still_writes(gpu_check, tmp_path):
    out = tmp_path / "check.json"
    assert gpu_check.main(["--tiny", "--device", "cpu", "--out", str(out), "--budget", "-1"]) == 0
    report = json.loads(out.read_text())
    assert report["skipped"] == ["images", "train_step", "epoch"] and report["sections"] == {}
