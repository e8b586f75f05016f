"""The text export's network over the real tokens (tlc.export.packed) gives the fixed grid
graph's probabilities: many shapes of model, grid and batch, padding that can win a k-max."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tlc.export  # noqa: F401  (import order: extensions before TensorFlow)
from tlc.export.compose import packed_text_classifier, text_classifier
from tlc.export.network import network_to_onnx
from tlc.export.packed import same_padding
from tlc.session import open_session
from tlc.tokenizer import Tokenizer, TokenizerConfig
from tlc.train.model import ModelConfig, build_model

FIXTURES = Path(__file__).parent / "fixtures"


def edge_texts(texts: list[str]) -> list[str]:
    """Empty and blank texts, one token, one long word, sentences of 1 to 25 words, documents
    of 1 to 12 sentences (beyond a 4 x 10 grid both ways), and the fixtures."""
    rng = np.random.default_rng(0)
    words = " ".join(texts[:50]).split()
    out = ["", "   ", "a", "x" * 300, ".", "!!! ?", "\U0001f600", "good. " * 40]
    for n_words in range(1, 26):
        out.append(" ".join(rng.choice(words, n_words)) + ".")
    for n_sent in range(1, 13):
        out.append(" ".join(" ".join(rng.choice(words, rng.integers(1, 14))) + "."
                            for _ in range(n_sent)))
    return out + texts


def with_biases(model, seed: int, shift: float):
    """Biases drawn around ``shift``: > 0 makes ReLU(bias), the value of every padding
    position, beat real zeros in the k-max; < 0 makes padding tie with them at 0."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if len(weights) == 2:
            weights[1] = (shift + 0.1 * rng.standard_normal(weights[1].shape)).astype(
                np.float32)
            layer.set_weights(weights)
    return model


def run(session, batch: list[str]) -> np.ndarray:
    return session.run(["probabilities"], {"text": np.array(batch, dtype=object)})[0]


def both(tokenizer, config: ModelConfig, grid: tuple[int, int], seed: int, shift: float):
    s, t = grid
    tok = Tokenizer(tokenizer.model_proto, TokenizerConfig(
        **{**tokenizer.config.to_dict(), "max_sentences": s, "max_tokens": t}))
    labels = ["a", "b", "c"]
    model = with_biases(build_model(config, vocab_size=tok.vocab_size, sentences=s, tokens=t,
                                    n_classes=len(labels), seed=seed), seed, shift)
    fixed = open_session(text_classifier(network_to_onnx(model, s, t), tok, labels)
                         .SerializeToString())
    packed = open_session(packed_text_classifier(model, config, tok, labels)
                          .SerializeToString())
    return tok, model, fixed, packed


CASES = [  # (model settings, grid, bias shift)
    ({}, (4, 10), 0.3),
    ({}, (4, 10), -0.3),
    ({"word_kernel": 1, "sentence_kernel": 1}, (4, 10), 0.2),
    ({"word_kernel": 2, "sentence_kernel": 4, "word_k": 3, "sentence_k": 1}, (5, 7), 0.2),
    ({"word_kernel": 5, "word_k": 1, "sentence_k": 3, "document_mean": False}, (3, 6), 0.1),
    ({"hidden_units": 0, "word_k": 4, "word_kernel": 4}, (2, 4), 0.5),
    ({"sentence_kernel": 5}, (6, 12), 0.0),
]


