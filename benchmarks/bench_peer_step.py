#!/usr/bin/env python3
"""Our training step beside a probe built on mmdetection 3.3's CentripetalHead: same backbone, same images (issue #13).

OURS: `centripetal.model.CentripetalNet` with the cpu profile's ModelConfig (small hourglass, centripetal matcher,
cross-star adaption) without the mask head, the data's classes, channels-last when the cpu profile's TrainConfig says
so, trained by `centripetal.train.train_step` (Adam at the profile's lr, its gradient clipping, fp32).
PROBE: the same backbone class and config (`centripetal.model.make_backbone`, built fresh from the same seed: the same
initial weights) followed by mmdetection's `CentripetalHead` (mmdet.models.dense_heads, built through its registry)
with in_channels = the backbone's out_ch, num_feat_levels = its stacks, the same classes and mmdetection's default
losses and widths (its prediction branches are 3×3 convs to 256 channels and its corner pooling 128 wide, whatever
in_channels is, so its head costs more FLOPs than ours: both counts are printed). Its step: zero_grad,
`head.loss_by_feat(*head(backbone(images)), batch_gt_instances, batch_img_metas)`, the sum of every loss term,
backward, the same clipping and Adam. The images run in the same memory format on both sides (--probe-channels-last).
mmcv-lite has no compiled ops: tests/peer/mmcv_ops_shim.py stands in for them, so the probe's deformable convolution
(forward and backward) is torchvision's CPU kernel. Full mmcv would run its own CPU im2col kernel, of the same
kind but not measured here, so how much of that time mmcv itself would spend is unknown. Its corner pooling is
mmcv's Python torch.cummax path (what mmcv itself runs on torch >= 1.5).

Both see the same tensors: --batch WHOLE --size-px images of a generated shapes dataset (no augmentation; --data reads
an existing one), as our targets (boxes, labels) and as mmdetection's InstanceData + img_metas. In one process, after
--warmup untimed steps of each, --steps rounds of (our step, probe step), each timed with perf_counter; the medians
give images/s of each and the ratio ours/probe. Then --breakdown-steps instrumented steps of each, with a perf_counter
around each phase (forward: backbone + head; loss: targets + loss terms; backward; optimizer: zero_grad, clip, Adam)
and around the probe's deformable-conv ops (their share of its step is printed), and last the FLOPs of one step of
each side counted with torch.utils.flop_counter.FlopCounterMode (convolutions and matmuls; pooling, grid_sample and
elementwise work are not counted, nor is torchvision's deformable conv: the probe's adaption conv is missing from its
count, while ours, a grid_sample + matmul on the CPU, has its matmul counted).
--probe-widths ours gives the probe's head our head's widths (then both heads are the same layers with the same
parameter count): what is left of the ratio is then the implementation, not the architecture. --probe-deform ours
makes the probe's deformable conv ours too (the torchvision CPU kernel dominates the probe's step otherwise): with
both, the ratio measures everything but the backbone and the adaption kernel: the rest of the head, targets, losses.
Needs the peer extra (pip install -e ".[peer]": mmdet 3.3, mmengine, mmcv-lite). Prints Markdown; asserts nothing.

    python benchmarks/bench_peer_step.py                                  # batch 8 × 256 px, 2 threads, 6 rounds
    python benchmarks/bench_peer_step.py --markdown results/peer_step.md
    python benchmarks/bench_peer_step.py --size 64 --batch 2 --steps 1 --warmup 1 --breakdown-steps 1   # smoke test
"""
import argparse, os, statistics, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))        # the checkout's package, not an installed copy
PEER = ROOT / "tests" / "peer"
NAME = "bench_peer_step.py"
WIDTHS = dict(mmdet="mmdetection's defaults (branches 256 wide, corner pooling 128)",
              ours="ours (branches in_channels wide, corner pooling in_channels / 2): the same layers as our head")
DEFORMS = dict(mmcv="mmcv's DeformConv2d through the ops shim (torchvision's CPU kernel)",
               ours="ours (centripetal.adaption.deform_conv2d_fast, as on our side)")
