"""Resume after a real kill gives the same weights as a run that was never interrupted.

Three runs of `python -m centripetal.train` on a tiny generated benchmark (16 images of 128 px, batch 4: 4 steps per epoch,
3 epochs = 12 steps, a checkpoint every 5 steps):

1. the reference, uninterrupted, to step 12;
2. the same command, killed with SIGKILL as soon as its first checkpoint appears (step 5: mid-epoch 1, batch 2 of 4);
3. `--resume` from that checkpoint to step 12.

The final weights and Adam moments of 3 must equal those of 1 **exactly** (tolerance 0). Why exact: one thread
(OMP_NUM_THREADS=1), no DataLoader workers, CPU kernels that are deterministic for a fixed thread count, and a resumed run that
performs the very same floating-point operations in the same order: the data order and the augmentation of each image are
functions of (seed, epoch, index), the learning rate a function of the step, and the generator states and optimizer state come
back bit for bit from the checkpoint. Any difference at all means state was lost, so a tolerance would only hide bugs.
The log must hold each step once, with the resumed steps' losses equal to the reference's.
"""
import csv, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS, CKPT_EVERY = 12, 5


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
    return env


def _cmd(data, out, *extra):
    return [sys.executable, "-m", "centripetal.train", "--profile", "ci", "--data-root", str(data), "--out", str(out),
            "--batch-size", "4", "--epochs", "3", "--lr-steps", "2", "--ckpt-every", str(CKPT_EVERY), "--log-every", "1",
            "--workers", "0", "--device", "cpu", "--no-progress", "--seed", "0", *extra]


def _run(cmd, timeout=300):
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res


def _log(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from centripetal.shapes import generate_shapes
    d = tmp_path_factory.mktemp("shapes")
    generate_shapes(d, n_train=16, n_val=2, size=128, seed=0, progress=False)
    return d


def test_resume_after_sigkill_matches_uninterrupted(data, tmp_path):
    from centripetal.checkpoint import load_checkpoint
    t0 = time.perf_counter()
    _run(_cmd(data, tmp_path / "ref"))

    # the same run, killed as soon as a checkpoint exists
    ckpt = tmp_path / "killed" / "last.pt"
    proc = subprocess.Popen(_cmd(data, tmp_path / "killed"), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not ckpt.exists():
            if proc.poll() is not None:
                pytest.fail(f"training exited (rc {proc.returncode}) before writing a checkpoint:\n{proc.stderr.read().decode()[-4000:]}")
            if time.time() > deadline: pytest.fail("no checkpoint after 240 s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(ckpt)["step"]
    assert CKPT_EVERY <= killed_at < STEPS, f"the run was killed too late to test anything (checkpoint at step {killed_at})"
    assert killed_at % 4 != 0 or killed_at == 0, "pick sizes so the kill lands mid-epoch"

    _run(_cmd(data, tmp_path / "killed", "--resume", str(ckpt)))

    ref, res = load_checkpoint(tmp_path / "ref" / "last.pt"), load_checkpoint(ckpt)
    assert ref["step"] == res["step"] == STEPS
    diff = {k: (ref["model"][k].double() - res["model"][k].double()).abs().max().item()
            for k in ref["model"] if ref["model"][k].is_floating_point()}
    bad = {k: v for k, v in diff.items() if v != 0}
    assert not bad, f"weights differ after resume (max abs diff per tensor): {dict(list(bad.items())[:5])}"
    assert all(torch.equal(ref["model"][k], res["model"][k]) for k in ref["model"])
    for i, st in ref["optimizer"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(st[name], res["optimizer"]["state"][i][name]), (i, name)

    log_ref, log_res = _log(tmp_path / "ref" / "log.csv"), _log(tmp_path / "killed" / "log.csv")
    assert [r["step"] for r in log_res] == list(range(1, STEPS + 1)), "each step logged exactly once"
    assert [r["loss"] for r in log_res] == [r["loss"] for r in log_ref]
    print(f"killed at step {killed_at}, resumed to {STEPS}: identical weights; {time.perf_counter() - t0:.1f} s")
