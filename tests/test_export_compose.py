"""The text-in, label-out ONNX graph computes what the Keras model computes on encode_grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tlc.export  # noqa: F401  (import order: extensions before TensorFlow)
from tlc.errors import TlcError
from tlc.export.compose import text_classifier
from tlc.export.network import network_to_onnx
from tlc.metadata import CONFIG, LABELS, VERSION, read_metadata, set_metadata
from tlc.session import open_session
from tlc.train.model import ModelConfig, build_model

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("labels", [["neg", "pos"], ["a", "b", "c"]])
def test_text_classifier_matches_keras(tokenizer, texts, labels):
    model = build_model(ModelConfig(embedding_dim=8, word_filters=6, sentence_filters=6,
                                    hidden_units=5), vocab_size=tokenizer.vocab_size,
                        sentences=4, tokens=10, n_classes=len(labels), seed=3)
    onnx_model = text_classifier(network_to_onnx(model, 4, 10), tokenizer, labels)
    session = open_session(onnx_model.SerializeToString())
    batch = [*texts, "", "   ", "\U0001f600 \u05e9\u05dc\u05d5\u05dd", "x" * 100_000]
    proba, label = session.run(None, {"text": np.array(batch, dtype=object)})
    want = model.predict(tokenizer.encode_grid(batch), verbose=0)
    assert proba.shape == (len(batch), len(labels))
    np.testing.assert_allclose(proba, want, atol=1e-5)
    assert label.tolist() == [labels[i] for i in proba.argmax(axis=1)]


def test_unknown_opset_is_a_clear_error(tokenizer):
    model = build_model(ModelConfig(embedding_dim=4, word_filters=4, sentence_filters=4),
                        vocab_size=tokenizer.vocab_size, sentences=4, tokens=10, n_classes=2)
    with pytest.raises(TlcError, match="opset 99"):
        network_to_onnx(model, 4, 10, opset=99)


def test_metadata_round_trip():
    from onnx import helper

    model = helper.make_model(helper.make_graph([], "g", [], []))
    set_metadata(model, {LABELS: ["neg", "pos"], VERSION: "0.1.0", CONFIG: {"a": {"b": 1}}})
    set_metadata(model, {VERSION: "0.2.0"})  # overwrites, never duplicates
    props = {p.key: p.value for p in model.metadata_props}
    assert len(props) == len(model.metadata_props) == 3
    assert read_metadata(props) == {LABELS: ["neg", "pos"], VERSION: "0.2.0",
                                    CONFIG: {"a": {"b": 1}}}
