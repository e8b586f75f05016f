"""A lossless size pass over a finished graph, float32 and quantised alike.

* Boolean lookup tables (the tokenizer's per-piece "ends a sentence" / "starts a word"
  flags: one byte a piece as ONNX stores them) are stored as bits and rebuilt when the
  session loads (:mod:`.rebuild`).
* Internal tensor and node names, which tf2onnx makes long and descriptive
  ("net/tlc_document_cnn_1/word_conv_1/...", ~30 KB in all), become short ones. The graph's
  inputs and outputs keep their names: they are the interface.

Both change bytes, not numbers: the export's validation runs on the compacted graph.
"""

from __future__ import annotations

import numpy as np

from .rebuild import BOOL, Builder, pack_bits

MIN_TABLE_SIZE = 1024        # smaller boolean tensors are not worth the nodes


def compact(model):
    """A compacted copy of ``model`` (an onnx ModelProto)."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    _pack_bool_tables(model.graph)
    if not _has_subgraphs(model.graph):
        _short_names(model.graph)
    return model


def _pack_bool_tables(graph) -> None:
    from onnx import numpy_helper

    build = Builder("bits/")
    packed = set()
    for k, tensor in enumerate(graph.initializer):
        if tensor.data_type != BOOL:
            continue
        value = numpy_helper.to_array(tensor)
        if value.size < MIN_TABLE_SIZE:
            continue
        flat = value.reshape(1, -1)
        bits = build.unpack_bits(f"t{k}", pack_bits(flat), flat.shape[1])   # (1, n) float
        as_bool = build.node("Cast", [bits], f"t{k}/bool", to=BOOL)
        build.node("Reshape", [as_bool, build.const(f"t{k}/dims", np.array(value.shape,
                                                                          np.int64))],
                   tensor.name, exact=True)
        packed.add(tensor.name)
    build.install(graph, packed)


def _has_subgraphs(graph) -> bool:
    from onnx import AttributeProto

    return any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
               for n in graph.node for a in n.attribute)


def _short_names(graph) -> None:
    from .quantize import WIDE_TABLE

    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    # The wide part's table keeps its name: it is how the quantiser tells it from the
    # embedding (both are Gather tables).
    keep |= {t.name for t in graph.initializer if t.name.rsplit("/", 1)[-1] == WIDE_TABLE}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        if name not in names:
            names[name] = np.base_repr(len(names), 36).lower()
        return names[name]

    for t in graph.initializer:
        t.name = short(t.name)
    for i, node in enumerate(graph.node):
        node.name = "n" + np.base_repr(i, 36).lower()
        node.input[:] = [short(x) for x in node.input]
        node.output[:] = [short(x) for x in node.output]
    for v in graph.value_info:
        v.name = short(v.name)

