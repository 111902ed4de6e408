#!/usr/bin/env python3
"""Utilisation of a training step: its FLOPs, the FLOP/s achieved beside the same run's matmul peak, and its phases.

For each model: the profile's model (small: the cpu profile; hourglass104: the paper profile, with the heads sized for
the shapes data's 4 classes) and batches made the way training makes them (CocoDetection crops of generated shapes
images, `collate`, `to_device`, channels-last when the profile says so). Then
  1. the FLOPs of one training step (forward with the loss, backward), counted with torch.utils.flop_counter
     (convolutions and matmuls; grid_sample, pooling and elementwise work are not counted), and of the forward alone;
  2. --steps timed `train_step` calls (after --warmup untimed ones; CUDA synchronised), data excluded, and the achieved
     FLOP/s beside a large matmul timed in the same process at the same precision and thread count (2048² on the CPU,
     8192² on CUDA);
  3. a torch.profiler breakdown of --profile-steps steps, data included, into ranges this script adds by wrapping the
     model's sub-calls from outside (nothing in the package is edited); on CUDA each range synchronises so that its
     wall time is its own, and a second profiled pass without those syncs gives the share of the step in CUDA kernels.
Prints Markdown (also written to --markdown OUT, after each table); asserts nothing.

    python benchmarks/bench_utilisation.py                       # small model, the cpu profile's step, this machine
    python benchmarks/bench_utilisation.py --model both --device cuda --precision bf16
    python benchmarks/bench_utilisation.py --model hourglass104 --batch 6 --size 511 --markdown hg.md
    python benchmarks/bench_utilisation.py --batch 2 --size 64 --steps 1 --warmup 0 --profile-steps 1   # smoke test
"""
import argparse, contextlib, functools, os, platform, statistics, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))        # the checkout's package, not an installed copy

# model name -> the profile it comes from, default batch and crop, and the side of the generated images it crops from
MODELS = {
    "small": dict(profile="cpu", batch=None, size=None, image_size=256),
    "hourglass104": dict(profile="paper", batch=6, size=511, image_size=511),
}
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
PREFIX = "bench: "

