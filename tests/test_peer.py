"""Equality with the reference implementation: mmdetection 3.3's CentripetalNet, converted by centripetal.convert.

Needs the `peer` extra: pip install -e ".[peer]" (mmdet 3.3.0, mmengine, mmcv-lite; nothing is downloaded at run time,
the compiled mmcv ops come from tests/peer/mmcv_ops_shim.py). Skipped when mmdetection cannot be imported.
Run with `-s` to see the table of compared maps. Hourglass-104 at 511x511: benchmarks/bench_peer_hourglass104.py.
"""
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "peer"))
try:
    import peer_models as P
    _, MMDET_VERSION, SHIM = P.import_mmdet()
except ImportError as e:   # the peer extra is optional
    pytest.skip(f"mmdetection is not importable ({e}); install the peer extra: pip install -e '.[peer]'",
                allow_module_level=True)

from centripetal.convert import convert_state_dict, is_complete, release_model_config
from centripetal.model import CentripetalNet

def summarise(text):
    "Print `text` and keep it for the run's closing summary (pytest hides what a passing test prints)."
    print(text)
    import conftest
    section = conftest.SUMMARY.setdefault("reference network: mmdetection's CentripetalNet vs ours", [])
    section.extend(text.strip().splitlines())


SIZE = 127          # input side for the small hourglass (two stride-2 levels: 127 -> 32×32 maps)


@pytest.fixture(scope="module")
def pair():
    "mmdetection's model (small hourglass, full CentripetalHead, both stacks, random weights) and ours converted from it."
    torch.manual_seed(0)
    t0 = time.perf_counter()
    ref = P.build_mmdet(P.SMALL, num_classes=80, seed=0)
    ours, report = P.converted_model(ref, backbone=P.SMALL)
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    maps_ref, _ = P.mmdet_maps(ref, x)
    maps_ours = P.our_maps(ours, x)
    summarise(f"\nmmdet {MMDET_VERSION} (mmcv ops shim: {SHIM}), small hourglass {P.SMALL['stage_channels']}, input {SIZE}×{SIZE}: "
          f"built, converted and run in {time.perf_counter() - t0:.1f} s")
    return ref, ours, report, maps_ref, maps_ours


def test_key_list_fixture_is_mmdet33():
    "The committed key list (used by nbs/96_convert without mmdetection) is mmdetection's Hourglass-104 state dict."
    MODELS, _, _ = P.import_mmdet()
    with torch.device("meta"): ref = MODELS.build(P.mmdet_config(P.HG104))
    assert P.key_list(ref) == P.KEYS_FILE.read_text(), f"{P.KEYS_FILE} is stale: regenerate it with " \
        "python benchmarks/bench_peer_hourglass104.py --write-keys"


def test_hourglass104_converts_completely():
    "Every tensor of mmdetection's Hourglass-104 CentripetalNet has its place in ours, and every one of ours is filled."
    MODELS, _, _ = P.import_mmdet()
    with torch.device("meta"):
        ref = MODELS.build(P.mmdet_config(P.HG104))
        ours = CentripetalNet(release_model_config(80, 2))
    sd, target = ref.state_dict(), ours.state_dict()
    _, report = convert_state_dict(sd, "mmdet", target)
    summarise(f"\nHourglass-104: {len(sd)} mmdetection tensors -> {len(target)} of ours; "
          + ", ".join(f"{len(report[k])} {k}" for k in ("unmapped", "duplicate", "missing", "mismatched")))
    assert is_complete(report), report
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())


def test_conversion_complete(pair):
    _, _, report, _, _ = pair
    assert is_complete(report), report


def _table(diffs):
    return "\n".join(f"  {k:<18} max|diff| {d:.3g}   max|ref| {s:.3g}" for k, (d, s) in diffs.items())


def test_every_raw_map_equal(pair):
    """Heatmaps, offsets, guiding shifts, centripetal shifts and the deformable-conv offsets of both stacks: equal within
    1e-4 (relative to the map's largest value where that exceeds 1), float32, eval mode."""
    _, _, _, maps_ref, maps_ours = pair
    diffs = P.compare_maps(maps_ref, maps_ours)
    worst = max(diffs, key=lambda k: diffs[k][0] / max(1.0, diffs[k][1]))
    summarise(f"\ncompared {len(diffs)} maps:\n{_table(diffs)}\nlargest difference: {worst} {diffs[worst][0]:.3g}")
    cs = {k for k in diffs if "_cs/" in k}
    bad = [k for k in diffs if k not in cs and not P.within(*diffs[k])]
    assert not bad, f"maps differ: {bad}\n{_table(diffs)}"
    bad_cs = [k for k in cs if not P.within(*diffs[k])]
    assert not bad_cs, f"centripetal shifts differ: {bad_cs}\n{_table(diffs)}"


def test_decoded_pairs_equal(pair):
    """The pre-NMS pairs of the last stack: mmdetection's decoder on its maps and ours (arithmetic pair score, hard
    rejection at 0.5) on ours, with the same objects planted in both (random weights give no pair that passes the
    central-region test). mmdetection clamps corners at 0 before its region test, we clip after decoding: compared
    after clamping."""
    ref, _, _, maps_ref, maps_ours = pair
    theirs, ours = P.decoded_pairs(ref, P.plant_objects(maps_ref, 1), P.plant_objects(maps_ours, 1), SIZE, 1)
    ours[:, :4] = ours[:, :4].clamp(min=0)
    theirs, ours = P.sort_pairs(theirs), P.sort_pairs(ours)
    summarise(f"\ndecoded: {len(theirs)} pairs kept by mmdetection, {len(ours)} by ours")
    assert len(theirs) >= 4, "the planted objects should give kept pairs"
    assert theirs.shape == ours.shape, f"{len(theirs)} vs {len(ours)} kept pairs"
    assert torch.equal(theirs[:, 5], ours[:, 5]), "labels differ"
    assert (theirs[:, :5] - ours[:, :5]).abs().max().item() < 1e-3
