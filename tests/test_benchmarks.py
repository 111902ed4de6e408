"""Smoke tests of the utilisation benchmark and the one-call GPU check script, on the CPU at tiny sizes.

1. The arithmetic of `bench_utilisation.phase_times` (nested profiler ranges: each phase keeps only its own time) and
   of `device_time_us` (the union of kernel intervals) on hand-made events, and `Wrapped` putting every wrapped
   attribute back.
2. `benchmarks/bench_utilisation.py` at batch 2 × 64 px, one step: its tables have every row, a positive FLOP count, and
   the --markdown file holds what it printed (~30 s on two quiet cores).
3. `benchmarks/gpu_check.sh --device cpu --tiny` (issue #21's GPU check at tiny sizes): its five stages run in the
   order of the issue and pass, the report, the section for results/benchmarks.md and the figures are written, and a
   CPU run is refused by --publish (~40 s of wall time on two cores shared with other jobs at load 4-6).
4. The check's install step offline (issue #21): the wheel folder made by the documented command
   (`benchmarks/gpu_wheels.sh`) in the test's temporary folder, a clean venv that sees torch and torchvision (and what
   they require) but none of the check's other imports, pip with no index, no configuration and no network; the
   step installs the wheels and every module the stages import then imports (~20 s). With CENTRIPETAL_SLOW=1 the
   whole tiny check also runs in that venv.
5. Only with CENTRIPETAL_SLOW=1 (as the slow notebook tests; 2-4 minutes on two cores): the benchmark on Hourglass-104
   at batch 2 × 128, whose backbone FLOPs per image agree with the ≈ 468 GFLOP at 511² that issue #13 quotes, scaled
   to 128².
"""
import importlib.metadata, importlib.util, json, os, re, shutil, subprocess, sys, types
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


GPU_CHECK = ROOT / "benchmarks" / "gpu_check.sh"
STAGE_ORDER = ["small bf16 + channels_last: step time, % of dense bf16 peak",        # issue #21, item 6, in order
               "small bf16 + channels_last, torch.compile (eager)",
               "one small step under set_sync_debug_mode('warn')",
               "deformable conv 1 x 16 x 16x16: fp32 vs bf16 autocast",
               "data loader at 128 px: images/s per worker"]


def _check_tiny_run(r, out):
    "What a `gpu_check.sh --device cpu --tiny` run must show (its CompletedProcess `r` and --out folder `out`)."
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    starts = [re.search(f"^== {i + 1}/5 " + re.escape(t), r.stdout, re.M) for i, t in enumerate(STAGE_ORDER)]
    assert all(starts), r.stdout
    assert [m.start() for m in starts] == sorted(m.start() for m in starts)              # printed in that order
    assert r.stdout.index("== install") < starts[0].start()                              # the install step first
    assert sorted(p.name for p in out.iterdir()) == ["benchmarks_section.md", "gpu_check.md", "logs.tar.gz",
                                                     "stages.json"]          # few files: the device tool brings back 8
    report = (out / "gpu_check.md").read_text()
    rows = re.findall(r"^\| (\d) \| ([^|]+) \| \d+ \| ([^|]+) \| [0-9.]+ \|$", report, re.M)
    assert [(int(n), t.strip(), res.strip()) for n, t, res in rows] == \
        [(i + 1, t, "ok") for i, t in enumerate(STAGE_ORDER)], rows                     # the table: same order, all ok
    assert "imports ok:" in report and "Install step" in report
    meta = json.loads((out / "stages.json").read_text())
    assert meta["device"] == "cpu" and [s["key"] for s in meta["status"]] == ["step", "compile", "sync", "deform",
                                                                             "loader"]
    st = meta["stages"]
    for key in ("step", "compile"):
        assert st[key]["flops"]["step"] > 0 and st[key]["s_step"] > 0 and st[key]["pct_matmul"] > 0, key
    assert st["compile"]["compile_s"] > 0 and st["step"]["pct_peak"] is None          # no card on the CPU
    assert st["sync"]["count"] is None                                                # the mode watches CUDA only
    for acc in st["deform"]["accuracy"].values():
        assert acc["same_cols"] and acc["bound_ratio"] <= 1 and acc["rel_norm"] < 2 * 2 ** -8, acc
    assert [row["workers"] for row in st["loader"]["rows"]] == [0, 1]
    assert all(row["images_per_s"] > 0 for row in st["loader"]["rows"])
    section = (out / "benchmarks_section.md").read_text()
    assert section.startswith("## GPU check (`gpu_check.sh`, issue #21)") and section.count("\n| ") >= 6


def test_gpu_check_cpu_tiny(tmp_path):
    out = tmp_path / "gc"
    cmd = ["bash", str(GPU_CHECK), "--device", "cpu", "--tiny", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=900)
    _check_tiny_run(r, out)
    # a CPU run is a smoke test: --publish refuses it and leaves results/ alone
    results = tmp_path / "results"
    r = subprocess.run(["bash", str(GPU_CHECK), "--publish", str(out), "--results", str(results)], capture_output=True,
                       text=True, env=_env())
    assert r.returncode != 0 and "only a run on a GPU is published" in r.stderr and not results.exists()


