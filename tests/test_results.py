"""Committed results name no machine's folders: every path in results/ is relative to the repository.

A results file that says `/home/someone/project/results/...` tells a reader nothing and breaks a byte-for-byte rebuild
on another machine; `centripetal reproduce` writes paths relative to the working directory (`reproduce.rel_path`).
"""
import re

import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = {".json", ".md", ".csv", ".ipynb", ".txt", ".yaml"}
# a JSON string or Markdown/CSV cell that starts with an absolute POSIX path or a Windows drive
ABSOLUTE = re.compile(r'(?:"|\(|`|^|,)(/(?:home|root|work|tmp|Users|mnt|opt|var|data|scratch)/[^"\s)`,]*|[A-Z]:\\\\[^"\s]*)',
                      re.M)


def _tracked(folder: str) -> list:
    "The files git tracks under `folder` (what a clone holds; a run in progress leaves others beside them)."
    import subprocess
    out = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / f for f in out.split()]


def test_no_absolute_paths_in_results():
    bad = []
    for p in sorted(_tracked("results")):
        if p.suffix not in TEXT or not p.is_file(): continue
        for m in ABSOLUTE.finditer(p.read_text(encoding="utf-8", errors="replace")):
            bad.append(f"{p.relative_to(ROOT)}: {m.group(1)[:80]}")
    assert not bad, f"{len(bad)} absolute path(s) in results/, e.g.:\n" + "\n".join(bad[:10])


def test_the_check_catches_one(tmp_path):
    sample = '{"checkpoint": "/home/me/repo/results/cpu/runs/full/seed0/last.pt", "ok": "results/cpu/x"}'
    assert [m.group(1) for m in ABSOLUTE.finditer(sample)] == ["/home/me/repo/results/cpu/runs/full/seed0/last.pt"]


def _committed_profiles():
    "Result folders whose tables are committed (each rebuilt from its committed run files below)."
    return sorted(p.parents[1].name for p in (ROOT / "results").glob("*/tables/claims.csv"))


@pytest.mark.parametrize("profile", _committed_profiles())
def test_tables_only_rebuilds_the_committed_tables_byte_for_byte(profile, tmp_path, monkeypatch):
    """`centripetal reproduce --tables-only` on a copy of the committed results (run files only: no tables, runs.md
    or runs.csv) writes every committed table, claims file and runs.md again, byte for byte."""
    import shutil
    from centripetal.reproduce import main_reproduce
    src = ROOT / "results" / profile
    tracked = [f.relative_to(src) for part in ("tables", "runs.md", "runs.csv")
               for f in _tracked(f"results/{profile}/{part}")]
    assert tracked, f"results/{profile} has no committed tables"
    for f in _tracked("results"):             # every profile's committed files: a table may read another (early_from)
        rel = f.relative_to(ROOT / "results")
        if rel.parts[0] == profile and rel.parts[1] in ("tables", "figures", "notebooks", "runs.md", "runs.csv"): continue
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, tmp_path / rel)
    monkeypatch.chdir(ROOT)
    assert main_reproduce(["--profile", profile, "--out", str(tmp_path), "--tables-only"]) == 0
    differ = [f for f in tracked if (tmp_path / profile / f).read_bytes() != (src / f).read_bytes()]
    assert not differ, f"--tables-only wrote other bytes than the committed results/{profile}: {differ}"