# Phases of the breakdown, in table order: (name, host-side?). Host-side = what is not the network's forward, backward
# or optimizer step (the definition); loading + augmentation is listed but kept out of the step, since
# DataLoader workers take it off the training process whenever num_workers > 0.
PHASES = [
    ("data: load + augment", None),
    ("data: collate", True),
    ("data: to device", True),
    ("target rendering", True),
    ("forward: backbone + heads", False),
    ("forward: mask head", False),
    ("loss terms", False),
    ("mask proposals + RoI sampling + mask targets", True),
    ("backward", False),
    ("optimizer (zero_grad, clip, Adam)", False),
    ("other (glue in train_step and the loss)", True),
]
STEP = "step"
OPTIMIZER = "optimizer (zero_grad, clip, Adam)"
PROPOSALS = "mask proposals + RoI sampling + mask targets"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--model", choices=["small", "hourglass104", "both"], default="small", help="which model (default: small)")
    a("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: cuda when available (default)")
    a("--batch", type=int, help="images per step (default: the profile's; 6 for hourglass104)")
    a("--size", type=int, help="training crop side (default: the profile's, 160 for small; 511 for hourglass104)")
    a("--steps", type=int, default=5, help="timed steps (default 5)")
    a("--warmup", type=int, default=2, help="untimed steps before them (default 2)")
    a("--threads", type=int, help="torch intra-op threads (default: all cores on the CPU, torch's default on CUDA)")
    a("--precision", choices=list(DTYPES), default="fp32", help="fp32, or bf16 / fp16 autocast (default fp32)")
    a("--profile-steps", type=int, default=3, help="steps in the torch.profiler breakdown (0: none; default 3)")
    a("--channels-last", choices=["profile", "on", "off"], default="profile",
      help="memory format (default: the profile's)")
    a("--peak-size", type=int, help="matmul side for the peak (default 2048 fp32 / 1024 16-bit on CPUs, 8192 on CUDA)")
    a("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True (training leaves it off)")
    a("--data", help="a shapes folder (train.json + images/); default: a few images generated in a temporary folder")
    a("--seed", type=int, default=0)
    a("--markdown", metavar="OUT", help="also write the Markdown to this file")
    args = p.parse_args(argv)
    for name, least in (("steps", 1), ("profile_steps", 0), ("warmup", 0)):
        if getattr(args, name) < least:
            p.error(f"--{name.replace('_', '-')} must be >= {least}, got {getattr(args, name)}")
    for name in ("batch", "size", "threads", "peak_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    return args


# ------------------------------------------------------------------------------------------------------------ machine
def cpu_model() -> str:
    "The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def n_cores() -> int:
    "Cores this process may run on."
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def load_average() -> str:
    "1-minute load average as text ('n/a' where the OS has none)."
    try: return f"{os.getloadavg()[0]:.2f}"
    except (OSError, AttributeError): return "n/a"


def markdown_emitter(path):
    """A function emit(lines) that prints `lines` and rewrites `path` (when given) with everything emitted so far, so
    that a run killed later keeps its tables."""
    md, out = [], Path(path) if path else None
    if out is not None: out.parent.mkdir(parents=True, exist_ok=True)

    def emit(lines):
        md.extend(lines)
        print("\n".join(lines), flush=True)
        if out is not None: out.write_text("\n".join(md) + "\n")
    return emit


def machine_line(torch, device) -> str:
    "One line naming what the figures were measured on."
    line = f"CPU {cpu_model()} ({n_cores()} cores), {torch.get_num_threads()} threads, torch {torch.__version__}"
    if device.type == "cuda":
        line += f", CUDA {torch.version.cuda}, card {torch.cuda.get_device_name(device)}"
    return line


# ---------------------------------------------------------------------------------------------------------- the setup
def _config_api():
    "load_profile and update_config, wherever this checkout keeps them."
    try: from centripetal.config import load_profile, update_config
    except ImportError: from centripetal.train import load_profile, update_config
    return load_profile, update_config


def make_data(args, n_images: int, image_size: int, tmp: Path) -> Path:
    "A shapes folder to crop from: --data, or `n_images` generated images of `image_size` px."
    if args.data:
        d = Path(args.data)
        if not (d / "train.json").is_file():
            raise SystemExit(f"bench_utilisation.py: --data {d} has no train.json; "
                             f"generate one with 'centripetal shapes --out {d}'")
        return d
    from centripetal.shapes import generate_shapes
    d = tmp / f"shapes_{image_size}"
    if not (d / "train.json").is_file():
        generate_shapes(d, n_train=n_images, n_val=0, size=image_size, seed=args.seed, progress=False)
    return d


def build(args, name: str, device, tmp: Path) -> dict:
    "Model, optimizer, dataset, configs and the step function of model `name`, as training builds them."
    import torch
    from centripetal.model import CentripetalNet
    from centripetal.data import CocoDetection
    load_profile, update_config = _config_api()
    spec = MODELS[name]
    model_cfg, train_cfg, _, _ = load_profile(spec["profile"])
    batch = args.batch or spec["batch"] or train_cfg.batch_size
    size = args.size or spec["size"] or train_cfg.input_size
    data = make_data(args, 2 * batch, spec["image_size"], tmp)
    cl = {"profile": train_cfg.channels_last, "on": True, "off": False}[args.channels_last]
    train_cfg = update_config(train_cfg, dict(
        batch_size=batch, input_size=size, data_root=str(data), train_ann="train.json", train_images="images",
        num_workers=0, device=device.type, channels_last=cl, accum_steps=1, amp=False))
    dataset = CocoDetection(str(train_cfg.path("train_ann")), str(train_cfg.path("train_images")),
                            input_size=(size, size), train=True, with_masks=train_cfg.with_masks, seed=args.seed,
                            scales=train_cfg.crop_scales, crop_inside=train_cfg.crop_inside)
    model_cfg = update_config(model_cfg, dict(num_classes=dataset.num_classes))
    torch.manual_seed(args.seed)
    model = CentripetalNet(model_cfg).to(device)
    if cl: model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr)
    step_fn, step_name = make_step(train_cfg, args.precision, device, update_config)
    return dict(name=name, model=model, optimizer=optimizer, dataset=dataset, model_cfg=model_cfg,
                train_cfg=train_cfg, step=step_fn, step_name=step_name, batch=batch, size=size, channels_last=cl,
                profile=spec["profile"], precision=args.precision, cudnn_benchmark=args.cudnn_benchmark)


