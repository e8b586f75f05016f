"""Every reader, compression, and the per-row error records."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pytest

from tlc.data.readers import detect_format, read_records
from tlc.errors import DataError

CSV = 'text,label\n"Great, really great",pos\nbad film,neg\n"multi\nline",pos\n'


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def rows(path, fmt=None):
    return list(read_records(path, fmt))


def test_csv_fields_lines_and_quoting(tmp_path):
    recs = rows(write(tmp_path / "a.csv", CSV))
    assert [r.fields for r in recs] == [
        {"text": "Great, really great", "label": "pos"},
        {"text": "bad film", "label": "neg"},
        {"text": "multi\nline", "label": "pos"},
    ]
    assert [r.line for r in recs] == [2, 3, 4]
    assert all(r.error is None for r in recs)


@pytest.mark.parametrize("compress, suffix", [(gzip.compress, ".gz"), (bz2.compress, ".bz2"),
                                              (lzma.compress, ".xz")])
def test_compression_is_transparent(tmp_path, compress, suffix):
    plain = rows(write(tmp_path / "a.csv", CSV))
    packed = rows(write(tmp_path / f"b.csv{suffix}", compress(CSV.encode())))
    assert [r.fields for r in packed] == [r.fields for r in plain]


def test_compression_found_by_content_not_name(tmp_path):
    recs = rows(write(tmp_path / "mislabelled.csv", gzip.compress(CSV.encode())))
    assert len(recs) == 3


def test_csv_bad_rows_are_records_not_losses(tmp_path):
    data = b"text,label\nok,1\nbad \xff byte,0\ntoo,many,fields\nfine,1\n"
    recs = rows(write(tmp_path / "a.csv", data))
    assert len(recs) == 4
    assert recs[1].error.startswith("not valid UTF-8") and recs[1].line == 3
    assert "\ufffd" in recs[1].fields["text"]
    assert recs[2].error == "expected 2 fields (as in the header), found 3"
    assert recs[2].line == 4
    assert recs[3].fields == {"text": "fine", "label": "1"} and recs[3].error is None


def test_csv_bom_and_blank_lines(tmp_path):
    recs = rows(write(tmp_path / "a.csv", "\ufefftext,label\n\nhello,1\n\n"))
    assert [r.fields for r in recs] == [{"text": "hello", "label": "1"}]


def test_csv_empty_file_and_duplicate_header(tmp_path):
    with pytest.raises(DataError, match="empty"):
        rows(write(tmp_path / "e.csv", ""))
    with pytest.raises(DataError, match="appears twice") as e:
        rows(write(tmp_path / "d.csv", "text,text\na,b\n"))
    assert e.value.line == 1 and e.value.path.endswith("d.csv")


def test_csv_unterminated_quote_is_reported(tmp_path):
    recs = rows(write(tmp_path / "q.csv", 'text,label\nok,1\n"never closed,0\n'))
    assert recs[0].error is None
    assert recs[-1].error is not None and recs[-1].line == 3


def test_a_stray_quote_does_not_swallow_the_rows_after_it(tmp_path):
    # never closed: without care every line after line 3 would become one field
    data = 'text,label\nok,1\n"stray quote,0\nx,1\ny,0\n"fine\nmultiline",1\n'
    recs = rows(write(tmp_path / "q.csv", data))
    assert [(r.line, r.fields.get("text"), r.error is None) for r in recs] == [
        (2, "ok", True), (3, "stray quote,0\n", False), (4, "x", True), (5, "y", True),
        (6, "fine\nmultiline", True)]
    assert "quote opened on this line runs over the next 3 lines" in recs[1].error
    # closed much later by another row's quote: the rows in between come back too
    data = 'text,label\n"stray,1\nx,0\ny,1\n"z",0\n'
    recs = rows(write(tmp_path / "r.csv", data))
    assert [r.line for r in recs] == [2, 3, 4, 5]
    assert recs[0].error and [r.fields["text"] for r in recs[1:]] == ["x", "y", "z"]
    assert all(r.error is None for r in recs[1:])


def test_tsv_has_no_quoting(tmp_path):
    recs = rows(write(tmp_path / "a.tsv", 'text\tlabel\n"quoted" text\t1\nx\t0\n'))
    assert recs[0].fields == {"text": '"quoted" text', "label": "1"}
    assert [r.line for r in recs] == [2, 3]


def test_jsonl_values_become_strings_and_errors_keep_line(tmp_path):
    lines = [json.dumps({"text": "a", "label": 1}), "{broken", "[1, 2]",
             json.dumps({"text": "b", "label": None, "meta": {"x": 1}})]
    recs = rows(write(tmp_path / "a.jsonl", "\n".join(lines) + "\n"))
    assert recs[0].fields == {"text": "a", "label": "1"}
    assert recs[1].error.startswith("not valid JSON") and recs[1].line == 2
    assert "JSON object" in recs[2].error
    assert recs[3].fields == {"text": "b", "label": "", "meta": '{"x": 1}'}


def test_fasttext_labels(tmp_path):
    data = "__label__pos great movie\n__label__neg  awful\nno label here\n__label__a __label__b x\n"
    recs = rows(write(tmp_path / "train.ft.txt", data))
    assert detect_format(tmp_path / "train.ft.txt") == "fasttext"
    assert recs[0].fields == {"label": "pos", "text": "great movie"}
    assert recs[1].fields == {"label": "neg", "text": "awful"}
    assert "no __label__" in recs[2].error
    assert "2 labels" in recs[3].error


def test_plain_text_keeps_empty_lines_as_documents(tmp_path):
    recs = rows(write(tmp_path / "docs.txt", "first\r\n\nthird\n"))
    assert [r.fields["text"] for r in recs] == ["first", "", "third"]
    assert [r.line for r in recs] == [1, 2, 3]


def test_aclimdb_layout_order_and_labels(tmp_path):
    root = tmp_path / "aclImdb" / "train"
    for sub, names in {"pos": ["10_9.txt", "2_7.txt"], "neg": ["0_1.txt"],
                       "unsup": ["5_0.txt", "1_0.txt"]}.items():
        (root / sub).mkdir(parents=True)
        for n in names:
            (root / sub / n).write_text(f"review {sub} {n}", encoding="utf-8")
    assert detect_format(root) == "aclimdb"
    recs = rows(root)
    assert [r.fields["file"] for r in recs] == ["train/pos/2_7.txt", "train/pos/10_9.txt",
                                                "train/neg/0_1.txt"]
    assert [r.fields["label"] for r in recs] == ["1", "1", "0"]
    assert [r.fields["rating"] for r in recs] == ["7", "9", "1"]
    unsup = rows(root / "unsup")
    assert [r.fields for r in unsup] == [
        {"text": "review unsup 1_0.txt", "file": "train/unsup/1_0.txt"},
        {"text": "review unsup 5_0.txt", "file": "train/unsup/5_0.txt"},
    ]


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="unknown format") as e:
        rows(write(tmp_path / "data.parquet", b"x"))
    assert "--format" in e.value.hint
    with pytest.raises(DataError, match="no such file"):
        rows(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unknown format 'xml'"):
        rows(write(tmp_path / "a.csv", CSV), "xml")


def test_format_override(tmp_path):
    recs = rows(write(tmp_path / "data.dat", CSV), "csv")
    assert len(recs) == 3


def test_streaming_reads_lazily(tmp_path):
    # A generator must not read the whole file before yielding the first row.
    path = write(tmp_path / "big.csv", "text,label\n" + "x,1\n" * 200_000)
    it = read_records(path)
    first = next(it)
    assert first.fields == {"text": "x", "label": "1"}
    it.close()
