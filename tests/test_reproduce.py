"""`centripetal.reproduce` end to end on the `ci` profile (papermill notebooks, real training, real COCO evaluation).

1. `reproduce(profile='ci')` into a temporary folder trains and evaluates its three runs (centripetal, ae1d and the added
   `full`) for each of its 2 seeds, every run the same 12 steps (the equal-steps protocol), then writes Tables 1-6 (mean ± sd
   over seeds), the decode-rules table (both seeds of `full`), the claims (at the top of tables/README.md), runs.md and the
   figures; every executed notebook is kept.
2. Running it again (through the `centripetal reproduce` entry point, `main_reproduce`) skips every finished run: a
   "skip <run>/seed<k>" log line per run, and far less time than the first call.
3. `--tables-only` rebuilds the tables, claims and runs.md byte for byte in seconds, also from a copy of the results that
   holds only the files that are committed (no checkpoint, no log).
4. A profile with a deliberately failing variant (its model predicts 3 classes, the data has 4): the failure is reported with
   the executed notebook's path and the error, and the other run, the tables and the figures still complete.
5. The plan and the estimate printed at the start, for the cpu, cpu-seeds and gpu profiles (dry runs).

The data is generated into the temporary folder too, so the repository is not touched. About 5-6 minutes on two CPU cores.
"""
import json, logging, shutil, time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNS = [f"{run}/seed{seed}" for run in ("centripetal", "ae1d", "full") for seed in (0, 1)]
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
    assert {k: v["status"] for k, v in summary["runs"].items()} == {k: "done" for k in RUNS}
    assert (work / "data" / "train.json").is_file()                                 # generated per the profile's shapes: section
    for key in RUNS:
        run, seed = key.split("/seed")
        d = root / "runs" / run / f"seed{seed}"
        assert (d / "metrics.json").is_file() and (d / "last.pt").is_file()
        train = json.loads((d / "train.json").read_text())
        # equal steps: every run the profile's 12, the time limit (a safety stop) did not fire
        assert (train["steps"], train["planned_steps"], train["seed"], train["stopped_by_time_limit"]) == (12, 12, int(seed), False)
        nb = root / "notebooks" / f"run_{run}_seed{seed}.ipynb"
        assert nb.is_file() and not _notebook_errors(nb)
        params = json.loads(nb.read_text())["metadata"]["papermill"]["parameters"]
        assert (params["variant"], params["seed"], params["protocol"], params["steps"]) == (run, int(seed), "equal-steps", 12)
        import torch
        ckpt = torch.load(d / "last.pt", weights_only=True, map_location="cpu")
        assert (ckpt["train_cfg"]["seed"], ckpt["train_cfg"]["max_steps"], ckpt["step"]) == (int(seed), 12, 12)
    assert "plan:" in summary["plan"] and "× 2 seed(s) [0, 1] × 12 steps = 6 run(s)" in summary["plan"]
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
    assert (ours["n_seeds"] == 2).all() and ours["AP_sd"].notna().all()              # mean ± sd over the 2 seeds
    assert all(s.startswith("this run (2 seeds, 12 steps") for s in ours["source"])
    assert "Every run trains 12 steps" in (root / "tables" / "table4.md").read_text()
    assert t4.loc[t4["method"] == "centripetal shift", "AP"].iloc[0] == 40.7       # the paper's row
    t1 = pd.read_csv(root / "tables" / "table1.csv")
    assert t1["source"].str.startswith("published").sum() == 16 and t1.iloc[-1]["run"] == "full"
    t3 = pd.read_csv(root / "tables" / "table3.csv")
    assert t3.iloc[-1]["run"] == "full" and t3.iloc[-1]["source"].startswith("this run")   # mask AP of the full model
    t2 = pd.read_csv(root / "tables" / "table2.csv")
    assert {"AR1", "AR100"} <= set(t2.columns) and sorted(t2["run"].dropna()) == ["ae1d", "full"]
    rules = pd.read_csv(root / "tables" / "decode_rules.csv")
    assert list(rules["rule"])[0] == "paper" and len(rules) == 7 and rules["ΔAP"].iloc[0] == 0
    assert all((root / "runs" / "full" / f"seed{k}" / "decode_rules.json").is_file() for k in (0, 1))
    from centripetal.claims import CLAIMS
    claims = pd.read_csv(root / "tables" / "claims.csv")
    assert len(claims) == len(CLAIMS)
    row = claims[claims["b"] == "ae1d"].iloc[0]
    assert row["a"] == "centripetal" and row["n_seeds"] == 2 and row["verdict"] in (
        "reproduced", "contradicted", "not resolved", "not decidable at this budget")
    assert {"ci_low_holm", "ci_high_holm", "mde"} <= set(claims.columns) and "Eq. 5" not in set(claims["table"])
    eq5 = pd.read_csv(root / "tables" / "decoding.csv").iloc[0]                      # not a paper claim: its own table
    assert eq5["table"] == "Eq. 5" and eq5["n_seeds"] == 2                           # from decode_rules.json of both seeds
    tj = json.loads((root / "runs" / "ae1d" / "seed0" / "train.json").read_text())
    assert {"threads", "precision", "arithmetic", "torch", "cpu_type"} <= set(tj["machine"])     # the machine record
    readme = (root / "tables" / "README.md").read_text()
    assert all(f"**Table {n}.**" in readme for n in range(1, 7)) and "**Decode rules.**" in readme
    assert readme.index("**Claims.**") < readme.index("**Table 1.**")                # the claims at the top
    runs_md = (root / "runs.md").read_text()
    assert sum(l.startswith("| ") for l in runs_md.splitlines()) == 1 + len(RUNS)   # header + one row per run and seed
    assert "Wall time of the `centripetal reproduce` command(s)" in runs_md and "No run was stopped" in runs_md
    assert len(pd.read_csv(root / "runs.csv")) == len(RUNS)

    for name in FIGURES:
        assert (root / "figures" / f"{name}.png").stat().st_size > 5000, name
    assert json.loads((root / "reproduce.json").read_text())["profile"] == "ci"


