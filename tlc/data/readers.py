"""Streaming readers for every input format tlc accepts.

Each reader yields :class:`Record` objects one row at a time, so a multi-GB file is never held
in memory. A row that cannot be read (malformed CSV, invalid UTF-8, broken JSON) is not
dropped and does not stop the stream: it comes out as a record with ``error`` set, and the
caller decides whether that is fatal (training) or written out with the error (scoring).
Only problems with the file as a whole (missing, no header, unknown format) raise
:class:`~tlc.errors.DataError`.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlc.data.io import is_stdin, open_binary, strip_compression
from tlc.errors import DataError
from tlc.text import find_surrogate, replace_surrogates

FORMATS = ("csv", "tsv", "jsonl", "fasttext", "text", "aclimdb")

EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "text",
    ".ft": "fasttext",
    ".fasttext": "fasttext",
}

FASTTEXT_PREFIX = "__label__"

# Reviews can be long (a 10 MB document must still come through as one field).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(slots=True)
class Record:
    """One row of input, good or bad."""

    source: str
    """The file the row came from (for aclImdb folders: the review's own file)."""
    line: int | None
    """1-based line where the row starts; None where each document is its own file."""
    fields: dict[str, str] = field(default_factory=dict)
    """Column -> value, in file order. Values that were not valid UTF-8 are decoded with
    U+FFFD replacement characters so the row can still be shown or written back."""
    error: str | None = None
    """Why the row is bad, or None for a good row."""
    parsed: Any = None
    """JSONL only: the row's JSON object as parsed (``fields`` holds its values as strings),
    so that a JSON writer can give numbers back as numbers and objects as objects."""


def detect_format(path: str | os.PathLike[str]) -> str:
    """Read the format off the file name (after any .gz/.bz2/.xz); sniff .txt for fastText."""
    p = Path(path)
    if is_stdin(path):
        raise DataError(
            "cannot tell the format of standard input", path="-", hint="pass --format"
        )
    if p.is_dir():
        if looks_like_aclimdb(p):
            return "aclimdb"
        raise DataError(
            "folder is not in the aclImdb layout (pos/ and neg/ or unsup/ holding *.txt)",
            path=p,
            hint="name a file, or a folder like aclImdb/train",
        )
    suffix = Path(strip_compression(p.name)).suffix.lower()
    fmt = EXTENSIONS.get(suffix)
    if fmt is None:
        raise DataError(
            f"unknown format (file name ends in {suffix or 'no extension'!r})",
            path=p,
            hint=f"rename the file or pass --format, one of: {', '.join(FORMATS)}",
        )
    if fmt == "text" and _first_line_is_fasttext(p):
        return "fasttext"
    return fmt


def _first_line_is_fasttext(path: Path) -> bool:
    with open_binary(path) as f:
        first = f.readline(4096)
    return first.removeprefix(BOM).lstrip().startswith(FASTTEXT_PREFIX.encode())


def looks_like_aclimdb(folder: Path) -> bool:
    return any((folder / sub).is_dir() for sub in ("pos", "neg")) or (
        folder.name == "unsup" and any(folder.glob("*.txt"))
    )


def read_records(
    path: str | os.PathLike[str], fmt: str | None = None, *, delimiter: str | None = None,
    on_header: Callable[[list[str]], None] | None = None,
) -> Iterator[Record]:
    """Yield every row of ``path`` as a :class:`Record` (streaming). ``on_header`` is called
    with the column names of a CSV/TSV header as soon as it is read, so that a writer knows
    the columns even of a file that holds no data rows."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise DataError(
            f"unknown format {fmt!r}", path=path, hint=f"use one of: {', '.join(FORMATS)}"
        )
    if fmt == "aclimdb":
        yield from _read_aclimdb(Path(path))
        return
    source = os.fspath(path)
    with open_binary(path) as raw:
        if fmt == "csv":
            yield from _tabular(_csv_rows(raw, delimiter or ","), source, on_header)
        elif fmt == "tsv":
            yield from _tabular(_tsv_rows(raw, delimiter or "\t"), source, on_header)
        elif fmt == "jsonl":
            yield from _read_jsonl(raw, source)
        elif fmt == "fasttext":
            yield from _read_fasttext(raw, source)
        else:
            yield from _read_text(raw, source)


# ---------------------------------------------------------------- decoding helpers


def _decode(data: bytes) -> tuple[str, str | None]:
    """Decode a line; on invalid UTF-8 return a readable version and the reason."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return data.decode("utf-8", "replace"), (
            f"not valid UTF-8 (byte 0x{data[e.start]:02x} at byte {e.start + 1} of the row)"
        )


