"""Generate docs/api.md from the numpydoc docstrings of stvlm's public objects.

    python docs/build_api.py            # (re)writes docs/api.md
    python docs/build_api.py --check    # exit status 1 if docs/api.md is out of date

Rerun it after changing a public docstring or signature: ``tests/test_docs.py`` checks
that docs/api.md equals what this script generates.

The public objects are the names in ``__all__`` of ``stvlm``, ``stvlm.datasets``,
``stvlm.metrics``, ``stvlm.baselines``, ``stvlm.benchmark``, ``stvlm.plotting`` and ``stvlm.network``, and
``stvlm.sktime.STVLMSktimeForecaster`` / ``TimeVLMSktimeForecaster`` when sktime is installed. Each gets a heading, its
signature and its docstring as Markdown (numpydoc sections as lists, examples in
``python`` code blocks); each class also lists the public methods and properties it
defines itself.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"

# (module, names or None for the module's __all__, title, optional)
MODULES = [
    ("stvlm", None, "Estimators, images and kernels", False),
    ("stvlm.data", None, "The data front door: windows, their time, the split rule", False),
    ("stvlm.kernels", ["correlation_channels", "correlation_channels_torch", "fit_dtw_scale"], "Images from the kernels", False),
    ("stvlm.image_store", None, "Images too large for memory: Zarr stores, Dask clusters", False),
    ("stvlm.training", None, "The training loop", False),
    ("stvlm.distributed", None, "Training on several processes or GPUs", False),
    ("stvlm.presets", None, "Model presets", False),
    ("stvlm.persistence", None, "Saving and loading", False),
    ("stvlm.datasets", None, "Data and benchmark protocols", False),
    ("stvlm.metrics", None, "Metrics and scorers", False),
    ("stvlm.baselines", None, "Reference forecasts", False),
    ("stvlm.benchmark", None, "Benchmark runner", False),
    ("stvlm.cli", ["main"], "Command line", False),
    ("stvlm.plotting", None, "Plots", False),
    ("stvlm.sktime", ["STVLMSktimeForecaster", "TimeVLMSktimeForecaster"], "sktime interface", True),
    ("stvlm.network", None, "The network", False),
    ("stvlm.timevlm", None, "Time-VLM: its learners, backbones and network", False),
]

SECTION_NAMES = (
    "Parameters",
    "Other Parameters",
    "Returns",
    "Yields",
    "Receives",
    "Raises",
    "Warns",
    "Warnings",
    "Attributes",
    "Methods",
    "See Also",
    "Notes",
    "References",
    "Examples",
)
LIST_SECTIONS = {"Parameters", "Other Parameters", "Returns", "Yields", "Receives", "Raises", "Warns", "Attributes"}


# ---------------------------------------------------------------------------- objects
def _import_module(name, optional):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module(name)
    except ImportError:
        if optional:
            return None
        raise


def public_modules():
    """``[(module name, title, module, [(name, object), ...]), ...]`` in page order."""
    out = []
    for modname, names, title, optional in MODULES:
        module = _import_module(modname, optional)
        if module is None:
            continue
        if names is None:
            names = list(module.__all__)
        objects = [(n, getattr(module, n)) for n in names if hasattr(module, n)]
        if objects:
            out.append((modname, title, module, objects))
    return out


def public_objects():
    """Every documented public object: ``[(qualified name, object), ...]``."""
    return [(f"{modname}.{name}", obj) for modname, _, _, objects in public_modules() for name, obj in objects]


def kind_of(obj):
    """``"class"``, ``"function"`` or ``"data"`` (constants, scorer objects)."""
    if inspect.isclass(obj):
        return "class"
    if inspect.isroutine(obj):
        return "function"
    return "data"


def own_doc(obj):
    """The object's own docstring (not inherited), cleaned; ``""`` if none."""
    doc = obj.__doc__ if kind_of(obj) != "data" else None
    if isinstance(obj, property):
        doc = obj.fget.__doc__ if obj.fget is not None else obj.__doc__
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else ""


def public_members(cls):
    """Public methods and properties a class defines itself: ``[(name, member, kind), ...]``.

    Undocumented overrides of a base class's hooks (``extra_repr`` of a torch module,
    say) are left out; the base class documents them.
    """
    members = []
    for name, raw in vars(cls).items():
        if name.startswith("_"):
            continue
        inherited = any(hasattr(base, name) for base in cls.__mro__[1:])
        if inherited and not own_doc(raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw):
            continue
        if isinstance(raw, property):
            members.append((name, raw, "property"))
        elif isinstance(raw, (classmethod, staticmethod)):
            members.append((name, getattr(cls, name), "classmethod" if isinstance(raw, classmethod) else "staticmethod"))
        elif inspect.isfunction(raw):
            members.append((name, raw, "method"))
    return members


