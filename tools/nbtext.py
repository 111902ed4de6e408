#!/usr/bin/env python3
"""Round-trip notebooks <-> plain text, so notebooks can be edited with a text editor or a script.

    python tools/nbtext.py totext nbs/00_shift.ipynb  > /tmp/00_shift.py
    python tools/nbtext.py tonb   /tmp/00_shift.py nbs/00_shift.ipynb

Text format: cells are separated by a line `# %%` (code) or `# %% [markdown]` (markdown);
markdown lines are written with a leading `# `. Outputs are dropped (run nbdev-clean afterwards).
"""
import json, sys
from pathlib import Path

def to_text(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    out = []
    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown":
            out.append("# %% [markdown]\n" + "\n".join(("# " + l) if l else "#" for l in src.split("\n")))
        else:
            out.append("# %%\n" + src)
    return "\n\n".join(out) + "\n"

def _strip_md(line):
    if line.startswith("# "): return line[2:]
    if line.startswith("#"): return line[1:]
    return line

def to_nb(text):
    cells, kind, buf = [], None, []
    def flush():
        if kind is None: return
        lines = buf[:]
        while lines and not lines[-1].strip(): lines.pop()
        while lines and not lines[0].strip(): lines.pop(0)
        if kind == "markdown": lines = [_strip_md(l) for l in lines]
        src = "\n".join(lines)
        cell = {"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True)}
        if kind == "code": cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    for line in text.split("\n"):
        if line.startswith("# %% [markdown]"):
            flush(); kind, buf = "markdown", []
        elif line.rstrip() == "# %%":
            flush(); kind, buf = "code", []
        else:
            buf.append(line)
    flush()
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("totext", "tonb"):
        sys.exit(__doc__)
    if sys.argv[1] == "totext":
        sys.stdout.write(to_text(sys.argv[2]))
    else:
        nb = to_nb(Path(sys.argv[2]).read_text())
        Path(sys.argv[3]).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
