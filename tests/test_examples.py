"""Bad input while loading training data: clear errors naming file and line, or counted skips."""

from __future__ import annotations

import pytest

from tlc.data import LabelSet, load_examples
from tlc.errors import DataError


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def test_loads_texts_and_labels(tmp_path):
    ex = load_examples(write(tmp_path, "a.csv", "text,label,extra\nhi,1,x\nho,0,y\n"))
    assert ex.texts == ["hi", "ho"] and ex.labels == ["1", "0"] and len(ex) == 2


@pytest.mark.parametrize("data, message, line", [
    ("text,label\nok,1\n ,0\n", "empty text", 3),
    ("text,label\nok,1\nfine,\n", "empty label", 3),
    (b"text,label\nok,1\n\xc3\x28,0\n", "not valid UTF-8", 3),
    ("text,label\nok,1\nx,1,2\n", "expected 2 fields", 3),
])
def test_bad_row_names_file_and_line(tmp_path, data, message, line):
    path = write(tmp_path, "a.csv", data)
    with pytest.raises(DataError, match=message) as e:
        load_examples(path)
    assert e.value.path == str(path) and e.value.line == line
    assert "--on-bad-rows skip" in e.value.hint


def test_skip_counts_every_skipped_row(tmp_path):
    data = b"text,label\nok,1\n ,0\n\xff,1\nalso ok,0\nx,1,2\n"
    ex = load_examples(write(tmp_path, "a.csv", data), on_bad_rows="skip")
    assert ex.texts == ["ok", "also ok"]
    assert dict(ex.skipped) == {"empty text": 1, "not valid UTF-8": 1,
                                "wrong number of fields": 1}
    assert "skipped 3 rows" in ex.skipped_summary()


def test_missing_columns_are_one_clear_error(tmp_path):
    path = write(tmp_path, "a.csv", "review,stars\ngood,5\n")
    with pytest.raises(DataError, match="no text column 'text'.*'review', 'stars'") as e:
        load_examples(path)
    assert "--text-column" in e.value.hint
    with pytest.raises(DataError, match="no label column 'label'") as e:
        load_examples(path, text_column="review")
    assert "--label-column" in e.value.hint
    ex = load_examples(path, text_column="review", label_column="stars")
    assert ex.labels == ["5"]


def test_unlabelled_loading(tmp_path):
    ex = load_examples(write(tmp_path, "u.csv", "text\na\nb\n"), label_column=None)
    assert ex.labels is None and ex.texts == ["a", "b"]


def test_file_with_no_usable_rows(tmp_path):
    with pytest.raises(DataError, match="no usable rows"):
        load_examples(write(tmp_path, "a.csv", "text,label\n"))


def test_label_set_any_strings_multiclass_and_one_class_error():
    ls = LabelSet.from_labels(["10", "2", "1", "2"])
    assert ls.names == ("1", "2", "10")
    assert LabelSet.from_labels(["sports", "arts", "world"]).names == ("arts", "sports",
                                                                       "world")
    assert ls.encode(["10", "1"]).tolist() == [2, 0]
    assert ls.decode([1, 2]) == ["2", "10"]
    with pytest.raises(DataError, match="at least 2 classes, found 1 \\('pos'\\)") as e:
        LabelSet.from_labels(["pos", "pos"], source="x.csv")
    assert e.value.path == "x.csv"
    with pytest.raises(DataError, match="'neutral' is not one of"):
        ls.encode(["neutral"])
