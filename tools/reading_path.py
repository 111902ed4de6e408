"""The reading path through the notebooks: four parts, the order inside each, what to read first, where to go next.

The notebooks' numbers are the path (`00`–`09` Part I, `10`–`19` Part II, `20`–`89` Part III, `90`–`99` the
Appendix), so sorting the file names gives the reading order. This file is the one place that says which part a number
belongs to and what each notebook needs read before it; from that it writes

- a line under each notebook's title: its part, its place in the part, and what to read first;
- a closing "Next" cell naming the notebook that follows (or, at the end of a part, the next part);
- the map in `index.ipynb` (the cell that starts with `## The reading path`): every notebook under its part, with its
  module and its summary line.

`python tools/reading_path.py` rewrites those cells (run it after adding or renaming a notebook, then `nbdev-clean`);
`python tools/reading_path.py --check` exits 1 and names the notebooks whose cells are out of date (tests/ runs it).
tools/build_site.py groups the site's index by the same parts.
"""
from __future__ import annotations

import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"

# (title, first number, last number, what the part is for)
PARTS = [
    ("Part I — The paper", 0, 9,
     "the equations and modules of CentripetalNet, in the order the paper introduces them; each ends with exercises"),
    ("Part II — Training and evaluating", 10, 19,
     "the benchmark, data, training loop, COCO evaluation, and the interactive views of matching"),
    ("Part III — Reproducing the paper", 20, 89,
     "sweeps of every variant, the paper's tables and figures, the statistics of the claims, the studies"),
    ("Appendix", 90, 99,
     "the infrastructure every part uses: input checks, configuration, checkpoints, machine records, the CLI, "
     "conversion of the public checkpoints, the exercise checker"),
]

# What each notebook needs read before it (the path's order aside). Missing from here: nothing beyond the index.
BEFORE = {
    "01_matching": ["00_shift"],
    "02_corner_pool": ["01_matching"],
    "03_adaption": ["00_shift", "02_corner_pool"],
    "04_mask_head": ["01_matching"],
    "05_hourglass": ["02_corner_pool"],
    "06_targets": ["00_shift", "03_adaption"],
    "07_losses": ["06_targets"],
    "08_model": ["01_matching", "02_corner_pool", "03_adaption", "04_mask_head", "05_hourglass", "07_losses"],
    "09_postprocess": ["01_matching", "08_model"],
    "11_data": ["06_targets", "10_shapes"],
    "12_train_data": ["11_data"],
    "13_train": ["07_losses", "08_model", "12_train_data"],
    "14_distributed": ["13_train"],
    "15_evaluate": ["09_postprocess", "11_data"],
    "16_crowd": ["01_matching"],
    "17_explore": ["01_matching", "16_crowd"],
    "18_explore_draw": ["17_explore"],
    "19_demo": ["16_crowd"],
    "20_reproduce": ["13_train", "15_evaluate"],
    "21_plan": ["20_reproduce"],
    "22_runs": ["21_plan"],
    "23_collect": ["22_runs"],
    "24_tables": ["15_evaluate", "23_collect"],
    "25_decode_study": ["15_evaluate", "24_tables"],
    "26_figures": ["24_tables"],
    "27_verdicts": ["24_tables"],
    "28_claims": ["24_tables", "27_verdicts"],
    "29_budget": ["13_train", "28_claims"],
    "30_study": ["06_targets", "13_train", "15_evaluate"],
    "31_study_centers": ["30_study"],
    "91_config": ["08_model", "13_train"],
    "92_checkpoint": ["91_config"],
    "93_machine": ["20_reproduce"],
    "94_sync": ["13_train"],
    "95_cli": ["13_train", "15_evaluate", "20_reproduce"],
    "96_convert": ["08_model", "92_checkpoint", "97_public_code"],
    "97_public_code": ["01_matching", "09_postprocess"],
    "98_exercises": ["00_shift"],
}

HEAD, NEXT, MAP = "*Reading path: ", "**Next:**", "## The reading path"


def number(stem: str) -> int:
    return int(re.match(r"(\d+)_", stem).group(1))


def part_of(stem: str) -> int:
    "Index into PARTS of notebook `stem`."
    n = number(stem)
    for i, (_, lo, hi, _) in enumerate(PARTS):
        if lo <= n <= hi: return i
    raise ValueError(f"{stem}: number {n} is in no part of tools/reading_path.py PARTS")


def reading_order(nbs: Path = NBS) -> list:
    "The notebooks' stems in reading order (index.ipynb first is implied; not listed)."
    return sorted(p.stem for p in nbs.glob("*.ipynb") if re.match(r"\d+_", p.stem))


def _src(c) -> str:
    return "".join(c["source"]) if isinstance(c["source"], list) else c["source"]


