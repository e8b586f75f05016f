"""Converters on tiny handmade archives shaped like the real releases.

The archive builders here are also used by test_fetch.py.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from tlc.data.convert import (
    convert_amazon_polarity,
    convert_glove,
    convert_imdb,
    glove_outputs,
    write_csv_gz,
)
from tlc.errors import DataError, FetchError

# --- archive builders ------------------------------------------------------------------------

# path inside aclImdb/ -> review text; quotes, commas, <br /> and non-ASCII on purpose.
IMDB_REVIEWS = {
    "train/pos/10_9.txt": 'Great "fun", really.<br /><br />Would watch again.',
    "train/pos/2_7.txt": "Solid film, a bit long.",
    "train/pos/0_10.txt": "Best. Movie. Ever. Amélie-level charm \u2014 10/10",
    "train/neg/3_1.txt": "Awful; I want my 2 hours back.",
    "train/neg/1_4.txt": "  Leading spaces and trailing ones are kept.  ",
    "test/pos/1_8.txt": "Nice.",
    "test/pos/0_7.txt": "Pretty good, with a\ttab.",
    "test/neg/5_2.txt": "Bad acting & a worse plot.",
    "test/neg/0_3.txt": 'Meh, "so-so" at best.',
    "train/unsup/11_0.txt": "Unlabelled eleven.",
    "train/unsup/2_0.txt": "Unlabelled two, with a comma.",
    "train/unsup/0_0.txt": "Unlabelled zero.",
}
# Members the converter must skip.
# The canonical train order of the fake archive: pos by numeric id (0, 2, 10 - not 0, 10, 2),
# then neg by numeric id.
IMDB_TRAIN_ORDER = [
    "train/pos/0_10.txt",
    "train/pos/2_7.txt",
    "train/pos/10_9.txt",
    "train/neg/1_4.txt",
    "train/neg/3_1.txt",
]

IMDB_NOISE = {
    "aclImdb/README": b"Large Movie Review Dataset v1.0\n",
    "aclImdb/imdb.vocab": b"the\nand\n",
    "aclImdb/train/labeledBow.feat": b"9 0:9 1:1\n",
    "aclImdb/train/urls_pos.txt": b"http://www.imdb.com/title/tt0453418/usercomments\n",
    "aclImdb/test/pos/notes.md": b"not a review\n",
}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_imdb_archive(path: Path, reviews: dict[str, str | bytes] | None = None) -> Path:
    """An aclImdb_v1.tar.gz look-alike, members in a shuffled order (as ids are in the real one)."""
    reviews = IMDB_REVIEWS if reviews is None else reviews
    members = [
        (f"aclImdb/{k}", v if isinstance(v, bytes) else v.encode()) for k, v in reviews.items()
    ]
    members += list(IMDB_NOISE.items())
    random.Random(7).shuffle(members)
    with tarfile.open(path, "w:gz") as tar:
        dir_info = tarfile.TarInfo("aclImdb")
        dir_info.type = tarfile.DIRTYPE
        tar.addfile(dir_info)
        for name, data in members:
            _add(tar, name, data)
    return path


def zhang_csv(rows: list[tuple[str, str, str]]) -> bytes:
    """Rows the way Zhang's files are written: every field quoted, "" escaping, no header."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


AMAZON_TRAIN = [
    ("2", "Great CD", "My lovely Pat has one of the GREAT voices.\\nI love it."),
    ("1", "Batteries died", 'They died within a year, "premium" my foot.'),
    ("2", "", "No title here."),
    ("1", "   ", "Blank title, only spaces."),
    ("2", "Line\\nbreak title", "Body, with a comma."),
]
AMAZON_TEST = [
    ("1", "Bad", "Broke on day one."),
    ("2", "Good", "Works."),
]


def make_amazon_archive(path: Path, train: bytes | None = None, test: bytes | None = None) -> Path:
    """An amazon_review_polarity_csv.tgz look-alike (readme first, then test, then train)."""
    train = zhang_csv(AMAZON_TRAIN) if train is None else train
    test = zhang_csv(AMAZON_TEST) if test is None else test
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "amazon_review_polarity_csv/readme.txt", b"Amazon Review Polarity Dataset\n")
        _add(tar, "amazon_review_polarity_csv/test.csv", test)
        _add(tar, "amazon_review_polarity_csv/train.csv", train)
    return path


GLOVE_50 = "the 0.418 0.24968 -0.41242\n, 0.013441 0.23682 -0.16899\ncafé -0.00066023 5.27e-05 1\n"
GLOVE_100 = "the 0.1 0.2 0.3 0.4\nof -0.5 0.6 -0.7 0.8\n"


