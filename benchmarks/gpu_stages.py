#!/usr/bin/env python3
"""The pieces of benchmarks/gpu_check.sh (issue #21), one subcommand each; every measuring stage writes Markdown
(--markdown) and its figures (--json).

  install  installs, from a folder of wheels (benchmarks/gpu_wheels.sh makes it) and without any index, the
           distributions of benchmarks/gpu_wheels.txt whose module does not import, into --site; then imports every
           module the stages import (IMPORTS) and says which came from where
  step     a training step of the paper profile's model (Hourglass-104) in bf16 autocast + channels-last, as
           `centripetal train` runs it on CUDA (fused Adam, cudnn.benchmark): s/step, the FLOPs of one step counted with
           torch.utils.flop_counter.FlopCounterMode (convolutions and matmuls), the achieved FLOP/s against the card's
           dense bf16 peak (PEAKS) and against an 8192² bf16 matmul timed in the same process; --compile: the same with
           the network torch.compile'd (centripetal.train.compile_network), the first step (the compile) timed apart
  sync     one such step under torch.cuda.set_sync_debug_mode("warn"): how many calls synchronise host and device,
           by the line that made them (CUDA only; on the CPU the step runs and the count is n/a)
  deform   the deformable convolution at its real shape (Hourglass-104's corner branch: 256 channels, 128×128 maps,
           batch 6), forward + backward: torchvision's kernel in fp32 (what 'auto' ran on CUDA without autocast), the
           fast path in fp32 (and with TF32 on CUDA), and under bf16 autocast (sampling fp32, product bf16); the bf16
           output against fp32 on the same inputs: max and norm relative differences and the element-wise bound of
           nbs/03_adaption.ipynb
  loader   the training data loader of the paper profile (511-px crops, masks) on generated shapes images: images/s
           for each worker count, and per worker
  report   assembles gpu_check.md, benchmarks_section.md and stages.json from a run's stage files
  publish  copies a CUDA run's report to results/utilisation/gpu_<card>.md and appends its section to
           results/benchmarks.md (once)

Only the standard library is imported at the top: `install` runs before anything else is importable.
"""
import argparse, importlib, importlib.util, json, os, re, statistics, subprocess, sys, tempfile, time, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "benchmarks")):
    if p not in sys.path: sys.path.insert(0, p)

# Every module the stages import (install's probe): torch's and torchvision's own, then what gpu_wheels.txt carries,
# then the package (this checkout, on sys.path above)
IMPORTS = ["torch", "torchvision", "numpy", "PIL.Image", "yaml", "pycocotools.coco", "pycocotools.mask",
           "fastcore.basics", "tqdm.auto", "centripetal.config", "centripetal.data", "centripetal.shapes",
           "centripetal.adaption", "centripetal.model", "centripetal.train", "centripetal.cli", "bench_utilisation"]

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendor's data sheets, by a regular expression on
# torch.cuda.get_device_name(): the first match wins (PCIe before the SXM/HBM3 H100)
PEAKS = [(r"H100.*PCIe", "H100 PCIe", 756.0), (r"H100", "H100 SXM", 989.0), (r"H200", "H200", 989.0),
         (r"A100", "A100", 312.0)]

STAGE_TITLES = {   # the order gpu_check.sh runs them in: the most important first
    "step": "{model} bf16 + channels_last: step time, % of dense bf16 peak",
    "compile": "{model} bf16 + channels_last, torch.compile: step time, % of peak",
    "sync": "one {model} step under set_sync_debug_mode('warn'): synchronisations",
    "deform": "deformable conv at {shape}: fp32 vs bf16 autocast",
    "loader": "data loader at {size} px: images/s per worker",
}


def card_peak(name: str):
    "(label, dense bf16 TFLOP/s) of the card called `name`, or (None, None) when PEAKS has no entry for it."
    for pattern, label, tflops in PEAKS:
        if re.search(pattern, name or ""): return label, tflops
    return None, None


def card_slug(name: str) -> str:
    "'NVIDIA H100 80GB HBM3' -> 'h100_80gb_hbm3': the <card> of results/utilisation/gpu_<card>.md."
    s = re.sub(r"^nvidia\s+", "", (name or "cpu").strip(), flags=re.I)
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") or "gpu"


