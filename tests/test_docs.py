"""Documentation: docstrings of the public API, docs/api.md, and the pages' links and code.

The public objects are those that docs/build_api.py documents. docs/api.md must be what
that script generates: after changing a public docstring or signature, run

    python docs/build_api.py
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from dataclasses import is_dataclass
from pathlib import Path

import pytest
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


build_api = load_script(DOCS / "build_api.py")
OBJECTS = build_api.public_objects()
DOCUMENTED = [(q, o) for q, o in OBJECTS if build_api.kind_of(o) != "data"]
METHODS = [
    (f"{q}.{name}", member)
    for q, o in DOCUMENTED
    if build_api.kind_of(o) == "class"
    for name, member, kind in build_api.public_members(o)
    if kind != "property"
]

# Public objects whose docstring still lacks an Examples section. Strict xfail: adding
# the section makes the test pass unexpectedly, which fails it -- then drop the entry.
MISSING_EXAMPLES = set()


def _sections(doc):
    return dict(build_api.split_sections(doc)[1])


def _names_in(lines):
    """Entry names of a Parameters/Attributes section (``a, b : int`` gives a and b)."""
    names = []
    for line in lines:
        if line.strip() and not line.startswith(" "):
            names += [n.strip().lstrip("*") for n in line.split(" : ")[0].split(",")]
    return names


def test_the_public_api_is_found():
    names = {q for q, _ in OBJECTS}
    expected = {
        "stvlm.STVLMForecaster",
        "stvlm.SpatialToImageTransformer",
        "stvlm.CorrelationImages",
        "stvlm.make_windows",
        "stvlm.datasets.load_protocol",
        "stvlm.metrics.masked_mae",
        "stvlm.baselines.LastValueForecaster",
        "stvlm.plotting.plot_correlation_image",
        "stvlm.plotting.plot_forecast",
        "stvlm.plotting.plot_training_history",
        "stvlm.network.STVLMNetwork",
    }
    assert expected <= names, expected - names
    import stvlm

    assert {f"stvlm.{n}" for n in stvlm.__all__} <= names


@pytest.mark.parametrize(
    "qualname, obj",
    [
        pytest.param(q, o, marks=pytest.mark.xfail(strict=True, reason="docstring has no Examples section yet"))
        if q in MISSING_EXAMPLES
        else (q, o)
        for q, o in DOCUMENTED
    ],
    ids=[q for q, _ in DOCUMENTED],
)
def test_public_object_has_examples(qualname, obj):
    doc = build_api.own_doc(obj)
    assert doc, f"{qualname} has no docstring"
    sections = _sections(doc)
    assert "Examples" in sections, f"{qualname}: the docstring has no 'Examples' section (numpydoc)"
    assert any(line.lstrip().startswith(">>>") for line in sections["Examples"]), (
        f"{qualname}: the Examples section holds no doctest (>>> lines)"
    )


def _signature_names(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values() if p.name not in ("self", "cls")]


PARAM_CASES = [(q, o, False) for q, o in DOCUMENTED] + [(q, o, True) for q, o in METHODS]


@pytest.mark.parametrize("qualname, obj, is_method", PARAM_CASES, ids=[q for q, _, _ in PARAM_CASES])
def test_documented_parameters_match_the_signature(qualname, obj, is_method):
    doc = build_api.own_doc(obj)
    assert doc, f"{qualname} has no docstring"
    names = _signature_names(obj)
    sections = _sections(doc)
    if not names:  # no parameters, or no signature (an exception class)
        assert not _names_in(sections.get("Parameters", [])), f"{qualname} documents parameters it does not have"
        return
    if "Parameters" in sections:
        documented = _names_in(sections["Parameters"])
    elif inspect.isclass(obj) and is_dataclass(obj):
        documented = _names_in(sections.get("Attributes", []))  # fields documented as attributes
    elif is_method:
        return  # a short docstring is enough for a method
    else:
        documented = []
    assert set(documented) == set(names), (
        f"{qualname}: the docstring documents {sorted(documented)}, the signature has {sorted(names)}"
    )


def test_api_md_is_up_to_date():
    expected = build_api.render()
    actual = (DOCS / "api.md").read_text(encoding="utf-8")
    if actual != expected:
        diff = [
            f"line {i + 1}:\n  api.md:    {a!r}\n  generated: {e!r}"
            for i, (a, e) in enumerate(zip(actual.splitlines(), expected.splitlines()))
            if a != e
        ][:3]
        pytest.fail(
            "docs/api.md is out of date: run `python docs/build_api.py`.\n"
            + ("\n".join(diff) or f"lengths differ: {len(actual)} vs {len(expected)} characters")
        )


def test_results_tables_are_the_committed_rows(tmp_path):
    """docs/results.md shows each benchmarks/results/NAME.md table after its marker, and
    the sync script would notice a row edited by hand."""
    sync = load_script(ROOT / "benchmarks" / "sync_tables.py")
    text = (DOCS / "results.md").read_text(encoding="utf-8")
    assert text.count("<!-- table:") >= 3
    assert sync.synced(text) == text, "run `python benchmarks/sync_tables.py`"
    (tmp_path / "t.md").write_text("**t**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    doc = "x\n<!-- table:t -->\n| a | b |\n|---|---|\n| 1 | 3 |\n\ny\n"
    assert sync.synced(doc, tmp_path) == "x\n<!-- table:t -->\n| a | b |\n|---|---|\n| 1 | 2 |\n\ny\n"


def test_api_md_has_every_public_object_with_its_signature():
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    for qualname, obj in OBJECTS:
        assert f"\n### {qualname}\n" in text, f"docs/api.md has no section for {qualname}"
        if build_api.kind_of(obj) != "data":
            name = qualname.rsplit(".", 1)[1]
            assert build_api.signature(obj, name) in text, f"docs/api.md lacks the signature of {qualname}"


def test_api_md_anchors_resolve():
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    headings = {build_api.anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in headings, f"docs/api.md links to #{target}, which is no heading"


# --------------------------------------------------------------------- pages
PAGES = ["index.md", "getting_started.md"]


@pytest.mark.parametrize("page", PAGES)
def test_page_links_resolve(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links, f"docs/{page} links nowhere"
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        path, _, fragment = link.partition("#")
        target = (DOCS / path).resolve() if path else DOCS / page
        assert target.exists(), f"docs/{page} links to {link}, which does not exist"
        if fragment and target.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), flags=re.M)
            assert fragment in {build_api.anchor(h) for h in headings}, f"docs/{page} links to {link}: no such heading"


def test_index_links_every_page():
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in ["getting_started.md", "method.md", "api.md", "performance.md", "results.md", "sklearn.md"]:
        assert f"]({page}" in text, f"docs/index.md does not link {page}"


def _python_blocks(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_getting_started_code_is_valid_and_imports_exist():
    blocks = _python_blocks("getting_started.md")
    assert len(blocks) >= 5
    for code in blocks:
        tree = ast.parse(code)  # a SyntaxError names the block's line
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "stvlm":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"getting_started.md imports {node.module}.{alias.name}, which does not exist"
