"""Bad input is named, not swallowed: one test per malformed-input case, through the dataset, `centripetal train` (one step)
and `centripetal evaluate`.

Every case builds a tiny COCO set in tmp_path (four 64-px images, two categories) with one thing wrong, and asserts what a
user sees: the exit code (1 for a failure, 2 for a usage error), a single `centripetal <cmd>: error: ...` line without a
traceback, and a message that names the file or the annotation id and says what to do. Cases that are repaired rather than
refused (a box of negative width, of zero size, outside or reaching out of its image, of an unknown image or category) must be
named at load time in a WARNING — file, image id, annotation id, what is wrong, what was done — and, in evaluation, left out
of the score: a perfect detector scores 1.0 on the valid objects.

Most commands run in this process through `centripetal.cli.main(argv)` (the console script's function: same exit codes
and stderr lines, without paying for a fresh interpreter and torch import each time); three run as real subprocesses, so
that the exit code and the stderr a shell sees are checked too. About a minute of CPU on two cores.
"""
import json, os, subprocess, sys, time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE, N_IMAGES = 64, 4
CATS = [{"id": 1, "name": "square"}, {"id": 2, "name": "bar"}]


# ---------------------------------------------------------------- tiny data

def _anns(n_images=N_IMAGES):
    "Two good objects per image, ids 1, 2, 3, ..."
    out = []
    for i in range(n_images):
        for k, (box, cat) in enumerate((([8, 8, 20, 20], 1), ([36, 30, 20, 24], 2))):
            out.append({"id": 2 * i + k + 1, "image_id": i + 1, "category_id": cat, "bbox": box,
                        "area": box[2] * box[3], "iscrowd": 0})
    return out


def _images(n_images=N_IMAGES):
    return [{"id": i + 1, "file_name": f"img{i}.png", "width": SIZE, "height": SIZE} for i in range(n_images)]


def write_set(root, train=None, val=None, missing=()):
    """A data root with images/ and train.json, val.json (each a COCO dict; default: the good set); the image files named
    in `missing` are not written."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for im in _images():
        if im["file_name"] in missing: continue
        a = np.full((SIZE, SIZE, 3), 90, np.uint8)
        a[8:28, 8:28] = (200, 40, 40); a[30:54, 36:56] = (40, 200, 40)
        Image.fromarray(np.clip(a + rng.integers(0, 20, a.shape), 0, 255).astype(np.uint8)).save(root / "images" / im["file_name"])
    good = {"images": _images(), "categories": CATS, "annotations": _anns()}
    for name, d in (("train.json", train), ("val.json", val)):
        (root / name).write_text(json.dumps(good if d is None else d))
    return root


def with_anns(extra=(), replace=None):
    "The good set with `extra` annotations added, or its annotations replaced by `replace`."
    return {"images": _images(), "categories": CATS, "annotations": _anns() + list(extra) if replace is None else replace}


BROKEN = [  # (annotation id, bbox or None for a missing key, image id, category id, what the report says)
    (101, [10, 10, -5, 12], 1, 1, "has width or height <= 0 -> dropped"),
    (102, [10, 10, 0, 0], 1, 1, "has width or height <= 0 -> dropped"),
    (103, [80, 10, 10, 10], 2, 1, "has nothing inside the 64x64 image -> dropped"),
    (104, [50, 50, 30, 30], 2, 2, "reaches outside the 64x64 image -> clipped to [50, 50, 14, 14]"),
    (105, [5, 5, 10, 10], 99, 1, "image id 99 is not in 'images' -> dropped"),
    (106, [5, 5, 10, 10], 3, 7, "category id 7 is not in 'categories' -> dropped"),
    (107, None, 3, 1, "lacks ['bbox'] -> dropped"),
]


def broken_anns():
    out = []
    for i, box, img, cat, _ in BROKEN:
        a = {"id": i, "image_id": img, "category_id": cat, "iscrowd": 0, "area": 1.0}
        if box is not None: a["bbox"] = box
        out.append(a)
    return out


PROFILE = """
name: tiny
description: a 64-px, two-class set for the bad-input tests
model: {{num_classes: 2, backbone: small, small_channels: 8, small_stacks: 1, matcher: centripetal, adaption: none,
        mask_head: false}}
train: {{data_root: {root}, train_ann: train.json, train_images: images, val_ann: val.json, val_images: images,
        input_size: 64, batch_size: 2, epochs: 1, max_steps: 1, lr: 1.0e-3, warmup_iters: 0, num_workers: 0,
        out_dir: {root}/run, log_every: 1, ckpt_every_steps: 1, with_masks: false, seed: 0}}
