"""Canonical layout, data-folder resolution, NAME:SPLIT addressing."""

from __future__ import annotations

import shutil

import pytest

from tlc.data import open_dataset, parse_source
from tlc.data.dataset import default_data_dir
from tlc.errors import DataError


def test_fixture_folder_is_a_data_set(fixtures):
    ds = open_dataset(fixtures / "imdb")
    assert ds.splits == ["train", "test", "unsup"]
    train = ds.load("train")
    assert len(train) == 200 and set(train.labels) == {"0", "1"}
    unsup = ds.load("unsup")
    assert unsup.labels is None and len(unsup) == 100


def test_by_name_under_data_dir_and_env(fixtures, tmp_path, monkeypatch):
    shutil.copytree(fixtures / "amazon", tmp_path / "amazon")
    assert open_dataset("amazon", tmp_path).splits == ["train", "test"]
    monkeypatch.setenv("TLC_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    assert open_dataset("amazon").root == tmp_path / "amazon"


def test_default_data_dir_without_env(monkeypatch, tmp_path):
    monkeypatch.delenv("TLC_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "tlc" / "data"


def test_registry_names_map_to_their_folder(tmp_path):
    (tmp_path / "glove").mkdir()
    (tmp_path / "glove" / "train.csv").write_text("text,label\na,1\n")
    assert open_dataset("glove.6B", tmp_path).root == tmp_path / "glove"


def test_unknown_name_says_what_to_do(tmp_path):
    (tmp_path / "imdb").mkdir()
    with pytest.raises(DataError, match="no data set 'nope'.*holds: imdb") as e:
        open_dataset("nope", tmp_path)
    assert "tlc data fetch" in e.value.hint and "TLC_DATA_DIR" in e.value.hint


def test_single_file_and_mixed_formats(tmp_path):
    f = tmp_path / "reviews.jsonl"
    f.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    ds = open_dataset(f)
    assert ds.splits == ["train"] and ds.load("train").labels == ["x", "y"]
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "train.tsv").write_text("text\tlabel\nhello\tpos\n")
    (folder / "test.jsonl").write_text('{"text": "t", "label": "neg"}\n')
    (folder / "notes.md").write_text("ignored")
    assert open_dataset(folder).splits == ["train", "test"]


def test_layout_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no split files"):
        open_dataset(tmp_path / "empty")
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "train.csv").write_text("text,label\na,1\n")
    (dup / "train.jsonl").write_text('{"text": "a", "label": "1"}\n')
    with pytest.raises(DataError, match="two files for the 'train' split"):
        open_dataset(dup)
    ok = tmp_path / "ok"
    ok.mkdir()
    (ok / "train.csv").write_text("text,label\na,1\n")
    with pytest.raises(DataError, match="no 'test' split \\(it has: train\\)"):
        open_dataset(ok).path("test")


def test_aclimdb_root_is_a_data_set(tmp_path):
    root = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for sub in ("pos", "neg"):
            (root / split / sub).mkdir(parents=True)
            (root / split / sub / "0_8.txt").write_text(f"{split} {sub}")
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    ds = open_dataset(root)
    assert ds.splits == ["train", "test", "unsup"]
    assert ds.load("test").labels == ["1", "0"]
    assert ds.load("unsup").texts == ["unlabelled"]


@pytest.mark.parametrize("spec, expected", [
    ("imdb", ("imdb", None)),
    ("imdb:unsup", ("imdb", "unsup")),
    ("data/x.csv", ("data/x.csv", None)),
    ("C:reviews", ("C:reviews", None)),
])
def test_parse_source(spec, expected):
    assert parse_source(spec) == expected