PHASES = ("forward (backbone + head)", "loss (targets + loss terms)", "backward", "optimizer (zero_grad, clip, Adam)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    a("--steps", type=int, default=6, help="timed rounds of (our step, probe step) (default 6)")
    a("--warmup", type=int, default=2, help="untimed steps of each side first (default 2)")
    a("--breakdown-steps", type=int, default=2, help="instrumented steps of each side for the phases (default 2)")
    a("--batch", type=int, default=8, help="images per step (default 8)")
    a("--size", type=int, default=256, help="side of the whole images in px (default 256; a multiple of 32)")
    a("--probe-channels-last", choices=["same", "on", "off"], default="same",
      help="the probe's memory format (default: the same as ours, the cpu profile's)")
    a("--probe-widths", choices=["mmdet", "ours"], default="mmdet",
      help="the probe head's widths: mmdetection's defaults (prediction branches 256 wide, corner pooling 128), or "
           "ours (in_channels and in_channels / 2), which makes the two heads the same layers (default: mmdet)")
    a("--probe-deform", choices=["mmcv", "ours"], default="mmcv",
      help="the probe's deformable conv: mmcv's DeformConv2d through the ops shim (torchvision's CPU kernel), or ours "
           "(centripetal.adaption.deform_conv2d_fast, what our side runs on the CPU) (default: mmcv)")
    a("--data", help="a shapes folder (train.json + images/); default: images generated in a temporary folder")
    a("--seed", type=int, default=0)
    a("--markdown", metavar="OUT", help="also write the Markdown to this file")
    args = p.parse_args(argv)
    for name, least in (("steps", 1), ("warmup", 0), ("breakdown_steps", 0), ("threads", 1), ("batch", 2),
                        ("size", 32)):
        if getattr(args, name) < least:
            p.error(f"--{name.replace('_', '-')} must be >= {least}, got {getattr(args, name)}")
    if args.size % 32:
        p.error(f"--size must be a multiple of 32 (the small hourglass halves it 5 times in all), got {args.size}")
    return args


# ------------------------------------------------------------------------------------------------------------ machine
from bench_utilisation import cpu_model, markdown_emitter  # noqa: E402  (this folder is the script's: on sys.path)


def load_average() -> str:
    "1-, 5- and 15-minute load averages as text ('n/a' where the OS has none)."
    try: return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, AttributeError): return "n/a"


# --------------------------------------------------------------------------------------------------------------- data
def make_data(args, tmp: Path) -> Path:
    "A shapes folder: --data, or 2 batches of --size-px images generated in `tmp`."
    if args.data:
        d = Path(args.data)
        if not (d / "train.json").is_file():
            raise SystemExit(f"{NAME}: --data {d} has no train.json; generate one with 'centripetal shapes --out {d}'")
        return d
    from centripetal.shapes import generate_shapes
    d = tmp / "shapes"
    generate_shapes(d, n_train=2 * args.batch, n_val=0, size=args.size, seed=args.seed, progress=False)
    return d


def load_batches(args, data: Path):
    """Two batches of whole images (test-mode loading: no augmentation, resized to fit --size and padded to it):
    [(images (B,3,S,S), our targets [{'boxes', 'labels'}], mmdet's batch_gt_instances, batch_img_metas)], and the
    dataset's number of classes."""
    import torch
    from mmengine.structures import InstanceData
    from centripetal.data import CocoDetection, collate
    ds = CocoDetection(str(data / "train.json"), str(data / "images"), input_size=(args.size, args.size), train=False)
    if len(ds) < args.batch:
        raise SystemExit(f"{NAME}: {data / 'train.json'} has {len(ds)} images, fewer than --batch {args.batch}; "
                         "use a smaller --batch or a larger dataset")
    batches = []
    for first in range(0, min(2 * args.batch, len(ds) - args.batch + 1), args.batch):
        images, targets = collate([ds[first + j] for j in range(args.batch)])
        ours = [dict(boxes=t["boxes"].float(), labels=t["labels"].long()) for t in targets]
        H, W = images.shape[-2:]
        gt = [InstanceData(bboxes=t["boxes"].float(), labels=t["labels"].long()) for t in ours]
        metas = [dict(img_shape=(H, W), pad_shape=(H, W), batch_input_shape=(H, W), ori_shape=(H, W))
                 for _ in ours]
        batches.append((images, ours, gt, metas))
    return batches, ds.num_classes


# ------------------------------------------------------------------------------------------------------------- models
def _config_api():
    "load_profile and update_config, wherever this checkout keeps them."
    try: from centripetal.config import load_profile, update_config
    except ImportError: from centripetal.train import load_profile, update_config
    return load_profile, update_config


