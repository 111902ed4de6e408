"""Training and evaluation throughput of the small CPU model on the generated shapes benchmark.

For each model variant: training images/s (the real loop: data loading and augmentation, forward, backward, Adam step; batch 8 of
256 x 256 by default) and evaluation images/s (`predict_dataset` over validation images at full resolution, padded, no flip), plus
the COCO evaluation time. Prints a Markdown table; it asserts nothing.

    python benchmarks/bench_train_eval.py                       # cpu profile's model, 2 threads
    python benchmarks/bench_train_eval.py --variants full ae1d centripetal --steps 10 --threads 2
"""
import argparse, dataclasses, logging, os, platform, tempfile, time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--profile", default="cpu", help="profile whose model and training settings are measured (default: cpu)")
    p.add_argument("--variants", nargs="*", default=["base"], help="'base' (the profile itself) and/or names of its variants")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=256, help="image side of the generated benchmark and training input (default 256)")
    p.add_argument("--steps", type=int, default=6, help="training steps timed (after --warmup steps)")
    p.add_argument("--warmup", type=int, default=1, help="training steps not timed")
    p.add_argument("--n-val", type=int, default=16, help="validation images predicted")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for training")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--data", help="an existing shapes folder (default: generate one in a temporary folder)")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    from centripetal.shapes import generate_shapes
    from centripetal.train import train
    from centripetal.config import load_profile, update_config
    from centripetal.checkpoint import load_checkpoint, model_config_of
    from centripetal.evaluate import predict_dataset, coco_evaluate
    from centripetal.model import CentripetalNet
    from centripetal.data import CocoDetection

    tmp = Path(tempfile.mkdtemp(prefix="bench_train_eval_"))
    data = Path(args.data) if args.data else tmp / "shapes"
    if not args.data:
        n_train = args.batch_size * (args.steps + args.warmup)
        t0 = time.perf_counter()
        generate_shapes(data, n_train=n_train, n_val=args.n_val, size=args.size, seed=0, progress=False)
        print(f"generated {n_train} + {args.n_val} images of {args.size} px in {time.perf_counter() - t0:.1f} s")

    print(f"\n{platform.node()} ({platform.machine()}, {os.cpu_count()} cpus), torch {torch.__version__}, "
          f"{args.threads} threads, device {args.device}, batch {args.batch_size}, {args.size}x{args.size}\n")
    print("| variant | backbone | matcher | adaption | mask | params | train img/s | train s/step | eval img/s | COCOeval s |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|")
    for name in args.variants:
        model_cfg, train_cfg, test_cfg, _ = load_profile(args.profile, None if name == "base" else name)
        base = dict(data_root=str(data), input_size=args.size, batch_size=args.batch_size, num_workers=args.workers,
                    device=args.device, log_every=1000, ckpt_every_steps=10 ** 6, time_limit_min=None, accum_steps=1)
        # warm-up run, then the timed run resumed from it (so the timed steps exclude first-call overheads)
        warm = update_config(train_cfg, dict(base, out_dir=str(tmp / f"{name}_warm"), max_steps=args.warmup))
        train(model_cfg, warm, progress=False)
        timed = update_config(warm, dict(max_steps=args.warmup + args.steps))
        res = train(model_cfg, timed, resume=tmp / f"{name}_warm" / "last.pt", progress=False)
        ck = load_checkpoint(res["checkpoint"])
        model = CentripetalNet(model_config_of(ck)); model.load_state_dict(ck["model"])
        ds = CocoDetection(str(data / "val.json"), str(data / "images"), train=False)
        t0 = time.perf_counter()
        results = predict_dataset(model, ds, test_cfg, device=args.device, progress=False)
        t_pred = time.perf_counter() - t0
        t0 = time.perf_counter()
        coco_evaluate(data / "val.json", results, ("bbox", "segm") if model_cfg.mask_head else ("bbox",))
        t_eval = time.perf_counter() - t0
        n_par = sum(p.numel() for p in model.parameters())
        print(f"| {name} | {model_cfg.backbone} | {model_cfg.matcher} | {model_cfg.adaption} | {model_cfg.mask_head} | {n_par / 1e6:.2f} M | "
              f"{res['images_per_s']:.2f} | {args.batch_size / res['images_per_s']:.2f} | {len(ds) / t_pred:.2f} | {t_eval:.2f} |", flush=True)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