def si(x, unit="FLOP"):
    from bench_utilisation import si as _si
    return _si(x, unit)


def emitter(path):
    "emit(lines): print them and (re)write `path` with everything so far (a killed stage keeps its tables)."
    from bench_utilisation import markdown_emitter
    return markdown_emitter(path)


def save_json(path, data):
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=1) + "\n")


def device_of(args):
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_stages.py: --device cuda but torch.cuda.is_available() is False")
    return torch.device(args.device)


def machine(device) -> str:
    import torch
    from bench_utilisation import machine_line
    line = machine_line(torch, device)
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        line += f" ({p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs)"
    return line


# ----------------------------------------------------------------------------------------------------------- install
def wheel_list(path):
    "[(module, distribution)] of gpu_wheels.txt."
    out = []
    for line in Path(path).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words: out.append((words[0], words[1]))
    return out


def importable(module: str) -> bool:
    try: return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError): return False


def cmd_install(args):
    "Install what does not import from --wheels into --site (pip --no-index --no-deps), then import everything."
    import importlib.metadata as md
    wanted = wheel_list(args.list)
    missing = [(m, d) for m, d in wanted if not importable(m)]
    present = [(m, d) for m, d in wanted if (m, d) not in missing]
    if missing:
        wheels = Path(args.wheels)
        if not any(wheels.glob("*.whl")):
            raise SystemExit(f"gpu_stages.py install: {', '.join(d for _, d in missing)} not importable and no wheels "
                             f"in {wheels}; make them where pip reaches an index: bash benchmarks/gpu_wheels.sh, then "
                             "carry the folder (device tool: carry ['.whl'])")
        Path(args.site).mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--find-links", str(wheels),
               "--target", str(args.site), "--no-compile", "--no-cache-dir", "--disable-pip-version-check", "-q",
               *[d for _, d in missing]]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"gpu_stages.py install: pip failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
        sys.path.insert(0, str(args.site))
        importlib.invalidate_caches()
        print(f"installed from {wheels} into {args.site} in {time.perf_counter() - t0:.1f} s (pip --no-index): "
              + ", ".join(f"{d} {_version(md, d, args.site)}" for _, d in missing))
    else:
        print("installed nothing: every module of gpu_wheels.txt imports already")
    if present:
        print("already importable: " + ", ".join(f"{d} {_version(md, d)}" for _, d in present))
    failed = []
    for mod in IMPORTS:
        try: importlib.import_module(mod)
        except Exception as e: failed.append(f"{mod} ({type(e).__name__}: {e})")
    if failed: raise SystemExit("gpu_stages.py install: these do not import: " + "; ".join(failed))
    import torch
    print(f"imports ok: {', '.join(IMPORTS)} (torch {torch.__version__}, python {sys.version.split()[0]})")
    return 0


def _version(md, dist, site=None):
    try:
        if site:
            for d in md.distributions(path=[str(site)]):
                if re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() == dist.lower(): return d.version
        return md.version(dist)
    except Exception: return "(version unknown)"


# -------------------------------------------------------------------------------------------------------------- step
def _setup(args, device, tmp: Path):
    "bench_utilisation's setup of the model in bf16 + channels-last, with training's optimizer (fused Adam on CUDA)."
    import torch
    import bench_utilisation as bu
    from centripetal.train import make_optimizer
    ns = argparse.Namespace(batch=args.batch, size=args.size, channels_last="on", precision="bf16", seed=0,
                            data=args.data, cudnn_benchmark=device.type == "cuda")
    setup = bu.build(ns, args.model, device, tmp)
    setup["optimizer"] = make_optimizer(setup["model"], setup["train_cfg"].lr, device)
    batches = [bu.to_device_batch(setup, bu.load_batch(setup, i), device) for i in range(2)]
    return setup, batches


