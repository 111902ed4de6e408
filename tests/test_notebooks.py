"""Run every notebook in nbs/ as one pytest test, each in its own process (nbdev-test), so the
closing line of pytest counts the notebooks. Slow cells (`#| slow`) run only with CENTRIPETAL_SLOW=1."""
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
NBDEV_TEST = Path(sys.executable).with_name("nbdev-test")


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), "MPLBACKEND": "Agg"}
    cmd = [str(NBDEV_TEST), str(nb), "--n-workers", "1", "--do-print"]
    if os.environ.get("CENTRIPETAL_SLOW") == "1":
        cmd += ["--flags", "slow"]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"{nb.name} failed:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}"
