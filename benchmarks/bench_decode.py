#!/usr/bin/env python
"""Speed of the corner-pair decoder (`centripetal.matching.decode_pairs`).

Times the decode of random raw outputs shaped like Hourglass's at 511x511 (80 classes, 128x128 maps, top-100 corners,
1,000 pairs) for one image and for a batch, on one CPU thread and on all threads, and prints a markdown table of
median milliseconds. Random logits are close to the worst case: peaks everywhere, so every corner and every pair is
real work.

    python benchmarks/bench_decode.py                     # defaults: matcher centripetal, batches 1 and 8
    python benchmarks/bench_decode.py --matcher ae1d --batch 1 4 16 --repeat 50
    python benchmarks/bench_decode.py --device cuda       # on a GPU (synchronised timing; threads only affect the CPU side)
    python benchmarks/bench_decode.py --profile           # also print the top operators of one batch-1 decode
"""
import argparse
import os
import platform
import statistics
import time

import torch

from centripetal.matching import MATCHERS, DecodeConfig, decode_pairs


def make_outputs(batch, classes, size, emb_dim, device, seed=0):
    "Random raw outputs (B, ·, size, size) with every map any matcher reads."
    g = torch.Generator().manual_seed(seed)
    r = lambda c, scale=1.0: (scale * torch.randn(batch, c, size, size, generator=g)).to(device)
    return dict(tl_heat=r(classes, 3), br_heat=r(classes, 3), ct_heat=r(classes, 3),
                tl_off=r(2, 0.3), br_off=r(2, 0.3), ct_off=r(2, 0.3), tl_cs=r(2), br_cs=r(2),
                tl_ctr=r(2, 5), br_ctr=r(2, 5), tl_emb=r(emb_dim), br_emb=r(emb_dim))


def median_ms(fn, repeat, warmup, sync):
    for _ in range(warmup): fn()
    times = []
    for _ in range(repeat):
        sync(); t0 = time.perf_counter(); fn(); sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--matcher", choices=MATCHERS, default="centripetal", help="matcher to time (default: centripetal)")
    p.add_argument("--classes", type=int, default=80, help="heatmap channels C (default: 80, COCO)")
    p.add_argument("--size", type=int, default=128, help="feature map side H = W (default: 128, i.e. 511 / 4)")
    p.add_argument("--k", type=int, default=100, help="corners of each kind per image (default: 100)")
    p.add_argument("--num-pairs", type=int, default=1000, help="pairs kept per image (default: 1000)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes to time (default: 1 8)")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="torch thread counts to time (default: 1 and all cores)")
    p.add_argument("--repeat", type=int, default=30, help="timed runs per setting; the median is reported (default: 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default: 3)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--profile", action="store_true", help="print the top operators of batch-1 decodes on one thread")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    threads = args.threads or sorted({1, os.cpu_count() or 1})
    emb_dim = 2 if args.matcher == "ae2d" else 1
    cfg = DecodeConfig(matcher=args.matcher, k=args.k, num_pairs=args.num_pairs)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"decode_pairs, matcher={args.matcher}, C={args.classes}, maps {args.size}x{args.size}, k={args.k}, "
          f"pairs={args.num_pairs}")
    print(f"torch {torch.__version__}, device {device} ({card}), {os.cpu_count()} CPU cores, median of {args.repeat}\n")
    print("| threads | batch | ms / batch | ms / image |")
    print("|---:|---:|---:|---:|")
    before = torch.get_num_threads()
    try:
        for t in threads:
            torch.set_num_threads(t)
            for b in args.batch:
                outs = make_outputs(b, args.classes, args.size, emb_dim, device)
                ms = median_ms(lambda: decode_pairs(outs, cfg), args.repeat, args.warmup, sync)
                print(f"| {t} | {b} | {ms:.2f} | {ms / b:.2f} |")
    finally:
        torch.set_num_threads(before)
    if args.profile:
        from torch.profiler import profile
        torch.set_num_threads(1)
        outs = make_outputs(1, args.classes, args.size, emb_dim, device)
        decode_pairs(outs, cfg)
        with profile() as prof:
            for _ in range(5): decode_pairs(outs, cfg)
        torch.set_num_threads(before)
        print("\nprofile, 5 decodes of one image, 1 thread:")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
