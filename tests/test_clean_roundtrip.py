"""Opening a notebook in JupyterLab and saving it, then running `nbdev-clean`, must give back the committed bytes.

JupyterLab's save adds notebook metadata (a kernelspec with display name "Python 3 (ipykernel)", a full language_info),
cell metadata (`trusted`, `execution` timings, `scrolled`, tags) and, once cells have run, execution counts and outputs.
The project's `[tool.nbdev]` settings (pyproject.toml) make `nbdev-clean` remove all of that again, so `git status`
stays clean. The test saves copies of the committed notebooks the way JupyterLab does (nbformat's writer, which the Jupyter
server uses), cleans them with the project's `nbdev-clean` and compares bytes.
"""
import shutil, subprocess, sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "nbs").glob("*.ipynb"))

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3", "version": "3.11.9"}
EXECUTION = {"iopub.execute_input": "2026-11-30T14:00:00.000001Z", "iopub.status.busy": "2026-11-30T14:00:00.000000Z",
             "iopub.status.idle": "2026-11-30T14:00:01.000000Z", "shell.execute_reply": "2026-11-30T14:00:01.000001Z"}


def jupyterlab_save(src, dst, ran):
    "Write `src` to `dst` as JupyterLab would after opening it (and, if `ran`, running every cell) and saving."
    nb = nbformat.read(src, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    for n, cell in enumerate(nb.cells, 1):
        cell.metadata["trusted"] = True
        if cell.cell_type != "code" or not ran: continue
        cell.metadata["execution"] = dict(EXECUTION)
        cell.metadata["scrolled"] = True
        cell.metadata["tags"] = []
        cell.execution_count = n
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"cell {n}\n"),
                        nbformat.v4.new_output("display_data", metadata={"needs_background": "light"},
                                               data={"image/png": "iVBORw0KGgo=\n", "text/plain": "<Figure>"}),
                        nbformat.v4.new_output("execute_result", data={"text/plain": "<object at 0x7f00deadbeef>"},
                                               execution_count=n)]
    nbformat.write(nb, str(dst))


@pytest.mark.parametrize("ran", [False, True], ids=["opened-and-saved", "run-and-saved"])
def test_nbdev_clean_restores_committed_bytes(tmp_path, ran):
    saved = tmp_path / "lab"
    saved.mkdir()
    for nb in NOTEBOOKS: jupyterlab_save(nb, saved / nb.name, ran)
    changed = [nb.name for nb in NOTEBOOKS if (saved / nb.name).read_bytes() != nb.read_bytes()]
    assert changed == [nb.name for nb in NOTEBOOKS], "the simulated save left some notebooks unchanged"
    nbdev_clean = shutil.which("nbdev-clean", path=str(Path(sys.executable).parent)) or "nbdev-clean"
    subprocess.run([nbdev_clean, "--fname", str(saved)], cwd=ROOT, check=True, capture_output=True, text=True)
    dirty = [nb.name for nb in NOTEBOOKS if (saved / nb.name).read_bytes() != nb.read_bytes()]
    assert not dirty, (f"nbdev-clean does not restore {dirty} after a JupyterLab save: check [tool.nbdev] in "
                       "pyproject.toml (clear_all = true) and run nbdev-clean on nbs/ before committing")