def _check_utf8(values: list[str]) -> tuple[list[str], str | None]:
    """CSV is decoded with surrogateescape so that one bad byte cannot shift the rows; here
    the escaped bytes are found again and turned into a per-row error."""
    for v in values:
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            fixed = [
                x.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for x in values
            ]
            return fixed, "not valid UTF-8"
    return values, None


BOM = b"\xef\xbb\xbf"


def _lines(raw) -> Iterator[tuple[int, bytes]]:
    """(1-based number, line without its end) for line-based formats. A UTF-8 byte-order mark
    (Notepad and Excel write one) is not part of the first line's content: it goes, as the
    CSV/TSV header handling drops it."""
    for number, line in enumerate(raw, start=1):
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM):]
            if not line:   # a file holding a byte-order mark alone holds no line
                return
        yield number, _strip_eol(line)


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def _header(names: list[str], source: str, line: int = 1) -> list[str]:
    if names and names[0].startswith("\ufeff"):  # a byte-order mark written by Excel
        names[0] = names[0][1:]
    names = [n.strip() for n in names]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise DataError(
                f"column {n!r} appears twice in the header",
                path=source,
                line=line,
                hint="give every column a distinct name",
            )
        seen.add(n)
    return names


def _row_fields(header: list[str], values: list[str]) -> tuple[dict[str, str], str | None]:
    fields = dict(zip(header, values, strict=False))
    if len(values) != len(header):
        for extra, v in enumerate(values[len(header) :], start=len(header) + 1):
            fields[f"_extra{extra}"] = v
        return fields, f"expected {len(header)} fields (as in the header), found {len(values)}"
    return fields, None


# ---------------------------------------------------------------- formats


def _tabular(rows, source: str, on_header: Callable[[list[str]], None] | None = None
             ) -> Iterator[Record]:
    """Header handling shared by CSV and TSV. ``rows`` yields (line, values, error); values is
    None for a row that could not be split into fields at all."""
    header: list[str] | None = None
    for line, values, error in rows:
        if values is None:
            yield Record(source, line, {}, error)
            continue
        if header is None:
            if error:
                raise DataError(
                    "the header is not valid UTF-8", path=source, line=line,
                    hint="re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                )
            header = _header(values, source, line)
            if on_header is not None:
                on_header(list(header))
            continue
        fields, shape_error = _row_fields(header, values)
        yield Record(source, line, fields, error or shape_error)
    if header is None:
        raise DataError(
            "the file is empty (no header line)",
            path=source,
            hint="CSV/TSV files need a header line naming the columns, e.g. text,label",
        )


def _csv_rows(raw, delimiter: str):
    """(line, values, error) for each CSV row; ``values`` None where none could be read.

    CSV lets a quoted field run over several lines, so one stray opening quote makes the
    parser swallow the lines after it into one field, up to the next quote or the end of the
    file, silently (Python's csv module, lenient as it must be for real files). So a row that
    spans several lines and then has the wrong number of fields, or is not strictly valid CSV
    (a quote that never closes, or text right after a closing quote), is reported as malformed
    on its first line (with that line's fields, read on their own), and the parser starts
    again on the line after it: one bad quote cannot take other rows with it."""
    # surrogateescape: a bad byte must not derail the parser; _check_utf8 reports it per row.
    # utf-8-sig: a byte-order mark must go before the parser sees it, or a quoted first
    # column name ("\ufeff"id"") would keep its quotes.
    lines = iter(io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape",
                                  newline=""))
    pushed_back: collections.deque[str] = collections.deque()
    pending: list[str] = []      # the raw lines of the row being parsed

    def feed():
        while True:
            if pushed_back:
                line = pushed_back.popleft()
            else:
                line = next(lines, None)
                if line is None:
                    return
            pending.append(line)
            yield line

    reader = csv.reader(feed(), delimiter=delimiter)
    line, width = 1, None        # width: the header's number of fields
    while True:
        pending.clear()
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if not pending:
                return
            yield line, None, f"malformed CSV: {e}"
            line += len(pending)
            continue
        start = line
        line += len(pending)
        if not values:  # a blank line is not a row
            continue
        # Only a row spanning several lines can hold a stray quote's damage (and is rare):
        # one-line rows skip the check.
        if width is not None and len(pending) > 1 and (
                len(values) != width or not _parses_strictly(pending, delimiter)):
            consumed, n = list(pending), len(pending) - 1
            first, utf8_error = _check_utf8(next(csv.reader(consumed[:1], delimiter=delimiter)))
            yield start, first, utf8_error or (
                f"malformed CSV: a quote opened on this line runs over the next {n:,} "
                f"line{'s' if n > 1 else ''} (read again as rows of their own)")
            pushed_back.extendleft(reversed(consumed[1:]))
            line = start + 1
            reader = csv.reader(feed(), delimiter=delimiter)   # no state from the bad quote
            continue
        width = len(values) if width is None else width
        yield (start, *_check_utf8(values))


