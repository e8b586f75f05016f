"""Opening input files: transparent gzip/bz2/xz, '-' for standard input.

Compression is recognised by the file's first bytes, not its name, so a mislabelled
``reviews.csv`` that is really gzip still reads, and ``zcat``-style pipes work through '-'.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from tlc.errors import DataError

# Suffixes that only name a compression; stripped before the format is read off the name.
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")

_MAGIC = (
    (b"\x1f\x8b", gzip.open),
    (b"BZh", bz2.open),
    (b"\xfd7zXZ\x00", lzma.open),
)


def is_stdin(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path) == "-"


def _opener(head: bytes):
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return opener
    return None


def open_binary(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` (or stdin for '-') for reading bytes, decompressing when needed."""
    if is_stdin(path):
        stdin: io.BufferedReader = sys.stdin.buffer  # type: ignore[assignment]
        opener = _opener(stdin.peek(8)[:8])
        return opener(stdin) if opener else stdin  # type: ignore[return-value]
    p = Path(path)
    if p.is_dir():
        raise DataError(
            "is a folder, not a file",
            path=p,
            hint="name one file, or pass the folder where a data set is expected",
        )
    try:
        with open(p, "rb") as f:
            head = f.read(8)
        # The decompressors open the file by name so that closing them closes it too.
        opener = _opener(head)
        return opener(p, "rb") if opener else open(p, "rb")  # type: ignore[return-value]
    except FileNotFoundError:
        raise DataError(
            "no such file", path=p,
            hint="check the path (relative paths start at the current folder)",
        ) from None
    except PermissionError:
        raise DataError("permission denied", path=p, hint="make the file readable") from None


def strip_compression(name: str) -> str:
    """``train.csv.gz`` -> ``train.csv``."""
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def csv_text(rows: Iterable[Sequence[object]], delimiter: str = ",") -> str:
    """Rows as CSV text, one ``\n`` per row. Python's writer quotes a field holding a line
    break only if the break is in its line terminator, so a lone ``\r`` (old Mac line ends,
    common in scraped text) would go out unquoted and end the row for any reader that knows
    ``\r`` as a line end (Python's own included); rows holding one are quoted in full."""
    buf = io.StringIO()
    plain = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    quoted = csv.writer(buf, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if any(isinstance(v, str) and "\r" in v for v in row) else plain).writerow(row)
    return buf.getvalue()
