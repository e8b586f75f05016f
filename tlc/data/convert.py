"""Turning downloaded archives into canonical files.

Canonical files are gzip-compressed UTF-8 CSVs with one header line, written with Python's csv
module (comma, minimal quoting, ``\\n`` line ends). The gzip header stores no file name and
mtime 0, so converting the same archive twice gives the same bytes. Archives are read as
streams: nothing needs the whole archive unpacked on disk.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import re
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from tlc.data.io import csv_text
from tlc.errors import DataError, FetchError

GLOVE_DIMS = (50, 100, 200, 300)
_NOT_OFFICIAL = "the archive is not the official release; delete it and fetch again"

# What a damaged or truncated archive raises while it is read. OSError is left out on purpose:
# a full disk while writing is not a bad archive (the caller reports it).
_ARCHIVE_ERRORS = (tarfile.TarError, zlib.error, EOFError)


def _damaged(archive, error: Exception) -> DataError:
    return DataError(
        f"cannot read the archive: {error}",
        path=archive,
        hint="delete the file and fetch it again (the download may be damaged)",
    )


@contextlib.contextmanager
def _gzip_writer(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary gzip stream that lands at ``path`` only once it is complete.

    Written to ``path.tmp`` and renamed, so an interrupted conversion never leaves a truncated
    file under the real name. ``filename=""`` and ``mtime=0`` keep the header free of anything
    that changes between runs (like ``gzip -n``).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                yield gz
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv_gz(
    path: str | os.PathLike[str], columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> int:
    """Write ``rows`` under a ``columns`` header to a canonical ``.csv.gz``; returns how many."""
    n = 0
    with _gzip_writer(path) as gz:
        # newline="" so the csv module alone decides line ends (it writes "\n" here).
        with io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
            text.write(csv_text([columns]))
            for row in rows:
                text.write(csv_text([row]))
                n += 1
    return n


# --- IMDB (aclImdb_v1.tar.gz) ---------------------------------------------------------------

_IMDB_LABELLED = re.compile(r"aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt")
_IMDB_UNSUP = re.compile(r"aclImdb/train/unsup/(\d+)_0\.txt")


def convert_imdb(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """aclImdb_v1.tar.gz -> ``train.csv.gz``, ``test.csv.gz`` (text,label,rating,file) and
    ``unsup.csv.gz`` (text,file).

    Rows: all ``pos`` files by numeric id, then all ``neg`` files by numeric id; ``unsup`` by
    id. Texts are written exactly as in the release (``<br />`` tags included).
    """
    archive = Path(paths[0])
    # The tar is not sorted by id, so the reviews are collected first (about 130 MB of text),
    # keyed so that a plain sort gives the canonical order: pos (0) before neg (1), then id.
    labelled: dict[str, list[tuple[int, int, int, str, str]]] = {"train": [], "test": []}
    unsup: list[tuple[int, str, str]] = []
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.removeprefix("./")
                m = _IMDB_LABELLED.fullmatch(name)
                u = None if m else _IMDB_UNSUP.fullmatch(name)
                if not (m or u):
                    continue  # .feat files, urls_*.txt, README, imdb.vocab, ...
                text = _read_utf8(tar, member, archive)
                file = name.removeprefix("aclImdb/")
                if m:
                    split, polarity, id_, rating = m.groups()
                    order = 0 if polarity == "pos" else 1
                    labelled[split].append((order, int(id_), int(rating), text, file))
                else:
                    unsup.append((int(u[1]), text, file))
    except _ARCHIVE_ERRORS as e:
        raise _damaged(archive, e) from None

    for split, rows in labelled.items():
        if not rows:
            raise DataError(
                f"no review files aclImdb/{split}/pos|neg/<id>_<rating>.txt in the archive",
                path=archive,
                hint="this does not look like aclImdb_v1.tar.gz; delete it and fetch again",
            )
    written = []
    for split, rows in labelled.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        out = out_dir / f"{split}.csv.gz"
        write_csv_gz(
            out,
            ("text", "label", "rating", "file"),
            ((text, 1 - order, rating, file) for order, _, rating, text, file in rows),
        )
        written.append(out)
    unsup.sort(key=lambda r: r[0])
    out = out_dir / "unsup.csv.gz"
    write_csv_gz(out, ("text", "file"), ((text, file) for _, text, file in unsup))
    written.append(out)
    return written


def _read_utf8(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path) -> str:
    f = tar.extractfile(member)
    assert f is not None  # regular files always have content
    data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{member.name} in the archive is not valid UTF-8 (byte {e.start})",
            path=archive,
            hint=_NOT_OFFICIAL,
        ) from None


# --- Amazon Review Polarity (amazon_review_polarity_csv.tgz) --------------------------------

_AMAZON_MEMBERS = {
    "amazon_review_polarity_csv/train.csv": "train.csv.gz",
    "amazon_review_polarity_csv/test.csv": "test.csv.gz",
}
_AMAZON_LABELS = {"1": 0, "2": 1}  # Zhang's classes: 1 = negative, 2 = positive


def convert_amazon_polarity(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """amazon_review_polarity_csv.tgz -> ``train.csv.gz``, ``test.csv.gz`` (text,label,title).

    ``text`` is ``title + ": " + body`` (just ``body`` when the title is blank); the literal
    two-character ``\\n`` that Zhang's files use for line breaks becomes a space. Streamed:
    3.6 million rows are never held in memory.
    """
    archive = Path(paths[0])
    written = []
    found = set()
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isfile() or name not in _AMAZON_MEMBERS:
                    continue
                found.add(name)
                f = tar.extractfile(member)
                assert f is not None
                out = out_dir / _AMAZON_MEMBERS[name]
                raw = io.BufferedReader(_StreamReader(f), 1 << 20)
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                write_csv_gz(out, ("text", "label", "title"), _amazon_rows(text, name, archive))
                written.append(out)
    except _ARCHIVE_ERRORS as e:
        raise _damaged(archive, e) from None
    except UnicodeDecodeError as e:
        raise DataError(
            f"a file in the archive is not valid UTF-8: {e}",
            path=archive,
            hint=_NOT_OFFICIAL,
        ) from None
    missing = sorted(set(_AMAZON_MEMBERS) - found)
    if missing:
        raise DataError(
            f"the archive lacks {', '.join(missing)}",
            path=archive,
            hint="this does not look like amazon_review_polarity_csv.tgz; delete it and fetch "
            "again",
        )
    return written


class _StreamReader(io.RawIOBase):
    """Hides a streamed tar member behind a plain raw reader: TextIOWrapper asks the member
    ``seekable()``, which tarfile's stream mode cannot answer (AttributeError in 3.11)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._f.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _amazon_rows(text: IO[str], member: str, archive: Path) -> Iterator[tuple[str, int, str]]:
    reader = csv.reader(text)  # Zhang's files: no header, "" escaping, every field quoted
    where = f"{member} in {archive.name}"
    for row in reader:
        if len(row) != 3:
            raise DataError(
                f"{where}: expected 3 fields (class, title, body), found {len(row)}",
                path=member,
                line=reader.line_num,
                hint=_NOT_OFFICIAL,
            )
        cls, title, body = row
        if cls not in _AMAZON_LABELS:
            raise DataError(
                f"{where}: class is {cls!r}, expected 1 (negative) or 2 (positive)",
                path=member,
                line=reader.line_num,
                hint=_NOT_OFFICIAL,
            )
        title = title.replace("\\n", " ")
        body = body.replace("\\n", " ")
        yield (f"{title}: {body}" if title.strip() else body), _AMAZON_LABELS[cls], title


