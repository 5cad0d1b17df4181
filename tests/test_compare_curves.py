"""benchmarks/compare_curves.py: best validation loss of paired runs in two curve folders."""

from __future__ import annotations

import json
import pathlib

import pytest
from _scripts import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "compare_curves.py"


@pytest.fixture(scope="module")
def cc():
    return load_script(SCRIPT)


def _curve(folder, name, losses):
    folder.mkdir(exist_ok=True)
    rows = [dict(epoch=i + 1, train_loss=1.0, val_loss=v) for i, v in enumerate(losses)]
    (folder / name).write_text(json.dumps(rows))


def test_pairs_runs_and_reports_the_best_epoch(cc, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    _curve(a, "m_H96.json", [0.8, 0.9, 0.85, 0.95])  # stopped at 4, best 1
    _curve(b, "m_H96.json", [0.8, 0.9, 0.85, 0.95, 0.7, 0.6, 0.65])  # ran on, best 6
    _curve(a, "only_before.json", [1.0])
    rows = cc.compare(a, b)
    assert rows == [("m_H96.json", (0.8, 1, 4), (0.6, 6, 7))]
    cc.main([str(a), str(b)])
    out = capsys.readouterr().out
    assert "0.750" in out and "1 runs; geometric mean of after / before: 0.750" in out


def test_no_common_run_is_an_error(cc, tmp_path):
    _curve(tmp_path / "a", "x.json", [1.0])
    _curve(tmp_path / "b", "y.json", [1.0])
    with pytest.raises(SystemExit, match="no run is in both"):
        cc.main([str(tmp_path / "a"), str(tmp_path / "b")])


def test_a_tuning_variant_is_the_after_side(cc, tmp_path, capsys):
    _curve(tmp_path / "c", "timevlm_cpu_full_seed0_L512_H96.json", [0.8, 0.7])
    rows = [dict(protocol="etth1", setting="full", model="timevlm", variant="v", seed=0, horizon=96,
                 val_mse=0.56, best_epoch=3, epochs=10),
            dict(protocol="etth2", setting="full", model="timevlm", variant="v", seed=0, horizon=96,
                 val_mse=9.0, best_epoch=1, epochs=10)]  # another protocol: not paired
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    cc.main([str(tmp_path / "c"), "--tuning", str(tmp_path / "t.jsonl"), "--variant", "v", "--protocol", "etth1"])
    assert "1 runs; geometric mean of after / before: 0.800" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="either an after folder or --tuning"):
        cc.main([str(tmp_path / "c")])