def test_gpu_check_report_and_publish(tmp_path):
    """The report of a GPU run (its stage files made up here: no GPU on this machine) names the card's peak and the
    sync count; --publish puts it in results/utilisation/gpu_<card>.md and appends its section to benchmarks.md once."""
    work, run, results = tmp_path / "work", tmp_path / "run", tmp_path / "results"
    for d in (work, run, results): d.mkdir()
    (results / "benchmarks.md").write_text("# Benchmarks\n\n## Earlier\n\ntext\n")
    card = "NVIDIA H100 80GB HBM3"
    step = dict(card=card, model="hourglass104", batch=6, size=511, flops=dict(step=19.0e12, forward=6.3e12),
                s_step=0.1, achieved_flops=190e12, peak_label="H100 SXM", peak_tflops=989.0, pct_peak=19.2,
                matmul_n=8192, pct_matmul=24.0, compile_s=None)
    stages = dict(step=step, compile=dict(step, s_step=0.08, compile_s=95.0),
                  sync=dict(count=3, sites={"centripetal/targets.py:120": 2, "centripetal/train.py:300": 1}),
                  deform=dict(shape=[6, 256, 128, 128], times={"torchvision.ops.deform_conv2d, fp32": 0.2,
                                                               "deform_conv2d_fast, fp32 (TF32 off)": 0.1,
                                                               "deform_conv2d under bf16 autocast: x": 0.05},
                              accuracy={"random normal": dict(rel_max=3e-3, rel_norm=2.9e-3, bound_ratio=0.1)}),
                  loader=dict(size=511, masks=True, rows=[dict(workers=0, images_per_s=30.0, per_worker=30.0),
                                                          dict(workers=4, images_per_s=100.0, per_worker=25.0)]))
    for key, data in stages.items(): (work / f"{key}.json").write_text(json.dumps(data))
    (work / "status.tsv").write_text("".join(f"{i}\t{k}\ttitle {k}\t50\tok\t10.0\n" for i, k in enumerate(stages, 1)))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_stages.py"), "report", "--work", str(work),
                        "--out", str(run), "--status", str(work / "status.tsv"), "--device", "cuda", "--flags",
                        "--out x", "--budget", "480", "--used", "400"], capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr
    section = (run / "benchmarks_section.md").read_text()
    assert "**0.100 s/step**" in section and "**19.2 %** of H100 SXM's dense bf16 peak" in section
    assert "(compile + first step 95 s)" in section and "**3** synchronising calls" in section
    assert "`results/utilisation/gpu_h100_80gb_hbm3.md`" in section and "bound held" in section
    assert json.loads((run / "stages.json").read_text())["slug"] == "h100_80gb_hbm3"
    for _ in range(2):
        r = subprocess.run(["bash", str(GPU_CHECK), "--publish", str(run), "--results", str(results)],
                           capture_output=True, text=True, env=_env())
        assert r.returncode == 0, r.stderr
    assert (results / "utilisation" / "gpu_h100_80gb_hbm3.md").read_text().startswith(f"# gpu_check.sh on {card}")
    text = (results / "benchmarks.md").read_text()
    assert text.startswith("# Benchmarks\n\n## Earlier\n\ntext\n\n## GPU check") and text.count("## GPU check") == 1