def cmd_step(args):
    import torch
    import bench_utilisation as bu
    device = device_of(args)
    if device.type == "cuda": torch.backends.cudnn.benchmark = True          # as `centripetal train` sets it on CUDA
    if args.threads: torch.set_num_threads(args.threads)
    emit = emitter(args.markdown)
    title = STAGE_TITLES["compile" if args.compile else "step"].format(model=args.model)
    with tempfile.TemporaryDirectory(prefix="gpu_step_") as tmp:
        setup, batches = _setup(args, device, Path(tmp))
    flops = None
    if args.flops_from and Path(args.flops_from).is_file():
        flops = json.loads(Path(args.flops_from).read_text()).get("flops")
        if flops and (flops.get("batch"), flops.get("size"), flops.get("model")) != (setup["batch"], setup["size"],
                                                                                    args.model):
            flops = None
    if flops is None:                                                  # counted on an eager step, before any compile
        t = time.perf_counter()
        flops = bu.count_flops(setup, batches[0], device)
        flops.update(batch=setup["batch"], size=setup["size"], model=args.model,
                     counted_in_s=round(time.perf_counter() - t, 1))
    sync = bu.sync_fn(device)
    compile_s = None
    if args.compile:
        from centripetal.train import compile_network
        if args.compile_backend == "inductor": compile_network(setup["model"])
        else: setup["model"].forward_maps = torch.compile(setup["model"].forward_maps, backend=args.compile_backend)
    first = bu.time_steps(setup, batches, device, 0, 1)[0]           # compile / cuDNN autotuning / allocator warm-up
    if args.compile: compile_s = first
    times = bu.time_steps(setup, batches, device, args.warmup, args.steps)
    n_peak = args.peak_size or (8192 if device.type == "cuda" else 512)
    peak_mm = max(p for _, p in bu.matmul_peaks(device, "bf16", n_peak))
    med = statistics.median(times)
    rate = flops["step"] / med
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else bu.cpu_model()
    label, peak_tf = card_peak(name) if device.type == "cuda" else (None, None)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    res = dict(stage="compile" if args.compile else "step", device=device.type, card=name, slug=card_slug(name),
               model=args.model, batch=setup["batch"], size=setup["size"], flops=flops, s_step=med,
               s_step_min=min(times), s_step_max=max(times), steps=len(times), first_step_s=first,
               compile_s=compile_s, achieved_flops=rate, peak_label=label, peak_tflops=peak_tf,
               pct_peak=100 * rate / (peak_tf * 1e12) if peak_tf else None, matmul_n=n_peak, matmul_peak=peak_mm,
               pct_matmul=100 * rate / peak_mm, max_mem_gib=mem, images_per_s=setup["batch"] / med,
               compile_backend=args.compile_backend if args.compile else None)
    save_json(args.json, res)
    rows = [("FLOPs per training step (forward with the loss + backward; FlopCounterMode: convolutions and matmuls, "
             f"counted on one eager step in {flops.get('counted_in_s', '?')} s)", bu.si(flops["step"])),
            ("of which the forward (with the loss)", bu.si(flops["forward"])),
            (f"s/step (median of {len(times)} after {args.warmup} warm-up; min {min(times):.3f}, max {max(times):.3f}; "
             "data excluded)", f"**{med:.3f}**"),
            ("first step (" + ("the compile, " if args.compile else "") +
             ("cuDNN autotuning, " if device.type == "cuda" else "") + "allocator), s", f"{first:.1f}"),
            ("images/s", f"{setup['batch'] / med:.2f}"),
            ("achieved FLOP/s", bu.si(rate, "FLOP/s"))]
    if peak_tf:
        rows.append((f"% of the card's dense bf16 peak ({label}: {peak_tf:.0f} TFLOP/s)",
                     f"**{res['pct_peak']:.1f} %**"))
    elif device.type == "cuda":
        rows.append(("% of the card's dense bf16 peak", f"n/a: '{name}' is not in gpu_stages.PEAKS"))
    rows.append((f"{n_peak}² bf16 matmul, same process (best of several)", bu.si(peak_mm, "FLOP/s")))
    rows.append((f"% of that matmul", f"{res['pct_matmul']:.1f} %"))
    if mem is not None: rows.append(("peak GPU memory allocated", f"{mem:.1f} GiB"))
    emit([f"## {title}", "", machine(device) + ".", "", bu.describe(setup) +
          (f" Network compiled (`torch.compile`, backend {args.compile_backend})." if args.compile else ""), "",
          "| quantity | value |", "|---|---:|", *[f"| {a} | {b} |" for a, b in rows], ""])
    return 0


