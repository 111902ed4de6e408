#!/usr/bin/env python3
"""Round-trip notebooks <-> plain text, so notebooks can be edited with a text editor or a script.

    python tools/nbtext.py totext nbs/00_shift.ipynb  > /tmp/00_shift.py
    python tools/nbtext.py tonb   /tmp/00_shift.py nbs/00_shift.ipynb

Text format: cells are separated by a line `# %%` (code) or `# %% [markdown]` (markdown);
markdown lines are written with a leading `# `. Outputs are dropped (run nbdev-clean afterwards). Writing over an
existing notebook keeps the ids of the cells that are still there (unchanged, or edited in place).
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

def keep_ids(nb, old):
    """Give the cells of `nb` the ids (and metadata) of the cells of the notebook `old` they come from, so that an edit
    does not renumber every cell (and every `# %% ../nbs/... #id` line that nbdev-export writes). A cell takes the id of
    an old cell with the same type and source; a cell that was edited in place takes the id of the old cell at its index."""
    old_cells = old.get("cells", [])
    by_src = {}
    for c in old_cells: by_src.setdefault((c["cell_type"], "".join(c["source"])), []).append(c)
    used = set()
    def take(new, c):
        if "id" in c: new["id"] = c["id"]
        new["metadata"] = c.get("metadata", {})
        used.add(id(c))
    unmatched = []
    for i, c in enumerate(nb["cells"]):
        same = [o for o in by_src.get((c["cell_type"], "".join(c["source"])), []) if id(o) not in used]
        if same: take(c, same[0])
        else: unmatched.append(i)
    for i in unmatched:
        if i < len(old_cells) and id(old_cells[i]) not in used and old_cells[i]["cell_type"] == nb["cells"][i]["cell_type"]:
            take(nb["cells"][i], old_cells[i])
    return nb

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("totext", "tonb"):
        sys.exit(__doc__)
    if sys.argv[1] == "totext":
        sys.stdout.write(to_text(sys.argv[2]))
    else:
        nb = to_nb(Path(sys.argv[2]).read_text())
        target = Path(sys.argv[3])
        if target.exists(): nb = keep_ids(nb, json.loads(target.read_text()))
        Path(sys.argv[3]).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