@pytest.mark.parametrize("settings,grid,shift", CASES)
def test_packed_graph_equals_the_fixed_grid_graph(tokenizer, texts, settings, grid, shift):
    config = ModelConfig(**{"embedding_dim": 6, "word_filters": 5, "sentence_filters": 4,
                            "hidden_units": 3, **settings})
    tok, model, fixed, packed = both(tokenizer, config, grid, seed=len(settings), shift=shift)
    batch = edge_texts(texts)
    # the batch really has full and overfull sentences and documents, and empty ones
    cells = tok.encode_grid(batch)
    lengths = (cells != 0).sum(-1)
    assert (lengths == grid[1]).any() and (lengths == grid[1] - 1).any()
    assert ((lengths > 0).sum(-1) == grid[0]).any() and ((lengths > 0).sum(-1) == 1).any()
    assert ((lengths > 0).sum(-1) == 0).any()
    want = run(fixed, batch)
    np.testing.assert_allclose(want, model.predict(cells, verbose=0), atol=1e-5)
    # the whole batch, mixed lengths; one text a run; runs sorted by length, as the runtime
    np.testing.assert_allclose(run(packed, batch), want, rtol=0, atol=1e-6)
    one_by_one = np.concatenate([run(packed, [t]) for t in batch[:60]])
    np.testing.assert_allclose(one_by_one, want[:60], rtol=0, atol=1e-6)
    order = np.argsort([len(t) for t in batch], kind="stable")
    for start in range(0, len(batch), 16):
        pick = order[start:start + 16]
        np.testing.assert_allclose(run(packed, [batch[i] for i in pick]), want[pick],
                                   rtol=0, atol=1e-6)


def test_a_batch_of_empty_texts_only(tokenizer):
    config = ModelConfig(embedding_dim=6, word_filters=5, sentence_filters=4, hidden_units=3)
    _, _, fixed, packed = both(tokenizer, config, (4, 10), seed=1, shift=0.3)
    for batch in (["", "   ", "\n"], [""]):
        np.testing.assert_allclose(run(packed, batch), run(fixed, batch), rtol=0, atol=1e-6)


def test_same_padding_is_keras_same():
    assert [same_padding(k) for k in (1, 2, 3, 4, 5)] == [(0, 0), (0, 1), (1, 1), (1, 2),
                                                           (2, 2)]


def test_packed_graph_has_no_grid_sized_tensor(tokenizer):
    """The point of the exercise: nothing in the graph is (N, sentences, tokens)."""
    from onnx import shape_inference

    config = ModelConfig(embedding_dim=6, word_filters=5, sentence_filters=4, hidden_units=3)
    tok, model, _, _ = both(tokenizer, config, (4, 10), seed=0, shift=0.0)
    proto = packed_text_classifier(model, config, tok, ["a", "b", "c"])
    ops = {n.op_type for n in proto.graph.node}
    assert "ScatterND" not in ops and "Conv" in ops and "TopK" in ops
    inferred = shape_inference.infer_shapes(proto)
    for value in inferred.graph.value_info:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        assert dims[-2:] != [4, 10], value.name


def test_quantised_packed_graph_folds_to_the_float_one(tokenizer, texts, tmp_path):
    """--quantize on this graph: its weights are found (embedding, convolutions, dense), the
    rebuilding nodes fold away when onnxruntime loads the file, and what runs is the float
    graph, op for op."""
    import onnx
    import onnxruntime as ort

    from tlc.export.compact import compact
    from tlc.export.quantize import quantize_weights
    from tlc.session import extensions_library

    config = ModelConfig(embedding_dim=16, word_filters=32, sentence_filters=8,
                         hidden_units=64)
    tok, model, _, packed = both(tokenizer, config, (4, 10), seed=2, shift=0.1)
    proto = compact(packed_text_classifier(model, config, tok, ["a", "b", "c"]))
    quantised, report = quantize_weights(proto)
    quantised = compact(quantised)
    # (the output layer, 64 x 3, is below quantize's MIN_WEIGHT_SIZE)
    assert sorted(w["kind"] for w in report["weights"]) == ["conv", "conv", "dense",
                                                            "embedding"]

    def optimised(m, name):
        options = ort.SessionOptions()
        options.register_custom_ops_library(extensions_library())
        options.optimized_model_filepath = str(tmp_path / name)
        ort.InferenceSession(m.SerializeToString(), options,
                             providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(str(tmp_path / name)).graph.node]

    assert optimised(quantised, "q.onnx") == optimised(proto, "f.onnx")
    got = run(open_session(quantised.SerializeToString()), texts)
    assert (got.argmax(1) == run(packed, texts).argmax(1)).mean() > 0.9


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_every_supported_opset(tokenizer, texts, opset):
    """ReduceMax (k = 1) takes its axes as an attribute up to opset 17, as an input after."""
    config = ModelConfig(embedding_dim=6, word_filters=5, sentence_filters=4, hidden_units=3,
                         word_k=1, sentence_k=1)
    tok, model, fixed, _ = both(tokenizer, config, (4, 10), seed=3, shift=0.2)
    proto = packed_text_classifier(model, config, tok, ["a", "b", "c"], opset=opset)
    assert {o.domain: o.version for o in proto.opset_import}[""] == opset
    batch = edge_texts(texts)
    np.testing.assert_allclose(run(open_session(proto.SerializeToString()), batch),
                               run(fixed, batch), rtol=0, atol=1e-6)