def _load_stages():
    spec = importlib.util.spec_from_file_location("gpu_stages", ROOT / "benchmarks" / "gpu_stages.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_peaks_by_card_name():
    g = _load_stages()
    assert g.card_peak("NVIDIA H100 80GB HBM3") == ("H100 SXM", 989.0)
    assert g.card_peak("NVIDIA H100 PCIe") == ("H100 PCIe", 756.0)
    assert g.card_peak("NVIDIA H200") == ("H200", 989.0)
    assert g.card_peak("NVIDIA A100-SXM4-80GB") == ("A100", 312.0)
    assert g.card_peak("NVIDIA GeForce RTX 4090") == (None, None)
    assert g.card_slug("NVIDIA H100 80GB HBM3") == "h100_80gb_hbm3" and g.card_slug("NVIDIA H200") == "h200"


def test_gpu_check_rejects_bad_options(tmp_path):
    r = subprocess.run(["bash", str(GPU_CHECK), "--device", "tpu"], capture_output=True, text=True)
    assert r.returncode == 2 and "--device must be cuda or cpu" in r.stderr
    r = subprocess.run(["bash", str(GPU_CHECK), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--tiny" in r.stdout and "480-s budget" in r.stdout and "gpu_wheels.sh" in r.stdout


# ------------------------------------------------------------------------------------ the install step, offline
def _requirement_closure(names):
    "The distributions `names` require at run time here, transitively (markers evaluated, no extras), themselves too."
    from packaging.requirements import Requirement
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
    seen, todo = {}, list(names)
    while todo:
        name = todo.pop()
        if norm(name) in seen: continue
        try: dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError: continue
        seen[norm(name)] = dist
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or req.marker.evaluate({"extra": ""}): todo.append(req.name)
    return seen


def _offline_env(**extra):
    """An environment in which pip has no index (PIP_NO_INDEX, and an index URL and proxies that lead nowhere), reads
    no configuration file (this machine's names a local mirror and a wheel folder), and the project's venv is on no
    path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    nowhere = "http://127.0.0.1:9"
    env.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=nowhere + "/simple", PIP_TIMEOUT="3",
               PIP_RETRIES="0", http_proxy=nowhere, https_proxy=nowhere, HTTP_PROXY=nowhere, HTTPS_PROXY=nowhere,
               PYTHONNOUSERSITE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), **extra)
    return env


@pytest.fixture(scope="module")
def offline_venv(tmp_path_factory):
    """(python of a clean venv that sees torch, torchvision and their requirements but none of the check's other
    imports, the wheel folder made by the documented command). torch is not reinstalled: a .pth file puts a folder of
    links to exactly those distributions (taken from this environment) on the venv's path."""
    pytest.importorskip("packaging")
    tmp = tmp_path_factory.mktemp("offline")
    wheels = tmp / "whl"
    here = "%d.%d" % sys.version_info[:2]
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_wheels.sh"), "--dest", str(wheels), "--python-version",
                        here], capture_output=True, text=True, env=_env(), timeout=600)
    if r.returncode and "pip download failed" in r.stderr:
        pytest.skip(f"no package index reachable to prepare the wheels: {r.stderr[-500:]}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^ *[0-9.]+ MB  in all$", r.stdout, re.M), r.stdout          # the sizes are listed
    venv = tmp / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=600)
    if r.returncode: pytest.skip(f"cannot make a venv here: {r.stderr[-500:]}")
    links = tmp / "torch_only"
    links.mkdir()
    site_dirs = {Path(p).resolve() for p in sys.path if p.endswith("site-packages")}
    for dist in _requirement_closure(["torch", "torchvision"]).values():
        base = Path(dist.locate_file("")).resolve()
        if base not in site_dirs: continue
        for top in {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] not in ("..", "__pycache__")}:
            src = base / top
            if src.exists() and not (links / top).exists(): (links / top).symlink_to(src)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "torch_only.pth").write_text(str(links) + "\n")
    return venv / "bin" / "python", wheels


def test_gpu_check_install_offline(offline_venv, tmp_path):
    py, wheels = offline_venv
    env = _offline_env(PYTHON=str(py))
    modules = ["yaml", "pycocotools", "fastcore", "tqdm"]                         # benchmarks/gpu_wheels.txt
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m) is None))"
    r = subprocess.run([str(py), "-c", probe, *modules, "torch", "torchvision", "numpy", "PIL"], capture_output=True,
                       text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.split() == modules, r.stdout + r.stderr   # a clean venv: only torch & co.
    # a control: without pycocotools' wheel the step fails on it (pip looks nowhere else)
    partial = tmp_path / "partial"
    shutil.copytree(wheels, partial, ignore=shutil.ignore_patterns("pycocotools-*"))
    cmd = ["bash", str(GPU_CHECK), "--install-only", "--wheels"]
    r = subprocess.run(cmd + [str(partial), "--work", str(tmp_path / "w0")], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode != 0 and "pycocotools" in r.stderr and "pip failed" in r.stderr, r.stdout + r.stderr
    # gpu_check.sh's install step, then every module the stages import, in a separate process
    work = tmp_path / "w"
    r = subprocess.run(cmd + [str(wheels), "--work", str(work)], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    line = re.search(r"installed from .* \(pip --no-index\): (.*)$", r.stdout, re.M)
    assert line and "imports ok:" in r.stdout, r.stdout
    installed = dict(item.rsplit(" ", 1) for item in line.group(1).split(", "))
    assert set(installed) == {"pyyaml", "pycocotools", "fastcore", "tqdm"}, installed
    assert installed["pycocotools"] == importlib.metadata.version("pycocotools")     # the version installed here
    code = ("import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
            "import yaml, pycocotools, fastcore, tqdm\n"
            "print('\\n'.join(m.__file__ for m in (yaml, pycocotools, fastcore, tqdm)))")
    path = os.pathsep.join(map(str, (work / "site", ROOT, ROOT / "benchmarks")))
    r = subprocess.run([str(py), "-c", code, *_load_stages().IMPORTS], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(env, PYTHONPATH=path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(Path(f).is_relative_to(work / "site") for f in r.stdout.split()), r.stdout   # from the wheels


@SLOW
def test_gpu_check_cpu_tiny_offline(offline_venv, tmp_path):
    "The whole tiny check in the clean venv, installing from the wheels with no index: nothing else is needed."
    py, wheels = offline_venv
    out = tmp_path / "gc"
    cmd = ["bash", str(GPU_CHECK), "--device", "cpu", "--tiny", "--out", str(out), "--wheels", str(wheels)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_offline_env(PYTHON=str(py)), cwd=tmp_path, timeout=900)
    assert re.search(r"installed from .* \(pip --no-index\): ", r.stdout), r.stdout[-3000:] + r.stderr[-3000:]
    _check_tiny_run(r, out)


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
