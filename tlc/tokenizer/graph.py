"""Text -> sentencepiece ids as an ONNX graph (onnxruntime-extensions ops).

Training encodes through this very graph, and the export embeds the same nodes in front of
the network, so the ids a model is trained on and the ids the exported file computes come
from the same code: parity by construction, not by re-implementation. (It matters: the
Python ``sentencepiece`` library and the extensions' ``SentencepieceTokenizer`` op break ties
between equal-score segmentations differently, e.g. ``!!!!!!!!|!`` vs ``!|!!!!!!!!``; on the
IMDB test set 0.46% of reviews get different ids.)

Graph: ``text: string[N]`` -> one ``StringRegexReplace`` per clean-up rule (RE2, global
replace) -> ``SentencepieceTokenizer`` (the model proto as an attribute; no sampling, no
BOS/EOS) -> ``ids: int32[total]`` (all documents' ids, concatenated) and
``offsets: int64[N + 1]`` (document i is ``ids[offsets[i]:offsets[i + 1]]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tlc.session import open_session
from tlc.text import model_text
from tlc.tokenizer.clean import CLEANUP_RULES

CONTRIB_DOMAIN = "ai.onnx.contrib"
ONNX_OPSET = 17
# Written explicitly: a new `onnx` stamps its own newest IR version, which an older
# onnxruntime refuses to load ("Unsupported model IR version"). IR 8 is what opset 17 needs.
IR_VERSION = 8


def encoder_nodes(model_proto: bytes, *, text: str = "text", ids: str = "ids",
                  offsets: str = "offsets", prefix: str = "tok_",
                  rules: Sequence[tuple[str, str]] = CLEANUP_RULES):
    """The nodes and constant initializers of the encoder, for embedding in a larger graph."""
    from onnx import helper, numpy_helper

    nodes, inits = [], []

    def const(name: str, value: np.ndarray):
        inits.append(numpy_helper.from_array(value, prefix + name))
        return prefix + name

    current = text
    for k, (pattern, replacement) in enumerate(rules):
        out = f"{prefix}clean{k}"
        nodes.append(helper.make_node(
            "StringRegexReplace",
            [current, const(f"pattern{k}", np.array([pattern], dtype=object)),
             const(f"rewrite{k}", np.array([replacement], dtype=object))],
            [out], domain=CONTRIB_DOMAIN, name=f"{prefix}clean{k}", global_replace=1,
        ))
        current = out
    nodes.append(helper.make_node(
        "SentencepieceTokenizer",
        [current,
         const("nbest_size", np.array([0], dtype=np.int64)),
         const("alpha", np.array([0.0], dtype=np.float32)),
         const("add_bos", np.array([False])),
         const("add_eos", np.array([False])),
         const("reverse", np.array([False]))],
        [ids, offsets], domain=CONTRIB_DOMAIN, name=f"{prefix}sentencepiece",
        model=model_proto,
    ))
    return nodes, inits


def encoder_model(model_proto: bytes):
    """A stand-alone ONNX model: ``text`` in, ``ids`` and ``offsets`` out."""
    from onnx import TensorProto, helper

    nodes, inits = encoder_nodes(model_proto)
    graph = helper.make_graph(
        nodes, "tlc_text_encoder",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("ids", TensorProto.INT32, ["total"]),
         helper.make_tensor_value_info("offsets", TensorProto.INT64, ["N_plus_1"])],
        initializer=inits,
    )
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[
        helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid(CONTRIB_DOMAIN, 1)])


class GraphEncoder:
    """Runs :func:`encoder_model` with onnxruntime: texts -> (flat ids, per-document lengths).

    The sentencepiece op works through a batch on one core, so batches are cut into chunks
    that ``threads`` workers run concurrently (onnxruntime releases the GIL): on 2 cores this
    doubles the documents per second."""

    CHUNK = 512

    def __init__(self, model_proto: bytes, threads: int = 1) -> None:
        self._session = open_session(encoder_model(model_proto).SerializeToString(),
                                     intra_threads=1)
        self._threads = max(1, threads)

    def _run(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        feed = np.array([model_text(t) for t in texts], dtype=object)  # as scoring does
        ids, offsets = self._session.run(None, {"text": feed})
        return ids.astype(np.int64), np.diff(offsets)

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        chunks = [texts[i : i + self.CHUNK] for i in range(0, len(texts), self.CHUNK)]
        if self._threads == 1 or len(chunks) == 1:
            parts = [self._run(c) for c in chunks]
        else:
            with ThreadPoolExecutor(self._threads) as pool:
                parts = list(pool.map(self._run, chunks))  # map keeps the input order
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