def make_step(train_cfg, precision: str, device, update_config):
    """(step(model, images, targets, optimizer) -> losses, description). `centripetal.train.train_step` itself where
    it runs this precision (fp32; bf16 autocast on the CPU; fp16 + GradScaler on CUDA), else a copy of it with the
    requested autocast."""
    import torch
    from centripetal.train import train_step
    dtype = getattr(torch, DTYPES[precision])
    fp16_cuda = precision == "fp16" and device.type == "cuda"
    # A GradScaler starting at 2^10, not 2^16: the first fp16 steps of a fresh model overflow at 2^16 and are
    # skipped, which would time steps without their optimizer update.
    scaler = torch.amp.GradScaler("cuda", enabled=fp16_cuda, init_scale=2.0 ** 10)
    has_dtype = hasattr(train_cfg, "amp_dtype")         # TrainConfig.amp_dtype: train_step runs bf16 on CUDA too
    if precision == "fp32" or (precision == "bf16" and (device.type == "cpu" or has_dtype)) or fp16_cuda:
        over = dict(amp=precision != "fp32")
        if has_dtype: over["amp_dtype"] = "float16" if precision == "fp16" else "bfloat16"
        cfg = update_config(train_cfg, over)
        return (lambda model, images, targets, opt: train_step(model, images, targets, opt, scaler, cfg, device),
                "centripetal.train.train_step")

    def step(model, images, targets, optimizer):
        "train_step's work (zero_grad, autocast forward with the loss, backward, clip, Adam), autocast in `dtype`."
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype):
            losses = model(images, targets)
        scaler.scale(losses["loss"]).backward()
        if train_cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        return {k: v.detach().float() for k, v in losses.items() if torch.is_tensor(v) and v.numel() == 1}
    return step, (f"the benchmark's copy of train_step with {precision} autocast "
                  f"(train_step has no {precision} on {device.type})")


def load_batch(setup: dict, step: int):
    "The dataset items of batch `step` (images cycle through the generated set; each step draws new crops)."
    ds, B = setup["dataset"], setup["batch"]
    ds.set_epoch(step)
    return [ds[(step * B + j) % len(ds)] for j in range(B)]


def to_device_batch(setup: dict, items, device):
    "collate + to_device (+ channels-last), as the training loop does."
    from centripetal.data import collate
    images, targets = collate(items)
    return move(setup, images, targets, device)


def move(setup: dict, images, targets, device):
    "centripetal.train.to_device (a plain copy where this checkout has none), then channels-last if the setup says so."
    import torch
    try: from centripetal.train import to_device
    except ImportError: to_device = None
    if to_device is not None: images, targets = to_device(images, targets, device)
    else:
        images = images.to(device)
        targets = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]
    if setup["channels_last"]: images = images.contiguous(memory_format=torch.channels_last)
    return images, targets


# ------------------------------------------------------------------------------------------------------- measurements
def sync_fn(device):
    "A function that waits for the device (a no-op on the CPU)."
    import torch
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def count_flops(setup: dict, batch, device) -> dict:
    "FLOPs of one training step (forward with the loss + backward) and of one forward: total, backbone per image."
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    images, targets = batch
    with FlopCounterMode(display=False) as fc:
        setup["step"](setup["model"], images, targets, setup["optimizer"])
    step_flops = fc.get_total_flops()
    amp = dict(dtype=getattr(torch, DTYPES[setup["precision"]]), enabled=setup["precision"] != "fp32")
    with FlopCounterMode(display=False) as fc, torch.no_grad(), torch.autocast(device.type, **amp):
        setup["model"](images, targets)
    counts = fc.get_flop_counts()                          # per module path: 'CentripetalNet.backbone', ...
    backbone = sum(sum(v.values()) for k, v in counts.items() if k.endswith(".backbone") and k.count(".") == 1)
    return dict(step=step_flops, forward=fc.get_total_flops(), backbone_per_image=backbone / len(images))


def time_steps(setup: dict, batches: list, device, warmup: int, steps: int) -> list:
    "Seconds of each of `steps` train_step calls after `warmup` untimed ones (batches ready: no data work timed)."
    sync = sync_fn(device)
    times = []
    for i in range(warmup + steps):
        images, targets = batches[i % len(batches)]
        sync(); t = time.perf_counter()
        setup["step"](setup["model"], images, targets, setup["optimizer"])
        sync(); dt = time.perf_counter() - t
        if i >= warmup: times.append(dt)
    return times