def make_probe(backbone, head):
    "The probe: our backbone + mmdetection's CentripetalHead in one nn.Module (module paths 'Probe.backbone', ...)."
    import torch.nn as nn

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone, self.head = backbone, head

        def forward(self, images):
            "-> the head's 8 lists of per-stack maps (tl_heat, br_heat, tl_off, br_off, tl_gs, br_gs, tl_cs, br_cs)."
            return self.head(self.backbone(images))

        def loss(self, outs, gt, metas):
            "Sum of every term mmdetection's loss_by_feat returns (each a list over stacks), and the dict itself."
            terms = self.head.loss_by_feat(*outs, gt, metas)
            return sum(sum(v) if isinstance(v, (list, tuple)) else v for v in terms.values()), terms
    return Probe()


def matched_head_class():
    """mmdetection's CentripetalHead with our head's widths: every prediction branch's 3×3 conv keeps in_channels
    (mmdetection: 256) and the corner pooling's two branches are in_channels / 2 wide (mmdetection: 128). Nothing
    else changes (layers, losses, targets, init_weights)."""
    from mmdet.models.dense_heads import CentripetalHead
    from mmdet.models.dense_heads.corner_head import BiCornerPool
    import torch.nn as nn

    class CentripetalHeadOurWidths(CentripetalHead):
        def _make_layers(self, out_channels, in_channels=256, feat_channels=256):
            return super()._make_layers(out_channels, in_channels, in_channels)

        def _init_corner_kpt_layers(self):
            super()._init_corner_kpt_layers()
            mid = max(self.in_channels // 2, 8)          # our CornerPoolBlock's middle width
            for name, dirs in (("tl_pool", ["top", "left"]), ("br_pool", ["bottom", "right"])):
                setattr(self, name, nn.ModuleList(BiCornerPool(self.in_channels, dirs, feat_channels=mid,
                                                               out_channels=self.in_channels)
                                                  for _ in range(self.num_feat_levels)))
    return CentripetalHeadOurWidths


def use_our_deform_conv(head) -> int:
    """Make every mmcv DeformConv2d of `head` run `centripetal.adaption.deform_conv2d_fast` (plain autograd; same
    values and gradients as torchvision's kernel) instead of mmcv's op. Returns how many layers were switched."""
    import types
    from mmcv.ops import DeformConv2d
    from centripetal.adaption import deform_conv2d_fast

    def forward(self, x, offset):
        return deform_conv2d_fast(x, offset, self.weight, None, stride=self.stride, padding=self.padding,
                                  dilation=self.dilation)
    layers = [m for m in head.modules() if isinstance(m, DeformConv2d)]
    for m in layers:
        if m.groups != 1 or m.deform_groups != 1:
            raise SystemExit(f"{NAME}: --probe-deform ours handles groups = deform_groups = 1 only")
        m.forward = types.MethodType(forward, m)
    return len(layers)


def build(args, num_classes: int):
    "(our model, its optimizer, the train config, the probe, its optimizer, the two memory formats)."
    import torch
    sys.path.insert(0, str(PEER))
    try:
        import peer_models
        MODELS, mmdet_version, shim = peer_models.import_mmdet()
    except ImportError as e:
        raise SystemExit(f"{NAME}: mmdetection is not importable ({e}); install the peer extra: "
                         "pip install -e '.[peer]'")
    from centripetal.model import CentripetalNet, make_backbone
    load_profile, update_config = _config_api()
    model_cfg, train_cfg, _, _ = load_profile("cpu")
    model_cfg = update_config(model_cfg, dict(mask_head=False, adaption="cross_star", num_classes=num_classes))
    train_cfg = update_config(train_cfg, dict(batch_size=args.batch, input_size=args.size, device="cpu",
                                              accum_steps=1, amp=False, with_masks=False))
    ours_cl = bool(train_cfg.channels_last)
    probe_cl = {"same": ours_cl, "on": True, "off": False}[args.probe_channels_last]
    torch.manual_seed(args.seed)
    model = CentripetalNet(model_cfg).train()
    torch.manual_seed(args.seed)                  # CentripetalNet builds its backbone first: the same weights
    backbone = make_backbone(model_cfg)
    same = all(torch.equal(a, b) for a, b in zip(model.backbone.state_dict().values(),
                                                 backbone.state_dict().values()))
    if not same: raise AssertionError("the probe's backbone does not start from our backbone's weights")
    head_cfg = dict(type="CentripetalHead", num_classes=num_classes, in_channels=backbone.out_ch,
                    num_feat_levels=backbone.num_stacks, corner_emb_channels=0, train_cfg=None,
                    test_cfg=peer_models.TEST_CFG)
    if args.probe_widths == "ours":
        head_cfg.pop("type")
        head = matched_head_class()(**head_cfg)
    else: head = MODELS.build(head_cfg)
    head.init_weights()
    if args.probe_deform == "ours": use_our_deform_conv(head)
    probe = make_probe(backbone, head).train()
    if ours_cl: model = model.to(memory_format=torch.channels_last)
    if probe_cl: probe.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg.lr)
    probe_opt = torch.optim.Adam(probe.parameters(), lr=train_cfg.lr)
    info = dict(deform=args.probe_deform, widths=args.probe_widths, mmdet=mmdet_version, shim=shim,
                model_cfg=model_cfg, train_cfg=train_cfg, ours_cl=ours_cl,
                probe_cl=probe_cl)
    return model, opt, probe, probe_opt, info


