"""Every script in examples/ runs to the end with ``--fast``.

Each script found in ``examples/`` (so new ones are covered without editing this file)
runs in a subprocess with ``sys.executable``, in its own temporary working directory,
with ``HF_HUB_OFFLINE=1`` (no download) and the data folder passed on through
``STVLM_DATA_DIR``. Every example must accept ``--fast`` (a smoke run of well under a
minute or two) and exit with status 0; for the scripts listed in ``EXPECTED`` the output
must also hold the given text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))
TIMEOUT_S = 900  # a hung script fails instead of blocking the suite

# Text each known example prints; an example not listed here must print something.
EXPECTED = {
    "quickstart_pems08.py": ["pems08-tail", "ST-VLM (cpu)", "last value", "historical average", "MAE"],
    "plotting.py": ["saved", "correlation_window", "training_history.png", "4 figures in"],
    "pipeline_cv.py": [],
    "sktime_evaluation.py": ["evaluate", "ForecastingBenchmark"],
    "timevlm_etth1.py": ["ETTh1", "Time-VLM (cpu preset)", "DLinear", "Seasonal repeat"],
}


def example_env():
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["MPLBACKEND"] = "Agg"  # plt.show() must not wait for a window
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if not env.get("STVLM_DATA_DIR"):
        # The scripts run outside the repository: tell them where the data folder is.
        from stvlm.datasets import data_home

        try:
            env["STVLM_DATA_DIR"] = str(data_home())
        except FileNotFoundError:
            pass  # the script's own error message will say what is missing
    return env


def run_example(path, tmp_path, *args):
    proc = subprocess.run(
        [sys.executable, str(path), "--fast", *args],
        cwd=tmp_path,
        env=example_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if proc.returncode != 0:
        hint = ""
        if "unrecognized arguments: --fast" in proc.stderr:
            hint = "every example must support --fast (a smoke run); "
        pytest.fail(
            f"{hint}{path.name} --fast exited with status {proc.returncode}\n"
            f"--- stdout (end) ---\n{proc.stdout[-3000:]}\n--- stderr (end) ---\n{proc.stderr[-5000:]}"
        )
    return proc


def test_examples_are_found():
    names = {p.name for p in EXAMPLES}
    assert {"quickstart_pems08.py", "plotting.py"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_with_fast(path, tmp_path):
    proc = run_example(path, tmp_path)
    out = proc.stdout
    assert out.strip(), f"{path.name} --fast printed nothing"
    for text in EXPECTED.get(path.name, []):
        assert text in out, f"{path.name} --fast did not print {text!r}; its output:\n{out[-3000:]}"
    if path.name == "plotting.py":
        # default --out is ./plots, in the script's working directory
        pngs = sorted((tmp_path / "plots").glob("*.png"))
        assert len(pngs) == 4, pngs
        for png in pngs:
            data = png.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