def default_peak(device, precision: str) -> int:
    "Side of the peak matmul: large enough to reach the machine's practical peak, small enough to take a second."
    if device.type == "cuda": return 8192
    return 2048 if precision == "fp32" else 1024          # 16-bit matmuls are slow on CPUs without bf16/fp16 units


def matmul_peaks(device, precision: str, n: int) -> list:
    """[(label, FLOP/s)]: the best of several n×n matmuls at this precision; on CUDA in fp32 also with TF32 switched
    the other way (cuDNN's convolutions use TF32 by default, cuBLAS's matmuls do not)."""
    import torch
    dtype, sync = getattr(torch, DTYPES[precision]), sync_fn(device)
    reps = 20 if device.type == "cuda" else 5
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    c = torch.empty_like(a)

    def best():
        torch.mm(a, b, out=c); sync()                      # warm-up (and cuBLAS heuristics)
        ts = []
        for _ in range(reps):
            t = time.perf_counter(); torch.mm(a, b, out=c); sync(); ts.append(time.perf_counter() - t)
        return 2 * n ** 3 / min(ts)
    out = [(f"{n}² {precision} matmul", best())]
    if device.type == "cuda" and precision == "fp32":
        old = torch.backends.cuda.matmul.allow_tf32
        out[0] = (f"{n}² fp32 matmul (TF32 {'on' if old else 'off'})", out[0][1])
        torch.backends.cuda.matmul.allow_tf32 = not old
        try: out.append((f"{n}² fp32 matmul (TF32 {'off' if old else 'on'})", best()))
        finally: torch.backends.cuda.matmul.allow_tf32 = old
    return out


# -------------------------------------------------------------------------------------------------------- the profile
class Wrapped:
    """Context manager that replaces attributes (module functions, methods) by versions inside a record_function range
    named 'bench: <phase>' (synchronising CUDA at both ends when `sync`), and puts the originals back on exit.
    `missing` records the targets not found: a phase that cannot be separated from outside."""
    def __init__(self, sync: bool, device):
        self.sync, self.device, self.undo, self.missing = sync, device, [], {}

    def range(self, phase: str):
        "A context-manager factory: the record_function range of `phase`."
        import torch
        sync = sync_fn(self.device) if self.sync else (lambda: None)

        @contextlib.contextmanager
        def cm():
            sync()
            with torch.profiler.record_function(PREFIX + phase):
                try: yield
                finally: sync()
        return cm

    def wrap(self, owner, attr: str, phase: str, where: str = None):
        "Wrap owner.attr (a function looked up at call time) in the range of `phase`; note it when it is missing."
        if owner is None or not hasattr(owner, attr):
            self.missing.setdefault(phase, []).append(where or attr); return
        fn, rng = getattr(owner, attr), self.range(phase)
        had_own = attr in getattr(owner, "__dict__", {})

        @functools.wraps(fn)
        def wrapped(*a, **k):
            with rng(): return fn(*a, **k)
        setattr(owner, attr, wrapped)
        self.undo.append((owner, attr, fn, had_own))

    def __enter__(self): return self

    def __exit__(self, *exc):
        for owner, attr, fn, had_own in reversed(self.undo):
            if had_own: setattr(owner, attr, fn)
            else: delattr(owner, attr)                      # an instance attribute over a class method: remove it
        self.undo.clear()