def memory_format(images, channels_last: bool):
    import torch
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images.contiguous()


# -------------------------------------------------------------------------------------------------------------- steps
def make_steps(model, opt, probe, probe_opt, info):
    "(our step(batch), the probe's step(batch)): each a whole training step on one prepared batch."
    import torch
    from centripetal.train import train_step
    cfg = info["train_cfg"]
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    device = torch.device("cpu")

    def ours(batch):
        return train_step(model, batch["ours_images"], batch["targets"], opt, scaler, cfg, device)

    def theirs(batch):
        probe_opt.zero_grad(set_to_none=True)
        loss, _ = probe.loss(probe(batch["probe_images"]), batch["gt"], batch["metas"])
        if not torch.isfinite(loss): raise FloatingPointError(f"the probe's loss is not finite: {loss.item()}")
        loss.backward()
        if cfg.grad_clip > 0: torch.nn.utils.clip_grad_norm_(probe.parameters(), cfg.grad_clip)
        probe_opt.step()
        return loss.detach()
    return ours, theirs


def prepare(batches, info):
    "Each batch as both sides take it: the same image tensor in each side's memory format."
    return [dict(ours_images=memory_format(im, info["ours_cl"]), probe_images=memory_format(im, info["probe_cl"]),
                 targets=t, gt=gt, metas=metas) for im, t, gt, metas in batches]


def alternate(ours, theirs, batches, warmup: int, steps: int):
    "Seconds of each side's timed steps: `warmup` untimed steps of each, then `steps` rounds of (ours, probe)."
    times = dict(ours=[], probe=[])
    for i in range(warmup + steps):
        b = batches[i % len(batches)]
        for side, fn in (("ours", ours), ("probe", theirs)):
            t = time.perf_counter(); fn(b); dt = time.perf_counter() - t
            if i >= warmup: times[side].append(dt)
    return times


class Timer:
    "Adds perf_counter seconds to phases: `with timer('backward'): ...`."
    def __init__(self): self.s = {p: 0.0 for p in PHASES}

    def __call__(self, phase):
        timer = self

        class _T:
            def __enter__(self): self.t = time.perf_counter()
            def __exit__(self, *exc): timer.s[phase] += time.perf_counter() - self.t
        return _T()


def ours_phases(model, opt, info, batches, n: int) -> dict:
    """Seconds per phase of `n` of our steps, train_step's work done here phase by phase (fp32, no accumulation):
    forward = model.forward_maps (timed through an instance attribute wrapping it); loss = the rest of model(images,
    targets) (target rendering, loss terms, their sum)."""
    import torch
    cfg, timer = info["train_cfg"], Timer()
    inner = model.forward_maps
    fwd = [0.0]

    def timed_maps(*a, **k):
        t = time.perf_counter()
        try: return inner(*a, **k)
        finally: fwd[0] += time.perf_counter() - t
    model.forward_maps = timed_maps
    try:
        for i in range(n):
            b = batches[i % len(batches)]
            with timer(PHASES[3]): opt.zero_grad(set_to_none=True)
            t = time.perf_counter(); f0 = fwd[0]
            losses = model(b["ours_images"], b["targets"])
            whole, f = time.perf_counter() - t, fwd[0] - f0
            timer.s[PHASES[0]] += f
            timer.s[PHASES[1]] += whole - f
            with timer(PHASES[2]): losses["loss"].backward()
            with timer(PHASES[3]):
                if cfg.grad_clip > 0: torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
    finally:
        del model.forward_maps                     # the class's method again
    return timer.s