def make_glove_archive(path: Path) -> Path:
    """A glove.6B.zip look-alike holding tiny 50d and 100d files."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("glove.6B.50d.txt", GLOVE_50.encode())
        zf.writestr("glove.6B.100d.txt", GLOVE_100.encode())
    return path


def read_csv_gz(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


# --- write_csv_gz ----------------------------------------------------------------------------


def test_write_csv_gz_is_deterministic_and_canonical(tmp_path: Path) -> None:
    rows = [("a, b", 1), ('say "hi"', 0), ("plain", 1)]
    a, b = tmp_path / "a.csv.gz", tmp_path / "other-name.csv.gz"
    assert write_csv_gz(a, ("text", "label"), rows) == 3
    write_csv_gz(b, ("text", "label"), iter(rows))
    assert a.read_bytes() == b.read_bytes()  # no file name, no time stamp in the header
    header = a.read_bytes()[:10]
    assert header[3] == 0  # no FNAME (or any other) flag
    assert header[4:8] == b"\0\0\0\0"  # mtime 0
    assert gzip.decompress(a.read_bytes()) == b'text,label\n"a, b",1\n"say ""hi""",0\nplain,1\n'
    assert not list(tmp_path.glob("*.tmp"))


def test_write_csv_gz_leaves_nothing_when_rows_fail(tmp_path: Path) -> None:
    def rows():
        yield ("ok", 1)
        raise DataError("bad row")

    out = tmp_path / "x.csv.gz"
    with pytest.raises(DataError):
        write_csv_gz(out, ("text", "label"), rows())
    assert list(tmp_path.iterdir()) == []


# --- IMDB ------------------------------------------------------------------------------------


def test_convert_imdb_layout_order_and_text(tmp_path: Path) -> None:
    archive = make_imdb_archive(tmp_path / "aclImdb_v1.tar.gz")
    out = tmp_path / "out"
    out.mkdir()
    written = convert_imdb([archive], out)
    assert sorted(p.name for p in written) == ["test.csv.gz", "train.csv.gz", "unsup.csv.gz"]

    train = read_csv_gz(out / "train.csv.gz")
    assert train[0] == ["text", "label", "rating", "file"]
    assert [r[3] for r in train[1:]] == IMDB_TRAIN_ORDER
    assert [(r[1], r[2]) for r in train[1:]] == [
        ("1", "10"),
        ("1", "7"),
        ("1", "9"),
        ("0", "4"),
        ("0", "1"),
    ]
    for text, _, _, file in train[1:] + read_csv_gz(out / "test.csv.gz")[1:]:
        assert text == IMDB_REVIEWS[file]  # unchanged: no cleaning, no stripping

    test = read_csv_gz(out / "test.csv.gz")
    assert [r[3] for r in test[1:]] == [
        "test/pos/0_7.txt",
        "test/pos/1_8.txt",
        "test/neg/0_3.txt",
        "test/neg/5_2.txt",
    ]
    unsup = read_csv_gz(out / "unsup.csv.gz")
    assert unsup[0] == ["text", "file"]
    assert unsup[1:] == [
        [IMDB_REVIEWS["train/unsup/0_0.txt"], "train/unsup/0_0.txt"],
        [IMDB_REVIEWS["train/unsup/2_0.txt"], "train/unsup/2_0.txt"],
        [IMDB_REVIEWS["train/unsup/11_0.txt"], "train/unsup/11_0.txt"],
    ]
    # exact bytes of the first lines: minimal quoting, "" inside quotes, \n line ends
    raw = gzip.decompress((out / "train.csv.gz").read_bytes()).decode()
    assert raw.startswith(
        "text,label,rating,file\n"
        "Best. Movie. Ever. Amélie-level charm \u2014 10/10,1,10,train/pos/0_10.txt\n"
        '"Solid film, a bit long.",1,7,train/pos/2_7.txt\n'
        '"Great ""fun"", really.<br /><br />Would watch again.",1,9,train/pos/10_9.txt\n'
    )


def test_convert_imdb_is_reproducible(tmp_path: Path) -> None:
    archive = make_imdb_archive(tmp_path / "aclImdb_v1.tar.gz")
    outs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        convert_imdb([archive], tmp_path / name)
        outs.append([(tmp_path / name / f).read_bytes() for f in ("train.csv.gz", "unsup.csv.gz")])
    assert outs[0] == outs[1]


def test_convert_imdb_bad_utf8_names_the_member(tmp_path: Path) -> None:
    reviews = dict(IMDB_REVIEWS)
    reviews["test/neg/5_2.txt"] = b"caf\xe9 in latin-1"
    archive = make_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews)
    with pytest.raises(DataError, match=r"aclImdb/test/neg/5_2\.txt.*not valid UTF-8") as e:
        convert_imdb([archive], tmp_path)
    assert e.value.path == str(archive)
    assert not list(tmp_path.glob("*.csv.gz*"))


def test_convert_imdb_wrong_archive(tmp_path: Path) -> None:
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "something/else.txt", b"hello")
    with pytest.raises(DataError, match="no review files"):
        convert_imdb([archive], tmp_path)
    archive.write_bytes(b"this is not a gzip file at all")
    with pytest.raises(DataError, match="cannot read the archive"):
        convert_imdb([archive], tmp_path)


# --- Amazon polarity -------------------------------------------------------------------------


