"""The exercises of Part I and their solutions.

Every Part I notebook (`00_shift` to `09_postprocess`) ends with a section "## Exercises": per exercise a task, a cell
the student fills in (`answer_N = None` or a stub that raises NotImplementedError) and a check cell
`ok_N = check_answer(...)` / `check_function(...)` (`centripetal.exercises`), which prints a verdict and never raises.
`nbs/solutions/<notebook>_solutions.ipynb` fills in the answers and runs the same check cells followed by
`assert ok_N`. tests/test_notebooks.py collects `nbs/*.ipynb` only, so the solutions run here:

- each solutions notebook is one test, executed like the notebooks of nbs/ (tools/nbexec.py: a fresh Jupyter kernel, the
  inline backend, the figure checks), its executed copy saved to `_build/executed/solutions/`;
- every check cell of a notebook's Exercises section appears word for word in its solutions notebook, so the two
  cannot drift apart, and every Part I notebook has both;
- the Exercises section as handed out (answers None, stubs unwritten) runs without an error and every check says
  "not yet", so no exercise is solved by accident and none can stop the notebook.
"""
import contextlib, io, sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from nbexec import EXECUTED, NotebookFailed, execute_notebook  # noqa: E402

NBS, SOLUTIONS = ROOT / "nbs", ROOT / "nbs" / "solutions"
PART_I = ("00_shift", "01_matching", "02_corner_pool", "03_adaption", "04_mask_head", "05_hourglass", "06_targets",
          "07_losses", "08_model", "09_postprocess")
SOLVED = sorted(SOLUTIONS.glob("*_solutions.ipynb"))
MARK = "## Exercises"


def exercise_section(name):
    "The code cells of notebook `name`'s Exercises section (everything after its '## Exercises' heading)."
    cells = nbformat.read(str(NBS / f"{name}.ipynb"), as_version=4).cells
    start = next((i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith(MARK)), None)
    assert start is not None, f"{name}.ipynb has no '{MARK}' section"
    return [c.source for c in cells[start:] if c.cell_type == "code"]


def is_check(src):
    return "check_answer(" in src or "check_function(" in src


@pytest.mark.parametrize("nb", SOLVED, ids=[p.stem for p in SOLVED])
def test_solutions_notebook(nb):
    try:
        res, err = execute_notebook(nb, save_dir=EXECUTED / "solutions"), None
    except NotebookFailed as e:
        res, err = None, str(e)
    if err: pytest.fail(err, pytrace=False)
    assert res is not None and res.ran > 0, f"{nb.name}: no cell ran"


def test_every_part_one_notebook_has_exercises_and_solutions():
    assert sorted(p.name for p in SOLVED) == sorted(f"{n}_solutions.ipynb" for n in PART_I)
    for name in PART_I:
        checks = [s for s in exercise_section(name) if is_check(s)]
        assert 2 <= len(checks) <= 4, f"{name}: {len(checks)} exercises, expected 2-4"


@pytest.mark.parametrize("name", PART_I)
def test_solutions_run_the_same_checks(name):
    solved = [c.source for c in nbformat.read(str(SOLUTIONS / f"{name}_solutions.ipynb"), as_version=4).cells
              if c.cell_type == "code"]
    checks = [s for s in exercise_section(name) if is_check(s)]
    for i, check in enumerate(checks, 1):
        assert f"ok_{i} = " in check, f"{name}: the check cell of exercise {i} must set ok_{i}"
        assert any(s.startswith(check) and f"assert ok_{i}" in s[len(check):] for s in solved), \
            f"{name}: the check cell of exercise {i} is not in {name}_solutions.ipynb (followed by assert ok_{i})"


@pytest.mark.parametrize("name", PART_I)
def test_exercises_as_handed_out_say_not_yet(name):
    code = exercise_section(name)
    ns, out = {"__name__": f"exercises_{name}"}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for src in code: exec(compile(src, f"{name}.ipynb (Exercises)", "exec"), ns)
    oks = {k: v for k, v in ns.items() if k.startswith("ok_")}
    n = sum(is_check(s) for s in code)
    assert sorted(oks) == [f"ok_{i}" for i in range(1, n + 1)], sorted(oks)
    assert not any(oks.values()), f"{name}: an exercise says right before it is answered: {oks}"
    lines = out.getvalue().splitlines()
    verdicts = [l for l in lines if l.startswith(("✓", "✗"))]
    assert len(verdicts) == n and all(l.startswith("✗ not yet: ") for l in verdicts), verdicts
