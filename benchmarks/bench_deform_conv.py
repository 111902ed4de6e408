#!/usr/bin/env python
"""Deformable conv v1 speed: the grid_sample path (`centripetal.adaption.deform_conv2d_fast`) against
`torchvision.ops.deform_conv2d`, forward and forward+backward, median seconds, on CPU and (when present) CUDA.

    python benchmarks/bench_deform_conv.py                    # default sizes, CPU (+ CUDA if available)
    python benchmarks/bench_deform_conv.py --threads 1 --repeats 3 --sizes 8x64x64x64

Prints a markdown table (the numbers are measurements, never assertions) and the max absolute difference of the outputs.
"""
import argparse, platform, statistics, time

import torch
import torchvision

from centripetal.adaption import deform_conv2d_fast


def parse_size(s):
    try:
        b, c, h, w = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like BxCxHxW, e.g. 8x64x64x64, got {s!r}")
    return b, c, h, w


def _sync(device):
    if device.type == "cuda": torch.cuda.synchronize(device)


def time_call(fn, inputs, backward, repeats, warmup, device):
    "Median seconds of `fn(*inputs, padding=1)` (plus `.sum().backward()` when `backward`)."
    ts = []
    for i in range(warmup + repeats):
        ins = [t.detach().requires_grad_(backward) for t in inputs]
        _sync(device)
        t0 = time.perf_counter()
        if backward:
            fn(*ins, padding=1).sum().backward()
        else:
            with torch.no_grad(): fn(*ins, padding=1)
        _sync(device)
        if i >= warmup: ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench(size, device, repeats, warmup, seed=0):
    b, c, h, w = size
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g)
    off = torch.randn(b, 18, h, w, generator=g) * 2.0
    wt = torch.randn(c, c, 3, 3, generator=g) * 0.01
    bias = torch.zeros(c)
    inputs = [t.to(device) for t in (x, off, wt, bias)]
    # forward only, the fast path as inference runs it (the batched product); forward + backward as training runs it
    fast_infer = lambda *a, **k: deform_conv2d_fast(*a, product="bmm", **k)
    impls = {"torchvision": (torchvision.ops.deform_conv2d,) * 2, "fast": (fast_infer, deform_conv2d_fast)}
    with torch.no_grad():
        diff = (torchvision.ops.deform_conv2d(*inputs, padding=1) - fast_infer(*inputs, padding=1)).abs().max().item()
    row = {"device": device.type, "size": "x".join(map(str, size)), "max abs diff": diff}
    for name, (fwd, train) in impls.items():
        row[f"{name} fwd"] = time_call(fwd, inputs, False, repeats, warmup, device)
        row[f"{name} fwd+bwd"] = time_call(train, inputs, True, repeats, warmup, device)
    row["speed-up fwd"] = row["torchvision fwd"] / row["fast fwd"]
    row["speed-up fwd+bwd"] = row["torchvision fwd+bwd"] / row["fast fwd+bwd"]
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", type=parse_size, default=[(8, 64, 64, 64), (2, 256, 64, 64)],
                   help="input sizes BxCxHxW (3x3 kernel, C -> C channels, stride 1, padding 1)")
    p.add_argument("--devices", nargs="+", default=None, help="devices to time (default: cpu, plus cuda when available)")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repetitions first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    devices = a.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    rows = []
    for d in devices:
        dev = torch.device(d)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--devices cuda given but CUDA is not available on this machine")
        for size in a.sizes:
            rows.append(bench(size, dev, a.repeats, a.warmup))
    cards = ", ".join(sorted({torch.cuda.get_device_name(torch.device(d)) for d in devices if d.startswith("cuda")}))
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads" + (f", {cards}" if cards else ""))
    print("median seconds; speed-up = torchvision / fast\n")
    cols = ["device", "size", "torchvision fwd", "fast fwd", "speed-up fwd", "torchvision fwd+bwd", "fast fwd+bwd",
            "speed-up fwd+bwd", "max abs diff"]
    fmt = lambda k, v: f"{v:.1e}" if k == "max abs diff" else (f"{v:.2f}x" if k.startswith("speed") else
                                                              (f"{v:.4f}" if isinstance(v, float) else str(v)))
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(fmt(k, r[k]) for k in cols) + " |")
    return rows


if __name__ == "__main__":
    main()
