"""The Keras network -> ONNX with tf2onnx: ids (N, S, T) in, probabilities (N, C) out.

This is the ``--ids-input`` export (and the fixed-grid reference the text export is tested
against); the text export builds its network itself, see :mod:`.packed`."""

from __future__ import annotations

from ..errors import TlcError

IDS = "ids"
PROBABILITIES = "probabilities"
MIN_OPSET, MAX_OPSET = 17, 21  # 17: the tokenizer's ops; 21: what tf2onnx 1.17 targets


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise TlcError(f"opset {opset} is not supported",
                       hint=f"choose an opset from {MIN_OPSET} to {MAX_OPSET} (default 17)")


def network_to_onnx(model, sentences: int, tokens: int, opset: int = 17):
    """Convert through a ``tf.function`` of the model in inference mode (dropout off)."""
    import tensorflow as tf
    import tf2onnx

    check_opset(opset)
    spec = (tf.TensorSpec((None, sentences, tokens), tf.int32, name=IDS),)

    @tf.function(input_signature=spec)
    def infer(ids):
        return {PROBABILITIES: model(ids, training=False)}

    try:
        proto, _ = tf2onnx.convert.from_function(infer, input_signature=spec, opset=opset)
    except Exception as err:  # tf2onnx raises bare exceptions for unconvertible ops
        raise TlcError(f"tf2onnx could not convert the network: {type(err).__name__}: {err}",
                       hint="the model holds a layer or op without an ONNX conversion; "
                       "models built by tlc convert, so check custom changes") from None
    return _name_wide_table(topk_before_transpose(proto), model)


def _name_wide_table(proto, model):
    """Give the wide part's table the name :mod:`.quantize` knows it by (tf2onnx names it
    after the layer's variable): found by its values, it is the one Gather table of its
    shape. Without it the quantiser took it for a second embedding."""
    import numpy as np
    from onnx import numpy_helper

    from .quantize import WIDE_TABLE

    try:
        table = np.asarray(model.get_layer("wide").get_weights()[0], np.float32)
    except ValueError:
        return proto
    graph = proto.graph
    for tensor in graph.initializer:
        if tuple(tensor.dims) == table.shape and np.array_equal(
                numpy_helper.to_array(tensor), table):
            old, tensor.name = tensor.name, f"net/{WIDE_TABLE}"
            for node in graph.node:
                node.input[:] = [tensor.name if x == old else x for x in node.input]
            break
    return proto


def topk_before_transpose(proto):
    """Swap ``Transpose -> TopK`` into ``TopK -> Transpose`` where the transpose keeps the
    TopK axis last: the same numbers, but the transpose then moves k values per row instead
    of the whole input. k-max pooling over tokens comes out of tf2onnx as a transpose of the
    word convolution's full output (N, filters, S, T) -> (N, S, filters, T) followed by TopK
    over T. Measured on the IMDB model: 683 -> 770 docs/s for one session with 2 threads,
    1,711 -> 1,802 through the runtime's Classifier."""
    from onnx import helper

    graph = proto.graph
    producers = {out: node for node in graph.node for out in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    for out in graph.output:
        uses[out.name] = uses.get(out.name, 0) + 1
    dropped, nodes = set(), []
    for node in graph.node:
        before = producers.get(node.input[0]) if node.op_type == "TopK" else None
        perm = next((list(a.ints) for a in before.attribute if a.name == "perm"), None) \
            if before is not None and before.op_type == "Transpose" else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        if not perm or uses.get(node.input[0], 0) != 1 or perm[-1] != len(perm) - 1 \
                or axis not in (-1, len(perm) - 1):
            nodes.append(node)
            continue
        dropped.add(before.name)
        inner = [f"{o}/before_transpose" for o in node.output]
        swapped = helper.make_node("TopK", [before.input[0], *node.input[1:]], inner,
                                   name=node.name)
        swapped.attribute.extend(node.attribute)
        nodes.append(swapped)
        nodes.extend(helper.make_node("Transpose", [i], [o], name=f"{o}/transpose", perm=perm)
                     for i, o in zip(inner, node.output, strict=True))
    kept = [n for n in nodes if n.name not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    return proto
