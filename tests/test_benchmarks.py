"""Smoke tests of the utilisation benchmark and the one-call GPU check script, on the CPU at tiny sizes.

1. The arithmetic of `bench_utilisation.phase_times` (nested profiler ranges: each phase keeps only its own time) and
   of `device_time_us` (the union of kernel intervals) on hand-made events, and `Wrapped` putting every wrapped
   attribute back.
2. `benchmarks/bench_utilisation.py` at batch 2 × 64 px, one step: its tables have every row, a positive FLOP count, and
   the --markdown file holds what it printed (~30 s on two quiet cores).
3. `benchmarks/gpu_check.sh --device cpu --tiny`: every stage ok, the summary written (~80 s of CPU time: 80 s of
   wall time on two cores shared with other jobs at load 5, up to 4-5 minutes at load 9).
4. Only with CENTRIPETAL_SLOW=1 (as the slow notebook tests; 2-4 minutes on two cores): the benchmark on Hourglass-104
   at batch 2 × 128, whose backbone FLOPs per image agree with the ≈ 468 GFLOP at 511² that issue #13 quotes, scaled
   to 128².
"""
import importlib.util, os, re, subprocess, sys, types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_utilisation.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_utilisation", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _event(name, start, end, thread=1):
    tr = types.SimpleNamespace(start=start, end=end, elapsed_us=lambda: end - start)
    return types.SimpleNamespace(name=name, thread=thread, time_range=tr)


def test_phase_times_nesting():
    b = _load_bench()
    P = b.PREFIX
    events = [_event(P + "step", 0, 100), _event(P + "forward: backbone + heads", 10, 40),
              _event(P + "target rendering", 40, 50), _event(P + "loss terms", 50, 70),
              _event(P + "mask proposals + RoI sampling + mask targets", 55, 60),   # nested in the loss range
              _event(P + "backward", 70, 95), _event("aten::conv2d", 12, 30),     # not ours: ignored
              _event(P + "data: load + augment", 100, 130),                      # outside the step
              _event(P + "backward", 0, 8, thread=2)]                     # another thread: not nested in 'step'
    own = b.phase_times(types.SimpleNamespace(events=lambda: events))
    assert own == {"step": 100 - 30 - 10 - 20 - 25, "forward: backbone + heads": 30, "target rendering": 10,
                   "loss terms": 15, "mask proposals + RoI sampling + mask targets": 5, "backward": 25 + 8,
                   "data: load + augment": 30}
    assert b.step_total(types.SimpleNamespace(events=lambda: events)) == 100


def test_wrapped_restores_attributes():
    import torch
    b = _load_bench()
    mod = types.SimpleNamespace(f=lambda x: x + 1)
    lin = torch.nn.Linear(2, 2)
    orig_f, orig_backward = mod.f, torch.Tensor.backward
    with b.Wrapped(sync=False, device=torch.device("cpu")) as w:
        w.wrap(mod, "f", "loss terms")
        w.wrap(lin, "forward", "forward: mask head")
        w.wrap(torch.Tensor, "backward", "backward")
        w.wrap(mod, "absent", "target rendering", "mod.absent")
        assert mod.f(1) == 2 and mod.f is not orig_f and "forward" in lin.__dict__
    assert mod.f is orig_f and "forward" not in lin.__dict__ and torch.Tensor.backward is orig_backward
    assert w.missing == {"target rendering": ["mod.absent"]}


def test_bench_rejects_bad_options():
    r = subprocess.run([sys.executable, str(BENCH), "--steps", "0"], capture_output=True, text=True, env=_env(),
                       cwd=ROOT)
    assert r.returncode == 2 and "--steps must be >= 1" in r.stderr


def _value(out, label):
    m = re.search(r"^\| " + re.escape(label) + r"[^|]*\| ([0-9.]+) ([A-Z]*)FLOP", out, re.M)
    assert m, f"no row '{label}' in:\n{out}"
    return float(m.group(1)) * {"": 1, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)]


