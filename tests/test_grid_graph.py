"""The ONNX grid nodes compute exactly what grid_from_flat computes."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from tlc.session import open_session
from tlc.tokenizer import Tokenizer, TokenizerConfig
from tlc.tokenizer.graph import ONNX_OPSET
from tlc.tokenizer.grid import grid_from_flat, starts_word_table, terminal_table
from tlc.tokenizer.grid_graph import grid_nodes, text_to_grid_model

FIXTURES = Path(__file__).parent / "fixtures"
PIECES = ["<pad>", "<unk>", "\u2581a", "b", ".", "\u2581c", "!", "\u2581!", "\u2581.", "5",
          "\u25813", "<0x2E>", "\u3002", "\u2581", '."']


def grid_session(terminal, starts_word, s, t):
    from onnx import TensorProto, helper

    nodes, inits = grid_nodes(terminal, starts_word, s, t)
    graph = helper.make_graph(
        nodes, "grid",
        [helper.make_tensor_value_info("ids", TensorProto.INT32, ["total"]),
         helper.make_tensor_value_info("offsets", TensorProto.INT64, ["N_plus_1"])],
        [helper.make_tensor_value_info("grid", TensorProto.INT32, ["N", s, t])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    return open_session(model.SerializeToString())


def run_both(docs: list[list[int]], s: int, t: int, terminal, starts_word):
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    flat = np.array([i for d in docs for i in d], dtype=np.int64)
    want = grid_from_flat(flat, lengths, terminal, starts_word, s, t)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    (got,) = grid_session(terminal, starts_word, s, t).run(
        None, {"ids": flat.astype(np.int32), "offsets": offsets})
    return got, want


@pytest.mark.parametrize("docs", [
    [["▁a", "b", ".", "▁c", "!", "▁a"]],
    [["▁3", ".", "5", "▁a", "▁c"], [], ["▁a", "!", "▁!", "▁.", "▁c", '."', "▁a"]],
    [[], [], ["▁a", "<0x2E>", "▁c", "。", "▁", "b"], []],
    [["▁a", "b", "b", "b", "b", "b", "."] + ["▁c", "."] * 5],
    [[]],
    [[".", ".", "▁a"], ["▁a"]],
])
@pytest.mark.parametrize("s,t", [(2, 3), (4, 5), (1, 1)])
def test_grid_nodes_match_numpy(docs, s, t):
    index = {p: i for i, p in enumerate(PIECES)}
    ids = [[index[p] for p in doc] for doc in docs]
    got, want = run_both(ids, s, t, terminal_table(PIECES), starts_word_table(PIECES))
    assert got.dtype == np.int32 and got.shape == (len(docs), s, t)
    np.testing.assert_array_equal(got, want)


def test_empty_batch():
    got, want = run_both([], 3, 4, terminal_table(PIECES), starts_word_table(PIECES))
    assert got.shape == want.shape == (0, 3, 4)


def test_text_to_grid_graph_matches_encode_grid_on_fixtures():
    """Encoder + grid nodes in one graph (what the export embeds) == Tokenizer.encode_grid."""
    texts = []
    for name in ("imdb/test", "amazon/test", "imdb/unsup"):
        with gzip.open(FIXTURES / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    tok = Tokenizer.train(texts, TokenizerConfig(vocab_size=400, max_sentences=6,
                                                 max_tokens=12), progress=False)
    session = open_session(text_to_grid_model(tok).SerializeToString())
    texts += ["", "   ", "ok.", "\u00e9t\u00e9 \u2014 tr\u00e8s bien !!! \U0001f600",
              "日本語のテキスト。"]
    (got,) = session.run(None, {"text": np.array(texts, dtype=object)})
    np.testing.assert_array_equal(got, tok.encode_grid(texts))