def test_rerun_skips_finished_runs(first, work, caplog, capsys):
    from centripetal.reproduce import main_reproduce
    _, first_seconds = first
    root = work / "results" / "ci"
    stamp = {k: (root / "runs" / k / "metrics.json").stat().st_mtime for k in RUNS}
    rules_stamp = (root / "runs" / "full" / "seed0" / "decode_rules.json").stat().st_mtime
    t0 = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="centripetal.reproduce"):
        rc = main_reproduce(["--profile", "ci", "--out", str(work / "results"), "--data-root", str(work / "data"), "--device", "cpu"])
    seconds = time.perf_counter() - t0
    out = capsys.readouterr().out
    print(f"re-run: {seconds:.0f} s (first run {first_seconds:.0f} s)")
    assert rc == 0
    for key in RUNS:
        assert f"{key}: skipped" in out
        assert any(r.getMessage().startswith(f"skip {key}:") for r in caplog.records), key
        assert (root / "runs" / key / "metrics.json").stat().st_mtime == stamp[key]   # untouched
    assert "6 already finished (skipped)" in out
    assert (root / "runs" / "full" / "seed0" / "decode_rules.json").stat().st_mtime == rules_stamp  # reused, not recomputed
    assert "decode rules: reusing" in (root / "notebooks" / "tables.ipynb").read_text()        # ... as the tables notebook logged
    assert seconds < 0.6 * first_seconds


def _outputs(root):
    "The bytes of every file --tables-only writes."
    out = {p.name: p.read_bytes() for p in (root / "tables").iterdir()}
    out.update({n: (root / n).read_bytes() for n in ("runs.md", "runs.csv")})
    return out


def test_tables_only_rebuilds_byte_identical(first, work, capsys):
    from centripetal.reproduce import main_reproduce
    root = work / "results" / "ci"
    before = _outputs(root)
    t0 = time.perf_counter()
    rc = main_reproduce(["--profile", "ci", "--out", str(work / "results"), "--data-root", str(work / "data"), "--tables-only"])
    seconds = time.perf_counter() - t0
    print(f"--tables-only: {seconds:.1f} s")
    assert rc == 0 and seconds < 120
    assert _outputs(root) == before
    # from the committed files only: no checkpoint, no log, no detections
    committed = work / "committed"
    shutil.copytree(root, committed / "ci", ignore=shutil.ignore_patterns("*.pt", "log.csv", "*_results.json", "metrics.csv",
                                                                        "metrics.md", "notebooks", "figures", "events.*"))
    assert not list((committed / "ci").rglob("*.pt"))
    rc = main_reproduce(["--profile", "ci", "--out", str(committed), "--data-root", str(work / "data"), "--tables-only"])
    assert rc == 0 and _outputs(committed / "ci") == before
    assert "rebuilt from the committed run files" in capsys.readouterr().out