def test_convert_amazon_text_labels_and_line_breaks(tmp_path: Path) -> None:
    archive = make_amazon_archive(tmp_path / "amazon_review_polarity_csv.tgz")
    written = convert_amazon_polarity([archive], tmp_path)
    assert sorted(p.name for p in written) == ["test.csv.gz", "train.csv.gz"]
    train = read_csv_gz(tmp_path / "train.csv.gz")
    assert train == [
        ["text", "label", "title"],
        ["Great CD: My lovely Pat has one of the GREAT voices. I love it.", "1", "Great CD"],
        ['Batteries died: They died within a year, "premium" my foot.', "0", "Batteries died"],
        ["No title here.", "1", ""],
        ["Blank title, only spaces.", "0", "   "],
        ["Line break title: Body, with a comma.", "1", "Line break title"],
    ]
    assert read_csv_gz(tmp_path / "test.csv.gz") == [
        ["text", "label", "title"],
        ["Bad: Broke on day one.", "0", "Bad"],
        ["Good: Works.", "1", "Good"],
    ]


def test_convert_amazon_bad_class_names_member_and_line(tmp_path: Path) -> None:
    rows = [*AMAZON_TRAIN[:3], ("3", "Meh", "Neutral review."), *AMAZON_TRAIN[3:]]
    archive = make_amazon_archive(tmp_path / "a.tgz", train=zhang_csv(rows))
    with pytest.raises(DataError, match=r"class is '3'") as e:
        convert_amazon_polarity([archive], tmp_path)
    assert e.value.path == "amazon_review_polarity_csv/train.csv"
    assert e.value.line == 4
    assert "a.tgz" in str(e.value)
    assert not (tmp_path / "train.csv.gz").exists()  # no half-written output


def test_convert_amazon_wrong_field_count(tmp_path: Path) -> None:
    test = zhang_csv(AMAZON_TEST) + b'"2","only a title"\n'
    archive = make_amazon_archive(tmp_path / "a.tgz", test=test)
    with pytest.raises(DataError, match="expected 3 fields") as e:
        convert_amazon_polarity([archive], tmp_path)
    assert (e.value.path, e.value.line) == ("amazon_review_polarity_csv/test.csv", 3)


def test_convert_amazon_missing_member(tmp_path: Path) -> None:
    archive = tmp_path / "a.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "amazon_review_polarity_csv/train.csv", zhang_csv(AMAZON_TRAIN))
    with pytest.raises(DataError, match="lacks amazon_review_polarity_csv/test.csv"):
        convert_amazon_polarity([archive], tmp_path)


# --- GloVe -----------------------------------------------------------------------------------


def test_convert_glove_dims_and_content(tmp_path: Path) -> None:
    archive = make_glove_archive(tmp_path / "glove.6B.zip")
    written = convert_glove([archive], tmp_path, dims=(100,))
    assert [p.name for p in written] == ["glove.6B.100d.txt.gz"]
    assert gzip.decompress(written[0].read_bytes()) == GLOVE_100.encode()
    assert not (tmp_path / "glove.6B.50d.txt.gz").exists()

    again = tmp_path / "again"
    again.mkdir()
    convert_glove([archive], again, dims="50,100")
    assert gzip.decompress((again / "glove.6B.50d.txt.gz").read_bytes()) == GLOVE_50.encode()
    assert (again / "glove.6B.100d.txt.gz").read_bytes() == written[0].read_bytes()


def test_convert_glove_unknown_dim_and_missing_member(tmp_path: Path) -> None:
    archive = make_glove_archive(tmp_path / "glove.6B.zip")
    with pytest.raises(FetchError, match="50, 100, 200, 300"):
        convert_glove([archive], tmp_path, dims=(64,))
    with pytest.raises(FetchError):
        glove_outputs("fifty")
    assert glove_outputs(300) == ("glove.6B.300d.txt.gz",)
    with pytest.raises(DataError, match="lacks glove.6B.300d.txt"):
        convert_glove([archive], tmp_path, dims=(300,))


@pytest.mark.realdata
def test_convert_imdb_matches_the_shared_copy_byte_for_byte(
    tmp_path: Path, real_data_dir: Path
) -> None:
    """Real reviews (quotes, commas, non-ASCII) in, the shared canonical lines out, unchanged.

    Takes the first 500 pos and 500 neg rows of the real train.csv.gz (ids 0..499 each), packs
    them as aclImdb files in a shuffled tar, converts, and compares with the original lines.
    """
    raw = gzip.decompress((real_data_dir / "imdb" / "train.csv.gz").read_bytes()).decode()
    lines = raw.split("\n")  # no review contains a newline (see the data README)
    header, body = lines[0], lines[1:-1]
    picked = body[:500] + body[12_500:13_000]
    reviews = {}
    for row in csv.reader(picked):
        reviews[row[3]] = row[0].encode()
    assert len(reviews) == 1000 and next(iter(reviews)) == "train/pos/0_9.txt"
    reviews.update({k: v for k, v in IMDB_REVIEWS.items() if not k.startswith("train/")})
    archive = make_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews)
    convert_imdb([archive], tmp_path)
    out = gzip.decompress((tmp_path / "train.csv.gz").read_bytes()).decode()
    assert out == "\n".join([header, *picked]) + "\n"
