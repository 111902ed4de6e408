"""Committed results name no machine's folders: every path in results/ is relative to the repository.

A results file that says `/home/someone/project/results/...` tells a reader nothing and breaks a byte-for-byte rebuild
on another machine; `centripetal reproduce` writes paths relative to the working directory (`reproduce.rel_path`).
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = {".json", ".md", ".csv", ".ipynb", ".txt", ".yaml"}
# a JSON string or Markdown/CSV cell that starts with an absolute POSIX path or a Windows drive
ABSOLUTE = re.compile(r'(?:"|\(|`|^|,)(/(?:home|root|work|tmp|Users|mnt|opt|var|data|scratch)/[^"\s)`,]*|[A-Z]:\\\\[^"\s]*)',
                      re.M)


def test_no_absolute_paths_in_results():
    bad = []
    for p in sorted((ROOT / "results").rglob("*")):
        if p.suffix not in TEXT or not p.is_file(): continue
        for m in ABSOLUTE.finditer(p.read_text(encoding="utf-8", errors="replace")):
            bad.append(f"{p.relative_to(ROOT)}: {m.group(1)[:80]}")
    assert not bad, f"{len(bad)} absolute path(s) in results/, e.g.:\n" + "\n".join(bad[:10])


def test_the_check_catches_one(tmp_path):
    sample = '{"checkpoint": "/home/me/repo/results/cpu/runs/full/seed0/last.pt", "ok": "results/cpu/x"}'
    assert [m.group(1) for m in ABSOLUTE.finditer(sample)] == ["/home/me/repo/results/cpu/runs/full/seed0/last.pt"]
