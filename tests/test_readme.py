"""The README's numbers come from committed results files.

- Each claims block (`<!-- claims: results/.../claims.csv -->` ... `<!-- end claims -->`) must equal what
  `centripetal claims --readme README.md` writes from the file it names.
- The demo paragraph's counts must equal results/demo/demo.txt (written by `centripetal demo`).
"""
import re
from pathlib import Path

from centripetal.claims import BLOCK, sync_readme

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_claims_blocks_match_committed_tables():
    text = README.read_text(encoding="utf-8")
    blocks = [m["csv"] for m in BLOCK.finditer(text)]
    assert "results/cpu-seeds/tables/claims.csv" in blocks, blocks
    stale = sync_readme(README, check=True)
    assert not stale, f"README claims blocks differ from {stale}: run `centripetal claims --readme README.md`"


def _one(pattern, text, what):
    m = re.search(pattern, text, re.S)
    assert m, f"{what}: pattern {pattern!r} not found"
    return tuple(int(g) for g in m.groups())


def test_demo_paragraph_matches_demo_txt():
    readme = " ".join(README.read_text(encoding="utf-8").split())
    demo = " ".join((ROOT / "results" / "demo" / "demo.txt").read_text(encoding="utf-8").split())
    said = _one(r"Associative embedding keeps (\d+) pairs, (\d+) of them wrong; centripetal shift keeps (\d+) pairs, "
                r"(\d+) wrong, because its central region rejects (\d+) of the (\d+) candidate pairs", readme, "README")
    ae = _one(r"(\d+) pairs kept, (\d+) of them wrong", demo, "demo.txt")
    cs = _one(r"rejects (\d+) of the (\d+) candidate pairs .*? and keeps (\d+)\.", demo, "demo.txt")
    wrong = _one(r"centripetal shift: recovered \d+/\d+ objects, (\d+) wrong pairs", demo, "demo.txt")
    assert said == (ae[0], ae[1], cs[2], wrong[0], cs[0], cs[1]), (said, ae, cs, wrong)


AP_BLOCK = re.compile(r"<!-- ap: (?P<file>[^ ]+) -->(?P<value>[0-9.]+)<!-- end ap -->")


def test_ap_figures_come_from_committed_metrics():
    "Every '<!-- ap: FILE -->N<!-- end ap -->' figure of the README is FILE's box AP in %, to one decimal."
    import json
    found = list(AP_BLOCK.finditer(README.read_text(encoding="utf-8")))
    assert found, "the README quotes no AP from a metrics file"
    for m in found:
        path = ROOT / m["file"]
        assert path.is_file(), f"README quotes {m['file']}, which is not committed"
        ap = 100 * json.loads(path.read_text())["metrics"]["bbox"]["AP"]
        assert f"{ap:.1f}" == m["value"], f"README says {m['value']} for {m['file']}, the file says {ap:.1f}"
