"""Tokenizer package: clean-up rules, sentencepiece training/IO, id-level sentence grid."""

from __future__ import annotations

import csv
import gzip
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlc.errors import DataError, TlcError
from tlc.tokenizer import (
    CLEANUP_RULES,
    Tokenizer,
    TokenizerConfig,
    clean,
    starts_word_table,
    terminal_table,
    to_grid,
)
from tlc.tokenizer.grid import grid_from_flat

FIXTURES = Path(__file__).parent / "fixtures"


def _texts(name: str) -> list[str]:
    with gzip.open(FIXTURES / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def train_texts() -> list[str]:
    return _texts("imdb/train") + _texts("amazon/train")


@pytest.fixture(scope="module")
def eval_texts() -> list[str]:
    return _texts("imdb/test") + _texts("amazon/test") + _texts("imdb/unsup")


@pytest.fixture(scope="module")
def tok(train_texts) -> Tokenizer:
    return Tokenizer.train(train_texts, TokenizerConfig(vocab_size=400), progress=False)


# ---------------------------------------------------------------- reference implementation


def _reference_grid(ids_per_doc, pieces, max_sentences, max_tokens):
    """The grid rules written as an obvious per-token loop."""

    def is_terminal(piece):
        body = piece[1:] if piece.startswith("\u2581") else piece
        return (
            body != ""
            and all(not c.isalnum() for c in body)
            and any(c in ".!?\u2026\u3002" for c in body)
        )

    grid = np.zeros((len(ids_per_doc), max_sentences, max_tokens), dtype=np.int32)
    for d, ids in enumerate(ids_per_doc):
        sentence, pos = 0, 0
        for i, tid in enumerate(ids):
            if i > 0:
                prev, cur = pieces[ids[i - 1]], pieces[tid]
                prev_ends = is_terminal(prev) and cur.startswith("\u2581")
                if prev_ends and not is_terminal(cur):
                    sentence, pos = sentence + 1, 0
            if sentence < max_sentences and pos < max_tokens:
                grid[d, sentence, pos] = tid
            pos += 1
    return grid


# A hand-made vocabulary, so splitting tests do not depend on what training learned.
PIECES = [
    "<pad>",
    "<unk>",
    "▁a",
    "b",
    "▁.",
    ".",
    "!",
    "▁!",
    "▁3",
    "5",
    "▁c",
    "▁?!",
    '."',
    "<0x2E>",
    "▁",
    "▁…",
    "。",
    "▁x.",
]
P = {p: i for i, p in enumerate(PIECES)}


def _grid(docs, s=4, t=5):
    ids = [[P[p] for p in doc] for doc in docs]
    got = to_grid(ids, terminal_table(PIECES), starts_word_table(PIECES), s, t)
    np.testing.assert_array_equal(got, _reference_grid(ids, PIECES, s, t))
    return got


def _rows(grid_doc):
    """Sentences of one grid document as lists of pieces, padding dropped."""
    return [[PIECES[i] for i in row if i] for row in grid_doc if row.any()]


# ---------------------------------------------------------------- clean-up


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("a<br />b", "a . b"),
        ("a<br>b<BR/>c<Br / >d", "a . b . c . d"),
        ("end.<br /><br />Next", "end. .  . Next"),
        ("<i>x</i> <SPOILER>y</SPOILER>", " x   y "),
        ('<span class="tiny">t</span>', " t "),
        ("a <3 b", "a <3 b"),
        ("x < y > z", "x < y > z"),
        ("1<2 and 3>1", "1<2 and 3>1"),
        ("<" + "a" * 150 + ">", "<" + "a" * 150 + ">"),
        ("&quot;hi&#34;", '"hi"'),
        ("it&#39;s &#039;x&apos;", "it's 'x'"),
        ("&lt;3 &gt;", "<3 >"),
        ("a&nbsp;b", "a b"),
        ("R&amp;B", "R&B"),
        ("&amp;quot;", "&quot;"),
        ("&amp;lt;i&amp;gt;", "&lt;i&gt;"),
        ("&lt;i&gt;", "<i>"),
        ("AT&T &B; &", "AT&T &B; &"),
        ("No Change HERE", "No Change HERE"),
    ],
)
def test_clean(raw, expected):
    assert clean(raw) == expected


def test_cleanup_rules_are_re2_compatible():
    for pattern, replacement in CLEANUP_RULES:
        re.compile(pattern)
        for banned in ("(?<", "(?=", "(?!", "(?P", "\\s", "\\w", "\\d", "\\b", "\\S", "\\W", "\\D"):
            assert banned not in pattern, (pattern, banned)
        assert not re.search(r"\\[1-9]", pattern), pattern
        assert "\\" not in replacement and "$" not in replacement
        assert re.fullmatch(pattern, "") is None, "a rule must not match the empty string"


