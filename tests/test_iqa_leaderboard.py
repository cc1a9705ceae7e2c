"""asym.iqa.leaderboard: which images of a dataset score a model (its own split, all, or the one asked for)."""

import json

import pytest

from asym.core.errors import UserError
from asym.iqa.leaderboard import at_most, column_names, scored_images


class Dataset:
    """What scored_images and at_most read of an IQA dataset: a length, a name, subsets."""

    def __init__(self, n: int, name: str = "d"):
        self.indices, self.name = list(range(n)), name

    def __len__(self):
        return len(self.indices)

    def subset(self, indices):
        out = Dataset(0, self.name)
        out.indices = [self.indices[i] for i in indices]
        return out


def test_all_images_where_a_model_has_no_split_of_its_own():
    dataset = Dataset(6)
    assert scored_images("piqe", (None, "a pyiqa model"), dataset) == (
        list(range(6)), {"split": "all", "split_file": None, "images": "all images (a pyiqa model)"})  # fmt: skip
    assert scored_images("piqe", (None, "why"), dataset, split="all")[1]["images"] == "all images (--split all)"
    with pytest.raises(UserError, match="--split test: piqe has no split to take it from"):
        scored_images("piqe", (None, "a pyiqa model"), dataset, split="test")


def test_a_split_file_that_does_not_fit_is_refused(tmp_path):
    (tmp_path / "split.json").write_text(json.dumps({"not": "a split"}))
    with pytest.raises(UserError):
        scored_images("m", (None, ""), Dataset(6), split_file=str(tmp_path / "split.json"))


def test_at_most_spreads_evenly_and_columns_fall_back_to_source_names():
    assert at_most(Dataset(10), None).indices == list(range(10))
    assert len(at_most(Dataset(10), 3)) == 3
    assert column_names([Dataset(1, "kadid"), Dataset(1, "tid")], ["a/kadid", "b/tid"]) == ["kadid", "tid"]
    assert column_names([Dataset(1, "kadid"), Dataset(1, "kadid")], ["a/kadid", "b/kadid"]) == ["a/kadid", "b/kadid"]