# -------------------------------------------------------------------------------------------------------------- sync
def cmd_sync(args):
    import torch
    device = device_of(args)
    if args.threads: torch.set_num_threads(args.threads)
    emit = emitter(args.markdown)
    with tempfile.TemporaryDirectory(prefix="gpu_sync_") as tmp:
        setup, batches = _setup(args, device, Path(tmp))
    step = lambda b: setup["step"](setup["model"], *b, setup["optimizer"])
    step(batches[0])                                                   # warm-up: not counted
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.set_sync_debug_mode("warn")
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            step(batches[1])
            if cuda: torch.cuda.synchronize(device)
        finally:
            if cuda: torch.cuda.set_sync_debug_mode(0)
    dt = time.perf_counter() - t
    syncs = [w for w in rec if "synchroniz" in str(w.message)]
    sites = {}
    for w in syncs:
        f = Path(w.filename)
        where = f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f.name}:{w.lineno}"
        sites[where] = sites.get(where, 0) + 1
    res = dict(stage="sync", device=device.type, model=args.model, batch=setup["batch"], size=setup["size"],
               count=len(syncs) if cuda else None, sites=sites, step_s=dt)
    save_json(args.json, res)
    title = STAGE_TITLES["sync"].format(model=args.model)
    if not cuda:
        emit([f"## {title}", "", machine(device) + ".", "",
              f"One step ran in {dt:.2f} s; `set_sync_debug_mode` watches CUDA only, so there is no count on the CPU "
              "(the CPU-side count is the sync test of issue #21).", ""])
        return 0
    lines = [f"## {title}", "", machine(device) + ".", "",
             f"Batch {setup['batch']} × {setup['size']}², bf16 autocast, channels-last, eager; one step after a "
             f"warm-up one: **{len(syncs)} synchronising calls** (issue #21's aim: ≤ 2), step {dt:.2f} s with the mode "
             "on.", ""]
    if sites:
        lines += ["| where (the Python line that made the call) | calls |", "|---|---:|"]
        lines += [f"| `{k}` | {v} |" for k, v in sorted(sites.items(), key=lambda kv: -kv[1])[:25]]
        if len(sites) > 25: lines.append(f"| ({len(sites) - 25} more lines) | {sum(sorted(sites.values())[:-25])} |")
        lines.append("")
    emit(lines)
    return 0


# ------------------------------------------------------------------------------------------------------------ deform
def _timed(fn, sync, reps):
    "Median seconds of `reps` calls of fn() after one warm-up call."
    fn(); sync()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def deform_accuracy(x16, off, w, device):
    """The bf16 autocast output of `deform_conv2d` against the fast path in fp32 on the same inputs (x16 as autocast
    hands it, in bf16; offsets and weight fp32). Returns the relative differences, the ratio to the element-wise
    bound u·|y| + 2.1·(u + γ_K)·Σ|w_i c_i| of nbs/03_adaption.ipynb (≤ 1 when it holds), and whether the sampled
    columns were the fp32 ones."""
    import torch
    import centripetal.adaption as A
    seen, orig = [], A.sample_bilinear
    def spy(x, py, px):
        out = orig(x, py, px)
        seen.append((py.dtype, out))
        return out
    A.sample_bilinear = spy
    try:
        with torch.no_grad():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                y = A.deform_conv2d(x16, off, w, impl="auto")
            y32 = A.deform_conv2d_fast(x16.float(), off, w)
    finally:
        A.sample_bilinear = orig
    (pdt, cols), (_, cols32) = seen
    same_cols = pdt == cols.dtype == torch.float32 and torch.equal(cols, cols32)
    B, O, H, W = y32.shape
    K = w[0].numel()
    u, gamma = 2.0 ** -8, K * 2.0 ** -24
    diff = (y.double() - y32.double()).abs()
    worst = 0.0
    for b in range(B):                                         # Σ|w_i c_i| one image at a time (fp64: memory)
        terms = w.double().abs().reshape(O, K) @ cols[b:b + 1].double().abs().reshape(K, H * W)
        bound = u * y32[b].double().abs() + 2.1 * (u + gamma) * terms.view(O, H, W)
        r = diff[b] / bound
        worst = max(worst, r[bound > 0].max().item() if (bound > 0).any() else 0.0,
                    float("inf") if (diff[b][bound == 0] > 0).any() else 0.0)
    y32d = y32.double()
    return dict(dtype=str(y.dtype).replace("torch.", ""), same_cols=same_cols, bound_ratio=worst,
                rel_norm=(diff.norm() / y32d.norm()).item(), rel_max=(diff.max() / y32d.abs().max()).item(), K=K)