def _ort_session(nodes, inputs, outputs):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    ortx = pytest.importorskip("onnxruntime_extensions")
    h = onnx.helper
    graph = h.make_graph(nodes, "g", inputs, outputs)
    model = h.make_model(
        graph, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("ai.onnx.contrib", 1)]
    )
    options = ort.SessionOptions()
    options.register_custom_ops_library(ortx.get_library_path())
    return ort.InferenceSession(model.SerializeToString(), options)


def _graph_clean_session():
    onnx = pytest.importorskip("onnx")
    h, T = onnx.helper, onnx.TensorProto
    nodes, prev = [], "text"
    for k, (pattern, replacement) in enumerate(CLEANUP_RULES):
        consts = [
            h.make_node(
                "Constant",
                [],
                [f"p{k}"],
                value=h.make_tensor(f"pv{k}", T.STRING, [1], [pattern.encode()]),
            ),
            h.make_node(
                "Constant",
                [],
                [f"r{k}"],
                value=h.make_tensor(f"rv{k}", T.STRING, [1], [replacement.encode()]),
            ),
        ]
        nodes += consts + [
            h.make_node(
                "StringRegexReplace", [prev, f"p{k}", f"r{k}"], [f"c{k}"], domain="ai.onnx.contrib"
            )
        ]
        prev = f"c{k}"
    nodes.append(h.make_node("Identity", [prev], ["cleaned"]))
    return _ort_session(
        nodes,
        [h.make_tensor_value_info("text", T.STRING, [None])],
        [h.make_tensor_value_info("cleaned", T.STRING, [None])],
    )


TRICKY = [
    "",
    "<br/><BR >< br>",
    "&apo\u017f; &APOS; &Amp; &QUOT;",
    "<\u212aelvin>",
    "<a\nb>",
    "<é>",
    "ta<b>le</b>\u00e9\u00e9 <3",
    "&amp;amp;quot;",
    "x" * 5000 + "<" + "y" * 99 + ">",
    "<" + "y" * 100 + ">",
    "<" + "y" * 101 + ">",
    "\u4f60\u597d<br>\u0645\u0631\u062d\u0628\u0627",
]


def test_clean_matches_re2_string_regex_replace(eval_texts):
    """The ONNX StringRegexReplace chain (RE2) gives exactly clean()'s output."""
    session = _graph_clean_session()
    docs = eval_texts + TRICKY
    (got,) = session.run(None, {"text": np.array(docs, dtype=object)})
    assert [str(g) for g in got] == [clean(d) for d in docs]


# ---------------------------------------------------------------- config, training, IO


def test_config_round_trip_and_unknown_keys():
    cfg = TokenizerConfig(vocab_size=500, max_tokens=7)
    assert TokenizerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(TlcError, match="bogus, zeta"):
        TokenizerConfig.from_dict({**cfg.to_dict(), "zeta": 1, "bogus": 2})
    with pytest.raises(TlcError, match="max_sentences"):
        TokenizerConfig(max_sentences=0)
    with pytest.raises(TlcError, match="character_coverage") as info:
        TokenizerConfig.from_dict({"character_coverage": "all"}, path="cfg.json")
    assert info.value.path == "cfg.json"


def test_training_is_deterministic(train_texts):
    cfg = TokenizerConfig(vocab_size=350, input_sentence_size=500)  # sampling path too
    first = Tokenizer.train(iter(train_texts[:150]), cfg, progress=False)
    second = Tokenizer.train(iter(train_texts[:150]), cfg, progress=False)
    assert first.model_proto == second.model_proto
    assert first.sha256 == second.sha256
    assert first.vocab_size == 350