test: {{flip: false, scales: [1.0], max_dets: 20}}
"""


# ---------------------------------------------------------------- running the command

def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "CENTRIPETAL_DEBUG")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    return env


def cli_process(*args, timeout=120):
    "Run `centripetal ARGS` in a fresh process; returns the CompletedProcess (returncode, stderr)."
    cmd = [sys.executable, "-c", "import sys; from centripetal.cli import main; sys.exit(main())", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli(capsys, caplog, monkeypatch):
    """`cli(*args)`: run `centripetal ARGS` in this process with `centripetal.cli.main`; returns returncode and stderr
    (what main printed, then the log records, which pytest captures instead of the console handler)."""
    import torch
    torch.set_num_threads(1)
    monkeypatch.delenv("CENTRIPETAL_DEBUG", raising=False)
    def run(*args):
        from centripetal.cli import main
        caplog.clear(); capsys.readouterr()
        with caplog.at_level("INFO"):
            try: code = main([str(a) for a in args])
            except SystemExit as e: code = e.code              # argparse usage errors
        err = capsys.readouterr().err
        log = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records)
        return SimpleNamespace(returncode=code, stderr=log + "\n" + err)
    return run


def fails(res, command, code, *needles):
    "Assert exit `code`, a last stderr line `centripetal COMMAND: error: ...` holding every needle, and no traceback."
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == code, f"exit {res.returncode}, expected {code}:\n{res.stderr[-3000:]}"
    assert lines and lines[-1].startswith(f"centripetal {command}: error: "), res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    for n in needles: assert n in lines[-1], f"{n!r} not in {lines[-1]!r}"
    return lines[-1]


def warned(stderr, *ann_ids):
    "The WARNING block of annotation problems in a command's stderr; asserts it names each annotation id."
    assert "WARNING centripetal.data: annotation problems in" in stderr, stderr[-3000:]    # one WARNING record
    block = stderr[stderr.index("annotation problems in"):]
    for i in ann_ids: assert f"annotation {i}:" in block, f"annotation {i} not named:\n{block[:3000]}"
    return block


def train_args(root, *extra):
    return ("train", "--profile", root / "tiny.yaml", "--data-root", root, "--out", root / "run", "--device", "cpu",
            "--no-progress", *extra)


def make_root(tmp_path, name="data", **kw):
    root = write_set(tmp_path / name, **kw)
    (root / "tiny.yaml").write_text(PROFILE.format(root=root))
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "One training step on the good set through the command (a subprocess): the checkpoint every evaluate test uses."
    root = make_root(tmp_path_factory.mktemp("good"))
    res = cli_process(*train_args(root))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "annotation problems" not in res.stderr        # a clean set gives no warning
    ck = root / "run" / "last.pt"
    assert ck.is_file()
    return ck


def evaluate_args(ck, root, *extra):
    return ("evaluate", ck, "--profile", root / "tiny.yaml", "--data-root", root, "--out", root / "ev", "--device", "cpu",
            "--no-progress", *extra)


# ---------------------------------------------------------------- the dataset

def test_dataset_names_each_bad_annotation(tmp_path, caplog):
    from centripetal.data import CocoDetection
    root = write_set(tmp_path, train=with_anns(broken_anns()))
    with caplog.at_level("WARNING", logger="centripetal.data"):
        ds = CocoDetection(root / "train.json", root / "images", input_size=64)
    text = caplog.text
    for i, box, img, _, what in BROKEN:
        assert f"{root / 'train.json'}: image {img}, annotation {i}: " in text and what in text, (i, text)
    assert [p.ann_id for p in ds.report.problems] == [b[0] for b in BROKEN]
    assert sorted(ds.coco.anns) == sorted([a["id"] for a in _anns()] + [104])          # the clipped box stays
    assert ds.coco.anns[104]["bbox"] == [50, 50, 14, 14]
    assert "and 2 more" in "\n".join(ds.report.lines(limit=5))                          # the listing is capped with a count


def test_dataset_refuses_crowd_only_training_set(tmp_path):
    from centripetal.data import CocoDetection
    root = write_set(tmp_path, train=with_anns(replace=[dict(a, iscrowd=1) for a in _anns()]))
    with pytest.raises(ValueError, match="train.json has no usable object for training .*8 crowd, 0 usable"):
        CocoDetection(root / "train.json", root / "images", input_size=64)
    CocoDetection(root / "train.json", root / "images", train=False)                  # looking at it is fine


def test_dataset_names_missing_images_at_start(tmp_path):
    from centripetal.data import CocoDetection
    root = write_set(tmp_path, missing=("img1.png", "img3.png"))
    with pytest.raises(FileNotFoundError, match=r"train.json: 2 of 4 image files are missing from .*'img1.png', 'img3.png'"):
        CocoDetection(root / "train.json", root / "images", input_size=64)


def test_dataset_refuses_a_json_that_is_not_coco(tmp_path):
    from centripetal.data import CocoDetection
    root = write_set(tmp_path)
    (root / "train.json").write_text(json.dumps({"images": _images(), "annotations": _anns()}))
    with pytest.raises(ValueError, match=r"train.json is not a COCO annotation file: missing key\(s\) \['categories'\]"):
        CocoDetection(root / "train.json", root / "images", input_size=64)


# ---------------------------------------------------------------- centripetal train (one step)

def test_train_names_bad_annotations_at_load_and_trains(tmp_path):
    root = make_root(tmp_path, train=with_anns(broken_anns()))
    res = cli_process(*train_args(root))                              # a real process: the stderr a user sees
    assert res.returncode == 0, res.stderr[-3000:]
    block = warned(res.stderr, *[b[0] for b in BROKEN])
    assert str(root / "train.json") in block
    assert res.stderr.index("annotation problems in") < res.stderr.index("INFO centripetal.train: training ")  # before step 1


def test_train_refuses_crowd_only_set(tmp_path):
    root = make_root(tmp_path, train=with_anns(replace=[dict(a, iscrowd=1) for a in _anns()]))
    fails(cli_process(*train_args(root)), "train", 1, str(root / "train.json"), "has no usable object for training")
    assert not (root / "run" / "last.pt").exists()


def test_train_refuses_set_whose_boxes_are_all_invalid(tmp_path, cli):
    root = make_root(tmp_path, train=with_anns(replace=[dict(a, bbox=[a["bbox"][0], a["bbox"][1], -3, 4]) for a in _anns()]))
    res = cli(*train_args(root))
    fails(res, "train", 1, "train.json has no usable object for training", "8 dropped")
    warned(res.stderr, 1, 2, 3)


def test_train_names_missing_image_before_training(tmp_path, cli):
    root = make_root(tmp_path, missing=("img2.png",))
    t0 = time.perf_counter()
    res = cli(*train_args(root))
    fails(res, "train", 1, "train.json: 1 of 4 image files are missing", "'img2.png'", "regenerate the dataset")
    assert "training small" not in res.stderr and not (root / "run" / "last.pt").exists()
    assert time.perf_counter() - t0 < 60


def test_train_refuses_a_json_that_is_not_coco(tmp_path, cli):
    root = make_root(tmp_path)
    (root / "train.json").write_text(json.dumps({"images": _images(), "annotations": _anns()}))
    fails(cli(*train_args(root)), "train", 1, str(root / "train.json"), "is not a COCO annotation file",
          "missing key(s) ['categories']")


def test_train_refuses_a_json_list(tmp_path, cli):
    root = make_root(tmp_path)
    (root / "train.json").write_text(json.dumps([1, 2, 3]))
    fails(cli(*train_args(root)), "train", 1, str(root / "train.json"), "is not a COCO annotation file: it holds a list")


# ---------------------------------------------------------------- centripetal evaluate

def test_evaluate_filters_and_reports_invalid_ground_truth(tmp_path, checkpoint, cli):
    root = make_root(tmp_path, val=with_anns(broken_anns()))
    res = cli(*evaluate_args(checkpoint, root))
    assert res.returncode == 0, res.stderr[-3000:]
    warned(res.stderr, *[b[0] for b in BROKEN])
    m = json.loads((root / "ev" / "metrics.json").read_text())
    gt = m["ground_truth"]
    assert (gt["annotations"], gt["dropped"], gt["clipped"], gt["objects_scored"]) == (15, 6, 1, 9)
    assert any("annotation 101:" in p for p in gt["problems"])
    assert (root / "ev" / "val_results.json").is_file()


def test_perfect_detector_scores_one_on_the_valid_objects(tmp_path, caplog):
    "The issue's case: ground truth as detections scored 0.56-0.63 against unchecked ground truth; checked, it scores 1.0."
    import contextlib, io
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from centripetal.data import load_coco
    from centripetal.evaluate import coco_evaluate, ground_truth_results
    bad = ([10, 10, -5, 12], [10, 10, 0, 0], [80, 10, 10, 10], [30, 5, -20, 20])
    d = with_anns([{"id": 200 + k, "image_id": k + 1, "category_id": 1, "bbox": b, "area": 100., "iscrowd": 0}
                   for k, b in enumerate(bad)])
    (tmp_path / "val.json").write_text(json.dumps(d))
    with contextlib.redirect_stdout(io.StringIO()):              # unchecked: every annotation, as given, is a detection
        raw = COCO(str(tmp_path / "val.json"))
        ev = COCOeval(raw, raw.loadRes([dict(a, score=1.0) for a in d["annotations"]]), "bbox")
        ev.evaluate(); ev.accumulate(); ev.summarize()
    assert ev.stats[0] < 0.9
    with caplog.at_level("WARNING", logger="centripetal.data"):
        gt = load_coco(tmp_path / "val.json")
    assert all(f"annotation {200 + k}:" in caplog.text for k in range(4)) and "4 dropped" in caplog.text
    m = coco_evaluate(gt, ground_truth_results(gt))["bbox"]
    assert (m["AP"], m["AP50"], m["AP75"], m["AR100"]) == (1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize("case", ["crowd-only", "empty"])
def test_evaluate_refuses_set_with_nothing_to_score(tmp_path, checkpoint, cli, case):
    anns = [dict(a, iscrowd=1) for a in _anns()] if case == "crowd-only" else []
    root = make_root(tmp_path, val=with_anns(replace=anns))
    fails(cli(*evaluate_args(checkpoint, root)), "evaluate", 1, str(root / "val.json"),
          "has no usable object for evaluation", "--max-images")
    assert not (root / "ev" / "val_results.json").exists()


def test_evaluate_refuses_selection_with_nothing_to_score(tmp_path, checkpoint, cli):
    anns = [a for a in _anns() if a["image_id"] != 1]                  # the first image has no object
    root = make_root(tmp_path, val=with_anns(replace=anns))
    fails(cli(*evaluate_args(checkpoint, root, "--max-images", 1)), "evaluate", 1,
          "val.json has no usable object for evaluation in the 1 image(s) selected")


@pytest.mark.parametrize("n", ["0", "-1", "two"])
def test_evaluate_max_images_must_be_positive(tmp_path, checkpoint, cli, n):
    root = make_root(tmp_path)
    run = cli_process if n == "0" else cli                             # once as a real process: exit code 2 in the shell
    fails(run(*evaluate_args(checkpoint, root, "--max-images", n)), "evaluate", 2,
          "argument --max-images: must be a whole number >= 1", repr(n))


def test_evaluate_checks_out_is_writable_before_inference(tmp_path, checkpoint, cli):
    root = make_root(tmp_path)
    (root / "a_file").write_text("")
    res = cli("evaluate", checkpoint, "--profile", root / "tiny.yaml", "--data-root", root, "--out", root / "a_file" / "ev",
              "--device", "cpu")
    fails(res, "evaluate", 1, str(root / "a_file" / "ev"), "is not a writable folder", "--out")
    assert "evaluating" not in res.stderr                              # refused before inference started


def test_evaluate_names_missing_image(tmp_path, checkpoint, cli):
    root = make_root(tmp_path, missing=("img0.png",))
    fails(cli(*evaluate_args(checkpoint, root)), "evaluate", 1, "val.json: 1 of 4 image files are missing", "'img0.png'")


def test_evaluate_names_truncated_checkpoint(tmp_path, checkpoint, cli):
    root = make_root(tmp_path)
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(checkpoint.read_bytes()[:2000])
    fails(cli(*evaluate_args(bad, root)), "evaluate", 1, str(bad))


# ---------------------------------------------------------------- malformed masks

def _with_masks(anns):
    "Every annotation with its box as a polygon, except annotation 3 (a 'polygon' of two points) and 5 (a bad RLE)."
    out = []
    for a in anns:
        x, y, w, h = a["bbox"]
        seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        if a["id"] == 3: seg = [[x, y, x + w, y + h]]
        if a["id"] == 5: seg = {"counts": "abc"}
        out.append(dict(a, segmentation=seg))
    return out


def test_malformed_segmentation_is_named_and_dropped(tmp_path, caplog):
    "pycocotools would stop at the first batch with \"TypeError: Argument 'bb' has incorrect type\", naming nothing."
    from centripetal.data import CocoDetection
    root = write_set(tmp_path, train=with_anns(replace=_with_masks(_anns())))
    with caplog.at_level("WARNING", logger="centripetal.data"):
        ds = CocoDetection(root / "train.json", root / "images", input_size=64, with_masks=True)
    assert f"{root / 'train.json'}: image 2, annotation 3: segmentation has a polygon of 4 numbers" in caplog.text
    assert "annotation 5: segmentation is an RLE dict without 'counts' and a 'size'" in caplog.text
    assert [p.ann_id for p in ds.report.problems] == [3, 5] and 3 not in ds.coco.anns
    for i in range(len(ds)): ds[i]                                    # every mask of the kept objects decodes
