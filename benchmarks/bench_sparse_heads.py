#!/usr/bin/env python
"""Sparse corner heads in training: a measurement, not the training path (issue #21).

In training, the local-offset, guiding-shift and centripetal-shift heads and the cross-star adaption run over every
cell of the feature map, while their losses (smooth-L1, Eq. 2 and 6) read them only at the ground-truth corner cells,
and the mask head's proposals read the offsets and shifts only at the top-k decoded corners. At inference
`CornerBranch.cs_at` / `CrossStarAdaption.at_cells` already compute the shift at the cells read only. This script
computes the three heads and the adaption the same way in training, at the ground-truth cells (and, without gradient,
at the decoded corners for the mask proposals), and compares with the dense training step:

- the losses and every parameter's gradient, dense against sparse (max absolute difference, and the largest
  difference relative to the largest gradient of that parameter): the same function, summed in another order, so equal
  to float rounding but not bit for bit;
- the time of forward + backward of the whole loss, median of --reps steps after --warmup ones, both forms alternated.

Training is not switched to the sparse form: it would change the summation order, and so the numbers of every run in
results/. Run from the repository root:

    OMP_NUM_THREADS=1 python benchmarks/bench_sparse_heads.py                # small model, batch 8, 160 px, 1 thread
    OMP_NUM_THREADS=1 python benchmarks/bench_sparse_heads.py --channels 64 \\
        --checkpoint results/cpu-converged/pilot/full/seed0/trunk/last.pt    # the sweep's model, trained weights
"""
import argparse, statistics, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
import torch.nn.functional as F


