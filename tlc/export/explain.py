"""The optional explain outputs of a text export (``tlc export --explain``): which sentences
decided the label, and where they are in the input string.

Three outputs join ``probabilities`` and ``label``:

* ``sentence_scores`` float[N, S_b, C]: for each of a text's first ``max_sentences``
  sentences (the ones the model reads), ``p(c | text) - p(c | text without that sentence)``
  (occlusion, :func:`tlc.export.packed.occlusion_nodes`); 0 in slots past the text's last
  sentence. ``S_b`` is the most sentences any text of the batch has (at most the grid's).
* ``sentence_spans`` int64[N, S_b, 2]: each scored sentence as ``[start, end)`` offsets, in
  Unicode code points, into the string given as input (trailing whitespace left out);
  ``-1, -1`` in empty slots and where the spans could not be placed (below).
* ``sentence_total`` int64[N]: every sentence of the text, read or not, so a caller can say
  how many were cut off by the grid and got no score.

How spans are found. The sentence split happens on sentencepiece ids (a terminal piece
followed by a word-start piece), after the clean-up rewrites, NFKC and case folding have
changed the text, so ids carry no offsets. But the tokenizer splits at whitespace
(``split_by_whitespace``): every whitespace-separated chunk of the normalised text starts with
exactly one word-start piece, and a sentence always starts at one. So a sentence is a range
of chunks. The input is cut, in the graph, into *pieces* whose concatenation is the input
itself: after each place a sentence can end (sentence-final punctuation and the whitespace
after it) and around markup (``<br />``, any tag, ``&nbsp;``, which the clean-up turns into a
word break or a free "."), never inside a chunk; about one piece a sentence. Each piece goes
through the same clean-up and sentencepiece (in the texts' own op call, so the file holds one
copy of the tokenizer) and its word-start pieces say how many chunks it holds; running sums
then map a chunk to a piece, and a piece to code point offsets (``StringLength``). A sentence
that does not start at a piece's start (a sentence end the cut pattern does not foresee) gets
-1, -1 rather than a wrong span, and so does every sentence of a text whose chunk count from
its pieces differs from its own (markup the clean-up rewrites into new markup, such as
``<i <br> >``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tokenizer.grid_graph import Nodes

SCORES = "sentence_scores"
SPANS = "sentence_spans"
TOTAL = "sentence_total"
OUTPUTS = (SCORES, SPANS, TOTAL)

_WS = "[ \\t\\n\\r]"
# Markup as the clean-up rules see it (tlc/tokenizer/clean.py: <br />, any other tag) and the
# one entity that decodes to whitespace: the clean-up turns each into a word break.
_MARKUP = f"(?i:<br{_WS}*/?{_WS}*>)|</?[A-Za-z][^<>]{{0,100}}>|&(?:nbsp|#160);"
# Whitespace as sentencepiece's NFKC normaliser sees it: ASCII whitespace, no-break and
# ideographic spaces, the Unicode space block.
_SPACE_CHARS = "\\t\\n\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{202f}\\x{205f}\\x{3000}"
_SPACE = f"[{_SPACE_CHARS}]+"
# A sentence can only end where a chunk ends in a terminal piece: punctuation holding one of
# tlc.tokenizer.grid.SENTENCE_FINAL, which these characters are or become under NFKC
# (fullwidth and small forms, the dot leaders, "!!"-like ligatures), then more punctuation.
_FINAL = ("[.!?\\x{2024}\\x{2025}\\x{2026}\\x{203c}\\x{2047}-\\x{2049}\\x{3002}\\x{fe52}"
          "\\x{fe56}\\x{fe57}\\x{ff01}\\x{ff0e}\\x{ff1f}\\x{ff61}]")
# ...followed by more punctuation: a terminal piece is punctuation only, and ends like '."',
# '!)', '?!' or '...' are common. A spelled-out set (not "anything but letters and digits")
# because onnxruntime-extensions compiles the pattern on every run, and Unicode classes made
# that compile most of the cut's cost (measured: 4x slower in batches of 32). A sentence end
# with other punctuation after its stop is not cut, so its next sentence gets -1, -1.
_CLOSERS = ("[.!?\"'()\\[\\]{}*~\\-:;,\\x{bb}\\x{2019}\\x{201d}\\x{2024}\\x{2025}\\x{2026}"
            "\\x{203c}\\x{2047}-\\x{2049}\\x{3002}\\x{300d}\\x{300f}\\x{fe52}\\x{fe56}\\x{fe57}"
            "\\x{ff01}\\x{ff09}\\x{ff0e}\\x{ff1f}\\x{ff61}]")
_END = f"{_FINAL}{_CLOSERS}*{_SPACE}"
CUT = "\x01"
# A piece ends after markup (and the whitespace after it) and after sentence-final
# punctuation and its whitespace: every place a sentence can start is a piece's start, and
# no cut falls inside a chunk (markup is a word break, and is matched first, so a tag's own
# text is never cut); and after the whitespace a text starts with.
MARK_PATTERN = f"((?:{_MARKUP})(?:{_SPACE})?|{_END}|^{_SPACE})"
MARK_REWRITE = f"\\1{CUT}"
# ...and before markup, where a sentence can start too ("<br />" becomes " . ", which some
# tokenizers read as a bare word start followed by "."). A second pass: one rewrite cannot
# cut before markup and only after a sentence end. Tags hold no cut from the first pass
# (markup is matched before anything inside it), and this pass matches the same tags.
MARKUP_FIRST = f"((?i:<br{_WS}*/?{_WS}*>)|</?[A-Za-z][^<>{CUT}]{{0,100}}>|&(?:nbsp|#160);)"
MARKUP_REWRITE = f"{CUT}\\1"
TRAILING_SPACE = f"{_SPACE}$"


@dataclass(frozen=True)
class ExplainOutputs:
    """What :func:`tlc.export.packed.packed_network_nodes` needs to add the explain outputs:
    the names of the pieces' lengths (:func:`piece_nodes`), the word-start table, and the
    names to give the outputs."""

    starts_word: np.ndarray
    ids_all: str
    offsets_all: str
    piece_doc: str
    piece_length: str
    piece_trimmed: str
    scores: str = SCORES
    spans: str = SPANS
    total: str = TOTAL


def piece_nodes(g: Nodes, text: str) -> dict[str, str]:
    """The input cut into pieces (see the module docstring): names of ``pieces``
    (string[P]), ``doc`` (int64[P], the text each belongs to), ``length`` and ``trimmed``
    (int64[P]: code points, with and without trailing whitespace)."""
    from onnx import helper

    from ..tokenizer.graph import CONTRIB_DOMAIN

    const, node = g.const, g.node

    def contrib(op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        g.nodes.append(helper.make_node(op, inputs, outputs, domain=CONTRIB_DOMAIN,
                                        name=outputs[0], **attrs))

    after, marked = g.name("cut_after"), g.name("marked")
    contrib("StringRegexReplace", [text, const("mark_pattern", np.array([MARK_PATTERN], object)),
                                   const("mark_rewrite", np.array([MARK_REWRITE], object))],
            [after], global_replace=1)
    contrib("StringRegexReplace", [after, const("markup_pattern", np.array([MARKUP_FIRST],
                                                                           object)),
                                   const("markup_rewrite", np.array([MARKUP_REWRITE], object))],
            [marked], global_replace=1)
    where, pieces, shape = g.name("where"), g.name("pieces"), g.name("pieces_shape")
    contrib("StringSplit", [marked, const("cut", np.array(CUT, object)),
                            const("skip_empty", np.array(False))], [where, pieces, shape])
    doc = node("Squeeze", [node("Gather", [where, const("col0", np.array([0], np.int64))],
                                "where_doc", axis=1), const("one", np.array([1], np.int64))],
               "doc")                                             # [P, 1] -> [P]
    length = g.name("length")
    contrib("StringLength", [pieces], [length])
    stripped = g.name("stripped")
    contrib("StringRegexReplace", [pieces, const("trail_pattern", np.array([TRAILING_SPACE],
                                                                           object)),
                                   const("trail_rewrite", np.array([""], object))],
            [stripped], global_replace=1)
    trimmed = g.name("trimmed")
    contrib("StringLength", [stripped], [trimmed])
    return {"pieces": pieces, "doc": doc, "length": length, "trimmed": trimmed}


def sentence_span_nodes(g: Nodes, ex: ExplainOutputs, *, at: dict[str, str], s_first: str,
                        kept: str, s_doc: str, rows2: str, scores: str, slot: str,
                        n_docs: str, offsets: str) -> None:
    """The three outputs (module docstring), from the network's kept sentences (``s_first``:
    each one's first token among ``kept``; ``s_doc``: its text), their occlusion ``scores``
    (float[M, C]) and ``slot`` (int64[M]) in the (N, S_b) grid ``rows2``."""
    from onnx import helper

    const, node = g.const, g.node
    zero, one = at["zero"], at["one"]
    axis0 = const("e/axis0", np.array(0, np.int64))
    minus1 = const("e/minus1", np.array([-1], np.int64))
    big = const("e/big", np.array([np.iinfo(np.int64).max], np.int64))

    def zeros(n: str, out: str) -> str:
        return node("ConstantOfShape", [n], out, value=helper.make_tensor("v", 7, [1], [0]))

    def exclusive_sum(x: str, out: str) -> str:      # [n] -> [n + 1]: 0, x0, x0 + x1, ...
        return node("Concat", [const(out + "/0", np.array([0], np.int64)),
                               node("CumSum", [x, axis0], out + "/cum")], out, axis=0)

    # ---------------------------------------------------------- chunks of the texts' tokens
    # (the first word-start piece of a text opens its chunk 0)
    word = node("Cast", [at["word"]], "e/word", to=7)
    chunk_x = exclusive_sum(word, "e/chunk_x")                    # [total + 1]
    doc_base = node("Gather", [chunk_x, node("Slice", [offsets, zero, minus1], "e/off_head")],
                    "e/doc_base")                                 # [N]
    doc_next = node("Gather", [chunk_x, node("Slice", [offsets, one, big], "e/off_tail")],
                    "e/doc_next")
    tok_first = node("Gather", [kept, s_first], "e/tok_first")    # [M]: into the stream
    sentence = node("Gather", [at["sentence"], tok_first], "e/sentence")
    total_tokens = node("Shape", [at["sentence"]], "e/n_tokens")
    next_first = node("Concat", [at["sentence_first"], total_tokens], "e/next_first", axis=0)
    tok_last = node("Sub", [node("Gather", [next_first, node("Add", [sentence, const(
        "e/one_s", np.array(1, np.int64))], "e/sentence1")], "e/tok_next"), const(
        "e/one_s2", np.array(1, np.int64))], "e/tok_last")
    base = node("Gather", [doc_base, s_doc], "e/base")
    c_start = node("Sub", [node("Gather", [chunk_x, node("Add", [tok_first, const(
        "e/one_s3", np.array(1, np.int64))], "e/tf1")], "e/c_start_g"), const(
        "e/one_s4", np.array(1, np.int64))], "e/c_start0")
    c_start = node("Sub", [c_start, base], "e/c_start")           # chunk in its text
    c_end = node("Sub", [node("Sub", [node("Gather", [chunk_x, node("Add", [tok_last, const(
        "e/one_s5", np.array(1, np.int64))], "e/tl1")], "e/c_end_g"), const(
        "e/one_s6", np.array(1, np.int64))], "e/c_end0"), base], "e/c_end")

    # ---------------------------------------------------------- chunks of the input's pieces
    n_pieces = node("Shape", [ex.piece_doc], "e/n_pieces")
    # pieces were tokenized after the N texts in the same call: strings N .. N + P - 1
    piece_offsets = node("Slice", [ex.offsets_all, n_docs, big], "e/piece_offsets")  # [P + 1]
    all_word = node("Cast", [node("Gather", [const("e/starts_word", ex.starts_word.astype(
        bool)), ex.ids_all], "e/all_word_b")], "e/all_word", to=7)
    all_x = exclusive_sum(all_word, "e/all_x")
    piece_x = node("Gather", [all_x, piece_offsets], "e/piece_x")  # [P + 1]
    chunk_first = node("Sub", [node("Slice", [piece_x, zero, minus1], "e/px_head2"),
                               node("Slice", [piece_x, zero, one], "e/px0")],
                       "e/chunk_first")                          # [P]: 0-based, all texts
    chunks = node("Sub", [node("Slice", [piece_x, minus1, big], "e/px_last"),
                          node("Slice", [piece_x, zero, one], "e/px0b")], "e/chunks")  # [1]
    chunk_first_x = node("Concat", [chunk_first, chunks], "e/chunk_first_x", axis=0)
    per_doc = node("ScatterElements", [zeros(n_docs, "e/per_doc0"), ex.piece_doc, node(
        "Add", [zeros(n_pieces, "e/ones0"), const("e/one_v", np.array(1, np.int64))],
        "e/ones")], "e/per_doc", axis=0, reduction="add")          # [N] pieces per text
    first_piece = node("Slice", [exclusive_sum(per_doc, "e/first_piece_x"), zero, minus1],
                       "e/first_piece")                           # [N]
    last_piece_x = node("Add", [first_piece, per_doc], "e/last_piece_x")
    p_base = node("Gather", [chunk_first_x, first_piece], "e/p_base")          # [N]
    p_next = node("Gather", [chunk_first_x, last_piece_x], "e/p_next")
    agree = node("Equal", [node("Sub", [p_next, p_base], "e/p_chunks"),
                           node("Sub", [doc_next, doc_base], "e/t_chunks")], "e/agree")
    # chunk -> piece: how many pieces start at or before it, less one (a piece with no chunk
    # starts where the next one does, so it never wins)
    marks = node("ScatterElements", [zeros(node("Add", [chunks, one], "e/chunks1"),
                                           "e/marks0"), chunk_first,
                                     node("Add", [zeros(n_pieces, "e/ones1"), const(
                                         "e/one_v2", np.array(1, np.int64))], "e/ones_p")],
                 "e/marks", axis=0, reduction="add")
    piece_of = node("Sub", [node("CumSum", [marks, axis0], "e/marks_cum"), one], "e/piece_of")
    char_x = exclusive_sum(ex.piece_length, "e/char_x")          # [P + 1]
    char_base = node("Gather", [char_x, first_piece], "e/char_base")          # [N]

    def piece(chunk_in_doc: str, tag: str) -> str:
        at_chunk = node("Add", [node("Gather", [p_base, s_doc], tag + "/p_base"),
                                chunk_in_doc], tag + "/global")
        at_chunk = node("Max", [node("Min", [at_chunk, node("Sub", [chunks, one],
                                                            tag + "/last")], tag + "/lo"),
                                const(tag + "/zero", np.array([0], np.int64))], tag + "/ok")
        return node("Gather", [piece_of, at_chunk], tag + "/piece")

    start_piece, end_piece = piece(c_start, "e/start"), piece(c_end, "e/end")
    # a sentence starts at its piece's first chunk, or its span would begin too early
    aligned = node("Equal", [node("Gather", [chunk_first_x, start_piece], "e/piece_chunk"),
                             node("Add", [node("Gather", [p_base, s_doc], "e/my_p_base"),
                                          c_start], "e/start_chunk")], "e/aligned")
    my_base = node("Gather", [char_base, s_doc], "e/my_base")
    start = node("Sub", [node("Gather", [char_x, start_piece], "e/start_g"), my_base],
                 "e/start_c")
    end = node("Sub", [node("Add", [node("Gather", [char_x, end_piece], "e/end_g"),
                                    node("Gather", [ex.piece_trimmed, end_piece],
                                         "e/end_len")], "e/end_g2"), my_base], "e/end_c")
    span = node("Concat", [node("Unsqueeze", [start, one], "e/start_col"),
                           node("Unsqueeze", [end, one], "e/end_col")], "e/span", axis=1)
    ok = node("Unsqueeze", [node("And", [node("Gather", [agree, s_doc], "e/my_agree"),
                                         aligned], "e/placed"), one], "e/ok")
    span = node("Where", [ok, span, minus1], "e/span_ok")                  # [M, 2]

    # ---------------------------------------------------------- into the (N, S_b) grid
    grid_shape = node("Shape", [rows2], "e/grid_shape")                   # [N, S_b]
    cells = node("ReduceProd", [grid_shape], "e/cells", keepdims=1)
    where = node("Unsqueeze", [slot, one], "e/where")                     # [M, 1]
    n_classes = node("Slice", [node("Shape", [scores], "e/scores_shape"), one, big], "e/c")
    score_grid = node("ScatterND", [node("ConstantOfShape", [node("Concat", [
        cells, n_classes], "e/sg_shape", axis=0)], "e/sg0", value=helper.make_tensor(
            "v", 1, [1], [0.0])), where, scores], "e/score_flat")
    g.nodes.append(helper.make_node("Reshape", [score_grid, node("Concat", [
        grid_shape, n_classes], "e/score_shape", axis=0)], [ex.scores],
        name=g.name("e/scores")))
    span_grid = node("ScatterND", [node("ConstantOfShape", [node("Concat", [
        cells, const("e/two", np.array([2], np.int64))], "e/span_shape", axis=0)],
        "e/span0", value=helper.make_tensor("v", 7, [1], [-1])), where, span], "e/span_flat")
    g.nodes.append(helper.make_node("Reshape", [span_grid, node("Concat", [
        grid_shape, g.name("e/two")], "e/span_grid_shape", axis=0)], [ex.spans],
        name=g.name("e/spans")))
    # every sentence of the text, the unread ones too: its first tokens, counted per text
    opens = node("Cast", [node("Equal", [at["token_in_sentence"], const(
        "e/zero_s", np.array(0, np.int64))], "e/opens_b")], "e/opens", to=7)
    g.nodes.append(helper.make_node("ScatterElements", [zeros(n_docs, "e/total0"), at["doc"],
                                                        opens], [ex.total],
                                    name=g.name("e/total"), axis=0, reduction="add"))


def explain_value_infos(n_classes: int):
    """The graph outputs' declarations."""
    from onnx import TensorProto, helper

    return [helper.make_tensor_value_info(SCORES, TensorProto.FLOAT, ["N", "S", n_classes]),
            helper.make_tensor_value_info(SPANS, TensorProto.INT64, ["N", "S", 2]),
            helper.make_tensor_value_info(TOTAL, TensorProto.INT64, ["N"])]


