"""Run every notebook in nbs/ as one pytest test, so pytest's closing line counts the notebooks.

Each notebook runs in a fresh Jupyter kernel (`python3`, cwd nbs/) with the inline matplotlib backend, as a reader's
JupyterLab runs it, and skips the cells nbdev-test skips (`#| eval: false`; `#| slow` unless CENTRIPETAL_SLOW=1).
A notebook fails on any cell error (the cell and its traceback are shown), and when a figure never reaches the reader:
an output that is the bare text `<Figure size ...>`, a figure drawn in a cell but not displayed as a PNG (closed first,
or hidden by a non-inline backend), or a backend other than the inline one. See tools/nbexec.py for how this is
detected. Each executed notebook is saved to `_build/executed/<name>.ipynb`, which `bash scripts/docs.sh` reuses.
"""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from nbexec import NotebookFailed, execute_notebook  # noqa: E402

NBS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    try:
        res, err = execute_notebook(nb), None
    except NotebookFailed as e:
        res, err = None, str(e)
    if err: pytest.fail(err, pytrace=False)
    if res is None: pytest.skip(f"{nb.name}: nbdev skips it (skip_exec front matter)")
