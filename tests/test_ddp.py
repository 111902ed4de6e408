"""Two processes under torchrun (gloo, CPU) train like one process with the same global batch.

Model: the ci profile's (small hourglass, cross-star deformable convolution, mask head), 128-px generated shapes, 3 steps.

What DistributedDataParallel computes: each of P processes runs the forward pass and the loss on its own B images — batch-norm
statistics over those B images, the loss normalised by the positives among them — and the gradients are averaged over processes.
That is, exactly, *gradient accumulation* over P micro-batches of B images. So the faithful single-process reference for
`torchrun --nproc_per_node 2` with batch B is one process with batch 2B split into 2 micro-batches (`--accum 2`), where micro-batch j
takes images j, j+2, j+4, ... of the batch, the same images DistributedSampler gives rank j. Then BatchNorm needs no special
treatment (each micro-batch normalises over the same B images as the matching rank), and the two runs must agree up to float
rounding (the order of the gradient sum differs: all-reduce versus accumulation).

A plain 1 × 2B batch in one piece is *not* the same computation: batch-norm statistics over 2B images instead of B, and the focal
loss normalised by the positives of 2B images instead of averaging two per-B normalisations. On GPUs, SyncBatchNorm
(`sync_bn: true`; off by default, as both releases train) removes the first difference; PyTorch has no CPU SyncBatchNorm. The
second is inherent to per-batch normalised losses. The second test measures that gap with BatchNorm frozen (`--freeze-bn`), and
only checks that it is modest.

Tolerances. Observed on CPU: losses and weights bit-identical, because gloo's all-reduce of two gradients followed by a division
by 2 rounds exactly like accumulating two halves. The test still allows rtol 1e-4 on each of the first 3 steps' losses and 1e-4 on
the weights after 3 steps, for back ends whose reductions round differently: Adam's first steps are close to lr·sign(g), so a
rounding-level gradient difference can move a weight with a near-zero gradient by up to 2·lr, and the loss by far less.
The 1 × 2B comparison allows 10 % (observed: about 1 %).
"""
import csv, os, socket, subprocess, sys, time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
B, STEPS = 2, 3

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _args(data, out, batch, *extra):
    return ["-m", "centripetal.train", "--profile", "ci", "--data-root", str(data), "--out", str(out), "--batch-size", str(batch),
            "--max-steps", str(STEPS), "--log-every", "1", "--workers", "0", "--device", "cpu", "--no-progress", "--seed", "0", *extra]


def _run(cmd, timeout=300):
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res


def _torchrun(args):
    "Run `python -m centripetal.train ...` (args as for a plain run, starting with '-m') in 2 processes under torchrun."
    assert args[0] == "-m"
    return _run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                 "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *args])


def _losses(out):
    with open(Path(out) / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    return torch.tensor([float(r["loss"]) for r in rows], dtype=torch.float64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from centripetal.shapes import generate_shapes
    d = tmp_path_factory.mktemp("shapes")
    generate_shapes(d, n_train=2 * B * STEPS, n_val=2, size=128, seed=0, progress=False)
    return d


@pytest.fixture(scope="module")
def ddp_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    res = _torchrun(_args(data, out, B))
    return out, res


def test_ddp_matches_single_process_with_accumulation(data, ddp_run, tmp_path):
    out, res = ddp_run
    _run([sys.executable, *_args(data, tmp_path / "single", 2 * B, "--accum", "2")])
    ddp, single = _losses(out), _losses(tmp_path / "single")
    print("ddp 2 x", B, ddp.tolist(), "\nsingle 1 x", 2 * B, "(accum 2)", single.tolist())
    torch.testing.assert_close(ddp, single, rtol=1e-4, atol=0)
    assert "2 process(es)" in res.stderr, "the torchrun run must report two processes"
    # the DDP wrapper's own attributes, as rank 0 logs them: no search for unused parameters (every parameter is in every
    # step's loss), gradients as views of the all-reduce buckets
    assert "find_unused_parameters=False, gradient_as_bucket_view=True" in res.stderr, res.stderr[-3000:]
    # the weights after 3 steps; BatchNorm running statistics are left out: accumulation updates them once per micro-batch,
    # DDP once per step on each process (and keeps rank 0's), and they only matter at test time
    from centripetal.checkpoint import load_checkpoint
    a, b = load_checkpoint(out / "last.pt")["model"], load_checkpoint(tmp_path / "single" / "last.pt")["model"]
    params = [k for k in a if not any(s in k for s in ("running_mean", "running_var", "num_batches_tracked"))]
    worst = max((a[k] - b[k]).abs().max().item() for k in params)
    print(f"max weight difference after {STEPS} steps: {worst:.2e}")
    assert worst < 1e-4


def test_ddp_close_to_one_big_batch(data, tmp_path):
    outs = {}
    t0 = time.perf_counter()
    outs["ddp"] = tmp_path / "ddp_frozen"
    _torchrun(_args(data, outs["ddp"], B, "--freeze-bn"))
    outs["single"] = tmp_path / "single_frozen"
    _run([sys.executable, *_args(data, outs["single"], 2 * B, "--freeze-bn")])
    ddp, single = _losses(outs["ddp"]), _losses(outs["single"])
    rel = ((ddp - single).abs() / single.abs()).max().item()
    print(f"frozen BN: ddp {ddp.tolist()} vs one batch of {2 * B}: {single.tolist()}; max relative gap {rel:.3%} "
          f"({time.perf_counter() - t0:.1f} s)")
    assert rel < 0.10
