"""Raw text -> label: the encoder and grid nodes in front of the network, labels behind it.

    text: string[N]
      -> clean-up (StringRegexReplace) -> SentencepieceTokenizer      (tlc.tokenizer.graph)
      -> sentences x tokens grid                                        (tlc.tokenizer.grid_graph)
      -> network                                                        (tf2onnx)
      -> probabilities: float[N, C], label: string[N] (ArgMax + Gather of the label names)

The nodes are the very ones training encodes with, so the ids the file computes are the ids the
network was trained on.
"""

from __future__ import annotations

import numpy as np

from ..tokenizer.graph import CONTRIB_DOMAIN
from ..tokenizer.grid_graph import text_to_grid_nodes
from .network import IDS, PROBABILITIES

TEXT = "text"
LABEL = "label"
NET_PREFIX = "net/"


def text_classifier(network, tokenizer, labels: list[str]):
    """One ModelProto: ``text`` in; ``probabilities`` and ``label`` out."""
    from onnx import TensorProto, compose, helper, numpy_helper

    net = compose.add_prefix(network, NET_PREFIX)
    front, front_inits = text_to_grid_nodes(tokenizer, text=TEXT, grid=NET_PREFIX + IDS)
    probs = NET_PREFIX + PROBABILITIES
    tail = [
        helper.make_node("Identity", [probs], [PROBABILITIES], name="probabilities"),
        helper.make_node("ArgMax", [probs], ["label/index"], name="label/argmax", axis=1,
                         keepdims=0),
        helper.make_node("Gather", ["label/names", "label/index"], [LABEL], name="label/name",
                         axis=0),
    ]
    names = numpy_helper.from_array(np.array(labels, dtype=object), "label/names")
    n_classes = len(labels)
    graph = helper.make_graph(
        front + list(net.graph.node) + tail,
        "tlc_text_classifier",
        [helper.make_tensor_value_info(TEXT, TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["N", n_classes]),
         helper.make_tensor_value_info(LABEL, TensorProto.STRING, ["N"])],
        initializer=front_inits + list(net.graph.initializer) + [names],
        value_info=list(net.graph.value_info),
    )
    opsets = {o.domain: o.version for o in network.opset_import}
    opsets[""] = max(opsets.get("", 17), 17)
    opsets[CONTRIB_DOMAIN] = 1
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in sorted(opsets.items())],
                              producer_name="tlc")
    model.ir_version = network.ir_version
    return model