def test_training_is_deterministic_across_processes(tok):
    """A fresh interpreter (fresh global RNG and thread pool) learns the same bytes."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_tokenizer as t; "
        "from tlc.tokenizer import Tokenizer, TokenizerConfig; "
        "texts = t._texts('imdb/train') + t._texts('amazon/train'); "
        "print(Tokenizer.train(texts, TokenizerConfig(vocab_size=400), progress=False).sha256)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == tok.sha256


def test_training_errors(train_texts):
    with pytest.raises(TlcError, match="at most") as info:
        Tokenizer.train(["hello world"] * 10, TokenizerConfig(vocab_size=5000), progress=False)
    assert "lower vocab_size" in info.value.hint
    with pytest.raises(TlcError, match="required pieces"):
        Tokenizer.train(train_texts[:50], TokenizerConfig(vocab_size=100), progress=False)

    def failing_reader():
        yield from train_texts[:50]
        raise DataError("bad row", path="reviews.csv", line=7)

    with pytest.raises(DataError, match="bad row") as info:
        Tokenizer.train(failing_reader(), TokenizerConfig(vocab_size=300), progress=False)
    assert info.value.line == 7
    with pytest.raises(TlcError, match="no text"):
        Tokenizer.train(["", "  ", "<i></i>"], TokenizerConfig(vocab_size=300), progress=False)


def test_save_load_round_trip(tok, tmp_path):
    tok.save(tmp_path / "t")
    meta = json.loads((tmp_path / "t" / "tokenizer.json").read_text())
    assert meta["sha256"] == tok.sha256 and meta["config"] == tok.config.to_dict()
    assert "tlc_version" in meta
    loaded = Tokenizer.load(tmp_path / "t")
    assert loaded.model_proto == tok.model_proto and loaded.config == tok.config
    assert loaded.pieces == tok.pieces
    docs = ["A test. Another one!", "x"]
    np.testing.assert_array_equal(loaded.encode_grid(docs), tok.encode_grid(docs))
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(tok)).encode_grid(docs), tok.encode_grid(docs)
    )


def test_load_errors(tok, tmp_path):
    with pytest.raises(TlcError, match="missing") as info:
        Tokenizer.load(tmp_path / "nowhere")
    assert info.value.path.endswith("tokenizer.json")
    d = tok.save(tmp_path / "t")
    (d / "tokenizer.model").unlink()
    with pytest.raises(TlcError, match="missing") as info:
        Tokenizer.load(d)
    assert info.value.path.endswith("tokenizer.model")

    d = tok.save(tmp_path / "sha")
    (d / "tokenizer.model").write_bytes(tok.model_proto + b"\0")
    with pytest.raises(TlcError, match="does not match") as info:
        Tokenizer.load(d)
    assert info.value.path.endswith("tokenizer.model")

    d = tok.save(tmp_path / "key")
    meta = json.loads((d / "tokenizer.json").read_text())
    meta["config"]["vocab_sise"] = 3
    (d / "tokenizer.json").write_text(json.dumps(meta))
    with pytest.raises(TlcError, match="vocab_sise") as info:
        Tokenizer.load(d)
    assert info.value.path.endswith("tokenizer.json")


# ---------------------------------------------------------------- ids


def test_ids(tok, eval_texts):
    assert tok.pieces[0] == "<pad>" and tok.pieces[1] == "<unk>"
    assert len(tok.pieces) == tok.vocab_size == 400
    ids = tok.encode(eval_texts + ["ASCII only", "\U0001f600\U0001f44d", "\u4f60\u597d"])
    flat = [i for doc in ids for i in doc]
    assert min(flat) >= 1 and max(flat) < tok.vocab_size
    assert 0 not in flat
    with pytest.raises(TypeError):
        tok.encode("a single string")


def test_case_folding(tok):
    a, b, c = tok.encode(["GREAT Movie", "great movie", "\uff27\uff32\uff25\uff21\uff34 movie"])
    assert a == b == c


# ---------------------------------------------------------------- grid


def test_terminal_and_word_tables():
    term = terminal_table(PIECES)
    assert {p for p, t in zip(PIECES, term, strict=True) if t} == {
        "▁.",
        ".",
        "!",
        "▁!",
        "▁?!",
        '."',
        "▁…",
        "。",
    }
    assert starts_word_table(PIECES).tolist() == [p.startswith("▁") for p in PIECES]


def test_grid_splitting():
    (g,) = _grid([["▁a", "b", ".", "▁c", "!", "▁a"]])
    assert _rows(g) == [["▁a", "b", "."], ["▁c", "!"], ["▁a"]]
    # "3.5": the dot is not followed by a word start, no split; "x." piece is not terminal.
    (g,) = _grid([["▁3", ".", "5", "▁a", "▁x.", "▁c"]], t=8)
    assert _rows(g) == [["▁3", ".", "5", "▁a", "▁x.", "▁c"]]
    # Punctuation runs stay with the sentence they close.
    (g,) = _grid([["▁a", "!", "▁!", "▁.", "▁?!", "▁c", '."', "▁a"]], t=8)
    assert _rows(g) == [["▁a", "!", "▁!", "▁.", "▁?!"], ["▁c", '."'], ["▁a"]]
    # Byte pieces are not terminal; "。" is; a bare "▁" is a word start.
    (g,) = _grid([["▁a", "<0x2E>", "▁c", "。", "▁", "b"]])
    assert _rows(g) == [["▁a", "<0x2E>", "▁c", "。"], ["▁", "b"]]


def test_grid_truncation_keeps_first():
    doc = ["▁a", "b", "b", "b", "b", "b", "b", "."] + ["▁c", "."] * 3 + ["▁a", "."]
    (g,) = _grid([doc], s=3, t=4)
    assert _rows(g) == [["▁a", "b", "b", "b"], ["▁c", "."], ["▁c", "."]]


def test_grid_shape_dtype_padding_and_empty():
    g = _grid([[], ["▁a"], [], ["▁c", ".", "▁a"]], s=2, t=3)
    assert g.shape == (4, 2, 3) and g.dtype == np.int32
    assert not g[0].any() and not g[2].any()
    assert g[1].tolist() == [[P["▁a"], 0, 0], [0, 0, 0]]
    assert g[3].tolist() == [[P["▁c"], P["."], 0], [P["▁a"], 0, 0]]
    assert to_grid([], terminal_table(PIECES), starts_word_table(PIECES), 2, 3).shape == (0, 2, 3)


def test_grid_matches_reference_on_fixtures(tok, eval_texts):
    ids = tok.encode(eval_texts)
    for s, t in [(16, 40), (3, 5), (1, 1), (64, 200)]:
        want = _reference_grid(ids, tok.pieces, s, t)
        got = to_grid(ids, tok.terminal, tok.starts_word, s, t)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        tok.encode_grid(eval_texts), _reference_grid(ids, tok.pieces, 16, 40)
    )


def test_encode_grid_edge_cases(tok):
    docs = [
        "",
        "   \n\t ",
        "\U0001f600\U0001f44d\U0001f389",
        "\u8fd9\u90e8\u7535\u5f71\u5f88\u597d\u3002\u6211\u559c\u6b22\u3002",
        "\u0647\u0630\u0627 \u0641\u064a\u0644\u0645 \u0631\u0627\u0626\u0639.",
        "word " * 200_000 + ".",
    ]
    assert len(docs[-1]) >= 1_000_000
    g = tok.encode_grid(docs)
    assert g.shape == (len(docs), 16, 40) and g.dtype == np.int32
    assert not g[0].any() and not g[1].any()
    assert g[2].any() and g[3].any() and g[4].any()
    assert (g[5, 0] != 0).all() and not g[5, 1:].any()
    assert tok.encode_grid([]).shape == (0, 16, 40)
    # "。" is terminal, but unspaced Chinese has no word start after it, so no split there.
    assert g[3, 0].any() and not g[3, 1].any()


def test_br_starts_new_sentence(tok):
    (g,) = tok.encode_grid(["the plot was thin<br /><br />the acting was good"])
    assert g[0].any() and g[1].any() and not g[2].any()
    second = [tok.pieces[i] for i in g[1] if i]
    assert "".join(second).replace("\u2581", " ").strip() == "the acting was good"


def test_sentences_split_on_real_text(tok):
    (g,) = tok.encode_grid(["It costs 3.5 dollars. Great!!! Really? Yes"])
    sentences = [
        "".join(tok.pieces[i] for i in row if i).replace("\u2581", " ").strip()
        for row in g
        if row.any()
    ]
    assert sentences == ["it costs 3.5 dollars.", "great!!!", "really?", "yes"]


def test_graph_encoder_vs_python_sentencepiece(tok, eval_texts):
    """encode() runs the ONNX encoder graph (the one the export embeds). Python sentencepiece
    on the same cleaned text agrees except for tie-breaking between equal-score segmentations
    (runs such as "!!!!!!!!!" or "smellllll": same pieces in another order). That is why
    training encodes through the graph and never through the Python library."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_proto=tok.model_proto)
    docs = eval_texts + TRICKY + ["\uff27\uff32\uff25\uff21\uff34\uff01 ok", "\U0001f600 x"]
    graph_ids = tok.encode(docs)
    python_ids = sp.encode([clean(d) for d in docs], out_type=int)
    differing = [i for i, (a, b) in enumerate(zip(graph_ids, python_ids, strict=True)) if a != b]
    assert len(differing) <= len(docs) // 50
    for i in differing:
        assert sorted(graph_ids[i]) == sorted(python_ids[i]), docs[i][:200]
    # The grid is laid out from exactly these ids, chunked or not.
    cfg = tok.config
    flat, lengths = tok.encode_flat(docs)
    assert lengths.tolist() == [len(x) for x in graph_ids]
    expected = to_grid(graph_ids, tok.terminal, tok.starts_word, cfg.max_sentences,
                       cfg.max_tokens)
    np.testing.assert_array_equal(
        grid_from_flat(flat, lengths, tok.terminal, tok.starts_word, cfg.max_sentences,
                       cfg.max_tokens), expected)
    np.testing.assert_array_equal(tok.encode_grid(docs), expected)


def test_threaded_chunks_keep_document_order(tok, eval_texts, monkeypatch):
    from tlc.tokenizer.graph import GraphEncoder

    docs = eval_texts + ["", "short.", "x " * 500]
    whole = tok.encode(docs)
    monkeypatch.setattr(GraphEncoder, "CHUNK", 7)
    chunked = GraphEncoder(tok.model_proto, threads=2)
    flat, lengths = chunked(docs)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    assert [flat[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:], strict=True)] == whole