def signature(obj, name, drop_self=False):
    """``name(a, b=1)`` without annotations (stable across Python versions)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    sig = sig.replace(parameters=params, return_annotation=inspect.Signature.empty)
    return f"{name}{sig}"


# ------------------------------------------------------------------------- docstrings
_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const|term|ref):`~?([^`<]*?)(?:\s*<([^>]*)>)?`")


def _role(match):
    text = match.group(1) or match.group(2)
    return f"`{' '.join(text.split())}`"


def inline(text):
    """Sphinx roles and RST literals to Markdown code spans."""
    text = _ROLE.sub(_role, text)
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    return text


def join_broken_roles(lines):
    """Put a Sphinx role or ``literal`` that is broken over two lines back on one line."""
    out = []
    for line in lines:
        if out and (_open_role(out[-1]) or out[-1].count("``") % 2):
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return out


def _open_role(line):
    """Whether ``line`` ends inside a Sphinx role (``:meth:`name`` without its closing backtick)."""
    rest = re.sub(r"``.*?``", "", line)
    m = re.search(r":(?:py:)?[a-z]+:`[^`]*$", rest)
    return m is not None


def split_sections(doc):
    """``(preamble lines, [(section name, lines), ...])`` of a numpydoc docstring."""
    lines = doc.splitlines()
    heads = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip() in SECTION_NAMES
        and re.fullmatch(r"-{3,}", lines[i + 1].strip())
        and not lines[i].startswith(" ")
    ]
    pre = lines[: heads[0]] if heads else lines
    sections = []
    for k, h in enumerate(heads):
        end = heads[k + 1] if k + 1 < len(heads) else len(lines)
        sections.append((lines[h].strip(), lines[h + 2 : end]))
    return pre, sections


def _trim(lines):
    lines = list(lines)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _dedent(lines):
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return [line[cut:] for line in lines]


def text_block(lines):
    """Free text (RST-ish) to Markdown: roles converted, ``::`` literal blocks fenced."""
    out, i, lines = [], 0, join_broken_roles(_trim(lines))
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            out.append(inline(line.rstrip()[:-1].rstrip() + ("" if line.strip() == "::" else ":")))
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            base = len(line) - len(line.lstrip())
            block = []
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > base):
                block.append(lines[j])
                j += 1
            block = _trim(block)
            if block:
                out += ["", "```", *_dedent(block), "```", ""]
            i = j
            continue
        out.append(inline(line))
        i += 1
    return "\n".join(out).strip("\n")


def list_section(name, lines):
    """Parameters / Returns / Raises / Attributes entries as a Markdown list."""
    entries, current = [], None
    for line in _trim(lines):
        if line.strip() and not line.startswith(" "):
            current = [line.strip(), []]
            entries.append(current)
        elif current is not None:
            current[1].append(line)
    out = []
    for head, desc in entries:
        if " : " in head:
            term, typ = head.split(" : ", 1)
            label = f"**{_escape(term.strip())}** : *{inline(typ.strip())}*"
        elif name in ("Returns", "Yields", "Raises", "Warns"):
            label = f"*{inline(head)}*" if name in ("Returns", "Yields") else f"`{head}`"
        else:
            label = f"**{_escape(head)}**"
        body = text_block(_dedent(desc)) if _trim(desc) else ""
        if body:
            out.append(f"- {label}  ")
            out += [("  " + b) if b else "" for b in body.splitlines()]
        else:
            out.append(f"- {label}")
    return "\n".join(out)


def _escape(name):
    return name.replace("*", r"\*").replace("_", r"\_")


def see_also(lines):
    out = []
    for line in _trim(lines):
        if not line.strip():
            continue
        if not line.startswith(" "):
            name, _, desc = line.partition(" : ")
            names = ", ".join(f"`{inline(n.strip()).strip('`')}`" for n in name.split(",") if n.strip())
            out.append(f"- {names}" + (f": {inline(desc.strip())}" if desc.strip() else ""))
        elif out:
            out[-1] += " " + inline(line.strip())
    return "\n".join(out)


def examples(lines):
    """Doctest blocks in ```python fences, the text between them as paragraphs."""
    out, block, text = [], [], []

    def flush_text():
        if _trim(text):
            out.append(text_block(text))
        text.clear()

    def flush_block():
        if block:
            out.append("```python\n" + "\n".join(_trim(block)) + "\n```")
        block.clear()

    in_code = False
    for line in _dedent(_trim(lines)):
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            if not in_code:
                flush_text()
                in_code = True
            block.append(line)
        elif in_code and line.strip():
            block.append(line)  # continuation or expected output
        elif in_code:
            flush_block()
            in_code = False
        else:
            text.append(line)
    flush_block()
    flush_text()
    return "\n\n".join(out)


def docstring_md(doc):
    """A numpydoc docstring as Markdown."""
    if not doc:
        return "*No docstring.*"
    pre, sections = split_sections(doc)
    parts = [text_block(pre)] if _trim(pre) else []
    for name, lines in sections:
        if name in LIST_SECTIONS:
            body = list_section(name, lines)
        elif name == "See Also":
            body = see_also(lines)
        elif name == "Examples":
            body = examples(lines)
        else:
            body = text_block(lines)
        if body:
            parts.append(f"**{name}**\n\n{body}")
    return "\n\n".join(p for p in parts if p)


# ---------------------------------------------------------------------------- render
def anchor(heading):
    """The anchor GitHub gives a heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


_SIMPLE = (str, int, float, bool, tuple, list, dict, set, frozenset, type(None))


def comment_doc(module, name):
    """The ``#:`` comment lines right above ``name = ...`` in the module's source."""
    try:
        source = inspect.getsource(module).splitlines()
    except (OSError, TypeError):
        return ""
    for i, line in enumerate(source):
        if re.match(rf"{re.escape(name)}\s*(:[^=]*)?=", line):
            block = []
            j = i - 1
            while j >= 0 and source[j].startswith("#:"):
                block.insert(0, source[j][2:].strip())
                j -= 1
            return " ".join(block)
    return ""


def data_md(qualname, obj, module):
    """A constant: its value (simple types) or what it is, and its ``#:`` comment."""
    short = qualname.rsplit(".", 1)[1]
    description = comment_doc(module, short)
    if isinstance(obj, _SIMPLE):
        value = repr(obj)
        if len(value) > 300:
            value = value[:297] + "..."
    elif hasattr(obj, "_score_func") and hasattr(obj, "_sign"):  # a scikit-learn scorer
        func = obj._score_func.__name__
        value = f"make_scorer({func}, greater_is_better={obj._sign > 0})"
        description = description or (
            f"A scikit-learn scorer of `{func}` with its default mask (zeros left out); it "
            "returns the negated error, so greater is better. See `get_scorer`."
        )
    else:
        value = f"{type(obj).__module__}.{type(obj).__qualname__}(...)"
    md = f"```python\n{short} = {value}\n```"
    return md + (f"\n\n{inline(description)}" if description else "")


def render():
    """The whole of docs/api.md, as a string."""
    modules = public_modules()
    lines = [
        "<!-- Generated by docs/build_api.py from the docstrings; do not edit by hand. -->",
        "",
        "# API reference",
        "",
        "Every public object of stvlm, with its signature and docstring. Regenerate this page",
        "with `python docs/build_api.py` after changing a docstring.",
        "",
    ]
    for modname, title, _, objects in modules:
        head = f"{modname}: {title}"
        lines.append(f"- [`{modname}`](#{anchor(head)}): " + ", ".join(
            f"[`{n}`](#{anchor(f'{modname}.{n}')})" for n, _ in objects
        ))
    for modname, title, module, objects in modules:
        lines += ["", f"## {modname}: {title}", ""]
        mod_doc = inspect.cleandoc(module.__doc__ or "")
        if mod_doc:
            lines += [text_block(mod_doc.splitlines()), ""]
        for name, obj in objects:
            qual = f"{modname}.{name}"
            kind = kind_of(obj)
            lines += [f"### {qual}", ""]
            if kind == "data":
                lines += [data_md(qual, obj, module), ""]
                continue
            prefix = "class " if kind == "class" else ""
            lines += ["```python", prefix + signature(obj, name), "```", "", docstring_md(own_doc(obj)), ""]
            if kind == "class":
                for mname, member, mkind in public_members(obj):
                    lines += [f"#### {name}.{mname}", ""]
                    if mkind == "property":
                        lines += [f"*property* `{name}.{mname}`", ""]
                    else:
                        deco = "" if mkind == "method" else f"@{mkind}\n"
                        sig = signature(member, mname, drop_self=mkind == "method")
                        lines += ["```python", f"{deco}{sig}", "```", ""]
                    lines += [docstring_md(own_doc(member)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate docs/api.md from the docstrings.")
    parser.add_argument("--check", action="store_true", help="only check that docs/api.md is up to date")
    parser.add_argument("--out", default=str(API_MD), help="file to write (default: docs/api.md)")
    args = parser.parse_args(argv)
    text = render()
    out = Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date: run python docs/build_api.py", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(text.splitlines())} lines, {len(public_objects())} public objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