DEFORM_OPS = ("deform_conv_forward", "deform_conv_backward_input", "deform_conv_backward_parameters")


def probe_phases(probe, opt, info, batches, n: int) -> tuple:
    """(seconds per phase, seconds inside the deformable conv's ops) of `n` probe steps: forward = backbone + head;
    loss = loss_by_feat (targets + terms) + sum. The deformable conv's ops (mmcv._ext, the shim's torchvision kernels)
    are timed by wrapping them in the extension module for these steps only."""
    import torch
    cfg, timer, inside = info["train_cfg"], Timer(), [0.0]
    ext = sys.modules.get("mmcv._ext")
    originals = {name: getattr(ext, name) for name in DEFORM_OPS if ext is not None and name in vars(ext)}

    def timed(fn):
        def op(*a, **k):
            t = time.perf_counter()
            try: return fn(*a, **k)
            finally: inside[0] += time.perf_counter() - t
        return op
    for name, fn in originals.items(): setattr(ext, name, timed(fn))
    try:
        for i in range(n):
            b = batches[i % len(batches)]
            with timer(PHASES[3]): opt.zero_grad(set_to_none=True)
            with timer(PHASES[0]): outs = probe(b["probe_images"])
            with timer(PHASES[1]): loss, _ = probe.loss(outs, b["gt"], b["metas"])
            with timer(PHASES[2]): loss.backward()
            with timer(PHASES[3]):
                if cfg.grad_clip > 0: torch.nn.utils.clip_grad_norm_(probe.parameters(), cfg.grad_clip)
                opt.step()
    finally:
        for name, fn in originals.items(): setattr(ext, name, fn)
    return timer.s, (inside[0] if originals else None)


