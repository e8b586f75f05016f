"""Reading GloVe/word2vec text vectors and seeding the embedding of whole-word pieces."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest

from tlc.errors import TlcError
from tlc.train.vectors import embedding_from_vectors, load_vectors

GLOVE = "the 0.1 0.2 0.3\nmovie 1 2 3\nn't -1.5 0 2e-3\n, 4 5 6\nCafé 7 8 9\n"


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def raises_at(path: Path, line: int | None, *needles: str) -> TlcError:
    """Load ``path``, expect a TlcError located at ``path:line`` whose text holds ``needles``."""
    with pytest.raises(TlcError) as info:
        load_vectors(path)
    err = info.value
    text = str(err)
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    assert text.startswith(where), text
    assert err.line == line
    assert "\n  fix: " in text
    for needle in needles:
        assert needle in text, text
    return err


def check_glove(vectors: dict[str, np.ndarray], dim: int) -> None:
    assert dim == 3
    assert set(vectors) == {"the", "movie", "n't", ",", "Café"}
    assert all(v.dtype == np.float32 and v.shape == (3,) for v in vectors.values())
    np.testing.assert_allclose(vectors["the"], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(vectors["n't"], [-1.5, 0, 0.002], rtol=1e-6)
    np.testing.assert_array_equal(vectors["Café"], [7, 8, 9])


def test_glove_plain(tmp_path):
    check_glove(*load_vectors(write(tmp_path / "glove.6B.3d.txt", GLOVE)))


def test_glove_gzip_and_str_path(tmp_path):
    path = write(tmp_path / "glove.txt.gz", gzip.compress(GLOVE.encode()))
    check_glove(*load_vectors(str(path)))


def test_word2vec_header_is_skipped(tmp_path):
    path = write(tmp_path / "w2v.txt", "2 4\nfoo 1 2 3 4\nbar 5 6 7 8\n")
    vectors, dim = load_vectors(path)
    assert dim == 4
    assert set(vectors) == {"foo", "bar"}
    np.testing.assert_array_equal(vectors["bar"], [5, 6, 7, 8])


def test_trailing_spaces_crlf_blank_lines_and_no_final_newline(tmp_path):
    path = write(tmp_path / "v.txt", "a 1 2 \r\n\nb 3 4  \nc 5 6")
    vectors, dim = load_vectors(path)
    assert dim == 2
    np.testing.assert_array_equal(vectors["b"], [3, 4])
    np.testing.assert_array_equal(vectors["c"], [5, 6])


def test_first_occurrence_wins(tmp_path):
    vectors, _ = load_vectors(write(tmp_path / "v.txt", "a 1 2\na 3 4\n"))
    np.testing.assert_array_equal(vectors["a"], [1, 2])


def test_wanted_filters(tmp_path):
    path = write(tmp_path / "glove.txt", GLOVE)
    vectors, dim = load_vectors(path, wanted={"movie", "Café", "absent"})
    assert dim == 3
    assert set(vectors) == {"movie", "Café"}
    # Nothing wanted is present: an empty result (the caller reports 0 pieces set), not an error.
    assert load_vectors(path, wanted={"zzz"}) == ({}, 3)


def test_wrong_value_count(tmp_path):
    path = write(tmp_path / "v.txt", "a 1 2 3\nb 4 5 6\nc 7 8\n")
    raises_at(path, 3, "expected 3 values", "got 2", "'c'")
    # Also when the line's word is not wanted: the count is checked on every line.
    with pytest.raises(TlcError, match="got 2"):
        load_vectors(path, wanted={"a"})


def test_header_disagrees_with_vectors(tmp_path):
    path = write(tmp_path / "w2v.txt", "2 5\nfoo 1 2 3 4\n")
    raises_at(path, 2, "header says 5", "has 4")


def test_word_without_values(tmp_path):
    raises_at(write(tmp_path / "v.txt", "lonely\n"), 1, "has no values")


def test_non_numeric_value(tmp_path):
    path = write(tmp_path / "v.txt", "a 1 2 3\nb 4 x5 6\n")
    raises_at(path, 2, "value 2 of word 'b'", "'x5'", "not a finite number")


def test_out_of_range_value_without_warnings(tmp_path):
    path = write(tmp_path / "v.txt", "a 1 2\nb 1e50 3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raises_at(path, 2, "value 1 of word 'b'", "'1e50'")
    raises_at(write(tmp_path / "n.txt", "a 1 nan\n"), 1, "value 2", "'nan'")


def test_invalid_utf8_names_its_own_line(tmp_path):
    # Far past the text decoder's first chunk, so the line number must come from the line.
    good = "".join(f"w{i} 1 2\n" for i in range(3000)).encode()
    path = write(tmp_path / "v.txt", good + b"caf\xe9 1 2\n")
    raises_at(path, 3001, "not valid UTF-8")


def test_invalid_utf8_in_gzip(tmp_path):
    path = write(tmp_path / "v.txt.gz", gzip.compress(b"a 1 2\n\xff\xfe 3 4\n"))
    raises_at(path, 2, "not valid UTF-8")


def test_empty_and_header_only(tmp_path):
    raises_at(write(tmp_path / "empty.txt", ""), None, "no word vectors")
    raises_at(write(tmp_path / "blank.txt", "\n\n"), None, "no word vectors")
    raises_at(write(tmp_path / "hdr.txt", "0 300\n"), None, "only a header line")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(TlcError) as info:
        load_vectors(path)
    assert str(path) in str(info.value)
    assert "no such file" in str(info.value)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(("".join(f"w{i} 1 2\n" for i in range(2000))).encode())
    path = write(tmp_path / "v.txt.gz", data[: len(data) // 2])
    with pytest.raises(TlcError, match="cannot read the file") as info:
        load_vectors(path)
    assert str(path) in str(info.value)


# --- embedding_from_vectors ---------------------------------------------------------------

PIECES = [
    "<pad>", "<unk>", "<0x41>", "\u2581movie", "\u2581The", "ing", "\u2581",
    "\u2581zzz", "\u2581Paris", "\u2581paris", "pad",
]


def vec(x: float, dim: int = 4) -> np.ndarray:
    return np.full(dim, x, dtype=np.float32)


VECTORS = {
    "movie": vec(1), "the": vec(2), "Paris": vec(3), "paris": vec(4), "ing": vec(5),
    "pad": vec(6), "": vec(7),
}


def test_embedding_from_vectors():
    base = np.arange(len(PIECES) * 4, dtype=np.float32).reshape(len(PIECES), 4)
    before = base.copy()
    out, count = embedding_from_vectors(PIECES, VECTORS, base)
    np.testing.assert_array_equal(base, before)  # not modified in place
    assert out is not base and out.dtype == base.dtype and out.shape == base.shape
    set_rows = {3: 1, 4: 2, 8: 3, 9: 4}  # movie exact, The -> the, Paris exact, paris exact
    assert count == len(set_rows)
    for i in range(len(PIECES)):
        expected = vec(set_rows[i]) if i in set_rows else before[i]
        np.testing.assert_array_equal(out[i], expected, err_msg=PIECES[i])


def test_embedding_no_vectors_is_a_copy():
    base = np.ones((len(PIECES), 4), dtype=np.float32)
    out, count = embedding_from_vectors(PIECES, {}, base)
    assert count == 0 and out is not base
    np.testing.assert_array_equal(out, base)


def test_embedding_dim_mismatch():
    base = np.zeros((len(PIECES), 8), dtype=np.float32)
    with pytest.raises(TlcError) as info:
        embedding_from_vectors(PIECES, VECTORS, base)
    text = str(info.value)
    assert "4 dimensions" in text and "has 8" in text
    assert "model.embedding_dim to 4" in text


def test_embedding_base_shape_mismatch():
    with pytest.raises(ValueError, match="11 pieces"):
        embedding_from_vectors(PIECES, VECTORS, np.zeros((3, 4), dtype=np.float32))
