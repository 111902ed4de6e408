"""Hourglass-104 against mmdetection 3.3's CentripetalNet, once: random weights, a real checkpoint file, the CLI.

1. build mmdetection's CentripetalNet (Hourglass-104, CentripetalHead, 80 classes) with random weights and save it as
   mmdetection does: torch.save({'state_dict': ..., 'meta': {...}}, FILE);
2. `centripetal convert FILE --check` (must report 0 unmapped tensors), then `centripetal convert FILE OUT.pt`;
3. load OUT.pt as any project checkpoint, run both networks on one random 511×511 image in eval mode, float32, and
   print the largest difference of every raw map (both stacks) and the decoded pairs of the last stack.

Needs the peer extra (pip install -e ".[peer]"). Prints the times. About 4 GB of memory and a few minutes on 2 CPU cores.
    python benchmarks/bench_peer_hourglass104.py [--threads 2] [--size 511] [--write-keys]
"""
import argparse
import contextlib
import io
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peer"))
import peer_models as P  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=511)
    ap.add_argument("--write-keys", action="store_true", help=f"(re)write {P.KEYS_FILE.relative_to(ROOT)} and stop")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    MODELS, version, shim = P.import_mmdet()
    if a.write_keys:
        with torch.device("meta"): ref = MODELS.build(P.mmdet_config(P.HG104))
        P.KEYS_FILE.write_text(P.key_list(ref))
        print(f"wrote {P.KEYS_FILE}: {len(ref.state_dict())} tensors")
        return 0
    from centripetal.convert import main_convert
    from centripetal.model import CentripetalNet
    from centripetal.checkpoint import load_checkpoint, model_config_of
    print(f"torch {torch.__version__}, mmdet {version} (mmcv ops shim: {shim}), {platform.processor() or platform.machine()}, "
          f"{a.threads} threads, input {a.size}×{a.size}")
    t = {}
    t0 = time.perf_counter()
    ref = P.build_mmdet(P.HG104, num_classes=80, seed=0)
    t["build mmdet"] = time.perf_counter() - t0
    print(f"mmdetection Hourglass-104 CentripetalNet: {sum(p.numel() for p in ref.parameters()):,} parameters, "
          f"{len(ref.state_dict())} tensors")
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "centripetalnet_hg104_random.pth", Path(d) / "converted.pt"
        torch.save({"state_dict": ref.state_dict(), "meta": {"mmdet_version": version, "note": "random weights"}}, src)
        t0 = time.perf_counter()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf): rc = main_convert([str(src), "--check"])
        t["convert --check"] = time.perf_counter() - t0
        print(f"$ centripetal convert {src.name} --check   (exit {rc})\n{buf.getvalue().strip()}")
        if rc != 0: return rc
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()): rc = main_convert([str(src), str(dst)])
        t["convert"] = time.perf_counter() - t0
        if rc != 0: return rc
        t0 = time.perf_counter()
        ckpt = load_checkpoint(dst)
        ours = CentripetalNet(model_config_of(ckpt))
        ours.load_state_dict(ckpt["model"])
        ours.eval()
        del ckpt
        t["load converted"] = time.perf_counter() - t0
    x = torch.randn(1, 3, a.size, a.size, generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter(); maps_ref, _ = P.mmdet_maps(ref, x); t["forward mmdet"] = time.perf_counter() - t0
    t0 = time.perf_counter(); maps_ours = P.our_maps(ours, x); t["forward ours"] = time.perf_counter() - t0
    diffs = P.compare_maps(maps_ref, maps_ours)
    print(f"compared {len(diffs)} maps (max|mmdet - ours| / max|mmdet|):")
    for k, (dd, s) in diffs.items(): print(f"  {k:<18} {dd:.3g} / {s:.3g}  {'ok' if P.within(dd, s) else 'DIFFERENT'}")
    theirs, mine = P.decoded_pairs(ref, P.plant_objects(maps_ref, 1), P.plant_objects(maps_ours, 1), a.size, 1)
    mine[:, :4] = mine[:, :4].clamp(min=0)
    theirs, mine = P.sort_pairs(theirs), P.sort_pairs(mine)
    same = theirs.shape == mine.shape and torch.equal(theirs[:, 5], mine[:, 5])
    dmax = (theirs[:, :5] - mine[:, :5]).abs().max().item() if same and len(theirs) else float("nan")
    print(f"decoded pairs (last stack, 8 planted objects): {len(theirs)} mmdetection, {len(mine)} ours, "
          f"labels {'equal' if same else 'DIFFERENT'}, max box/score difference {dmax:.3g}")
    worst = max(diffs, key=lambda k: diffs[k][0])
    print(f"largest difference: {worst} {diffs[worst][0]:.3g}")
    print("times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    ok = all(P.within(*v) for v in diffs.values()) and same and dmax < 1e-3
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
