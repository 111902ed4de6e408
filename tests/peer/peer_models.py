"""mmdetection's CentripetalNet beside ours: build it with random weights, convert, run both, compare every raw map.

Shared by tests/test_peer.py (CI, small hourglass + the full head) and benchmarks/bench_peer_hourglass104.py.
Needs the `peer` extra (mmdet 3.3, mmengine, mmcv-lite); the compiled mmcv ops come from mmcv_ops_shim.
"""
import logging
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mmcv_ops_shim  # noqa: E402

KEYS_FILE = Path(__file__).resolve().parent / "mmdet33_hg104_keys.txt"
HG104 = dict(downsample_times=5, num_stacks=2, stage_channels=[256, 256, 384, 384, 384, 512], stage_blocks=[2, 2, 2, 2, 2, 4])
# The smallest hourglass both sides build identically (mmdetection's stem is fixed at stage_channels[0] // 2 = 128, so
# the width stays 256) with the full CentripetalHead, both stacks: what CI runs.
SMALL = dict(downsample_times=2, num_stacks=2, stage_channels=[256, 256, 384], stage_blocks=[1, 1, 1])
# The decode settings of the mmdetection 3.3 config (centripetalnet_hourglass104_16xb6-crop511-210e-mstest_coco.py).
TEST_CFG = dict(corner_topk=100, local_maximum_kernel=3, distance_threshold=0.5, score_thr=0.05, max_per_img=100,
                nms=dict(type="soft_nms", iou_threshold=0.5, method="gaussian"))
MAP_NAMES = ("heat", "off", "gs", "cs", "dcn_offset")


def import_mmdet():
    "Import mmdetection with the ops shim; returns (MODELS registry, mmdet version). ImportError when not installed."
    shim = mmcv_ops_shim.install()
    import mmdet
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)     # init_weights logs every tensor at INFO
    return MODELS, mmdet.__version__, shim


def mmdet_config(backbone: dict, num_classes: int = 80) -> dict:
    "The model section of mmdetection 3.3's CentripetalNet config, with `backbone` (HG104 or SMALL)."
    return dict(type="CornerNet",
                backbone=dict(type="HourglassNet", norm_cfg=dict(type="BN", requires_grad=True), **backbone),
                neck=None,
                bbox_head=dict(type="CentripetalHead", num_classes=num_classes, in_channels=256,
                               num_feat_levels=backbone["num_stacks"], corner_emb_channels=0),
                train_cfg=None, test_cfg=TEST_CFG)


def build_mmdet(backbone: dict = SMALL, num_classes: int = 80, seed: int = 0, shift_cells: float = 8.0):
    """mmdetection's CentripetalNet with its own initialisation (init_weights), then random BatchNorm statistics and
    affine parameters (so that eval-mode BN is not the identity), in eval mode. The centripetal-shift heads' last bias is
    set to log(`shift_cells`): corners then point about that far inwards, so that pairs of corners about 2·shift_cells
    apart pass the central-region test and the decoders have pairs to agree on (with zero shifts every pair fails it)."""
    MODELS, _, _ = import_mmdet()
    torch.manual_seed(seed)
    model = MODELS.build(mmdet_config(backbone, num_classes))
    model.init_weights()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        for c in ("tl", "br"):
            for head in getattr(model.bbox_head, f"{c}_centripetal_shift"): head[-1].conv.bias.fill_(math.log(shift_cells))
    return model.eval()


def key_list(model) -> str:
    "'name shape' lines of a state dict (the fixture tests/peer/mmdet33_hg104_keys.txt)."
    return "".join(f"{k} {','.join(map(str, v.shape))}\n" for k, v in model.state_dict().items())


def _hook_outputs(modules: dict):
    "Register forward hooks; returns (store dict name -> output, list of handles)."
    store, handles = {}, []
    for name, mod in modules.items():
        handles.append(mod.register_forward_hook(lambda m, i, o, name=name: store.__setitem__(name, o)))
    return store, handles


@torch.no_grad()
def mmdet_maps(model, x):
    "Every raw map of mmdetection's model on x: {'tl_heat/0': ..., ..., 'br_dcn_offset/1': ...}, plus its head outputs."
    head = model.bbox_head
    n = head.num_feat_levels
    store, handles = _hook_outputs({f"{c}_dcn_offset/{s}": getattr(head, f"{c}_dcn_offset")[s] for c in ("tl", "br")
                                    for s in range(n)})
    try:
        outs = head(model.backbone(x))
    finally:
        for h in handles: h.remove()
    names = ["tl_heat", "br_heat", "tl_off", "br_off", "tl_gs", "br_gs", "tl_cs", "br_cs"]
    maps = {f"{name}/{s}": outs[j][s] for j, name in enumerate(names) for s in range(n)}
    maps.update(store)
    return maps, outs


@torch.no_grad()
def our_maps(model, x):
    "Every raw map of our model on x, same names as `mmdet_maps`."
    n = model.backbone.num_stacks
    mods = {f"{c}_dcn_offset/{s}": getattr(model, c)[s].adapt.guide_offset for c in ("tl", "br") for s in range(n)}
    store, handles = _hook_outputs(mods)
    try:
        _, per_stack = model.forward_maps(x)
    finally:
        for h in handles: h.remove()
    maps = {}
    for s, m in enumerate(per_stack):
        for c in ("tl", "br"):
            for name in ("heat", "off", "gs", "cs"): maps[f"{c}_{name}/{s}"] = m[f"{c}_{name}"]
            maps[f"{c}_dcn_offset/{s}"] = store[f"{c}_dcn_offset/{s}"]
    return maps


