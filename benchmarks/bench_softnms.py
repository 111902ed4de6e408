"""Benchmark class-wise gaussian soft-NMS: the batched, vectorised `centripetal.postprocess.soft_nms` (both ways of getting
IoUs: the precomputed N×N matrix and one IoU row per pick; the default picks by size) versus the textbook sequential loop.

Inputs are random boxes in a 511×511 image (sizes 8–200 px, so crowded), random scores, 80 classes or 1 class, N boxes per image
(the decoder hands soft-NMS up to 1,000 pairs per image; 2,000 is a flip-test merge). The textbook reference (`postprocess.soft_nms_reference`: Python loops per
image, per class, per pick, per box) is quadratic per class in Python, so it runs at the full N only when the classes are small
(N <= 50 per class, e.g. 2,000 boxes of 80 classes), else at --n-naive; it is checked to agree with the fast version. hard NMS from torchvision (`batched_nms`) is listed for scale.

    python benchmarks/bench_softnms.py
    python benchmarks/bench_softnms.py --n 1000 --batch 4 --repeats 5 --threads 1

Prints a table of median milliseconds; never asserts.
"""
import argparse, os, platform, statistics, time

import torch
import torchvision

from centripetal.postprocess import soft_nms, soft_nms_reference


def random_dets(B, N, n_classes, seed=0, size=511.0):
    "Random boxes (B, N, 4) float32, scores (B, N) in (0, 1), labels (B, N) long."
    g = torch.Generator().manual_seed(seed)
    wh = torch.rand(B, N, 2, generator=g) * 192 + 8
    xy = torch.rand(B, N, 2, generator=g) * (size - wh)
    return torch.cat([xy, xy + wh], -1), torch.rand(B, N, generator=g), torch.randint(0, n_classes, (B, N), generator=g)


def soft_nms_naive(boxes, scores, labels, max_dets=100):
    """The textbook loop, image by image: `postprocess.soft_nms_reference` (Python, one class, one pick and one box at a
    time; gaussian, sigma 0.5, min score 1e-3). (B, N, ...) tensors -> list per image of [(score, index)]."""
    return [soft_nms_reference(b, s, l, max_dets=max_dets) for b, s, l in zip(boxes, scores, labels)]


def median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _fmt(ms):
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=2000, help='boxes per image for the vectorised version (default: 2000)')
    p.add_argument('--n-naive', type=int, default=300, help='boxes per image for the textbook loop (default: 300)')
    p.add_argument('--batch', type=int, default=1, help='images per call (default: 1)')
    p.add_argument('--classes', type=int, nargs='+', default=[80, 1], help='class counts to try (default: 80 1)')
    p.add_argument('--max-dets', type=int, default=100, help='detections kept per image (default: 100)')
    p.add_argument('--repeats', type=int, default=5, help='timed runs; the median is printed (default: 5)')
    p.add_argument('--threads', type=int, default=None, help="torch.set_num_threads (default: leave torch's choice)")
    p.add_argument('--device', default='cpu', help="'cpu' (default) or e.g. 'cuda'")
    args = p.parse_args(argv)
    if args.repeats < 1: p.error('--repeats must be at least 1')
    if args.threads: torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == 'cuda' else (lambda: None)

    rows = []
    for C in args.classes:
        b, s, l = (t.to(dev) for t in random_dets(args.batch, args.n, C))
        for mode, elems in [('default', None), ('N×N matrix', 2**62), ('IoU row per pick', 0)]:
            def fast(): soft_nms(b, s, l, max_dets=args.max_dets, **({} if elems is None else dict(matrix_max_elems=elems))); sync()
            rows.append((f'soft_nms, {mode}', C, args.n, median_ms(fast, args.repeats)))
        def hard(): [torchvision.ops.batched_nms(b[i], s[i], l[i], 0.5)[:args.max_dets] for i in range(args.batch)]; sync()
        rows.append(('torchvision batched_nms (hard NMS, for scale)', C, args.n, median_ms(hard, args.repeats)))

        # the textbook loop is quadratic per class in Python: run it at the full N only when classes are small
        n_naive = args.n if args.n <= 50 * C else args.n_naive
        bn, sn, ln = random_dets(args.batch, n_naive, C, seed=1)
        out = soft_nms(bn, sn, ln, max_dets=args.max_dets)
        ref = soft_nms_naive(bn, sn, ln, max_dets=args.max_dets)
        agree = all(out['index'][i, :len(r)].tolist() == [j for _, j in r] for i, r in enumerate(ref))
        if n_naive != args.n:
            rows.append(('soft_nms, default', C, n_naive, median_ms(lambda: soft_nms(bn, sn, ln, max_dets=args.max_dets), args.repeats)))
        rows.append((f'textbook loop (Python, per class){"" if agree else " (DISAGREES!)"}', C, n_naive,
                     median_ms(lambda: soft_nms_naive(bn, sn, ln, max_dets=args.max_dets),
                               max(1, min(args.repeats, 3)))))

    print(f"# class-wise gaussian soft-NMS (sigma 0.5, min score 1e-3, keep {args.max_dets}), {args.batch} image(s) per call, on {dev}")
    print(f"# torch {torch.__version__}, torchvision {torchvision.__version__}, threads {torch.get_num_threads()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; median of {args.repeats} runs after a warm-up")
    print("| method | classes | boxes / image | median ms |")
    print("|---|---:|---:|---:|")
    for name, C, n, ms in rows:
        print(f"| {name} | {C} | {n} | {_fmt(ms)} |")


if __name__ == '__main__':
    main()