@pytest.mark.parametrize("settings,grid", [({"wide_buckets": 97}, (4, 10)),
                                           ({"wide_buckets": 1000, "hidden_units": 0,
                                             "word_k": 1}, (3, 6))])
def test_wide_part_in_the_packed_graph(tokenizer, texts, settings, grid):
    """The hashed piece-pair part: same buckets, same pairs (neighbours in one sentence of
    the grid, none across sentences or past the grid), same mean as the Keras layer."""
    config = ModelConfig(**{"embedding_dim": 6, "word_filters": 5, "sentence_filters": 4,
                            "hidden_units": 3, **settings})
    tok, model, fixed, packed = both(tokenizer, config, grid, seed=5, shift=0.1)
    wide = model.get_layer("wide")
    table = np.random.default_rng(1).standard_normal(wide.get_weights()[0].shape)
    wide.set_weights([table.astype(np.float32)])
    fixed = open_session(text_classifier(network_to_onnx(model, *grid), tok, ["a", "b", "c"])
                         .SerializeToString())
    packed = open_session(packed_text_classifier(model, config, tok, ["a", "b", "c"])
                          .SerializeToString())
    batch = edge_texts(texts)
    want = model.predict(tok.encode_grid(batch), verbose=0)
    assert np.abs(want - model.predict(tok.encode_grid(batch) * 0, verbose=0)).max() > 0.1
    np.testing.assert_allclose(run(fixed, batch), want, atol=1e-5)
    np.testing.assert_allclose(run(packed, batch), want, rtol=0, atol=1e-5)
    one_by_one = np.concatenate([run(packed, [t]) for t in batch[:40]])
    np.testing.assert_allclose(one_by_one, want[:40], rtol=0, atol=1e-5)


def test_quantised_wide_table_keeps_its_columns_and_folds(tokenizer, texts):
    """--quantize stores the wide part's table as int8 with one scale per class column
    (compact keeps its name, so the quantiser does not take it for the embedding)."""
    from tlc.export.compact import compact
    from tlc.export.quantize import quantize_weights

    config = ModelConfig(embedding_dim=16, word_filters=32, sentence_filters=8,
                         hidden_units=64, wide_buckets=3000)
    tok, model, _, _ = both(tokenizer, config, (4, 10), seed=2, shift=0.1)
    wide = model.get_layer("wide")
    wide.set_weights([0.01 * np.random.default_rng(3).standard_normal(     # scores ~ +-3
        wide.get_weights()[0].shape).astype(np.float32)])
    proto = compact(packed_text_classifier(model, config, tok, ["a", "b", "c"]))
    quantised, report = quantize_weights(proto)
    kinds = {w["kind"]: w for w in report["weights"]}
    assert set(kinds) == {"conv", "dense", "embedding", "wide"}
    assert kinds["wide"]["stored_bytes"] < kinds["wide"]["float32_bytes"] / 3.9
    float_p = run(open_session(proto.SerializeToString()), texts)
    got = run(open_session(compact(quantised).SerializeToString()), texts)
    assert np.abs(got - float_p).max() < 0.05
    assert (got.argmax(1) == float_p.argmax(1)).mean() > 0.9
    # the fixed-grid graph (tf2onnx's names) gets the same codes: --ids-input, parity.py
    grid = compact(text_classifier(network_to_onnx(model, 4, 10), tok, ["a", "b", "c"]))
    grid_q, grid_report = quantize_weights(grid)
    assert {w["kind"] for w in grid_report["weights"]} == set(kinds)
    np.testing.assert_allclose(run(open_session(compact(grid_q).SerializeToString()), texts),
                               got, rtol=0, atol=1e-5)
