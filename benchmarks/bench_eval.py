"""Where CPU evaluation time goes: `predict_dataset` + COCOeval of a checkpoint on the profile's val split, by stage.

Runs the same code as `centripetal evaluate` (profile test settings: flip, masks) and times each stage by wrapping
the functions that do it: network forward, decode, soft-NMS, mask head, mask pasting, conversion to COCO results
(masks to original pixels + RLE), COCOeval bbox and segm. Prints a Markdown table with the machine, torch version,
threads and the load average before and after; it asserts nothing.

    python benchmarks/bench_eval.py /tmp/evalckpt/last.pt                    # cpu profile, 200 val images
    python benchmarks/bench_eval.py CKPT --batch-size 1 --max-images 50      # the one-image-at-a-time path
    python benchmarks/bench_eval.py CKPT --coco pycocotools                  # force the reference COCOeval
"""
import argparse, functools, os, platform, time
from collections import defaultdict


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("checkpoint")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward (default: evaluate's default)")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--coco", default="auto", choices=["auto", "pycocotools", "faster"],
                   help="COCOeval implementation (auto: faster-coco-eval when installed)")
    return p.parse_args(argv)


def _timed(times, name, fn):
    "fn wrapped so that its wall time adds to times[name] (outermost call only, so nested stages do not double-count)."
    depth = [0]
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        if depth[0]: return fn(*a, **kw)
        depth[0] += 1; t0 = time.perf_counter()
        try: return fn(*a, **kw)
        finally: times[name] += time.perf_counter() - t0; depth[0] -= 1
    return wrapper


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    import centripetal.model as M, centripetal.evaluate as E, centripetal.mask_head as H
    times = defaultdict(float)
    # the stages, by the module attribute each is looked up through at call time
    for mod, attr, name in [(M.CentripetalNet, "forward_maps", "network forward"), (M, "decode_pairs", "decode"),
                            (M, "soft_nms_detections", "soft-NMS"), (H.MaskHead, "forward", "mask head"),
                            (M, "paste_masks", "mask pasting"), (E, "masks_to_original", "masks to original px"),
                            (E, "encode_masks", "RLE encoding")]:
        if hasattr(mod, attr): setattr(mod, attr, _timed(times, name, getattr(mod, attr)))
        else: print(f"note: {getattr(mod, '__name__', mod)}.{attr} is gone: stage '{name}' is not timed")
    kw = {} if args.batch_size is None else dict(batch_size=args.batch_size)
    if args.coco != "auto": kw["coco_backend"] = args.coco
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    metrics = E.evaluate(args.checkpoint, args.profile, out_dir=f"/tmp/bench_eval_{os.getpid()}", device="cpu",
                         max_images=args.max_images, progress=False, **kw)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    import json
    info = json.loads(open(f"/tmp/bench_eval_{os.getpid()}/metrics.json").read())
    n, pred = info["images"], info["seconds"]
    print(f"\n{platform.node()} ({platform.machine()}, {os.cpu_count()} cpus), torch {torch.__version__}, "
          f"{args.threads} threads, load average {load0:.2f} before / {os.getloadavg()[0]:.2f} after\n")
    print(f"{n} images, {info['detections']} detections, batch {info.get('batch_size', args.batch_size)}, "
          f"COCOeval {info.get('coco_backend', 'pycocotools')}: prediction {pred:.1f} s ({n / pred:.2f} img/s), "
          f"evaluate() in all {total:.1f} s wall, {cpu:.1f} s CPU (all threads); "
          f"bbox AP {100 * metrics['bbox']['AP']:.2f}"
          + (f", segm AP {100 * metrics['segm']['AP']:.2f}" if "segm" in metrics else "") + "\n")
    print("| stage | seconds | share of evaluate() |\n|---|---:|---:|")
    rest = pred - sum(times.values())                     # every wrapped stage runs inside the prediction
    rows = list(times.items()) + [("other prediction work", rest), ("COCOeval + loading + writing", total - pred)]
    for k, v in rows: print(f"| {k} | {v:.2f} | {100 * v / total:.0f} % |")
    print(f"| **evaluate() in all** | **{total:.2f}** | 100 % |")


if __name__ == "__main__":
    main()
