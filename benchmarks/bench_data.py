#!/usr/bin/env python
"""Data loader throughput on the shapes benchmark: training-mode images/s (and per worker) for input sizes x worker counts.

    python benchmarks/bench_data.py                      # generates 96 shapes images in a temporary folder
    python benchmarks/bench_data.py --data data/shapes --n-images 400 --sizes 256 511 --workers 0 2 4 --masks
    python benchmarks/bench_data.py --image-size 640 --sizes 511 --workers 0 --masks   # COCO-sized images, one process

Prints a markdown table (never asserts). One pass over `--n-images` images per row, worker start-up included, after one warm-up pass.
"""
import argparse, os, platform, sys, tempfile, time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('--data', default=None, help="a shapes folder with train.json and images/ (default: generate one in a temporary folder)")
    p.add_argument('--n-images', type=int, default=96, help='images per measurement (default: 96)')
    p.add_argument('--sizes', type=int, nargs='+', default=[256, 511], help='network input sizes (default: 256 511)')
    p.add_argument('--workers', type=int, nargs='+', default=[0, 2], help='DataLoader worker counts (default: 0 2)')
    p.add_argument('--batch-size', type=int, default=8, help='batch size (default: 8)')
    p.add_argument('--masks', action='store_true', help='also load and warp instance masks')
    p.add_argument('--threads', type=int, default=1, help='torch threads per process (default: 1)')
    p.add_argument('--image-size', type=int, default=256,
                   help='side of the generated images (default: 256; 640 is about a COCO image)')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    import torch
    from centripetal.data import CocoDetection, make_loader
    from centripetal.shapes import generate_shapes
    torch.set_num_threads(a.threads)
    tmp = None
    if a.data is None:
        tmp = tempfile.TemporaryDirectory()
        t0 = time.perf_counter()
        paths = generate_shapes(tmp.name, n_train=a.n_images, n_val=0, size=a.image_size, progress=False)
        print(f"generated {a.n_images} shapes images in {time.perf_counter() - t0:.1f} s")
        ann, img_dir = paths['train'], paths['images']
    else:
        ann, img_dir = Path(a.data) / 'train.json', Path(a.data) / 'images'
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"torch {torch.__version__}, {a.threads} torch thread(s); batch {a.batch_size}, masks {a.masks}\n")
    print('| input | workers | images | seconds | images/s | images/s per worker |')
    print('|---:|---:|---:|---:|---:|---:|')
    for size in a.sizes:
        ds = CocoDetection(ann, img_dir, input_size=size, train=True, with_masks=a.masks, seed=0)
        ds.ids = ds.ids[:a.n_images]
        for w in a.workers:
            for rep in range(2):                                    # the first pass warms caches (and the page cache)
                loader = make_loader(ds, batch_size=a.batch_size, shuffle=True, num_workers=w, seed=rep)
                t0 = time.perf_counter()
                n = sum(len(x) for x, _ in loader)
                dt = time.perf_counter() - t0
            print(f'| {size} | {w} | {n} | {dt:.2f} | {n / dt:.1f} | {n / dt / max(w, 1):.1f} |', flush=True)
    if tmp is not None: tmp.cleanup()


if __name__ == '__main__':
    main()
