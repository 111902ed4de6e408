"""Benchmark top-left corner pooling (top pool + left pool): the package's `corner_pool` (cumulative max when a
gradient is wanted, a one-thread row loop at inference), cumulative max on flipped views, with the scanned axis made
contiguous first, and the row-by-row loop.

The row-by-row loop is the recurrence the original CornerNet CUDA kernels run: start from the last row (column),
then for each earlier one take max(itself, the already-pooled next one). It is vectorised over batch, channels and
the other axis, but needs H + W sequential steps, each a separate small kernel. `torch.cummax` does the same scan
in one call per direction.

    python benchmarks/bench_corner_pool.py                       # (8, 128, 128, 128) float32, forward only
    python benchmarks/bench_corner_pool.py --backward --repeats 3
    python benchmarks/bench_corner_pool.py --shape 1 64 64 64 --threads 1
    python benchmarks/bench_corner_pool.py --shape 16 32 64 64 --channels-last --threads 2   # a CPU evaluation batch

Prints a small table (median milliseconds over --repeats runs after one warm-up); never asserts.
"""
import argparse, os, platform, statistics, time

import torch

from centripetal.corner_pool import corner_pool


def _loop_scan(x, dim):
    "Suffix max along `dim` by an explicit loop, last slice to first (the CUDA kernels' recurrence); autograd-safe."
    slices = x.unbind(dim)
    acc, out = slices[-1], [slices[-1]]
    for s in reversed(slices[:-1]):
        acc = torch.maximum(s, acc)
        out.append(acc)
    return torch.stack(out[::-1], dim)


def loop_pool_top(x):
    "Top pool by a loop over rows, bottom to top. x: (B, C, H, W)."
    return _loop_scan(x, -2)


def loop_pool_left(x):
    "Left pool by a loop over columns, right to left. x: (B, C, H, W)."
    return _loop_scan(x, -1)


def loop_corner_pool_tl(a, b):
    "Reference top-left corner pooling with O(H + W) sequential passes. a, b: (B, C, H, W)."
    return loop_pool_top(a) + loop_pool_left(b)


def cummax_corner_pool_tl(a, b):
    """The package's version as the model runs it (`impl='auto'`): torch.cummax on flipped views when a gradient is
    wanted; without one (inference, forward-only timing) its row loop."""
    return corner_pool(a, b, 'tl', impl='auto')


def cummax_flips_tl(a, b):
    "torch.cummax on flipped views, whether or not a gradient is wanted (the package's training path)."
    return a.flip(-2).cummax(-2).values.flip(-2) + b.flip(-1).cummax(-1).values.flip(-1)


def cummax_contiguous_tl(a, b):
    "cummax with the scanned axis made the contiguous last one first (a transpose copy for the top pool)."
    top = a.transpose(-1, -2).flip(-1).contiguous().cummax(-1).values.flip(-1).transpose(-1, -2)
    return top + b.flip(-1).cummax(-1).values.flip(-1)


def _sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def time_fn(fn, a, b, repeats, backward):
    "Median wall time in ms of fn(a, b) (plus backward of its sum when `backward`), after one warm-up run."
    times = []
    for k in range(repeats + 1):
        if backward:
            a.grad = b.grad = None
        _sync(a.device)
        t0 = time.perf_counter()
        y = fn(a, b)
        if backward: y.sum().backward()
        _sync(a.device)
        if k: times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _fmt(ms):
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--shape', type=int, nargs=4, default=[8, 128, 128, 128], metavar=('B', 'C', 'H', 'W'),
                   help='input shape (default: 8 128 128 128)')
    p.add_argument('--repeats', type=int, default=5, help='timed runs per variant; the median is printed (default: 5)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: leave torch\'s choice)')
    p.add_argument('--device', default='cpu', help="'cpu' (default) or e.g. 'cuda'")
    p.add_argument('--dtype', default='float32', choices=['float32', 'float64', 'float16', 'bfloat16'])
    p.add_argument('--backward', action='store_true', help='time forward + backward of the sum instead of forward only')
    p.add_argument('--channels-last', action='store_true', help='inputs in channels-last memory format (as the model)')
    args = p.parse_args(argv)
    if args.repeats < 1: p.error('--repeats must be at least 1')
    if args.threads: torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)

    g = torch.Generator(device='cpu').manual_seed(0)
    a = torch.randn(*args.shape, generator=g).to(device, dtype).requires_grad_(args.backward)
    b = torch.randn(*args.shape, generator=g).to(device, dtype).requires_grad_(args.backward)
    if args.channels_last:
        a, b = (t.detach().contiguous(memory_format=torch.channels_last).requires_grad_(args.backward) for t in (a, b))

    with torch.no_grad():  # the two must agree before we time them
        ref = loop_corner_pool_tl(a, b)
        diff = max((cummax_corner_pool_tl(a, b) - ref).abs().max().item(), (cummax_contiguous_tl(a, b) - ref).abs().max().item())
        del ref

    rows = []
    variants = [('centripetal.corner_pool (cummax with --backward, else a one-thread row loop)', cummax_corner_pool_tl),
                ('cummax on flipped views', cummax_flips_tl),
                ('cummax, scan axis made contiguous', cummax_contiguous_tl),
                ('row/column loop (H+W passes)', loop_corner_pool_tl)]
    for name, fn in variants:
        ctx = torch.enable_grad() if args.backward else torch.no_grad()
        with ctx: rows.append((name, time_fn(fn, a, b, args.repeats, args.backward)))

    B, C, H, W = args.shape
    print(f"# corner pooling 'tl' (top + left), input ({B}, {C}, {H}, {W}) {args.dtype}"
          f"{' channels-last' if args.channels_last else ''} on {device}, "
          f"{'forward + backward' if args.backward else 'forward'}")
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs" + (f", {torch.cuda.get_device_name(device)}" if device.type == 'cuda' else ''))
    print(f"# max |cummax variants - loop| = {diff:.3g}; median of {args.repeats} runs after one warm-up")
    print(f"| variant | median ms | vs the first row |")
    print(f"|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {_fmt(ms)} | {ms / rows[0][1]:.2f}× |")


if __name__ == '__main__':
    main()