def cmd_deform(args):
    import torch, torchvision
    import centripetal.adaption as A
    device = device_of(args)
    if args.threads: torch.set_num_threads(args.threads)
    emit = emitter(args.markdown)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    B, C, S = args.batch, args.channels, args.hw
    shape = f"{B} × {C} × {S}×{S}"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, C, S, S, generator=g).to(device)
    off = (args.offset_scale * torch.randn(B, 18, S, S, generator=g)).to(device)
    w = (0.01 * torch.randn(C, C, 3, 3, generator=g)).to(device)          # DeformConv2d's init: normal(0, 0.01)
    x16 = x.bfloat16()                                                      # what autocast hands the layer
    up = torch.randn(B, C, S, S, generator=g).to(device)

    def fwd_bwd(fn, xin, amp=False):
        ins = [xin.clone().requires_grad_(), off.clone().requires_grad_(), w.clone().requires_grad_()]
        def run():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                y = fn(*ins)
            (y.float() * up).sum().backward()
        return run
    rows = []
    tv = lambda a, o, k: torchvision.ops.deform_conv2d(a, o, k, padding=1)
    fast = lambda a, o, k: A.deform_conv2d_fast(a, o, k)
    auto = lambda a, o, k: A.deform_conv2d(a, o, k, impl="auto")
    tf32_old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        tv_label = "torchvision.ops.deform_conv2d, fp32" + (" (what 'auto' ran on CUDA)" if device.type == "cuda"
                                                            else "")
        cases = [(tv_label, tv, x, False),
                 ("deform_conv2d_fast, fp32 (TF32 off)", fast, x, False)]
        if device.type == "cuda": cases.append(("deform_conv2d_fast, fp32 with TF32 matmul", fast, x, "tf32"))
        cases.append(("deform_conv2d under bf16 autocast: sampling fp32, product bf16 (now 'auto')", auto, x16, True))
        for label, fn, xin, mode in cases:
            if label.startswith("torchvision") and device.type == "cpu" and not args.tiny and B * C * S * S > 2 ** 20:
                rows.append((label, None)); continue                            # minutes on a CPU at this size
            torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
            rows.append((label, _timed(fwd_bwd(fn, xin, amp=mode is True), sync, args.reps)))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32_old
    acc = {"random normal features": deform_accuracy(x16, off, w, device),
           "ReLU'd features (as after corner pooling)": deform_accuracy(x16.relu(), off, w, device)}
    flops = 2 * B * C * 9 * C * S * S
    res = dict(stage="deform", device=device.type, shape=[B, C, S, S], offset_scale=args.offset_scale,
               times={label: t for label, t in rows}, accuracy=acc, matmul_flops_fwd=flops)
    save_json(args.json, res)
    base = next((t for label, t in rows if label.startswith("deform_conv2d_fast, fp32 (TF32 off)")), None)
    real = f" (Hourglass-104's corner branch at 511 px, batch {B})" if (C, S) == (256, 128) else ""
    lines = [f"## {STAGE_TITLES['deform'].format(shape=shape)}", "", machine(device) + ".", "",
             f"x ({shape}) random normal, offsets normal × {args.offset_scale} px, weight normal(0, 0.01), 3×3, "
             f"{C} → {C} channels{real}; forward + backward, median of {args.reps} after one warm-up. The product "
             f"alone is {si(flops)} forward.", "",
             "| implementation | fwd + bwd, ms | vs fast fp32 |", "|---|---:|---:|"]
    for label, t in rows:
        if t is None: lines.append(f"| {label} | (not run: minutes on a CPU at this size) | |")
        else: lines.append(f"| {label} | {1e3 * t:.1f} | " + (f"{base / t:.2f}× |" if base else "|"))
    lines += ["", "bf16 autocast against fp32 (same bf16-rounded features, fp32 offsets and weight), forward:", "",
              "| features | samples = fp32 samples | max \\|diff\\| / max \\|y\\| | ‖diff‖ / ‖y‖ | "
              "max of \\|diff\\| / bound |", "|---|---|---:|---:|---:|"]
    for k, a in acc.items():
        lines.append(f"| {k} | {'yes' if a['same_cols'] else 'NO'} | {a['rel_max']:.2e} | {a['rel_norm']:.2e} | "
                     f"{a['bound_ratio']:.3f} |")
    lines += ["", f"Bound per element: u·|y| + 2.1·(u + γ_K)·Σ|w_i c_i| with u = 2⁻⁸ (bf16), γ_K = K·2⁻²⁴, "
              f"K = {acc['random normal features']['K']} (nbs/03_adaption.ipynb); ≤ 1 means it holds everywhere.", ""]
    emit(lines)
    return 0


