"""benchmarks/bench_scale.py runs at tiny sizes (its real sizes take minutes to hours)."""

from __future__ import annotations

import pathlib

import pytest
from _scripts import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def test_images_task_writes_every_image(bench):
    row = bench.main(["images", "--steps", "300", "--sensors", "6", "--no-record"])
    assert row["windows"] == 300 - 23 and row["windows_per_second"] > 0 and row["peak_rss_mb"] > 0


def test_memory_task_fits_the_first_steps(bench):
    row = bench.main(["memory", "--steps", "400", "--sensors", "6", "--epoch-batches", "2", "--no-record"])
    stage = row["stage"]
    assert stage["micro_batch_size"] is None and stage["seconds_per_step"] > 0
    assert row["peak_rss_mb"] >= stage["after_steps"] > 0