def compare_maps(ref: dict, ours: dict) -> dict:
    "name -> (max |ref - ours|, max |ref|) for every map of `ref`."
    out = {}
    for k, r in ref.items():
        o = ours[k]
        if r.shape != o.shape: raise AssertionError(f"{k}: shape {tuple(r.shape)} (mmdet) vs {tuple(o.shape)} (ours)")
        out[k] = ((r - o).abs().max().item(), r.abs().max().item())
    return out


def within(diff: float, scale: float, tol: float = 1e-4) -> bool:
    "Equal within `tol` absolute, or `tol` relative to the map's largest value when that exceeds 1 (random weights)."
    return diff <= tol * max(1.0, scale)


def converted_model(ref, our_cfg=None, backbone=None):
    "Our CentripetalNet holding ref's weights through convert_state_dict (strict load). Returns (model, report)."
    from centripetal.convert import convert_state_dict, is_complete, release_model_config
    from centripetal.model import CentripetalNet
    from centripetal.hourglass import HourglassNet
    n = ref.backbone.num_stacks
    cfg = our_cfg or release_model_config(ref.bbox_head.num_classes, n)
    model = CentripetalNet(cfg)
    if backbone is not None:   # the small hourglass: same widths and stem as mmdetection's
        model.backbone = HourglassNet(n, dims=backbone["stage_channels"], blocks=backbone["stage_blocks"],
                                      stem_ch=backbone["stage_channels"][0] // 2, out_ch=256)
    converted, report = convert_state_dict(ref.state_dict(), "mmdet", model.state_dict())
    if not is_complete(report): raise AssertionError(f"incomplete conversion: { {k: v[:5] for k, v in report.items()} }")
    model.load_state_dict(converted, strict=True)
    return model.eval(), report


@torch.no_grad()
def decoded_pairs(ref, maps_ref: dict, maps_ours: dict, size: int, stack: int):
    """Pre-NMS pairs of the last stack: mmdetection's `_decode_heatmap` on its maps, our `decode_pairs` (arithmetic pair
    score, hard rejection at 0.5) on ours. Returns two (N, 6) tensors (x1, y1, x2, y2, score, label) of kept pairs."""
    from centripetal.matching import DecodeConfig, decode_pairs
    g = lambda m, k: m[f"{k}/{stack}"]
    H = g(maps_ref, "tl_heat").shape[-1]
    boxes, scores, clses = ref.bbox_head._decode_heatmap(
        g(maps_ref, "tl_heat").sigmoid(), g(maps_ref, "br_heat").sigmoid(), g(maps_ref, "tl_off"), g(maps_ref, "br_off"),
        tl_centripetal_shift=g(maps_ref, "tl_cs"), br_centripetal_shift=g(maps_ref, "br_cs"),
        img_meta=dict(batch_input_shape=(size, size)), k=TEST_CFG["corner_topk"],
        kernel=TEST_CFG["local_maximum_kernel"], distance_threshold=TEST_CFG["distance_threshold"], num_dets=1000)
    keep = scores[0, :, 0] > 0
    theirs = torch.cat([boxes[0][keep], scores[0][keep], clses[0][keep].float()], 1)
    outputs = {k: g(maps_ours, k) for k in ("tl_heat", "br_heat", "tl_off", "br_off", "tl_cs", "br_cs")}
    cfg = DecodeConfig(pair_score="arithmetic", rescore="hard", hard_thresh=0.5, k=TEST_CFG["corner_topk"], num_pairs=1000)
    d = decode_pairs(outputs, cfg, stride=size / H)
    keep = d["scores"][0] > 0
    ours = torch.cat([d["boxes"][0][keep], d["scores"][0][keep, None], d["labels"][0][keep, None].float()], 1)
    return theirs, ours


def sort_pairs(p):
    "Rows sorted by score (descending), ties by label and box: a canonical order for comparing two decoders."
    order = sorted(range(len(p)), key=lambda i: (-round(p[i, 4].item(), 5), p[i, 5].item(), *p[i, :4].tolist()))
    return p[order]


def plant_objects(maps: dict, stack: int, n_objects: int = 8, seed: int = 0) -> dict:
    """A copy of `maps` with `n_objects` random boxes planted in the last stack: at each box's top-left and bottom-right
    cell the heat logit of its class is set to 4 and the centripetal shift to log(distance to the box center), so that
    the decoders have real pairs to keep; every other value stays the network's. Apply it to both sides' maps (same
    seed): the network maps are already equal, this gives the decoders something to agree on."""
    g = torch.Generator().manual_seed(seed)
    out = {k: v.clone() for k, v in maps.items()}
    C, H, W = out[f"tl_heat/{stack}"].shape[1:]
    for _ in range(n_objects):
        w, h = (torch.randint(4, W // 2, (2,), generator=g)).tolist()
        x1, y1 = torch.randint(0, W - w, (1,), generator=g).item(), torch.randint(0, H - h, (1,), generator=g).item()
        c = torch.randint(0, C, (1,), generator=g).item()
        x2, y2 = x1 + w, y1 + h
        for corner, (x, y) in (("tl", (x1, y1)), ("br", (x2, y2))):
            out[f"{corner}_heat/{stack}"][0, c, y, x] = 4.0
            out[f"{corner}_cs/{stack}"][0, :, y, x] = torch.tensor([math.log(w / 2), math.log(h / 2)])
    return out