def front_matter(nb: dict) -> tuple:
    "(title, summary, module) of a notebook: its `# Title`, its `> summary` line and its `#| default_exp`."
    title = summary = module = ""
    for c in nb["cells"]:
        s = _src(c)
        if c["cell_type"] == "markdown" and not title:
            t = re.search(r"^#\s+(.+)$", s, re.M)
            if t:
                title = t.group(1).strip()
                m = re.search(r"^>\s*(.+(?:\n>\s*.+)*)", s, re.M)
                summary = " ".join(l.lstrip("> ").strip() for l in m.group(1).splitlines()) if m else ""
        m = re.search(r"^#\|\s*default_exp\s+(\S+)", s, re.M) if c["cell_type"] == "code" else None
        if m and not module: module = m.group(1)
    return title, summary, module


def _link(stem: str) -> str:
    return f"[`{stem}`]({stem}.ipynb)"


def head_text(stem: str, order: list, titles: dict) -> str:
    "The line under a notebook's title: part, place in the part, what to read first."
    p = part_of(stem)
    same = [s for s in order if part_of(s) == p]
    first = [s for s in BEFORE.get(stem, []) if s in titles]
    read = ("; ".join(f"{_link(s)} ({titles[s]})" for s in first) if first
            else "nothing but the map, [`index`](index.ipynb)")
    return f"{HEAD}{PARTS[p][0]}, notebook {same.index(stem) + 1} of {len(same)}.* Read first: {read}."


def next_text(stem: str, order: list, titles: dict) -> str:
    "The closing cell: the notebook that follows, and a new part when it starts one."
    i = order.index(stem)
    if i + 1 == len(order): return f"{NEXT} that is the last notebook; back to the map, [`index`](index.ipynb)."
    nxt = order[i + 1]
    new_part = part_of(nxt) != part_of(stem)
    where = f"{PARTS[part_of(nxt)][0]} begins with " if new_part else ""
    return f"{NEXT} {where}{_link(nxt)}, {titles[nxt][0].lower() + titles[nxt][1:]}."


def map_text(order: list, fm: dict) -> str:
    "The reading path of index.ipynb: every notebook under its part, with module and summary."
    out = [f"{MAP}", "",
           "Each notebook is one idea and exports one module of the `centripetal` package. The numbers are the order to "
           "read them in; each notebook says what to read first and ends with where to go next."]
    for p, (title, lo, hi, what) in enumerate(PARTS):
        out += ["", f"### {title}", "", f"{what[0].upper() + what[1:]}.", "", "| notebook | module | what it holds |",
                "|---|---|---|"]
        for s in order:
            if part_of(s) != p: continue
            t, summary, module = fm[s]
            out.append(f"| {_link(s)} | {f'`centripetal.{module}`' if module else '—'} | "
                       f"**{t}**. {summary.replace('|', '/')} |")
    return "\n".join(out)


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.splitlines(True)}


def _load(p: Path) -> dict:
    return json.loads(p.read_text())


def _save(p: Path, nb: dict):
    p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def update(nbs: Path = NBS, write: bool = True) -> list:
    "Rewrite (or, with write=False, only compare) the path's cells; returns the notebooks that were out of date."
    order = reading_order(nbs)
    books = {s: _load(nbs / f"{s}.ipynb") for s in order}
    fm = {s: front_matter(nb) for s, nb in books.items()}
    titles = {s: f[0].replace("`", "") for s, f in fm.items()}
    stale = []
    for s, nb in books.items():
        cells = [c for c in nb["cells"] if not (c["cell_type"] == "markdown" and _src(c).startswith((HEAD, NEXT)))]
        first_md = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown")
        cells.insert(first_md + 1, _md(head_text(s, order, titles)))
        cells.append(_md(next_text(s, order, titles)))
        if [_src(c) for c in cells] != [_src(c) for c in nb["cells"]]:
            stale.append(s)
            if write: nb["cells"] = cells; _save(nbs / f"{s}.ipynb", nb)
    index = _load(nbs / "index.ipynb")
    want = map_text(order, fm)
    i = next((k for k, c in enumerate(index["cells"]) if _src(c).startswith(MAP)), None)
    if i is None or _src(index["cells"][i]) != want:
        stale.append("index")
        if write:
            if i is None: index["cells"].insert(2, _md(want))
            else: index["cells"][i] = _md(want)
            _save(nbs / "index.ipynb", index)
    return stale


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    stale = update(write=not check)
    if check and stale:
        sys.exit(f"reading path out of date in: {', '.join(stale)} (run `python tools/reading_path.py`, then "
                 f"`nbdev-clean`)")
    print(("up to date" if not stale else f"rewrote {len(stale)}: {', '.join(stale)}"))
