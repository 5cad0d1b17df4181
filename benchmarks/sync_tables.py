"""Copy the results tables into docs/results.md.

Each ``<!-- table:NAME -->`` marker in docs/results.md is followed by the Markdown table
of ``benchmarks/results/NAME.md`` (its title line dropped); this script rewrites those
tables from the files, so the page shows exactly the committed rows.

    python benchmarks/sync_tables.py           # rewrite docs/results.md
    python benchmarks/sync_tables.py --check   # exit 1 when a table differs
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- table:(?P<name>[\w./-]+) -->$")


def table_lines(name, results=ROOT / "benchmarks" / "results"):
    """The table rows of ``results/NAME.md`` (lines starting with ``|``)."""
    return [line for line in (results / f"{name}.md").read_text().splitlines() if line.startswith("|")]


def synced(text, results=ROOT / "benchmarks" / "results"):
    """``text`` with the table after each marker replaced by the file's table."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        out.append(lines[i])
        match = MARKER.match(lines[i])
        i += 1
        if match:
            while i < len(lines) and lines[i].startswith("|"):
                i += 1  # the old table
            out.extend(table_lines(match["name"], results))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report whether docs/results.md is in sync")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    args = ap.parse_args(argv)
    doc = Path(args.doc)
    text = doc.read_text()
    new = synced(text)
    if args.check:
        if new != text:
            print(f"{doc}: a table differs from benchmarks/results/; run python benchmarks/sync_tables.py")
            return 1
        return 0
    doc.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