# ------------------------------------------------------------------------------------------------------------ loader
def cmd_loader(args):
    import torch
    from centripetal.config import load_profile, update_config
    from centripetal.data import make_loader
    from centripetal.train import build_dataset
    torch.set_num_threads(1)
    emit = emitter(args.markdown)
    _, tc, _, _ = load_profile(args.profile)
    tc = update_config(tc, dict(data_root=str(args.data), train_ann="train.json", train_images="images",
                                input_size=args.size))
    ds = build_dataset(tc, "train", train=True)
    n = len(ds)
    def one_pass(nw, epoch):
        if hasattr(ds, "set_epoch"): ds.set_epoch(epoch)
        loader = make_loader(ds, batch_size=tc.batch_size, shuffle=True, num_workers=nw, seed=epoch)
        t = time.perf_counter()
        k = sum(len(imgs) for imgs, _ in loader)
        return k, time.perf_counter() - t
    one_pass(max(args.workers), 0)                               # warm-up: the page cache, the first imports
    rows = [(nw, *one_pass(nw, i + 1)) for i, nw in enumerate(args.workers)]
    res = dict(stage="loader", profile=args.profile, size=args.size, masks=tc.with_masks, batch=tc.batch_size,
               images=n, cpus=os.cpu_count(),
               rows=[dict(workers=nw, images=k, s=dt, images_per_s=k / dt, per_worker=k / dt / max(nw, 1))
                     for nw, k, dt in rows])
    save_json(args.json, res)
    lines = [f"## {STAGE_TITLES['loader'].format(size=args.size)}", "",
             f"The {args.profile} profile's training dataset (`build_dataset`: {args.size}-px crops, masks "
             f"{'on' if tc.with_masks else 'off'}, colour jitter, flips) over {n} generated shapes images, "
             f"`make_loader` with batch {tc.batch_size}; one pass per row (after one warm-up pass), worker start-up "
             f"included; {os.cpu_count()} CPUs, one torch thread in the main process.", "",
             "| workers | images | seconds | images/s | images/s per worker |", "|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['workers']} | {r['images']} | {r['s']:.2f} | {r['images_per_s']:.1f} | "
                     f"{r['per_worker']:.1f}{' (main process)' if r['workers'] == 0 else ''} |")
    emit(lines + [""])
    return 0


# ------------------------------------------------------------------------------------------------------------ report
def _load(work, name):
    p = Path(work) / f"{name}.json"
    try: return json.loads(p.read_text()) if p.is_file() else None
    except json.JSONDecodeError: return None


