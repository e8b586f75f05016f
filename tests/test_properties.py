"""Property-based tests (hypothesis): messy generated files never break `tlc predict`, and
training and scoring agree about what a record is.

Each generated case is a file of records with an id each, in CSV, TSV, JSONL or plain text,
mixing arbitrary Unicode (lone surrogate escapes in JSON, NUL, byte-order marks, CRLF, RTL
marks, very long fields), quoting broken the way hand-edited files break it, and bytes that
are not UTF-8. Properties:

* scoring exits normally and writes exactly one output row per input record, in order, with
  the record's id kept and either a label with probabilities or a reason in ``error``;
* the rows training reads (``iter_examples``, bad rows skipped) are exactly the rows scoring
  scores, with the same text.

How many cases: ``TLC_FUZZ`` = ``ci`` (the default: 5,000 per property, 10,000 in all, seeded,
each property stopping at its time bound), ``long`` (100,000 each, locally), ``quick``
(200 each). The cases that ran are counted and the CI profile requires all of them."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tlc.data.examples import iter_examples  # noqa: E402
from tlc.data.readers import read_records  # noqa: E402
from tlc.errors import DataError  # noqa: E402
from tlc.runtime import Classifier  # noqa: E402
from tlc.runtime.batch import _prepare, _records, score_file  # noqa: E402

PROFILES = {"quick": (200, 120), "ci": (5_000, 600), "long": (100_000, 36_000)}
PROFILE = os.environ.get("TLC_FUZZ", "ci")
EXAMPLES, TIME_BOUND = PROFILES[PROFILE]
SEED = 20261201

# Characters that have broken text tools: NUL and other controls, the byte-order mark, line
# and paragraph separators, bidirectional marks and overrides, combining marks, emoji, CJK,
# the delimiters and quotes of the formats, and lone surrogates (representable in JSON only).
SPECIAL = ["\x00", "\x01", "\x1b", "\x7f", "\ufeff", "\u2028", "\u2029", "\u0085", "\u200f",
           "\u202e", "\u200b", "\u0301", "\U0001f600", "\u4e2d", "\u0627", "\t", "\r", "\n",
           "\r\n", ",", '"', "'", "\\", "{", "}", "<br />", "&amp;", " ", "\ud800", "\udfff"]


@st.composite
def texts(draw) -> str:
    parts = draw(st.lists(st.one_of(st.text(max_size=12), st.sampled_from(SPECIAL),
                                    st.sampled_from(["good film", "awful, boring"])),
                          max_size=8))
    text = "".join(parts)
    if draw(st.integers(0, 60)) == 0:   # now and then a very long field (8 to 120 kB)
        text = text + "x y " * draw(st.integers(2_000, 30_000))
    return text


# What can go wrong with one record, at the byte level.
DAMAGE = ("none", "none", "none", "bad_bytes", "stray_quote", "broken_json", "missing_text",
          "empty")


@st.composite
def cases(draw):
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "txt"]))
    n = draw(st.integers(0, 12))
    records = [(i + 1, draw(texts()), draw(st.sampled_from(DAMAGE))) for i in range(n)]
    # What no reader can tell from what was meant, left out: an unclosed quote swallows the
    # lines after it up to a quote that can close it, i.e. one followed by a delimiter or a
    # line end. If that happens with the right number of fields and no stray text, the
    # result is valid CSV (one field holding a line break). Such a quote is a second stray
    # quote, or the opening quote of a quoted field that starts with a delimiter, a line
    # break or a quote; after a stray quote neither occurs here. Every other stray quote is
    # caught (the row is reported and the lines after it read again as rows).
    strays = [i for i, r in enumerate(records) if r[2] == "stray_quote"]
    for i in strays[1:]:
        records[i] = (records[i][0], records[i][1], "none")

    bom = draw(st.booleans())
    crlf = draw(st.booleans())
    return fmt, records, bom, crlf


def _clean_for(fmt: str, text: str) -> str:
    """What a format can carry: surrogates only as JSON escapes; no line breaks in TSV or
    plain text (one record a line there)."""
    if fmt != "jsonl":
        text = "".join(c for c in text if not "\ud800" <= c <= "\udfff")
    if fmt in ("tsv", "txt"):
        text = text.replace("\r", " ").replace("\n", " ")
        text = text.replace("\u0085", " ").replace("\u2028", " ").replace("\u2029", " ")
    if fmt == "tsv":
        text = text.replace("\t", " ")
    return text


def build(fmt: str, records, bom: bool, crlf: bool) -> tuple[bytes, list[int]]:
    """The file's bytes, and the ids in record order (plain text: line numbers)."""
    eol = b"\r\n" if crlf else b"\n"
    out = io.BytesIO()
    if bom:
        out.write(b"\xef\xbb\xbf")
    if fmt in ("csv", "tsv"):
        out.write(b"id,text,label" if fmt == "csv" else b"id\ttext\tlabel")
        out.write(eol)
    stray = False
    for rid, text, damage in records:
        text = _clean_for(fmt, text)
        if damage == "empty":
            text = " "
        if stray:   # see cases(): what could close an earlier stray quote
            text = text.lstrip(',"\r\n')
        if fmt == "csv":
            if damage == "stray_quote" and "\n" not in text and "\r" not in text:
                # An opening quote that never closes where it should: the classic hand edit.
                line = f'{rid},"{text.replace(chr(34), "")},1'.encode()
                stray = True
            elif damage == "missing_text":
                line = f"{rid}".encode()
            else:
                buf = io.StringIO()   # a "\r\n" terminator: fields with \r or \n get quoted
                csv.writer(buf, lineterminator="\r\n").writerow([rid, text, "1"])
                line = buf.getvalue().removesuffix("\r\n").encode()
        elif fmt == "tsv":
            line = (f"{rid}" if damage == "missing_text" else f"{rid}\t{text}\t1").encode()
        elif fmt == "jsonl":
            obj = {"id": rid} if damage == "missing_text" else {"id": rid, "text": text,
                                                                 "label": "1"}
            line = json.dumps(obj).encode()   # ASCII escapes: surrogates stay \udXXX
            if damage == "broken_json":
                line = line[:-1]              # the closing brace lost
        else:
            line = text.encode()
        if damage == "bad_bytes":
            line = line.replace(b"1", b"1\xff", 1) if fmt == "txt" else line + b"\xc3"
        out.write(line + eol)
    return out.getvalue(), [r[0] for r in records]