def test_plans_and_estimates(work, capsys):
    from centripetal.reproduce import reproduce
    for profile, n in (("cpu", 10), ("cpu-seeds", 30), ("gpu", 50)):
        s = reproduce(profile, out=work / "plans", dry_run=True, data_root=work / "data")
        assert f"= {n} run(s)" in s["plan"] and "estimate:" in s["plan"], s["plan"]
        assert len(s["runs"]) == n and not (work / "plans").exists()
    # a piece of the seeds profile: one seed, two variants, each training command with its seed and the profile's steps
    s = reproduce("cpu-seeds", out=work / "plans", dry_run=True, data_root=work / "data", seed_list=[2], only=["ae1d", "full"])
    assert list(s["runs"]) == ["ae1d/seed2", "full/seed2"]
    cmd = s["runs"]["full/seed2"]["command"]
    assert cmd[cmd.index("--seed") + 1] == "2" and cmd[cmd.index("--max-steps") + 1] == "400"
    assert cmd[cmd.index("--out") + 1].endswith("cpu-seeds/runs/full/seed2")
    # the equal-time option: its own results folder, labelled in its plan
    s = reproduce("cpu", out=work / "plans", dry_run=True, data_root=work / "data", protocol="equal-time", only=["ae1d"])
    assert s["results"].endswith("cpu-equal-time") and "protocol equal-time" in s["plan"]
    print(capsys.readouterr().out)


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
        s = reproduce(path, out=work / "results", data_root=work / "data", only=["broken", "centripetal"], device="cpu",
                      seed_list=[0])
    root = work / "results" / "ci_broken"
    nb = root / "notebooks" / "run_broken_seed0.ipynb"
    assert s["failed"] == ["broken/seed0"]
    st = s["runs"]["broken/seed0"]
    assert st["status"] == "failed" and st["notebook"] == str(nb) and nb.is_file() and _notebook_errors(nb)
    assert "ValueError" in st["error"] and "num_classes" in st["error"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(nb) in m and "broken" in m for m in errors), errors
    assert s["runs"]["centripetal/seed0"]["status"] == "done"
    assert (root / "runs" / "centripetal" / "seed0" / "metrics.json").is_file()
    assert not (root / "runs" / "broken" / "seed0" / "metrics.json").exists()
    assert s["notebooks"]["tables"]["status"] == "done" and s["notebooks"]["figures"]["status"] == "done"
    import pandas as pd
    t4 = pd.read_csv(root / "tables" / "table4.csv")
    broken = t4[t4["run"] == "broken"].iloc[0]
    assert broken["source"].startswith("this run (no metrics") and pd.isna(broken["AP"])
    assert not (root / "tables" / "decode_rules.csv").exists()                      # no full run in this profile's selection


def test_parallel_runs_equal_sequential_ones(first, work):
    """`--parallel 2 --runs-only`: both seeds of ae1d and full side by side, each its own process, give the same weights
    and AP as the first call, which trained them one after the other; each `full` run also leaves its decode rules
    (what `--tables-only` needs of it), equal to those the first call's tables notebook computed."""
    import torch
    from centripetal.reproduce import reproduce
    out = work / "parallel"
    s = reproduce("ci", out=out, data_root=work / "data", device="cpu", only=["ae1d", "full"], parallel=2,
                  runs_only=True)
    keys = [f"{v}/seed{k}" for v in ("ae1d", "full") for k in (0, 1)]
    assert s["failed"] == [] and sorted(s["runs"]) == keys, s
    assert [s["notebooks"][f"decode rules full/seed{k}"]["status"] for k in (0, 1)] == ["done", "done"], s["notebooks"]
    for key in keys:
        variant, seed = key.split("/seed")
        a, b = (root / "ci" / "runs" / variant / f"seed{seed}" for root in (work / "results", out))
        wa = torch.load(a / "last.pt", weights_only=True, map_location="cpu")["model"]
        wb = torch.load(b / "last.pt", weights_only=True, map_location="cpu")["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa), key
        ma, mb = (json.loads((d / "metrics.json").read_text())["metrics"]["bbox"] for d in (a, b))
        assert ma == mb, key
        assert (out / "ci" / "notebooks" / f"run_{variant}_seed{seed}.log").is_file()
        if variant == "full":
            ra, rb = (json.loads((d / "decode_rules.json").read_text())["metrics"] for d in (a, b))
            assert ra == rb and {"paper", "hard rejection (no Eq. 5)"} <= set(rb), key