def keras_occlusion(model, grids: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
    """The reference the file's ``sentence_scores`` must equal: for each document of the
    (N, S, T) ``grids`` and each of its real sentences j, the Keras probabilities minus those
    of the grid with row j deleted (the later rows move up, a padding row at the end). A list
    of (sentences, C) arrays."""
    grids = np.asarray(grids)
    n_sent = (grids != 0).any(axis=2).sum(axis=1)
    base = model.predict(grids, batch_size=batch_size, verbose=0)
    variants, owner = [], []
    for d, n in enumerate(n_sent):
        for j in range(n):
            v = np.concatenate([np.delete(grids[d], j, axis=0), np.zeros_like(grids[d, :1])])
            variants.append(v)
            owner.append(d)
    if not variants:
        return [np.zeros((0, base.shape[1]), np.float32) for _ in grids]
    without = model.predict(np.stack(variants), batch_size=batch_size, verbose=0)
    scores = base[np.array(owner)] - without
    out, at = [], 0
    for n in n_sent:
        out.append(scores[at:at + n])
        at += n
    return out


def check_against_keras(session, model, tokenizer, texts: list[str]) -> dict:
    """The file's sentence scores against :func:`keras_occlusion` on ``texts``: the largest
    difference and how many documents differ by more than ``tolerance``."""
    from ..text import model_text
    from .exporter import FLOAT_TOLERANCE

    want = keras_occlusion(model, tokenizer.encode_grid(texts))
    worst, beyond, sentences = 0.0, 0, 0
    for start in range(0, len(texts), 64):
        chunk = texts[start:start + 64]
        got = session.run([SCORES], {"text": np.array([model_text(t) for t in chunk],
                                                      dtype=object)})[0]
        for i, w in enumerate(want[start:start + 64]):
            n = len(w)
            diff = float(np.abs(got[i, :n] - w).max()) if n else 0.0
            if n < got.shape[1]:       # slots past the last sentence hold zeros
                diff = max(diff, float(np.abs(got[i, n:]).max()))
            worst = max(worst, diff)
            beyond += diff > FLOAT_TOLERANCE
            sentences += n
    return {"documents": len(texts), "sentences": sentences, "max_abs_diff": worst,
            "beyond_tolerance": int(beyond)}
