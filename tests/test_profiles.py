"""The cheaper sweep profile `cpu-small` is `cpu-converged` on a half-size copy of the benchmark, and nothing else:
a recipe change made to one of the two profiles and not the other fails here."""
import dataclasses

import numpy as np
import pytest

from centripetal.config import find_profile, load_profile
from centripetal.shapes import make_image

# the keys cpu-small's header says it changes (plus its name, description and where its results go)
EXPECTED = {
    "train": {"input_size": (160, 96), "data_root": ("data/shapes", "data/shapes128"),
              "out_dir": ("runs/cpu-converged", "runs/cpu-small")},
    "extra": {"shapes", "profile_path", "description", "budget_reading", "reproduce_timing_from", "reproduce_steps",
              "pilot", "name", "reproduce_budgets"},
}


def _as_dict(x):
    return dataclasses.asdict(x) if dataclasses.is_dataclass(x) else dict(x)


def _differences(a, b) -> dict:
    da, db = _as_dict(a), _as_dict(b)
    return {k: (da.get(k), db.get(k)) for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)}


def test_cpu_small_changes_only_the_image_and_crop_size():
    big, small = load_profile(find_profile("cpu-converged")), load_profile(find_profile("cpu-small"))
    diffs = {part: _differences(a, b) for part, a, b in zip(("model", "train", "test", "extra"), big, small)}
    assert diffs["model"] == {} and diffs["test"] == {}
    assert diffs["train"] == EXPECTED["train"]
    assert set(diffs["extra"]) == EXPECTED["extra"]
    shapes_big, shapes_small = diffs["extra"]["shapes"]
    assert {**shapes_big, "size": 128} == shapes_small and shapes_big["size"] == 256
    pilot_big, pilot_small = diffs["extra"]["pilot"]
    assert {k: v for k, v in pilot_big.items() if k != "budgets"} == {k: v for k, v in pilot_small.items() if k != "budgets"}


@pytest.mark.parametrize("index", range(8))
def test_half_size_scenes_are_the_same_scenes(index):
    """Image i of the 128-px benchmark shows the objects of image i at 256 px, every box halved: within 2 px, one pixel
    of rasterising each edge at the coarser grid (a 5-px side at 256 px becomes 2 px, not 2.5)."""
    _, big = make_image(0, "train", index, 256)
    _, small = make_image(0, "train", index, 128)
    assert len(big) == len(small) and [o["cls"] for o in big] == [o["cls"] for o in small]
    half = np.array([o["bbox"] for o in big]) / 2
    assert np.abs(np.array([o["bbox"] for o in small]) - half).max() <= 2