# --- GloVe 6B (glove.6B.zip) ----------------------------------------------------------------


def glove_dims(dims: object) -> tuple[int, ...]:
    """Normalise the ``dims`` option (an int, "50,100", or a list of them) and check it."""
    if isinstance(dims, (int, str)):
        dims = str(dims).split(",")
    valid = ", ".join(map(str, GLOVE_DIMS))
    try:
        chosen = tuple(int(str(d).strip()) for d in dims)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise FetchError(
            f"cannot read dims={dims!r} as a list of numbers",
            hint=f"pick dims among {valid} (for example dims=50,300)",
        ) from None
    bad = [d for d in chosen if d not in GLOVE_DIMS]
    if not chosen or bad:
        raise FetchError(
            f"GloVe 6B has no {', '.join(map(str, bad)) or 'empty'}-dimension vectors",
            hint=f"pick dims among {valid} (for example dims=50,300)",
        )
    return tuple(dict.fromkeys(chosen))  # drop repeats, keep the order asked for


def glove_outputs(dims: object = GLOVE_DIMS) -> tuple[str, ...]:
    return tuple(f"glove.6B.{d}d.txt.gz" for d in glove_dims(dims))


def convert_glove(paths: Sequence[Path], out_dir: Path, dims: object = GLOVE_DIMS) -> list[Path]:
    """glove.6B.zip -> ``glove.6B.{d}d.txt.gz`` for each requested dimension, content unchanged."""
    chosen = glove_dims(dims)
    archive = Path(paths[0])
    written = []
    try:
        with zipfile.ZipFile(archive) as zf:
            for d in chosen:
                member = f"glove.6B.{d}d.txt"
                out = out_dir / f"{member}.gz"
                try:
                    src = zf.open(member)
                except KeyError:
                    raise DataError(
                        f"the archive lacks {member}",
                        path=archive,
                        hint="this does not look like glove.6B.zip; delete it and fetch again",
                    ) from None
                with src, _gzip_writer(out) as gz:
                    shutil.copyfileobj(src, gz, 1 << 20)
                written.append(out)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise _damaged(archive, e) from None
    return written