def _parses_strictly(lines: list[str], delimiter: str) -> bool:
    """Whether ``lines`` are well-formed CSV: every quote closes, and is followed by a
    delimiter or the end of the line (a stray quote is what breaks this)."""
    try:
        for _ in csv.reader(lines, delimiter=delimiter, strict=True):
            pass
    except csv.Error:
        return False
    return True


def _tsv_rows(raw, delimiter: str):
    # Plain TSV: one row per line, fields split on tabs, no quoting (IANA text/tab-separated
    # values). Quoted "TSV" exported from spreadsheets reads as CSV with delimiter "\t".
    for number, content in _lines(raw):
        if content.strip():
            text, utf8_error = _decode(content)
            yield number, text.split(delimiter), utf8_error


def _json_value(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


def _read_jsonl(raw, source: str) -> Iterator[Record]:
    for number, content in _lines(raw):
        if not content.strip():
            continue
        # Invalid UTF-8 is reported, but the line is still parsed (with U+FFFD in place of
        # the bad bytes) so the row keeps its other fields, its id above all, as CSV does.
        text, error = _decode(content)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            # Keep what can be read before the damage (a truncated line still has its id).
            obj = _leading_fields(text)
            error = error or f"not valid JSON: {e.msg} at column {e.colno}"
            if not obj:
                yield Record(source, number, {}, error)
                continue
        if not isinstance(obj, dict):
            yield Record(source, number, {}, error or
                         f"expected a JSON object per line, found {type(obj).__name__}")
            continue
        # JSON can spell half a UTF-16 pair ("\ud800"), which no UTF-8 text can hold: such a
        # row is as bad as invalid UTF-8, reported, with U+FFFD in its place.
        obj, where = _without_surrogates(obj)
        if where is not None and error is None:
            error = f"not valid Unicode: a lone surrogate escape in {where}"
        yield Record(source, number, {str(k): _json_value(v) for k, v in obj.items()}, error,
                     parsed=obj)


_DECODER = json.JSONDecoder()
_WHITE = re.compile(r"[ \t\n\r]*")


def _leading_fields(text: str) -> dict[str, Any]:
    """The key/value pairs of a damaged JSON object line that parse before the damage
    (``{"id": 7, "text": "cut of`` -> ``{"id": 7}``); empty if it does not start as an
    object."""
    found: dict[str, Any] = {}
    i = _WHITE.match(text, 0).end()
    if not text.startswith("{", i):
        return found
    i += 1
    try:
        while True:
            i = _WHITE.match(text, i).end()
            if not text.startswith('"', i):
                return found
            key, i = json.decoder.scanstring(text, i + 1)
            i = _WHITE.match(text, i).end()
            if not text.startswith(":", i):
                return found
            value, i = _DECODER.raw_decode(text, _WHITE.match(text, i + 1).end())
            found[key] = value
            i = _WHITE.match(text, i).end()
            if not text.startswith(",", i):
                return found
            i += 1
    except (json.JSONDecodeError, ValueError, IndexError):
        return found


def _without_surrogates(value: Any, where: str = "") -> tuple[Any, str | None]:
    """``value`` with every lone surrogate replaced by U+FFFD, and where the first one was
    (a field name, ``"text"``), or None when there was none."""
    if isinstance(value, str):
        if find_surrogate(value) < 0:
            return value, None
        return replace_surrogates(value), where or "a value"
    if isinstance(value, list):
        found = None
        items = []
        for item in value:
            item, w = _without_surrogates(item, where)
            items.append(item)
            found = found or w
        return (items, found) if found else (value, None)
    if isinstance(value, dict):
        found = None
        out = {}
        for k, v in value.items():
            name = f"field {k!r}" if not where else where
            k2, wk = _without_surrogates(k, f"a field name ({replace_surrogates(k)!r})")
            v2, wv = _without_surrogates(v, name)
            out[k2] = v2
            found = found or wk or wv
        return (out, found) if found else (value, None)
    return value, None


_SPACE = re.compile(r"[ \t]+")


def _read_fasttext(raw, source: str) -> Iterator[Record]:
    for number, content in _lines(raw):
        if not content.strip():
            continue
        text, utf8_error = _decode(content)
        words = _SPACE.split(text.strip())
        labels = []
        while words and words[0].startswith(FASTTEXT_PREFIX):
            labels.append(words.pop(0)[len(FASTTEXT_PREFIX) :])
        fields = {"label": labels[0] if labels else "", "text": " ".join(words)}
        error = utf8_error
        if not labels:
            error = error or f"no {FASTTEXT_PREFIX} prefix at the start of the line"
        elif len(labels) > 1:
            error = error or (
                f"{len(labels)} labels on one line ({', '.join(labels)}); "
                "tlc trains single-label classifiers"
            )
        yield Record(source, number, fields, error)


def _read_text(raw, source: str) -> Iterator[Record]:
    # One document a line; an empty line is an (empty) document, not a separator, so that
    # output rows line up with input lines when scoring.
    for number, content in _lines(raw):
        text, utf8_error = _decode(content)
        yield Record(source, number, {"text": text}, utf8_error)


# aclImdb v1: <split>/{pos,neg}/<id>_<rating>.txt and train/unsup/<id>_0.txt. Labels follow
# the canonical imdb files (pos -> "1", neg -> "0"), so both sources give the same data set.
_ACLIMDB_LABELS = {"pos": "1", "neg": "0"}
_ACLIMDB_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def _read_aclimdb(folder: Path) -> Iterator[Record]:
    if not folder.is_dir():
        raise DataError("no such folder", path=folder, hint="check the path")
    if folder.name == "unsup" and not (folder / "pos").is_dir():
        groups = [(folder, "")]
    else:
        groups = [(folder / sub, label) for sub, label in _ACLIMDB_LABELS.items()]
    root = folder.parent if folder.name == "unsup" else folder
    for sub, label in groups:
        if not sub.is_dir():
            continue
        named = []
        for p in sub.iterdir():
            m = _ACLIMDB_NAME.match(p.name)
            if m:
                named.append((int(m.group(1)), m.group(2), p))
        for _, rating, p in sorted(named):
            text, error = _decode(p.read_bytes())
            rel = p.relative_to(root.parent).as_posix()
            fields = {"text": text, "label": label, "rating": rating, "file": rel}
            if not label:
                fields = {"text": text, "file": rel}
            yield Record(str(p), None, fields, error)
