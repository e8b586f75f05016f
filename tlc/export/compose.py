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
    """One ModelProto: ``text`` in; ``probabilities`` and ``label`` out, through the fixed
    (N, sentences, tokens) grid and ``network`` (tf2onnx's conversion of the Keras model)."""
    from onnx import compose

    net = compose.add_prefix(network, NET_PREFIX)
    front, front_inits = text_to_grid_nodes(tokenizer, text=TEXT, grid=NET_PREFIX + IDS)
    opsets = {o.domain: o.version for o in network.opset_import}
    return _classifier(front + list(net.graph.node), front_inits + list(net.graph.initializer),
                       list(net.graph.value_info), labels, opsets, network.ir_version)


def packed_text_classifier(model, config, tokenizer, labels: list[str], opset: int = 17,
                           explain: bool = False):
    """:func:`text_classifier` without the grid: the weights of the Keras ``model`` (of
    :class:`~tlc.train.model.ModelConfig` ``config``) in the hand-built graph of
    :mod:`.packed`, whose cost follows the texts' real tokens; the grid graph's
    probabilities. ``explain``: also the outputs of :mod:`.explain` (sentence scores and
    spans)."""
    from onnx import helper

    from ..tokenizer.graph import encoder_nodes
    from ..tokenizer.grid_graph import Nodes
    from .explain import ExplainOutputs, piece_nodes
    from .network import check_opset
    from .packed import keras_weights, packed_network_nodes

    check_opset(opset)

    cfg = tokenizer.config
    ids, offsets = "tok/ids", "tok/offsets"
    front, front_inits, outputs = [], [], None
    if explain:
        # The input's pieces are tokenized in the texts' own op call, after them (one copy
        # of the sentencepiece model in the file); the network reads the first N strings.
        x = Nodes("x/")
        pieces = piece_nodes(x, TEXT)
        both = x.node("Concat", [TEXT, pieces["pieces"]], "all_text", axis=0)
        ids_all, offsets_all = "tok/ids_all", "tok/offsets_all"
        n = x.node("Shape", [TEXT], "n")
        n1 = x.node("Add", [n, x.const("one_", np.array([1], np.int64))], "n1")
        x.nodes.append(helper.make_node("Slice", [offsets_all, x.const(
            "zero_", np.array([0], np.int64)), n1], [offsets], name="x/offsets"))
        x.nodes.append(helper.make_node("Slice", [ids_all, x.name("zero_"), x.node(
            "Gather", [offsets_all, n], "ids_end")], [ids], name="x/ids"))
        enc, enc_inits = encoder_nodes(tokenizer.model_proto, text=both, ids=ids_all,
                                       offsets=offsets_all, prefix="tok/")
        front, front_inits = x.nodes[:-3] + enc + x.nodes[-3:], x.inits + enc_inits
        outputs = ExplainOutputs(
            starts_word=np.asarray(tokenizer.starts_word), ids_all=ids_all,
            offsets_all=offsets_all, piece_doc=pieces["doc"], piece_length=pieces["length"],
            piece_trimmed=pieces["trimmed"], scores=NET_PREFIX + "sentence_scores",
            spans=NET_PREFIX + "sentence_spans", total=NET_PREFIX + "sentence_total")
    else:
        front, front_inits = encoder_nodes(tokenizer.model_proto, text=TEXT, ids=ids,
                                           offsets=offsets, prefix="tok/")
    net, net_inits = packed_network_nodes(
        keras_weights(model), config, cfg.max_sentences, cfg.max_tokens,
        tokenizer.terminal, tokenizer.starts_word, ids=ids, offsets=offsets,
        probabilities=NET_PREFIX + PROBABILITIES, prefix=NET_PREFIX, opset=opset,
        explain=outputs)
    ir = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    return _classifier(front + net, front_inits + net_inits, [], labels, {"": opset},
                       max(ir, 8), explain=explain)


def _classifier(nodes, inits, value_info, labels: list[str], opsets: dict[str, int],
                ir_version: int, explain: bool = False):
    from onnx import TensorProto, helper, numpy_helper

    from .explain import OUTPUTS, explain_value_infos

    probs = NET_PREFIX + PROBABILITIES
    tail = [helper.make_node("Identity", [NET_PREFIX + name], [name], name=name)
            for name in (OUTPUTS if explain else ())]
    tail += [
        helper.make_node("Identity", [probs], [PROBABILITIES], name="probabilities"),
        helper.make_node("ArgMax", [probs], ["label/index"], name="label/argmax", axis=1,
                         keepdims=0),
        helper.make_node("Gather", ["label/names", "label/index"], [LABEL], name="label/name",
                         axis=0),
    ]
    names = numpy_helper.from_array(np.array(labels, dtype=object), "label/names")
    n_classes = len(labels)
    graph = helper.make_graph(
        nodes + tail,
        "tlc_text_classifier",
        [helper.make_tensor_value_info(TEXT, TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["N", n_classes]),
         helper.make_tensor_value_info(LABEL, TensorProto.STRING, ["N"])]
        + (explain_value_infos(n_classes) if explain else []),
        initializer=inits + [names],
        value_info=value_info,
    )
    opsets = dict(opsets)
    opsets[""] = max(opsets.get("", 17), 17)
    opsets[CONTRIB_DOMAIN] = 1
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in sorted(opsets.items())],
                              producer_name="tlc")
    model.ir_version = ir_version
    return model