def patch_rows(p, ys, xs, k=3):
    "The k×k patches of `p` (B, C, H, W) centered on cells `ys`, `xs` (B, P), zero outside the map -> (B, P, k·k·C)."
    B, C, H, W = p.shape
    d = torch.arange(k, device=p.device) - k // 2
    ny, nx = ys[..., None] + d.repeat_interleave(k), xs[..., None] + d.repeat(k)         # (B, P, k²), taps row-major
    inside = (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
    flat = (ny.clamp(0, H - 1) * W + nx.clamp(0, W - 1)).flatten(1)                       # (B, P·k²)
    v = p.flatten(2).gather(2, flat[:, None].expand(B, C, flat.shape[1]))                 # (B, C, P·k²)
    v = v.view(B, C, *ny.shape[1:]).permute(0, 2, 3, 1) * inside[..., None]              # (B, P, k², C)
    return v.reshape(B, ys.shape[1], -1)


def head_at(head, p, ys, xs):
    "A `make_head` head (3×3 conv, ReLU, 1×1 conv) at cells `ys`, `xs` (B, P) of `p` only -> (B, P, out)."
    conv, last = head[0], head[-1]
    a = patch_rows(p, ys, xs, conv.kernel_size[0])
    h = (a @ conv.weight.permute(0, 2, 3, 1).reshape(conv.out_channels, -1).t() + conv.bias).relu()
    return h @ last.weight.flatten(1).t() + last.bias


def neighbours(ys, xs, k=3):
    d = torch.arange(k, device=ys.device) - k // 2
    return (ys[..., None] + d.repeat_interleave(k)).flatten(1), (xs[..., None] + d.repeat(k)).flatten(1)


def guide_map(br, p, ys, xs):
    """A (B, 2, H, W) guiding-shift map that holds the right values at the k×k neighbours of `ys`, `xs` (what the
    adaption reads there; detached, as the adaption detaches it) and zeros elsewhere."""
    B, _, H, W = p.shape
    ny, nx = neighbours(ys, xs, br.adapt.kernel)
    with torch.no_grad(): g = head_at(br.gs, p, ny, nx)                                  # (B, P·k², 2)
    inside = (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
    flat = torch.where(inside, ny.clamp(0, H - 1) * W + nx.clamp(0, W - 1), H * W)       # outside: a spare slot
    dense = g.new_zeros(B, 2, H * W + 1).scatter_(2, flat[:, None].expand(B, 2, flat.shape[1]), g.transpose(1, 2))
    return dense[..., :H * W].view(B, 2, H, W)


def scatter_map(values, ys, xs, hw):
    "A (B, D, H, W) map, zero but for `values` (B, P, D) at cells `ys`, `xs` (B, P) (inside the map)."
    B, P, D = values.shape
    H, W = hw
    dense = values.new_zeros(B, D, H * W)
    dense.scatter_(2, (ys * W + xs)[:, None].expand(B, D, P), values.transpose(1, 2))
    return dense.view(B, D, H, W)


def smooth_l1_rows(pred, target, mask, beta=1.0):
    "`losses.smooth_l1_at` on predictions already read at the cells: pred, target (B, M, C), mask (B, M)."
    m = mask.unsqueeze(-1)
    target = torch.where(m, target.to(pred.dtype), pred.detach())
    per = F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    return torch.where(m, per, 0.0).sum() / mask.sum().clamp(min=1)


def sparse_loss(model, images, targets):
    """`CentripetalNet.loss` of the full model (centripetal matcher, cross-star adaption, mask head) with the offset,
    guiding-shift and centripetal-shift heads and the adaption computed at the ground-truth corner cells only (and, for
    the mask proposals, without gradient at the decoded corners)."""
    import centripetal.model as M
    from centripetal.losses import focal_loss, total_loss
    from centripetal.matching import topk_corners, peak_topk_auto
    from centripetal.mask_head import _mask_proposals, _select_rois, _mask_loss
    cfg = model.cfg
    feats = model.backbone(images)
    stride = model.stride(images, feats)
    H, W = feats[-1].shape[-2:]
    gt = M._render_batch(targets, cfg.num_classes, (H, W), stride, images.device,
                         center=cfg.matcher == "center_heatmap")
    mask = gt["obj_mask"]
    total, maps = {}, []
    dcfg = M.DecodeConfig(matcher=cfg.matcher, k=max(cfg.mask_proposals, 8), num_pairs=cfg.mask_proposals)
    for i, f in enumerate(feats):
        L, m, det = {"off": 0, "guide": 0, "cs": 0}, {}, []
        for kind, br in (("tl", model.tl[i]), ("br", model.br[i])):
            p = br.pool(f)
            heat = br.heat(p)
            ind = gt[f"{kind}_ind"]
            ys, xs = torch.div(ind, W, rounding_mode="floor"), ind % W
            det.append(focal_loss(heat, gt[f"{kind}_heat"]))
            L["off"] = L["off"] + smooth_l1_rows(head_at(br.off, p, ys, xs), gt[f"{kind}_off"], mask)
            L["guide"] = L["guide"] + smooth_l1_rows(head_at(br.gs, p, ys, xs), gt[f"{kind}_gs"], mask)
            cs = br.cs_at(p, guide_map(br, p, ys, xs), ys, xs)
            L["cs"] = L["cs"] + smooth_l1_rows(cs, gt[f"{kind}_cs"], mask)
            if i == len(feats) - 1 and model.mask is not None:   # what the decoder reads, at the decoded corners only
                with torch.no_grad():
                    _, _, ty, tx = topk_corners(heat, min(dcfg.k, heat[0].numel()), dcfg.kernel, logits=True,
                                                search=peak_topk_auto)      # the cells the proposals' decoder reads
                    m[f"{kind}_heat"] = heat
                    m[f"{kind}_off"] = scatter_map(head_at(br.off, p, ty, tx), ty, tx, (H, W))
                    m[f"{kind}_cs"] = scatter_map(br.cs_at(p, guide_map(br, p, ty, tx), ty, tx), ty, tx, (H, W))
        L = {"det": (det[0] + det[1]) / 2, **L}                   # the order and arithmetic of `stack_losses`
        for k, v in L.items(): total[k] = total.get(k, 0) + v
        maps.append(m)
    if model.mask is not None:
        cand = _mask_proposals(maps, targets, stride, cfg.matcher, cfg.mask_proposals)
        rois, obj = _select_rois(*cand, int(cand[-1].sum()), cfg.mask_rois, None)
        total["mask"] = _mask_loss(model.mask, feats[-1], targets, rois, obj, stride)
    total["loss"] = total_loss(total, cfg.loss_weights)
    return total


def grads_of(model, fn, images, targets, seed=0):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    losses = fn(images, targets)
    losses["loss"].backward()
    return ({k: float(v.detach()) for k, v in losses.items()},
            {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})


def median_s(fn, reps, warmup):
    for _ in range(warmup): fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts), ts


def batch_of(data_root, size, n, first):
    from centripetal.config import TrainConfig
    from centripetal.train import build_dataset
    from centripetal.data import collate
    tc = TrainConfig(data_root=str(data_root), input_size=size, with_masks=True, seed=0)
    ds = build_dataset(tc, "train", train=True)
    return collate([ds[first + i] for i in range(n)])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, default=32, help="small hourglass width (32: the CI model, 64: the sweep)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=160, help="training crop size in pixels")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default=str(ROOT / "data" / "shapes"),
                    help="a shapes dataset (generated into a temporary folder when missing)")
    ap.add_argument("--checkpoint", help="weights to load (a last.pt of the same model), else a fresh model")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from centripetal.model import CentripetalNet, ModelConfig
    data, tmp = Path(args.data_root), None
    if not (data / "train.json").is_file():
        from centripetal.shapes import generate_shapes
        tmp = tempfile.TemporaryDirectory(prefix="sparse_heads_"); data = Path(tmp.name)
        generate_shapes(data, n_train=max(16, args.batch), n_val=2, size=256, seed=0, progress=False)
    images, targets = batch_of(data, args.size, args.batch, 0)
    if args.checkpoint:
        from centripetal.checkpoint import model_config_of
        ck = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        cfg = model_config_of(ck)
        model = CentripetalNet(cfg); model.load_state_dict(ck["model"])
    else:
        cfg = ModelConfig(num_classes=4, backbone="small", small_channels=args.channels, small_stacks=1)
        torch.manual_seed(0); model = CentripetalNet(cfg)
    model.train()
    n_obj = int(sum(len(t["boxes"]) for t in targets))
    H = images.shape[-1] // 4
    print(f"model: small hourglass, {cfg.small_channels} channels, {cfg.small_stacks} stack(s), cross-star adaption, "
          f"mask head ({'checkpoint ' + args.checkpoint if args.checkpoint else 'fresh weights'}); batch {args.batch} "
          f"× {args.size} px ({H}×{H} maps), {n_obj} objects; {torch.get_num_threads()} thread(s)")

    dense_fn = lambda i, t: model.loss(i, t)
    sparse_fn = lambda i, t: sparse_loss(model, i, t)
    (ld, gd), (ls, gs) = grads_of(model, dense_fn, images, targets), grads_of(model, sparse_fn, images, targets)
    print("\nlosses (dense | sparse | difference):")
    for k in ld: print(f"  {k:6s} {ld[k]:.7f} | {ls[k]:.7f} | {ls[k] - ld[k]:+.2e}")
    assert gd.keys() == gs.keys(), sorted(set(gd) ^ set(gs))
    worst = max(gd, key=lambda n: (gd[n] - gs[n]).abs().max() / gd[n].abs().max().clamp(min=1e-30))
    abs_diff = max(float((gd[n] - gs[n]).abs().max()) for n in gd)
    rel = lambda n: float((gd[n] - gs[n]).abs().max() / gd[n].abs().max().clamp(min=1e-30))
    identical = sum(torch.equal(gd[n], gs[n]) for n in gd)
    print(f"\ngradients of {len(gd)} parameters: {identical} bit-identical; max |dense - sparse| {abs_diff:.2e}; largest "
          f"relative to the parameter's largest gradient {rel(worst):.2e} ({worst})")
    for part in ("backbone", "pool", ".heat.", ".off.", ".gs.", ".adapt.", ".cs.", "mask."):
        names = [n for n in gd if part in n]
        if names: print(f"  {part.strip('.'):9s} max relative difference {max(rel(n) for n in names):.2e}")

    def step(fn):
        def run():
            model.zero_grad(set_to_none=True); torch.manual_seed(0); fn(images, targets)["loss"].backward()
        return run
    t_d, t_s = [], []
    for _ in range(2):                               # alternated: load changes on a shared machine hit both
        t_d += median_s(step(dense_fn), args.reps, args.warmup)[1]
        t_s += median_s(step(sparse_fn), args.reps, args.warmup)[1]
    md, ms = statistics.median(t_d), statistics.median(t_s)
    print(f"\nforward + backward of the loss, median of {len(t_d)} steps: dense {md * 1e3:.0f} ms, sparse "
          f"{ms * 1e3:.0f} ms: {100 * (md - ms) / md:+.1f} % of the step saved ({(md - ms) * 1e3:.0f} ms)")
    if tmp is not None: tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