def count_flops(step, batch, forward, backbone_path: str) -> dict:
    """FLOPs of one whole training step, and of one forward (no grad) split into the backbone (module path ending in
    `backbone_path`) and the rest (head)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: step(batch)
    total = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc, torch.no_grad(): forward(batch)
    counts = fc.get_flop_counts()
    bb = sum(sum(v.values()) for k, v in counts.items() if k.endswith(backbone_path) and k.count(".") == 1)
    return dict(step=total, forward=fc.get_total_flops(), backbone=bb)


# ---------------------------------------------------------------------------------------------------------- reporting
def si(x: float, unit: str = "FLOP") -> str:
    "x with an SI prefix: 70.5 GFLOP."
    for p, f in (("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if abs(x) >= f: return f"{x / f:.3g} {p}{unit}" if x / f < 100 else f"{x / f:.1f} {p}{unit}"
    return f"{x:.3g} {unit}"


def n_params(module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.3f} M"


def step_table(args, times: dict, flops: dict, model, probe) -> tuple:
    "(Markdown rows of the timed steps, the ratio ours/probe of images/s)."
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: args.batch / med[k] for k in med}
    head_ours = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("backbone.")) / 1e6
    rows = ["| side | s/step (median) | min - max | images/s | FLOPs/step | forward: backbone / head | "
            "achieved FLOP/s | parameters (head) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for side, label, params, head in (("ours", "ours: CentripetalNet + train_step", n_params(model), head_ours),
                                      ("probe", "probe: same backbone + mmdet CentripetalHead", n_params(probe),
                                       sum(p.numel() for p in probe.head.parameters()) / 1e6)):
        f, t = flops[side], times[side]
        rows.append(f"| {label} | {med[side]:.3f} | {min(t):.3f} - {max(t):.3f} | {rate[side]:.2f} | "
                    f"{si(f['step'])} | {si(f['backbone'])} / {si(f['forward'] - f['backbone'])} | "
                    f"{si(f['step'] / med[side], 'FLOP/s')} | {params} ({head:.3f} M) |")
    return rows, rate["ours"] / rate["probe"]


def phase_table(ours: dict, theirs: dict, n: int) -> list:
    "Markdown rows: ms per step of each phase, each side, and the probe's time over ours."
    rows = ["| phase | ours ms/step | probe ms/step | probe / ours |", "|---|---:|---:|---:|"]
    for p in PHASES + ("**sum**",):
        a = (sum(ours.values()) if p == "**sum**" else ours[p]) * 1000 / n
        b = (sum(theirs.values()) if p == "**sum**" else theirs[p]) * 1000 / n
        rows.append(f"| {p} | {a:.1f} | {b:.1f} | {b / a:.2f}× |" if a > 0 else f"| {p} | {a:.1f} | {b:.1f} | - |")
    return rows


# --------------------------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    emit = markdown_emitter(args.markdown)
    load0 = load_average()
    emit([f"# {NAME} ({time.strftime('%Y-%m-%d %H:%M %Z')})", "",
          f"`python benchmarks/{NAME} {' '.join(sys.argv[1:] if argv is None else argv)}`", ""])
    with tempfile.TemporaryDirectory(prefix="bench_peer_") as tmp:
        batches, num_classes = load_batches(args, make_data(args, Path(tmp)))
    model, opt, probe, probe_opt, info = build(args, num_classes)
    batches = prepare(batches, info)
    ours, theirs = make_steps(model, opt, probe, probe_opt, info)
    times = alternate(ours, theirs, batches, args.warmup, args.steps)
    if args.breakdown_steps:                      # right after the timed rounds: warm, and before the FLOP counter runs
        phases = (ours_phases(model, opt, info, batches, args.breakdown_steps),
                  *probe_phases(probe, probe_opt, info, batches, args.breakdown_steps))
    flops = dict(ours=count_flops(ours, batches[0], lambda b: model(b["ours_images"], b["targets"]), ".backbone"),
                 probe=count_flops(theirs, batches[0], lambda b: probe(b["probe_images"]), ".backbone"))
    rows, ratio = step_table(args, times, flops, model, probe)
    c = info["model_cfg"]
    fmt = lambda cl: "channels-last" if cl else "NCHW"
    emit([f"## Training step: ours vs mmdetection {info['mmdet']}'s CentripetalHead, same backbone and images", "",
          f"CPU {cpu_model()} ({os.cpu_count()} cores), {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"mmdet {info['mmdet']} (mmcv ops shim: {info['shim']}). Load average (1 / 5 / 15 min) {load0} at the start.",
          "",
          f"Backbone: small hourglass {c.small_channels} ch × {c.small_stacks} stack(s) (cpu profile), same initial "
          f"weights on both sides; {c.adaption} adaption, {c.matcher} matcher, no mask head, {c.num_classes} classes. "
          f"Batch {args.batch} whole {args.size}-px shapes images (no augmentation), the same tensors on both sides; "
          f"ours {fmt(info['ours_cl'])}, probe {fmt(info['probe_cl'])}; probe head widths: {WIDTHS[info['widths']]}; "
          f"probe deformable conv: {DEFORMS[info['deform']]}; fp32; Adam lr {info['train_cfg'].lr}, "
          f"grad clip {info['train_cfg'].grad_clip}. {args.warmup} untimed step(s) of each, then {args.steps} rounds "
          "of (our step, probe step).", "",
          *rows, ""])
    verdict = "met" if ratio >= 1.3 else "NOT met"
    emit([f"**ratio ours/probe (images/s): {ratio:.2f}×** (issue #13's target: ≥ 1.3×, {verdict} on this run)", ""])
    if args.breakdown_steps:
        n = args.breakdown_steps
        a, b, deform = phases
        dcn = ("" if not deform else
               f" Of the probe's step, {deform * 1000 / n:.1f} ms ({100 * deform / sum(b.values()):.0f} %) are inside "
               "the deformable conv's mmcv ops (forward and backward; the shim's torchvision CPU kernel).")
        emit([f"### Phases ({n} instrumented step(s) of each, perf_counter around each phase)", "",
              *phase_table(a, b, n), "",
              "Ours: forward = `forward_maps` (backbone + corner branches), loss = the rest of `model(images, "
              "targets)` (target rendering, loss terms). Probe: forward = backbone + `head(feats)`, loss = "
              "`loss_by_feat` (mmdetection's get_targets, a Python loop over the boxes, then the terms) + their sum."
              + dcn,
              ""])
    emit([f"Load average (1 / 5 / 15 min) {load_average()} at the end (other jobs on the machine make the figures "
          "noisier).", ""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