def install_ranges(w: Wrapped, setup: dict):
    """Wrap the model's sub-calls from outside: the names `CentripetalNet.loss` looks up in centripetal.model, and those
    the mask head's training helpers look up in centripetal.mask_head."""
    import torch
    import centripetal.model as M
    import centripetal.mask_head as MH
    model, opt = setup["model"], setup["optimizer"]
    w.wrap(model, "forward_maps", "forward: backbone + heads", "CentripetalNet.forward_maps")
    if getattr(model, "mask", None) is not None:
        w.wrap(model.mask, "forward", "forward: mask head", "MaskHead.forward")
    w.wrap(M, "_render_batch", "target rendering", "centripetal.model._render_batch")
    w.wrap(M, "stack_losses", "loss terms", "centripetal.model.stack_losses")
    w.wrap(MH, "mask_loss", "loss terms", "centripetal.mask_head.mask_loss")     # looked up by mask_head._mask_loss
    for fn in ("_mask_proposals", "_select_rois"):                                 # the loss calls these in model
        w.wrap(M, fn, PROPOSALS, f"centripetal.model.{fn}")
    w.wrap(MH, "_mask_targets_flat", PROPOSALS, "centripetal.mask_head._mask_targets_flat")
    w.wrap(torch.Tensor, "backward", "backward", "torch.Tensor.backward")
    w.wrap(opt, "zero_grad", OPTIMIZER)
    w.wrap(opt, "step", OPTIMIZER)
    w.wrap(torch.nn.utils, "clip_grad_norm_", OPTIMIZER)


def profiled_steps(setup: dict, device, n: int, first: int, phases: bool):
    """torch.profiler over `n` whole steps (load, collate, to device, train_step) from batch `first`; with `phases`,
    the ranges of install_ranges. Returns (profile, wall seconds, missing wrap targets)."""
    from torch.profiler import profile, ProfilerActivity, record_function
    from centripetal.data import collate
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync = sync_fn(device)
    with Wrapped(sync=device.type == "cuda", device=device) as w:
        if phases: install_ranges(w, setup)
        sync()
        t0 = time.perf_counter()
        with profile(activities=acts) as prof:
            for i in range(first, first + n):
                with w.range("data: load + augment")(): items = load_batch(setup, i)
                with record_function(PREFIX + STEP):
                    with w.range("data: collate")(): images, targets = collate(items)
                    with w.range("data: to device")(): images, targets = move(setup, images, targets, device)
                    setup["step"](setup["model"], images, targets, setup["optimizer"])
                    sync()
        wall = time.perf_counter() - t0
    return prof, wall, w.missing


def phase_times(prof) -> dict:
    """{phase: µs of its own} summed over the profiled steps: each 'bench: ' range's duration minus the ranges nested
    in it (on the same thread), so nothing is counted twice; the step range keeps what no phase claims ('other')."""
    evs = [e for e in prof.events() if e.name.startswith(PREFIX)]
    out = {}
    def close(item): out[item[1]] = out.get(item[1], 0.0) + item[2]
    for thread in {e.thread for e in evs}:
        mine = sorted((e for e in evs if e.thread == thread), key=lambda e: (e.time_range.start, -e.time_range.end))
        stack = []                                          # [end, name, own µs] of the open ranges
        for e in mine:
            s, t = e.time_range.start, e.time_range.end
            while stack and stack[-1][0] <= s: close(stack.pop())
            if stack: stack[-1][2] -= t - s                 # the parent loses what this nested range takes
            stack.append([t, e.name[len(PREFIX):], t - s])
        while stack: close(stack.pop())
    return out


def step_total(prof) -> float:
    "µs of the 'bench: step' ranges (collate + to device + train_step), summed."
    return sum(e.time_range.elapsed_us() for e in prof.events() if e.name == PREFIX + STEP)


def device_time_us(prof) -> float:
    """µs during which the profiled steps kept the GPU busy: the union of the intervals of the CUDA events (kernels,
    copies, memsets), so kernels overlapping on several streams count once. The device-side copies of the
    record_function ranges (annotations spanning a phase's first to last kernel, gaps included) are left out."""
    from torch.autograd import DeviceType
    def is_work(e):
        return (e.device_type == DeviceType.CUDA and not e.name.startswith(PREFIX)
                and not getattr(e, "is_user_annotation", False)
                and "annotation" not in str(getattr(e, "activity_type", "")))
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events() if is_work(e))
    busy, end = 0.0, float("-inf")
    for s, t in spans:
        if t <= end: continue
        busy += t - max(s, end)
        end = t
    return busy


