"""benchmarks/gap_breakdown.py: the per-group split of two models' errors."""

from __future__ import annotations

import pathlib

import numpy as np
from _scripts import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gap_breakdown.py"


def test_split_gives_each_groups_masked_mae_and_shares_of_the_gap():
    gb = load_script(SCRIPT)
    err_a = np.array([3.0, 1.0, 5.0, 2.0, 9.0])
    err_b = np.array([1.0, 1.0, 2.0, 2.0, 0.0])
    keep = np.array([True, True, True, True, False])  # the last entry is masked out everywhere
    labels = np.array([0, 0, 1, 1, 1])
    rows = gb._split(err_a, err_b, keep, labels, ["a", "b"])
    assert [r["group"] for r in rows] == ["a", "b"]
    assert [r["share"] for r in rows] == [0.5, 0.5]
    assert [(r["stvlm"], r["stid"], r["gap"]) for r in rows] == [(2.0, 1.0, 1.0), (3.5, 2.0, 1.5)]
    # the total gap is 2 + 3 = 5 (masked entry left out): group a holds 2 of it, group b 3
    assert [r["gap_share"] for r in rows] == [0.4, 0.6]