def _read_output(path: Path, fmt: str) -> list[dict]:
    data = path.read_bytes().decode("utf-8")
    if fmt in ("jsonl", "txt"):
        return [json.loads(line) for line in data.split("\n") if line]
    rows = list(csv.reader(io.StringIO(data, newline=""),
                           delimiter="," if fmt == "csv" else "\t"))
    header, body = rows[0], rows[1:]
    if fmt == "tsv":     # plain TSV: one row a line, no quoting
        body = [line.split("\t") for line in data.split("\n")[1:] if line]
    return [dict(zip(header, r, strict=True)) for r in body]


class Budget:
    """Counts the cases a property ran and stops running them at the time bound."""

    def __init__(self) -> None:
        self.ran = 0
        self.start: float | None = None

    def take(self) -> bool:
        self.start = self.start or time.monotonic()
        if time.monotonic() - self.start > TIME_BOUND:
            return False
        self.ran += 1
        return True


SCORING, READING = Budget(), Budget()
PROFILE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.data_too_large,
                                                   HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def classifier(model):
    with Classifier.load(model, threads=1, batch_size=8) as clf:
        yield clf


@seed(SEED)
@PROFILE_SETTINGS
@given(case=cases())
def test_predict_writes_one_row_per_record_with_its_id(classifier, tmp_path_factory, case):
    if not SCORING.take():
        return
    fmt, records, bom, crlf = case
    data, ids = build(fmt, records, bom, crlf)
    folder = tmp_path_factory.mktemp("fuzz", numbered=True)
    src = folder / f"in.{fmt}"
    src.write_bytes(data)
    out = folder / ("out.jsonl" if fmt == "txt" else f"out.{fmt}")
    try:
        summary = score_file(classifier, src, out, progress=False, say=lambda m: None)
    except DataError as err:
        # The one whole-file refusal: no readable row holds a text field at all.
        assert "no text column" in err.message
        assert not any(r.error is None and "text" in r.fields for r in read_records(src))
        assert not out.exists() and not list(folder.glob(".*.part"))
        return
    rows = _read_output(out, fmt)
    assert len(rows) == len(ids) == summary.rows
    for row, rid in zip(rows, ids, strict=True):
        if fmt == "txt":
            assert "text" in row
        else:
            assert str(row["id"]) == str(rid)
        # No input has an error field, so the output's says which prefix its names got.
        prefix = next(p for p in ("", "pred_", "pred_pred_") if f"{p}error" in row)
        label, error = row[f"{prefix}label"], row[f"{prefix}error"]
        assert (label not in (None, "")) != (error not in (None, "")), row
        if label not in (None, ""):
            assert label in classifier.labels
    assert summary.scored + sum(summary.errors.values()) == len(ids)
    assert not list(folder.glob(".*.part"))


@seed(SEED)
@PROFILE_SETTINGS
@given(case=cases())
def test_training_and_scoring_agree_on_what_a_record_is(tmp_path_factory, case):
    if not READING.take():
        return
    fmt, records, bom, crlf = case
    data, _ = build(fmt, records, bom, crlf)
    folder = tmp_path_factory.mktemp("agree", numbered=True)
    src = folder / f"in.{fmt}"
    src.write_bytes(data)
    skipped: Counter = Counter()
    try:
        trained = list(iter_examples(read_records(src), label_column=None,
                                     on_bad_rows="skip", skipped=skipped))
    except DataError as err:   # no readable row has a text field: both sides refuse the file
        assert "no text column" in err.message
        with pytest.raises(DataError, match="no text column"):
            list(_records(src, "text" if fmt == "txt" else fmt, False, [], "text"))
        return
    scored = [p for p in (_prepare(r, "text", 10**9, "text" if fmt == "txt" else fmt)
                          for r in read_records(src)) if isinstance(p, str)]
    assert [t for t, _ in trained] == scored
    assert sum(skipped.values()) + len(trained) == sum(1 for _ in read_records(src))


def test_the_fuzz_profile_ran_its_cases():
    """Runs after the two properties (file order): in CI every generated case must have run
    within its time bound, 10,000 in all."""
    if SCORING.start is None or READING.start is None:
        pytest.skip("the property tests did not run in this session")
    total = SCORING.ran + READING.ran
    print(f"\nproperty tests: {SCORING.ran:,} + {READING.ran:,} = {total:,} generated cases "
          f"(profile {PROFILE!r})")
    if PROFILE == "ci":
        assert total >= 10_000, f"only {total:,} cases ran within the time bound"