def test_bench_utilisation_tiny(tmp_path):
    md = tmp_path / "util.md"
    cmd = [sys.executable, str(BENCH), "--device", "cpu", "--batch", "2", "--size", "64", "--steps", "1",
           "--warmup", "0", "--profile-steps", "1", "--threads", "1", "--peak-size", "512", "--markdown", str(md)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "## Utilisation: small, cpu, fp32" in out and "CPU " in out and "torch " in out and "load average" in out
    step_flops = _value(out, "FLOPs per training step")
    fwd_flops = _value(out, "FLOPs of the forward")
    assert step_flops > 0 and 0 < _value(out, "of which the backbone") < fwd_flops
    assert step_flops > 2 * fwd_flops * 2          # forward + backward (≈ 2× forward) of a batch of 2
    assert _value(out, "achieved FLOP/s") > 0 and _value(out, "peak: 512² fp32 matmul") > 0
    assert re.search(r"^\| achieved / 512² fp32 matmul \| [0-9.]+ % \|", out, re.M)
    assert re.search(r"^\| s/step \(median of 1;", out, re.M)
    bench = _load_bench()
    rows = {}
    for phase, _ in bench.PHASES:
        m = re.search(r"^\| " + re.escape(phase) + r"[^|]*\| ([0-9.]+) \| \(?([0-9.]+) %\)? \|", out, re.M)
        assert m, f"no row for phase {phase!r}"
        rows[phase] = float(m.group(1))
        row = out.split("| " + phase, 1)[1].split("\n", 1)[0]
        assert "not separable" not in row and "not called" not in row, phase      # every phase found and timed
    for phase in ("forward: backbone + heads", "backward", "target rendering", "optimizer (zero_grad, clip, Adam)",
                  "mask proposals + RoI sampling + mask targets", "data: load + augment"):
        assert rows[phase] > 0, phase
    step = float(re.search(r"^\| \*\*step\*\* [^|]*\| \*\*([0-9.]+)\*\* \| 100 % \|", out, re.M).group(1))
    in_step = sum(v for (p, host), v in zip(bench.PHASES, rows.values()) if host is not None)
    assert abs(in_step - step) <= 0.01 * step + 0.6, (in_step, step)       # the phases add up to the step (rounding)
    assert re.search(r"Host-side work .*\*\*[0-9.]+ ms/step = [0-9.]+ % of the step\*\*", out)
    assert "≤ 10 % of the step" in out and "≤ 20 ms per batch of 8" in out
    assert md.read_text().strip() == out.strip()


SLOW = pytest.mark.skipif(os.environ.get("CENTRIPETAL_SLOW") != "1",
                          reason="several minutes on two CPU cores: set CENTRIPETAL_SLOW=1")


@SLOW
def test_bench_utilisation_hourglass104_tiny(tmp_path):
    "Hourglass-104 (the paper profile's model) at its smallest trainable size: batch 2 × 128 (35-70 s/step here)."
    cmd = [sys.executable, str(BENCH), "--device", "cpu", "--model", "hourglass104", "--batch", "2", "--size", "128",
           "--steps", "1", "--warmup", "0", "--profile-steps", "0", "--peak-size", "512"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "## Utilisation: hourglass104, cpu, fp32" in r.stdout and "paper profile's model: hourglass104" in r.stdout
    backbone = _value(r.stdout, "of which the backbone")
    assert 20e9 < backbone < 40e9, backbone          # ≈ 468 GFLOP at 511² (the issue), scaled by (128/511)²: ≈ 29 GFLOP


def test_gpu_check_cpu_tiny(tmp_path):
    out = tmp_path / "gc"
    cmd = ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--tiny", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = (out / "gpu_check.md").read_text()
    for stage in ("utilisation: small fp32", "train: small, cpu profile, 2 steps", "evaluate: 8 val images",
                  "utilisation: small bf16"):
        assert re.search(r"^\| " + re.escape(stage) + r"[^|]* \| ok \| [0-9.]+ \|$", summary, re.M), stage
    assert "trained to step 2" in summary and "8 images, flip=True: prediction" in summary
    assert summary.count("## Utilisation: small, cpu,") == 2 and "### Where the step goes" in summary
    assert (out / "eval_small" / "metrics.json").is_file() and (out / "train_small" / "last.pt").is_file()


def test_gpu_check_rejects_bad_options(tmp_path):
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    r = subprocess.run(["bash", script, "--device", "tpu"], capture_output=True, text=True)
    assert r.returncode == 2 and "--device must be cuda or cpu" in r.stderr
    r = subprocess.run(["bash", script, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--tiny" in r.stdout


def test_device_time_is_the_union_of_kernels():
    from torch.autograd import DeviceType
    b = _load_bench()
    def ev(name, s, t, dev=DeviceType.CUDA, **kw):
        e = _event(name, s, t); e.device_type = dev; e.__dict__.update(kw); return e
    events = [ev("k1", 0, 10), ev("k2", 5, 12), ev("k3", 20, 30), ev("aten::mm", 0, 100, DeviceType.CPU),
              ev(b.PREFIX + "backward", 0, 30), ev("range", 0, 30, is_user_annotation=True),
              ev("ann", 0, 30, activity_type="gpu_user_annotation")]
    assert b.device_time_us(types.SimpleNamespace(events=lambda: events)) == 12 + 10


def test_bench_peer_step_tiny(tmp_path):
    "benchmarks/bench_peer_step.py (ours vs a probe on mmdetection's CentripetalHead) at batch 2 × 64 px, one round."
    pytest.importorskip("mmdet", reason="needs the peer extra: pip install -e '.[peer]'")
    import torch, torchvision
    sys.path.insert(0, str(ROOT / "tests" / "peer"))
    import peer_models
    peer_models.import_mmdet()                     # the ops shim, whose backward the probe trains with
    from mmcv.ops import DeformConv2d
    torch.manual_seed(0)
    conv = DeformConv2d(4, 3, 3, 1, 1).double()
    x, off = torch.randn(2, 4, 5, 6, dtype=torch.double), torch.randn(2, 18, 5, 6, dtype=torch.double)
    ins = [t.clone().requires_grad_() for t in (x, off)]
    conv(*ins).square().sum().backward()
    ref = [t.clone().requires_grad_() for t in (x, off, conv.weight.detach())]
    torchvision.ops.deform_conv2d(ref[0], ref[1], ref[2], padding=1).square().sum().backward()
    for got, want in zip((ins[0].grad, ins[1].grad, conv.weight.grad), (r.grad for r in ref)):
        assert torch.allclose(got, want) and want.abs().sum() > 0
    md = tmp_path / "peer.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_peer_step.py"), "--size", "64", "--batch", "2", "--steps",
           "1", "--warmup", "1", "--breakdown-steps", "1", "--threads", "1", "--markdown", str(md)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"ratio ours/probe \(images/s\): ([0-9.]+)×", r.stdout)
    assert m and float(m.group(1)) > 0, r.stdout[-3000:]
    for side in ("ours: CentripetalNet + train_step", "probe: same backbone + mmdet CentripetalHead"):
        row = re.search(r"^\| " + re.escape(side) + r" \| ([0-9.]+) \|[^|]*\| ([0-9.]+) \| ([0-9.]+) ([MGT])FLOP",
                        r.stdout, re.M)
        assert row and float(row.group(1)) > 0 and float(row.group(2)) > 0 and float(row.group(3)) > 0, side
    for phase in ("forward (backbone + head)", "loss (targets + loss terms)", "backward", "optimizer"):
        assert re.search(r"^\| " + re.escape(phase) + r"[^|]*\| [0-9.]+ \| [0-9.]+ \|", r.stdout, re.M), phase
    assert "mmcv ops shim" in r.stdout and r.stdout.count("Load average") == 2
    assert re.search(r"Of the probe's step, [0-9.]+ ms \([0-9]+ %\) are inside the deformable conv", r.stdout)
    assert md.read_text().strip() == r.stdout.strip()
    # with our widths and our deformable conv the probe is the same network as ours: the same FLOPs and parameters
    r = subprocess.run(cmd[:-2] + ["--probe-widths", "ours", "--probe-deform", "ours"], capture_output=True, text=True,
                       env=_env(), cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    flops_params = r"^\| (?:ours|probe): [^|]*\|(?:[^|]*\|){3} ([^|]*) \| ([^|]*) \|[^|]*\| ([^|]*) \|$"
    rows = re.findall(flops_params, r.stdout, re.M)
    assert len(rows) == 2 and rows[0] == rows[1], rows
