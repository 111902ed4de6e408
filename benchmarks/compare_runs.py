"""Paired comparison of the same runs made by two versions of the code: AP of each seed, the differences, their mean
with a 95 % paired-t interval, and whether the training logs are bit-identical.

A run folder is what `centripetal reproduce` writes: RUNS/VARIANT/seed<N>/{metrics.json, log.csv}. Each argument is
NAME=FOLDER[,FOLDER...] (several folders are searched in order, so seeds made in pieces can be combined):

    python benchmarks/compare_runs.py --variant full \\
        before=results/cpu-seeds/runs,/work/apcheck_old/cpu/runs after=/work/apcheck/cpu/runs

Prints a Markdown table; asserts nothing. Seeds present on both sides only.
"""
import argparse
import csv
import json
import math
import statistics
from pathlib import Path

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def parse_side(arg: str):
    "NAME=FOLDER[,FOLDER...] -> (name, [Path, ...])."
    if "=" not in arg: raise SystemExit(f"expected NAME=FOLDER[,FOLDER...], got {arg!r}")
    name, folders = arg.split("=", 1)
    return name, [Path(f) for f in folders.split(",") if f]


def find_runs(folders, variant: str) -> dict:
    "seed -> run folder with a metrics.json, the first folder that has it winning."
    runs = {}
    for root in folders:
        for d in sorted((root / variant).glob("seed*")):
            if (d / "metrics.json").is_file(): runs.setdefault(int(d.name[4:]), d)
    return runs


def ap(run: Path, iou: str):
    m = json.loads((run / "metrics.json").read_text())["metrics"].get(iou)
    return None if m is None else 100 * m["AP"]


def losses(run: Path) -> list:
    with open(run / "log.csv") as f: return [r["loss"] for r in csv.DictReader(f)]


def paired(diffs: list) -> str:
    "mean [95 % paired-t interval] of the differences."
    n, mean = len(diffs), statistics.fmean(diffs)
    if n < 2: return f"{mean:+.2f}"
    half = T95.get(n - 1, 1.96) * statistics.stdev(diffs) / math.sqrt(n)
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before"); p.add_argument("after")
    p.add_argument("--variant", default="full")
    a = p.parse_args(argv)
    (nb, fb), (na, fa) = parse_side(a.before), parse_side(a.after)
    rb, ra = find_runs(fb, a.variant), find_runs(fa, a.variant)
    seeds = sorted(set(rb) & set(ra))
    if not seeds: raise SystemExit(f"no seed of {a.variant!r} has a metrics.json on both sides")
    print(f"| seed | {nb} bbox AP | {na} bbox AP | difference | {nb} segm AP | {na} segm AP | difference | "
          "training losses bit-identical |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    d_box, d_seg = [], []
    for s in seeds:
        b, c = ap(rb[s], "bbox"), ap(ra[s], "bbox")
        bs, cs = ap(rb[s], "segm"), ap(ra[s], "segm")
        d_box.append(c - b)
        if bs is not None and cs is not None: d_seg.append(cs - bs)
        same = losses(rb[s]) == losses(ra[s])
        seg = f"{bs:.2f} | {cs:.2f} | {cs - bs:+.2f}" if bs is not None and cs is not None else "– | – | –"
        print(f"| {s} | {b:.2f} | {c:.2f} | {c - b:+.2f} | {seg} | {'yes' if same else 'no'} |")
    print(f"| mean (95 % paired t) | {statistics.fmean(ap(rb[s], 'bbox') for s in seeds):.2f} | "
          f"{statistics.fmean(ap(ra[s], 'bbox') for s in seeds):.2f} | {paired(d_box)} | | | "
          f"{paired(d_seg) if d_seg else '–'} | |")
    print()
    print(f"{len(seeds)} seed(s) of {a.variant!r}; {nb}: {', '.join(str(rb[s]) for s in seeds)}; "
          f"{na}: {', '.join(str(ra[s]) for s in seeds)}")


if __name__ == "__main__":
    main()
