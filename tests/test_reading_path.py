"""The course's shape: a reading path in four parts, short cells, short modules, the idea before the speed-up.

- every numbered notebook belongs to one of the four parts of tools/reading_path.py, says under its title what to read
  first, ends with where to go next, and index.ipynb's map lists it under its part in reading order (the tool rewrites
  these cells; here they must already be up to date);
- no code cell over 60 lines (the notebooks and the solutions), no module of the package over 450 lines;
- no module binds one of its own top-level functions twice or rebinds a function of another module of the package
  (`matching._peak_topk = ...`), so what a function does never depends on how far a notebook has run;
- no function of the package changes the process's torch thread count, except those whose job is exactly that and
  whose callers ask for it (listed below, each restoring or owning the count).
"""
import ast, json, re, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import reading_path  # noqa: E402

MAX_CELL, MAX_MODULE = 60, 450
MODULES = sorted(p for p in (ROOT / "centripetal").glob("*.py") if p.name != "_modidx.py")
# (module, function) that may call torch.set_num_threads: the CLI's --threads, and the context manager a sweep wraps
# each run in, and the one behind `model.cpu_threads`, a context manager the caller enters (both restore the count)
THREAD_SETTERS = {("budget", "main_budget"), ("reproduce_runs", "torch_threads"), ("model", "_set_threads")}


def test_path_cells_up_to_date():
    stale = reading_path.update(write=False)
    assert not stale, f"reading-path cells out of date in {stale}: run `python tools/reading_path.py`, then nbdev-clean"


def test_every_part_has_notebooks_in_order():
    order = reading_path.reading_order()
    parts = [reading_path.part_of(s) for s in order]
    assert parts == sorted(parts) and set(parts) == set(range(len(reading_path.PARTS)))
    index = "".join("".join(c["source"]) for c in json.loads((ROOT / "nbs" / "index.ipynb").read_text())["cells"])
    pos = [index.index(f"[`{s}`]({s}.ipynb)") for s in order]
    assert pos == sorted(pos), "index.ipynb lists the notebooks out of reading order"
    heads = [index.index(f"### {t}") for t, *_ in reading_path.PARTS]
    for s, p in zip(order, pos):   # each notebook after its part's heading and before the next part's
        k = reading_path.part_of(s)
        assert heads[k] < p and (k + 1 == len(heads) or p < heads[k + 1]), s


def test_path_tool_catches_a_missing_next(tmp_path):
    nbs = tmp_path / "nbs"; nbs.mkdir()
    for s in ("00_a", "01_b", "index"):
        src = ROOT / "nbs" / ("index.ipynb" if s == "index" else "00_shift.ipynb")
        (nbs / f"{s}.ipynb").write_text(src.read_text())
    assert set(reading_path.update(nbs, write=True)) >= {"00_a", "01_b"}
    assert reading_path.update(nbs, write=False) == []
    nb = json.loads((nbs / "00_a.ipynb").read_text()); nb["cells"].pop()      # drop its "Next" cell
    (nbs / "00_a.ipynb").write_text(json.dumps(nb))
    assert reading_path.update(nbs, write=False) == ["00_a"]


@pytest.mark.parametrize("nb", sorted((ROOT / "nbs").glob("*.ipynb")) + sorted((ROOT / "nbs" / "solutions").glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_no_long_code_cell(nb):
    cells = json.loads(nb.read_text())["cells"]
    long = [(i, n) for i, c in enumerate(cells) if c["cell_type"] == "code"
            and (n := len("".join(c["source"]).splitlines())) > MAX_CELL]
    assert not long, f"{nb.name}: code cells over {MAX_CELL} lines (cell index, lines): {long}"


def test_no_long_module():
    long = {p.name: n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_MODULE}
    assert not long, f"modules over {MAX_MODULE} lines: {long}"


def _package_aliases(tree):
    "Names under which a module imports other modules of the package."
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.asname or a.name for a in node.names if a.name.startswith("centripetal.")}
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("centripetal")):
            if node.module in (None, "centripetal"): out |= {a.asname or a.name for a in node.names}
    return out


def test_no_rebinding():
    problems = []
    for p in MODULES:
        tree = ast.parse(p.read_text())
        defs, bound = set(), set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in defs or node.name in bound: problems.append(f"{p.name}: {node.name} defined twice")
                defs.add(node.name)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AnnAssign, ast.AugAssign)) else []
            for t in targets:
                if isinstance(t, ast.Name):
                    if t.id in defs or t.id in bound: problems.append(f"{p.name}: {t.id} bound twice")
                    bound.add(t.id)
        aliases = _package_aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in aliases:
                        problems.append(f"{p.name}: rebinds {t.value.id}.{t.attr}")
    assert not problems, "\n".join(problems)


def test_no_hidden_thread_changes():
    found = set()
    for p in MODULES:
        tree = ast.parse(p.read_text())
        for top in tree.body:
            for node in ast.walk(top):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == \
                        "set_num_threads":
                    found.add((p.stem, getattr(top, "name", "<module>")))
    assert found <= THREAD_SETTERS, f"functions that change the thread count behind the caller: {found - THREAD_SETTERS}"
    assert found, "the check found no call at all: it no longer sees torch.set_num_threads"