def cmd_report(args):
    """gpu_check.md (the whole run: machine, install, the stages' table in run order, each stage's Markdown, then
    the ends of the logs of stages that did not finish), benchmarks_section.md and stages.json, in --out."""
    work, out = Path(args.work), Path(args.out)
    status = [line.rstrip("\n").split("\t") for line in Path(args.status).read_text().splitlines() if line.strip()]
    first = _load(work, "step") or _load(work, "compile") or {}
    dev = args.device
    card = first.get("card") if dev == "cuda" else None
    if dev == "cuda" and not card:
        try:
            import torch
            card = torch.cuda.get_device_name(0)
        except Exception: card = "unknown GPU"
    slug = card_slug(card) if dev == "cuda" else "cpu"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = "bash benchmarks/gpu_check.sh" + (f" {args.flags}" if args.flags else "")
    md = [f"# gpu_check.sh on {card or 'the CPU'} ({stamp})", "",
          f"`{command}`: budget {args.budget} s, {args.used} s used.", ""]
    inst = Path(work) / "install.log"
    if inst.is_file():
        md += ["Install step (offline, from the carried wheels):", "", "```", inst.read_text().strip(), "```", ""]
    md += ["| # | stage | limit, s | result | seconds |", "|---:|---|---:|---|---:|"]
    for row in status:
        i, key, title, lim, result, secs = (row + [""] * 6)[:6]
        md.append(f"| {i} | {title} | {lim} | {result} | {secs} |")
    md.append("")
    for row in status:
        key, result = row[1], row[4]
        f = work / f"{key}.md"
        if f.is_file() and f.read_text().strip():
            md += [f.read_text().strip(), ""]
        if result != "ok" and (work / f"{key}.log").is_file():
            tail = (work / f"{key}.log").read_text(errors="replace").strip().splitlines()[-15:]
            md += [f"Last lines of {key}.log ({result}):", "", "```", *tail, "```", ""]
    (out / "gpu_check.md").write_text("\n".join(md).rstrip() + "\n")

    s1, s2, sy, de, lo = (_load(work, k) for k in ("step", "compile", "sync", "deform", "loader"))
    sec = [f"## GPU check (`gpu_check.sh`, issue #21) on {card or 'the CPU'}, {stamp}", "",
           f"`{command}`, {args.used} s of its {args.budget}-s budget; the whole "
           f"output: `results/utilisation/gpu_{slug}.md`.", "",
           "| stage | figure |", "|---|---|"]
    for s, key in ((s1, "step"), (s2, "compile")):
        if s:
            pk = f", **{s['pct_peak']:.1f} %** of {s['peak_label']}'s dense bf16 peak" if s.get("pct_peak") else ""
            extra = f" (compile + first step {s['compile_s']:.0f} s)" if key == "compile" and s.get("compile_s") else ""
            sec.append(f"| {s['model']} bf16 + channels_last{', compiled' if key == 'compile' else ''}, batch "
                       f"{s['batch']} × {s['size']}² | **{s['s_step']:.3f} s/step**{extra}, "
                       f"{si(s['flops']['step'])}/step, {si(s['achieved_flops'], 'FLOP/s')}{pk}, "
                       f"{s['pct_matmul']:.1f} % of a {s['matmul_n']}² bf16 matmul |")
    if sy:
        cnt = "n/a (CPU)" if sy.get("count") is None else f"**{sy['count']}** synchronising calls"
        top = ", ".join(f"`{k}` {v}" for k, v in sorted(sy["sites"].items(), key=lambda kv: -kv[1])[:3])
        sec.append(f"| one step under `set_sync_debug_mode('warn')` | {cnt}{'; most: ' + top if top else ''} |")
    if de:
        t = de["times"]
        fast32 = next((v for k, v in t.items() if k.startswith("deform_conv2d_fast, fp32 (TF32 off)")), None)
        mixed = next((v for k, v in t.items() if "autocast" in k), None)
        tvt = next((v for k, v in t.items() if k.startswith("torchvision")), None)
        a = next(iter(de["accuracy"].values()))                  # the random normal features
        ms = lambda v: "n/a" if v is None else f"{1e3 * v:.1f} ms"
        sec.append(f"| deformable conv {' × '.join(map(str, de['shape']))}, fwd + bwd | torchvision fp32 {ms(tvt)}, "
                   f"fast fp32 {ms(fast32)}, bf16 autocast {ms(mixed)}; bf16 vs fp32: max rel. diff "
                   f"{a['rel_max']:.1e}, norm {a['rel_norm']:.1e}, "
                   f"bound {'held' if a['bound_ratio'] <= 1 else 'BROKEN'} |")
    if lo:
        per = ", ".join(f"{r['workers']} → {r['images_per_s']:.0f} ({r['per_worker']:.0f}/worker)" for r in lo["rows"])
        sec.append(f"| loader, {lo['size']} px, masks {'on' if lo['masks'] else 'off'} (images/s by workers) | {per} |")
    failed = [f"{r[2]}: {r[4]}" for r in status if r[4] != "ok"]
    if failed: sec += ["", "Not measured: " + "; ".join(failed) + "."]
    (out / "benchmarks_section.md").write_text("\n".join(sec).rstrip() + "\n")
    save_json(out / "stages.json", dict(device=dev, card=card, slug=slug, stamp=stamp, flags=args.flags,
                                        budget=int(args.budget), used=int(args.used),
                                        status=[dict(zip(("n", "key", "title", "limit", "result", "seconds"), r))
                                                for r in status],
                                        stages={k: v for k, v in (("step", s1), ("compile", s2), ("sync", sy),
                                                                  ("deform", de), ("loader", lo)) if v}))
    return 0


