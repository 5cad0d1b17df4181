"""The layout the project keeps (CONTRIBUTING.md, "Where things live"): one loop, one
split rule, one mask rule, small modules, and baselines independent of ST-VLM. Read
from the source, so a second copy or a wrong import fails here."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "stvlm"
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _code(path):
    """The source without docstrings and comments: what runs."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant
        ) and isinstance(body[0].value.value, str):
            body[0] = ast.Pass()
    return ast.unparse(tree)


def _where(pattern):
    return sorted(str(p.relative_to(PACKAGE)) for p in SOURCES if re.search(pattern, _code(p)))


def test_one_training_loop():
    assert _where(r"optim\.Adam\(") == ["training.py"]
    assert _where(r"ReduceLROnPlateau\(") == ["training.py"]
    assert _where(r"except KeyboardInterrupt") == ["training.py"]
    assert _where(r"\.backward\(\)") == ["training.py"]


def test_one_split_rule():
    assert _where(r"floor\(n \* validation_fraction\)") == ["data/_split.py"]
    # Windows are cut from a series by the front door (and by the protocols' fixed test sets).
    callers = sorted(
        str(p.relative_to(PACKAGE))
        for p in SOURCES
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "make_windows"
    )
    assert set(callers) == {"data/__init__.py", "datasets/_protocols.py"}


def test_one_mask_rule():
    assert _where(r"!= null_value") == ["metrics/_masked.py"]
    # Every mask comes from target_mask: the metrics, the loss, and the estimators' check
    # against a constant forecast (chunk by chunk, with the windows' other summaries), and
    # the least-squares fit of output="ar" (its targets are the loss's).
    assert _where(r"target_mask\(") == ["_autoregression.py", "_losses.py", "data/_windows.py", "metrics/_masked.py"]


def test_images_are_assembled_in_the_kernels_only():
    assert _where(r"torch\.stack\(\[torch\.exp") == ["kernels/_channels.py"]
    assert _where(r"finish_channels") == ["kernels/_channels.py", "kernels/_numba.py"]


@pytest.mark.parametrize("path", [p for p in SOURCES if "baselines" in p.parts], ids=lambda p: p.name)
def test_baselines_do_not_depend_on_the_model_they_are_compared_with(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.module not in ("forecaster", "images", "network"), (path.name, node.module)


def test_only_public_kernel_functions_outside_the_kernels():
    for path in SOURCES:
        if "kernels" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith("kernels"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path.name, private)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 470, "split the module (CONTRIBUTING.md: modules with one job)"


def test_no_code_is_ever_loaded_from_user_files():
    # What runs (docstrings and comments left out) never unpickles, torch.loads, runs
    # remote code or evaluates strings.
    for pattern in (r"pickle\.loads?\(", r"torch\.load\(", r"trust_remote_code", r"(?<!\.)\beval\(", r"(?<!\.)\bexec\(",
                    r"allow_pickle=True"):
        assert _where(pattern) == [], pattern
