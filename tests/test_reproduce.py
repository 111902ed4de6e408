"""`centripetal.reproduce` end to end on the `ci` profile (papermill notebooks, real training, real COCO evaluation).

1. `reproduce(profile='ci')` into a temporary folder trains and evaluates its three runs (centripetal, ae1d and the added
   `full`), then writes Tables 1-6 and the decode-rules table (CSV + Markdown) and the figures; every executed notebook is kept.
2. Running it again (through the `centripetal reproduce` entry point, `main_reproduce`) skips every finished run: a
   "skip <run>" log line per run, and far less time than the first call.
3. A profile with a deliberately failing variant (its model predicts 3 classes, the data has 4): the failure is reported with
   the executed notebook's path and the error, and the other run, the tables and the figures still complete.

The data is generated into the temporary folder too, so the repository is not touched. About 3-4 minutes on two CPU cores.
"""
import json, logging, time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TABLES = [f"table{n}" for n in range(1, 7)] + ["decode_rules"]
FIGURES = ["fig1_6_matchers", "fig3_shifts", "fig4_pool_heatmap", "fig7_sampling_points", "fig8_masks"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("reproduce")


@pytest.fixture(scope="module")
def first(work):
    from centripetal.reproduce import reproduce
    t0 = time.perf_counter()
    summary = reproduce("ci", out=work / "results", data_root=work / "data", device="cpu")
    return summary, time.perf_counter() - t0


def _notebook_errors(path):
    nb = json.loads(Path(path).read_text())
    return [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_ci_end_to_end(first, work):
    summary, seconds = first
    root = work / "results" / "ci"
    print(f"first reproduce('ci'): {seconds:.0f} s; runs: { {k: round(v.get('seconds', 0)) for k, v in summary['runs'].items()} }")
    assert summary["failed"] == [], summary
    assert {k: v["status"] for k, v in summary["runs"].items()} == {"centripetal": "done", "ae1d": "done", "full": "done"}
    assert (work / "data" / "train.json").is_file()                                 # generated per the profile's shapes: section
    for run in ("centripetal", "ae1d", "full"):
        assert (root / "runs" / run / "metrics.json").is_file() and (root / "runs" / run / "last.pt").is_file()
        nb = root / "notebooks" / f"run_{run}.ipynb"
        assert nb.is_file() and not _notebook_errors(nb)
        assert json.loads(nb.read_text())["metadata"]["papermill"]["parameters"]["variant"] == run
    for step in ("tables", "figures"):
        assert summary["notebooks"][step]["status"] == "done" and not _notebook_errors(root / "notebooks" / f"{step}.ipynb")

    # tables: CSV + Markdown, the profile and the dataset named, the paper's numbers beside this run's
    import pandas as pd
    for name in TABLES:
        md = (root / "tables" / f"{name}.md").read_text()
        df = pd.read_csv(root / "tables" / f"{name}.csv")
        assert "profile `ci`" in md and "synthetic shapes benchmark" in md, name
        assert (df["profile"] == "ci").any() and df["dataset"].str.startswith("synthetic shapes benchmark").any(), name
    t4 = pd.read_csv(root / "tables" / "table4.csv")
    ours = t4[t4["source"].str.startswith("this run")]
    assert sorted(ours["run"]) == ["ae1d", "centripetal"] and ours["AP"].notna().all()
    assert t4.loc[t4["method"] == "centripetal shift", "AP"].iloc[0] == 40.7       # the paper's row
    t1 = pd.read_csv(root / "tables" / "table1.csv")
    assert t1["source"].str.startswith("published").sum() == 16 and t1.iloc[-1]["run"] == "full"
    t3 = pd.read_csv(root / "tables" / "table3.csv")
    assert t3.iloc[-1]["run"] == "full" and t3.iloc[-1]["source"].startswith("this run")   # mask AP of the full model
    t2 = pd.read_csv(root / "tables" / "table2.csv")
    assert {"AR1", "AR100"} <= set(t2.columns) and sorted(t2["run"].dropna()) == ["ae1d", "full"]
    rules = pd.read_csv(root / "tables" / "decode_rules.csv")
    assert list(rules["rule"])[0] == "paper" and len(rules) == 7 and rules["ΔAP"].iloc[0] == 0
    assert (root / "runs" / "full" / "decode_rules.json").is_file()
    readme = (root / "tables" / "README.md").read_text()
    assert all(f"**Table {n}.**" in readme for n in range(1, 7)) and "**Decode rules.**" in readme

    for name in FIGURES:
        assert (root / "figures" / f"{name}.png").stat().st_size > 5000, name
    assert json.loads((root / "reproduce.json").read_text())["profile"] == "ci"


def test_rerun_skips_finished_runs(first, work, caplog, capsys):
    from centripetal.reproduce import main_reproduce
    _, first_seconds = first
    root = work / "results" / "ci"
    stamp = {run: (root / "runs" / run / "metrics.json").stat().st_mtime for run in ("centripetal", "ae1d", "full")}
    rules_stamp = (root / "runs" / "full" / "decode_rules.json").stat().st_mtime
    t0 = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="centripetal.reproduce"):
        rc = main_reproduce(["--profile", "ci", "--out", str(work / "results"), "--data-root", str(work / "data"), "--device", "cpu"])
    seconds = time.perf_counter() - t0
    out = capsys.readouterr().out
    print(f"re-run: {seconds:.0f} s (first run {first_seconds:.0f} s)")
    assert rc == 0
    for run in ("centripetal", "ae1d", "full"):
        assert f"{run}: skipped" in out
        assert any(r.getMessage().startswith(f"skip {run}:") for r in caplog.records), run
        assert (root / "runs" / run / "metrics.json").stat().st_mtime == stamp[run]   # untouched
    assert (root / "runs" / "full" / "decode_rules.json").stat().st_mtime == rules_stamp     # decode rules reused, not recomputed
    assert "decode rules: reusing" in (root / "notebooks" / "tables.ipynb").read_text()        # ... as the tables notebook logged
    assert seconds < 0.6 * first_seconds


def test_failing_variant_is_reported_and_others_complete(first, work, caplog):
    from centripetal.reproduce import reproduce
    prof = yaml.safe_load((ROOT / "experiments" / "profiles" / "ci.yaml").read_text())
    prof["name"] = "ci_broken"
    prof["variants"] = [
        {"name": "broken", "table": 4, "label": "3 classes for 4-class data", "model": {"num_classes": 3, "adaption": "none",
                                                                                          "mask_head": False}, "train": {"with_masks": False}},
        {"name": "centripetal", "table": 4, "model": {"adaption": "none", "mask_head": False}, "train": {"with_masks": False, "epochs": 1}},
    ]
    path = work / "ci_broken.yaml"
    path.write_text(yaml.safe_dump(prof))
    with caplog.at_level(logging.INFO, logger="centripetal.reproduce"):
        s = reproduce(path, out=work / "results", data_root=work / "data", only=["broken", "centripetal"], device="cpu")
    root = work / "results" / "ci_broken"
    nb = root / "notebooks" / "run_broken.ipynb"
    assert s["failed"] == ["broken"]
    st = s["runs"]["broken"]
    assert st["status"] == "failed" and st["notebook"] == str(nb) and nb.is_file() and _notebook_errors(nb)
    assert "ValueError" in st["error"] and "num_classes" in st["error"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(nb) in m and "broken" in m for m in errors), errors
    assert s["runs"]["centripetal"]["status"] == "done" and (root / "runs" / "centripetal" / "metrics.json").is_file()
    assert not (root / "runs" / "broken" / "metrics.json").exists()
    assert s["notebooks"]["tables"]["status"] == "done" and s["notebooks"]["figures"]["status"] == "done"
    import pandas as pd
    t4 = pd.read_csv(root / "tables" / "table4.csv")
    broken = t4[t4["run"] == "broken"].iloc[0]
    assert broken["source"].startswith("this run (no metrics") and pd.isna(broken["AP"])
    assert not (root / "tables" / "decode_rules.csv").exists()                      # no full run in this profile's selection