# ---------------------------------------------------------------------------------------------------------- reporting
def si(x: float, unit: str = "FLOP") -> str:
    "x with an SI prefix: 70.5 GFLOP, 121 GFLOP/s."
    for p, f in (("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if abs(x) >= f: return f"{x / f:.3g} {p}{unit}" if x / f < 100 else f"{x / f:.1f} {p}{unit}"
    return f"{x:.3g} {unit}"


def describe(setup: dict) -> str:
    "One paragraph: the model, the batch and how the step runs."
    c, t = setup["model_cfg"], setup["train_cfg"]
    backbone = (f"small hourglass {c.small_channels} ch × {c.small_stacks} stack(s)" if c.backbone == "small"
                else c.backbone)
    mask = (f"mask head ({c.mask_proposals} proposals/image, {c.mask_rois or 'all'} RoIs/batch)" if c.mask_head
            else "no mask head")
    n_par = sum(p.numel() for p in setup["model"].parameters()) / 1e6
    crop = "crops inside" if t.crop_inside else "crop-pad"
    return (f"{setup['profile']} profile's model: {backbone}, {c.matcher} matcher, {c.adaption} adaption, {mask}, "
            f"{c.num_classes} classes, {n_par:.2f} M parameters, random init. Batch {setup['batch']} × "
            f"{setup['size']}² crops ({crop} the generated {MODELS[setup['name']]['image_size']}-px shapes images, "
            f"scales {list(t.crop_scales)}, masks {'on' if t.with_masks else 'off'}), "
            f"{'channels-last' if setup['channels_last'] else 'NCHW'}, {setup['precision']}"
            f"{', cudnn.benchmark' if setup['cudnn_benchmark'] else ''}, step = {setup['step_name']}.")


def utilisation_table(setup: dict, flops: dict, times: list, peaks: list) -> list:
    "Markdown rows: FLOPs, s/step, images/s, achieved FLOP/s, each peak and the ratio to it."
    med = statistics.median(times)
    rate = flops["step"] / med
    rows = [("FLOPs per training step (forward with the loss + backward, counted)", si(flops["step"])),
            ("FLOPs of the forward (with the loss), per image", si(flops["forward"] / setup["batch"])),
            ("of which the backbone, per image", si(flops["backbone_per_image"])),
            (f"s/step (median of {len(times)}; min {min(times):.3f}, max {max(times):.3f}; data excluded)",
             f"{med:.3f}"),
            ("images/s", f"{setup['batch'] / med:.2f}"),
            ("achieved FLOP/s", si(rate, "FLOP/s"))]
    for label, peak in peaks:
        rows.append((f"peak: {label}, same process and threads, best of several", si(peak, "FLOP/s")))
        rows.append((f"achieved / {label}", f"{100 * rate / peak:.1f} %"))
    return ["| quantity | value |", "|---|---:|"] + [f"| {a} | {b} |" for a, b in rows]


def breakdown_table(setup: dict, own: dict, step_us: float, n: int, wall: float, missing: dict) -> tuple:
    "(Markdown rows of the phases: ms per step and % of the step; the host-side summary lines; the summary numbers)."
    own = dict(own)
    own["other (glue in train_step and the loss)"] = own.pop(STEP, 0.0)
    lines = ["| phase | ms/step | % of step | host-side |", "|---|---:|---:|---|"]
    host = 0.0
    for phase, is_host in PHASES:
        us = own.get(phase)
        note = ""
        if phase in missing and us is None:
            note = f" — not separable from outside ({', '.join(missing[phase])} not found)"
        elif us is None: note = " — not called"
        ms = (us or 0.0) / 1000 / n
        pct = 100 * (us or 0.0) / step_us if step_us else 0.0
        if is_host: host += ms
        shown = f"({pct:.1f} %)" if is_host is None else f"{pct:.1f} %"
        flag = {True: "yes", False: "", None: "outside the step"}[is_host]
        lines.append(f"| {phase}{note} | {ms:.1f} | {shown} | {flag} |")
    step_ms = step_us / 1000 / n
    lines.append(f"| **step** (collate + to device + train_step) | **{step_ms:.1f}** | 100 % | |")
    host_pct = 100 * host / step_ms if step_ms else 0.0
    per8 = host * 8 / setup["batch"]
    ok = lambda c: "met" if c else "NOT met"
    summary = [f"Host-side work (collate, to device, target rendering, {PROPOSALS}, other): "
               f"**{host:.1f} ms/step = {host_pct:.1f} % of the step**, {per8:.1f} ms per batch of 8. "
               f"Issue #13's targets: ≤ 10 % of the step ({ok(host_pct <= 10)}), "
               f"≤ 20 ms per batch of 8 ({ok(per8 <= 20)}).",
               f"Profiled: {n} step(s) in {wall:.2f} s wall with loading (the profiler's own overhead included, so "
               f"the step here is longer than the timed one above)."]
    return lines, summary, dict(host_ms=host, host_pct=host_pct, host_per8_ms=per8, step_ms=step_ms)


def breakdown(args, setup: dict, device) -> list:
    "Markdown of the profiled steps: the phase table, the host-side summary and, on CUDA, the share in kernels."
    first, n = args.warmup + args.steps, args.profile_steps
    prof, wall, missing = profiled_steps(setup, device, n, first, phases=True)
    lines, summary, _ = breakdown_table(setup, phase_times(prof), step_total(prof), n, wall, missing)
    syncs = "; each range synchronises CUDA" if device.type == "cuda" else ""
    md = [f"### Where the step goes (torch.profiler, {n} step(s), ranges wrapped around the model's sub-calls from "
          f"outside{syncs})", "", *lines, "", *summary, ""]
    if device.type == "cuda":
        prof, wall, _ = profiled_steps(setup, device, n, first + n, phases=False)
        busy, total = device_time_us(prof) / n, step_total(prof) / n
        md += [f"CUDA kernels (and copies): {busy / 1000:.1f} ms of {total / 1000:.1f} ms per step = "
               f"**{100 * busy / total:.1f} % of step time in CUDA kernels** (a second profiled pass without the "
               "phase synchronisations; issue #13's aim for the small model: ≥ 80 %).", ""]
    return md


# --------------------------------------------------------------------------------------------------------------- main
def run_model(args, name: str, device, tmp: Path, emit):
    "Measure model `name`, handing its Markdown lines to `emit` as soon as each table is ready."
    import torch
    setup = build(args, name, device, tmp)
    load0 = load_average()
    batches = [to_device_batch(setup, load_batch(setup, i), device) for i in range(2)]
    try: flops = count_flops(setup, batches[0], device)
    except ValueError as e:
        if "more than 1 value per channel" not in str(e): raise
        raise SystemExit(f"bench_utilisation.py: {name} at batch {setup['batch']} × {setup['size']}² leaves a 1×1 map "
                         "at the hourglass's innermost BatchNorm, which cannot train on one value; use --batch 2 or "
                         "more, or a larger --size")
    n_peak = args.peak_size or default_peak(device, args.precision)
    peaks_before = matmul_peaks(device, args.precision, n_peak)
    times = time_steps(setup, batches, device, args.warmup, args.steps)
    peaks_after = matmul_peaks(device, args.precision, n_peak)
    peaks = [(label, max(a, b)) for (label, a), (_, b) in zip(peaks_before, peaks_after)]
    emit([f"## Utilisation: {name}, {device.type}, {args.precision}", "",
          f"{machine_line(torch, device)}; 1-min load average {load0} at the start.", "", describe(setup), "",
          *utilisation_table(setup, flops, times, peaks), ""])
    if args.profile_steps:
        try: emit(breakdown(args, setup, device))
        except Exception as e:                              # the figures above stand without the profile
            first = str(e).splitlines()[0] if str(e) else ""
            emit([f"The torch.profiler breakdown failed: {type(e).__name__}: {first}", ""])
    emit([f"1-min load average {load_average()} at the end (other jobs on the machine make the figures noisier).", ""])
    del setup, batches
    if device.type == "cuda": torch.cuda.empty_cache()


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_utilisation.py: --device cuda but torch.cuda.is_available() is False; "
                         "use --device cpu (or auto)")
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    if args.cudnn_benchmark: torch.backends.cudnn.benchmark = True
    if args.threads: torch.set_num_threads(args.threads)
    elif device.type == "cpu": torch.set_num_threads(n_cores())
    names = ["small", "hourglass104"] if args.model == "both" else [args.model]
    emit = markdown_emitter(args.markdown)
    emit([f"# bench_utilisation.py ({time.strftime('%Y-%m-%d %H:%M %Z')})", "",
          f"`python benchmarks/bench_utilisation.py {' '.join(sys.argv[1:] if argv is None else argv)}`", ""])
    with tempfile.TemporaryDirectory(prefix="bench_util_") as tmp:
        for name in names:
            run_model(args, name, device, Path(tmp), emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
