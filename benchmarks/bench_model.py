#!/usr/bin/env python3
"""Forward and forward+backward throughput (images/s) and peak memory of CentripetalNet.

Each configuration runs in its own subprocess so that the peak resident memory (CPU) or the peak allocated
memory (CUDA) belongs to that configuration alone. Prints a Markdown table; never asserts.

    python benchmarks/bench_model.py                       # small (batch 8, 256²) and Hourglass-104 (batch 1, 511²), fp32 + AMP
    python benchmarks/bench_model.py --only small --repeats 5
"""
import argparse, json, os, platform, resource, subprocess, sys, time

CONFIGS = {
    "small": dict(backbone="small", batch=8, size=256, num_classes=4),
    "hourglass104": dict(backbone="hourglass104", batch=1, size=511, num_classes=80),
}


def run_one(name, amp, device, repeats, threads):
    "Measure one configuration in this process; returns a dict."
    import torch
    from centripetal.model import CentripetalNet, ModelConfig
    torch.set_num_threads(threads)
    c = CONFIGS[name]
    dev = torch.device(device)
    cfg = ModelConfig(backbone=c["backbone"], num_classes=c["num_classes"], mask_head=True)
    net = CentripetalNet(cfg).to(dev)
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(c["batch"], 3, c["size"], c["size"], generator=g).to(dev)
    s = c["size"]
    targets = [{"boxes": torch.tensor([[0.1 * s, 0.1 * s, 0.4 * s, 0.5 * s], [0.5 * s, 0.3 * s, 0.9 * s, 0.8 * s]]),
                "labels": torch.tensor([0, 1]),
                "masks": torch.ones(2, s, s, dtype=torch.uint8)} for _ in range(c["batch"])]
    dtype = torch.bfloat16 if dev.type == "cpu" else torch.float16
    ctx = (lambda: torch.autocast(dev.type, dtype=dtype)) if amp else (lambda: torch.autocast(dev.type, enabled=False))
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)

    def timed(fn):
        fn(); sync()                       # warm-up
        ts = []
        for _ in range(repeats):
            t = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t)
        return sorted(ts)[len(ts) // 2]

    def fwd():
        with torch.no_grad(), ctx(): net(imgs, targets)
    def fwd_bwd():
        with ctx(): loss = net(imgs, targets)["loss"]
        loss.backward(); net.zero_grad(set_to_none=True)
    net.train()
    t_f, t_fb = timed(fwd), timed(fwd_bwd)
    if dev.type == "cuda": peak = torch.cuda.max_memory_allocated() / 2**20
    else: peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(model=name, device=device, amp=amp, batch=c["batch"], size=c["size"],
                params_M=round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
                fwd_img_s=round(c["batch"] / t_f, 2), fwd_bwd_img_s=round(c["batch"] / t_fb, 2), peak_MiB=round(peak))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(CONFIGS), help="run one configuration")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available, and cpu)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--no-amp", action="store_true", help="fp32 only")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._child:
        name, amp, device = a._child.split(":")
        print(json.dumps(run_one(name, amp == "1", device, a.repeats, a.threads)))
        return 0
    import torch
    devices = [a.device] if a.device else (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]
    names = [a.only] if a.only else list(CONFIGS)
    rows = []
    for dev in devices:
        for name in names:
            for amp in ([0] if a.no_amp else [0, 1]):
                reps = 1 if (name == "hourglass104" and dev == "cpu") else a.repeats
                out = subprocess.run([sys.executable, __file__, "--_child", f"{name}:{amp}:{dev}", "--repeats", str(reps),
                                      "--threads", str(a.threads)], capture_output=True, text=True)
                if out.returncode: print(out.stderr[-2000:], file=sys.stderr); continue
                rows.append(json.loads(out.stdout.strip().splitlines()[-1])); print(rows[-1], file=sys.stderr)
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or platform.machine()
    print(f"\ntorch {torch.__version__}, {a.threads} threads, {card}\n")
    print("| model | device | precision | batch | size | params (M) | fwd img/s | fwd+bwd img/s | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        prec = ("bf16 autocast" if r["device"] == "cpu" else "fp16 autocast") if r["amp"] else "fp32"
        print(f"| {r['model']} | {r['device']} | {prec} | {r['batch']} | {r['size']} | {r['params_M']} | "
              f"{r['fwd_img_s']} | {r['fwd_bwd_img_s']} | {r['peak_MiB']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