def cmd_publish(args):
    "A CUDA run's gpu_check.md -> RESULTS/utilisation/gpu_<card>.md; its section appended to RESULTS/benchmarks.md."
    run, results = Path(args.run), Path(args.results)
    meta = json.loads((run / "stages.json").read_text())
    if meta.get("device") != "cuda":
        raise SystemExit(f"gpu_stages.py publish: {run} is a {meta.get('device')} run; only a run on a GPU is "
                         "published to results/ (the CPU run is a smoke test)")
    dest = results / "utilisation" / f"gpu_{meta['slug']}.md"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text((run / "gpu_check.md").read_text())
    section = (run / "benchmarks_section.md").read_text()
    bench = results / "benchmarks.md"
    text = bench.read_text() if bench.is_file() else "# Benchmarks\n"
    heading = section.splitlines()[0]
    if heading in text.splitlines(): print(f"{bench} has this run's section already")
    else:
        bench.write_text(text.rstrip("\n") + "\n\n" + section)
        print(f"appended '{heading}' to {bench}")
    print(f"wrote {dest}")
    return 0


# -------------------------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    def common(q, model=True):
        q.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
        q.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
        q.add_argument("--markdown", metavar="OUT.md"); q.add_argument("--json", metavar="OUT.json")
        if model:
            q.add_argument("--model", choices=["hourglass104", "small"], default="hourglass104")
            q.add_argument("--batch", type=int, help="default: the model's (6 for hourglass104)")
            q.add_argument("--size", type=int, help="crop side (default: the model's, 511 for hourglass104)")
            q.add_argument("--data", help="a shapes folder (train.json + images/); default: generated")
    q = sub.add_parser("install", help="install the carried wheels of what does not import, then import everything")
    q.add_argument("--wheels", default=str(ROOT / ".whl")); q.add_argument("--site", required=True)
    q.add_argument("--list", default=str(ROOT / "benchmarks" / "gpu_wheels.txt"))
    for name in ("step", "sync"):
        q = sub.add_parser(name); common(q)
        if name == "step":
            q.add_argument("--steps", type=int, default=10); q.add_argument("--warmup", type=int, default=2)
            q.add_argument("--compile", action="store_true")
            q.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default inductor)")
            q.add_argument("--flops-from", help="a step stage's --json: its FLOP count, if for the same batch")
            q.add_argument("--peak-size", type=int, help="matmul side of the bf16 peak (default 8192 CUDA, 512 CPU)")
    q = sub.add_parser("deform"); common(q, model=False)
    q.add_argument("--batch", type=int, default=6); q.add_argument("--channels", type=int, default=256)
    q.add_argument("--hw", type=int, default=128); q.add_argument("--offset-scale", type=float, default=3.0)
    q.add_argument("--reps", type=int, default=5); q.add_argument("--tiny", action="store_true")
    q = sub.add_parser("loader"); q.add_argument("--markdown"); q.add_argument("--json")
    q.add_argument("--data", required=True); q.add_argument("--profile", default="paper")
    q.add_argument("--size", type=int, default=511); q.add_argument("--workers", type=int, nargs="+", default=[0, 4])
    q = sub.add_parser("report")
    for a in ("--work", "--out", "--status", "--device", "--flags", "--budget", "--used"):
        q.add_argument(a, required=True)
    q = sub.add_parser("publish"); q.add_argument("--run", required=True)
    q.add_argument("--results", default=str(ROOT / "results"))
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    return {"install": cmd_install, "step": cmd_step, "sync": cmd_sync, "deform": cmd_deform, "loader": cmd_loader,
            "report": cmd_report, "publish": cmd_publish}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
