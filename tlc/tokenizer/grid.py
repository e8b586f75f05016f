"""Sentence splitting on sentencepiece ids and the fixed (sentences x tokens) document grid.

Splitting works on ids, not on text: two boolean lookup tables over the vocabulary say which
pieces are sentence-final punctuation and which pieces start a word. In the ONNX graph each
table is a constant and the lookup is a ``Gather``; everything else below is elementwise
logic, ``CumSum``, ``NonZero``, ``Gather`` and one ``ScatterND``, all on the flat token
stream (``SentencepieceTokenizer`` returns the batch that way: a flat token tensor plus
per-document offsets), so the graph mirrors :func:`grid_from_flat` step by step.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

WORD_START = "\u2581"  # sentencepiece's "▁": the piece begins a new whitespace-separated word
# After NFKC the fullwidth "！" "？" "．" are ASCII already; "…" too (it becomes "..."), but a
# model trained without normalisation could still hold it, so keep it. "。" survives NFKC.
SENTENCE_FINAL = frozenset(".!?\u2026\u3002")


def terminal_table(pieces: Sequence[str]) -> np.ndarray:
    """bool (vocab,): piece is punctuation only (ignoring a leading "▁") with a . ! ? … or 。.

    Byte pieces ("<0xE3>") and specials ("<unk>", "<pad>") contain letters, so are never terminal.
    """
    table = np.zeros(len(pieces), dtype=bool)
    for i, piece in enumerate(pieces):
        body = piece[1:] if piece.startswith(WORD_START) else piece
        table[i] = (
            bool(body)
            and not any(ch.isalnum() for ch in body)
            and any(ch in SENTENCE_FINAL for ch in body)
        )
    return table


def starts_word_table(pieces: Sequence[str]) -> np.ndarray:
    """bool (vocab,): piece starts with "▁", i.e. whitespace (or the text start) precedes it."""
    return np.fromiter((p.startswith(WORD_START) for p in pieces), dtype=bool, count=len(pieces))


def to_grid(
    ids_per_doc: Sequence[Sequence[int]],
    terminal: np.ndarray,
    starts_word: np.ndarray,
    max_sentences: int,
    max_tokens: int,
) -> np.ndarray:
    """int32 (N, max_sentences, max_tokens): first sentences and tokens of each doc, 0-padded."""
    flat, lengths = flatten(ids_per_doc)
    return grid_from_flat(flat, lengths, terminal, starts_word, max_sentences, max_tokens)


def flatten(ids_per_doc: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """All ids of a batch in one int64 array, plus the token count of each document."""
    lengths = np.fromiter(map(len, ids_per_doc), dtype=np.int64, count=len(ids_per_doc))
    flat = np.fromiter(chain.from_iterable(ids_per_doc), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


def grid_from_flat(
    flat: np.ndarray,
    lengths: np.ndarray,
    terminal: np.ndarray,
    starts_word: np.ndarray,
    max_sentences: int,
    max_tokens: int,
) -> np.ndarray:
    """:func:`to_grid` on a batch flattened to all token ids plus the token count per document."""
    n_docs = len(lengths)
    grid = np.zeros((n_docs, max_sentences, max_tokens), dtype=np.int32)
    n = len(flat)
    if n == 0:
        return grid
    position = np.arange(n, dtype=np.int64)
    # Document of each token and whether it is its document's first token.
    # ONNX: offsets -> ScatterND of ones into zeros(n) at doc starts -> CumSum.
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    doc_start = np.zeros(n, dtype=bool)
    doc_start[(np.cumsum(lengths) - lengths)[lengths > 0]] = True

    # ONNX: Gather(table_constant, ids).
    term = terminal[flat]
    word = starts_word[flat]
    # Token i ends a sentence when it is terminal and token i+1 (same document) starts a word,
    # so the inner dots of "3.5", "e.g." and "example.com" do not split.
    # ONNX: Slice + Concat to shift by one, And/Not elementwise.
    ends = np.zeros(n, dtype=bool)
    ends[:-1] = term[:-1] & word[1:] & ~doc_start[1:]
    # A sentence starts after an end unless the token is itself terminal: "!!! ! ." stays with
    # the sentence it closes. Every document starts a sentence too.
    starts = doc_start.copy()
    starts[1:] |= ends[:-1] & ~term[1:]

    # Global sentence number and its first token. ONNX: CumSum, NonZero, Gather.
    sentence = np.cumsum(starts) - 1
    sentence_first = np.flatnonzero(starts)
    token_in_sentence = position - sentence_first[sentence]
    # Sentence number inside the document: subtract the number of the document's first sentence.
    doc_first_sentence = sentence[doc_start]  # one per non-empty document, in order
    first_sentence_of_doc = np.zeros(n_docs, dtype=np.int64)
    first_sentence_of_doc[lengths > 0] = doc_first_sentence
    sentence_in_doc = sentence - first_sentence_of_doc[doc]

    # Keep the first S sentences and the first T tokens of each. ONNX: Less, And, NonZero, then
    # ScatterND at (doc, sentence, token); numpy writes the same cells through a linear index.
    keep = np.flatnonzero((sentence_in_doc < max_sentences) & (token_in_sentence < max_tokens))
    row = doc[keep] * max_sentences + sentence_in_doc[keep]
    grid.reshape(-1)[row * max_tokens + token_in_sentence[keep]] = flat[keep]
    return grid
