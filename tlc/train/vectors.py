"""Pretrained word vectors (GloVe or word2vec text) as a starting point for the embedding.

Only numpy: the file is read once, filtered to the words the tokenizer can use, and copied
into the rows of whole-word pieces; the rest of the embedding keeps its random start.
"""

from __future__ import annotations

import io
import lzma
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tlc.data.io import open_binary
from tlc.errors import DataError, TlcError

# sentencepiece marks a piece that starts a word with this character (U+2581).
WORD_START = "\u2581"

# What a damaged or truncated compressed file raises while it is read.
_DECOMPRESS_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


def vectors_file(value: str | os.PathLike[str], data_dir=None) -> Path:
    """A vector file by path, or by the name `tlc data fetch glove.6B` stored it under."""
    value = Path(value)
    if value.exists():
        return value
    from tlc.data.dataset import resolve_data_dir

    folder = resolve_data_dir(data_dir) / "glove"
    for candidate in (folder / f"{value.name}.txt.gz", folder / f"{value.name}.txt",
                      folder / value.name):
        if candidate.is_file():
            return candidate
    raise DataError("word-vector file not found (not a path, nor a fetched GloVe file in "
                    f"{folder})", path=value,
                    hint="give the file's path, or fetch it: tlc data fetch glove.6B --dim 50 "
                    "(then --init-vectors glove.6B.50d)")


def _is_header(parts: list[str]) -> bool:
    """word2vec text starts with ``count dim``; GloVe has no header."""
    return len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit()


def _bad_utf8(line: str) -> bool:
    # Read with surrogateescape so a bad byte is reported on its own line, not on the line
    # where the decoder's chunk happened to start; escaped bytes cannot be encoded back.
    if line.isascii():
        return False
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parse_values(values: list[str], word: str, path, lineno: int) -> np.ndarray:
    try:
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, reported below
            vector = np.asarray(values, dtype=np.float32)
        if np.all(np.isfinite(vector)):
            return vector
    except ValueError:
        pass
    # Slow path, only to name the offending value.
    index, bad = next(
        (i, v) for i, v in enumerate(values, start=1) if not _is_finite_number(v)
    )
    raise DataError(
        f"value {index} of word {word!r} is not a finite number: {bad!r}",
        path=path,
        line=lineno,
        hint="word-vector files hold one word and its numbers per line, separated by "
        "spaces; the file may be damaged or not a GloVe/word2vec text file",
    )


def _is_finite_number(value: str) -> bool:
    try:
        with np.errstate(over="ignore"):
            return bool(np.isfinite(np.float32(value)))
    except ValueError:
        return False


def load_vectors(
    path: str | os.PathLike[str], wanted: set[str] | None = None
) -> tuple[dict[str, np.ndarray], int]:
    """Read GloVe or word2vec text vectors; return (word -> float32 vector, dimension).

    ``wanted`` keeps only those words: GloVe has 400k of them and the tokenizer can use a few
    thousand, so the values of other lines are counted but not parsed (that is most of the
    time). The dimension is the first vector line's; every line must match it. The first
    occurrence of a repeated word wins. The result may be empty when no wanted word occurs.
    """
    vectors: dict[str, np.ndarray] = {}
    dim: int | None = None
    header_dim: int | None = None
    raw = open_binary(path)
    try:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="\n")
        for lineno, line in enumerate(text, start=1):
            if _bad_utf8(line):
                raise DataError(
                    "the line is not valid UTF-8",
                    path=path,
                    line=lineno,
                    hint="word-vector files are UTF-8 text; re-encode the file or fetch it "
                    "again",
                )
            line = line.rstrip("\r\n ")
            if not line:
                continue  # a blank line carries no vector
            # Count and cut rather than split: most lines are not wanted, and splitting 300
            # values into strings is most of the cost of skipping one.
            got = line.count(" ")
            space = line.find(" ")
            word = line[:space] if space >= 0 else line
            if dim is None and header_dim is None and _is_header(line.split(" ")):
                header_dim = int(line[space + 1 :])
                continue
            if dim is None:
                if got == 0:
                    raise DataError(
                        f"word {word!r} has no values",
                        path=path,
                        line=lineno,
                        hint="each line must be a word followed by its numbers, separated by "
                        "spaces",
                    )
                if header_dim is not None and got != header_dim:
                    raise DataError(
                        f"the header says {header_dim} values per word but the first vector "
                        f"has {got}",
                        path=path,
                        line=lineno,
                        hint="the file may be truncated or damaged; fetch it again",
                    )
                dim = got
            elif got != dim:
                raise DataError(
                    f"expected {dim} values (as on the first vector line) but got {got} for "
                    f"word {word!r}",
                    path=path,
                    line=lineno,
                    hint="a word must not contain spaces, and every line must have the same "
                    "number of values; the file may be damaged",
                )
            if (wanted is not None and word not in wanted) or word in vectors:
                continue
            vectors[word] = _parse_values(line[space + 1 :].split(" "), word, path, lineno)
    except _DECOMPRESS_ERRORS as e:
        raise DataError(
            f"cannot read the file: {e}",
            path=path,
            hint="the compressed file may be truncated or damaged; fetch it again",
        ) from None
    finally:
        raw.close()
    if dim is None:
        only_header = " (only a header line)" if header_dim is not None else ""
        raise DataError(
            f"no word vectors in the file{only_header}",
            path=path,
            hint="pass a GloVe or word2vec text file (one word and its numbers per line)",
        )
    return vectors, dim


def embedding_from_vectors(
    pieces: Sequence[str], vectors: dict[str, np.ndarray], base: np.ndarray
) -> tuple[np.ndarray, int]:
    """Copy ``base`` with the rows of whole-word pieces replaced by their pretrained vectors.

    A whole-word piece (``▁movie``) stands for the word itself, so its vector is a sound start;
    sub-word, byte and control pieces have no such word and keep their rows. The exact word is
    tried first, then its lowercase (GloVe 6B is lowercased). Returns (matrix, rows set).
    """
    if base.ndim != 2 or base.shape[0] != len(pieces):
        raise ValueError(
            f"base must be ({len(pieces)}, dim) for {len(pieces)} pieces, got {base.shape}"
        )
    out = np.array(base, copy=True)
    if not vectors:
        return out, 0
    dim = len(next(iter(vectors.values())))
    if dim != base.shape[1]:
        raise TlcError(
            f"the word vectors have {dim} dimensions but the embedding has {base.shape[1]}",
            hint=f"set model.embedding_dim to {dim} (the vector file's dimension)",
        )
    count = 0
    for index, piece in enumerate(pieces):
        if not piece.startswith(WORD_START) or len(piece) == 1:
            continue
        word = piece[1:]
        vector = vectors.get(word)
        if vector is None:
            vector = vectors.get(word.lower())
        if vector is None:
            continue
        out[index] = vector
        count += 1
    return out, count


def vector_dim(path: str | os.PathLike[str]) -> int:
    """The dimension of a vector file, from its first vector line (a header is skipped)."""
    _, dim = load_vectors(path, wanted=set())
    return dim
