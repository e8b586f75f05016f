"""The document grid as ONNX nodes: :func:`~tlc.tokenizer.grid.grid_from_flat`, op for op.

The exported model runs these nodes after the encoder graph (:mod:`.graph`), so raw text goes
in and the network's ``(N, sentences, tokens)`` input is built inside onnxruntime. Every step
below names the line of ``grid_from_flat`` it mirrors; a test checks the two agree on every
review of the real test sets.

Only standard ops (opset 17): Slice, Sub, Shape, Range, ScatterElements (reduction=add),
CumSum, Gather, Equal, And, Or, Not, Concat, NonZero, Less, Mul, Add, ScatterND, Reshape.
"""

from __future__ import annotations

import numpy as np


class Nodes:
    """Collects nodes and initializers; every tensor and node name gets ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.nodes, self.inits = prefix, [], []

    def name(self, s: str) -> str:
        return self.prefix + s

    def const(self, s: str, value) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value), self.name(s)))
        return self.name(s)

    def node(self, op: str, inputs: list[str], out: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [self.name(out)], name=self.name(out),
                                           **attrs))
        return self.name(out)


def token_coordinates(g: Nodes, terminal: np.ndarray, starts_word: np.ndarray,
                      max_sentences: int, max_tokens: int, ids: str, offsets: str
                      ) -> dict[str, str]:
    """Nodes (into ``g``) that place every token of flat ``ids`` (int32[total]) and
    ``offsets`` (int64[N + 1]): the names of ``doc``, ``sentence_in_doc`` and
    ``token_in_sentence`` (int64[total]), ``kept`` (int64[kept]: the tokens inside the first
    ``max_sentences`` sentences and their first ``max_tokens`` tokens, in stream order) and
    ``n_docs`` (int64[1])."""
    from onnx import helper

    const, node = g.const, g.node
    zero, one = const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64))
    minus1 = const("minus1", np.array([-1], np.int64))
    axis0 = const("axis0", np.array(0, np.int64))
    big = const("big", np.array([np.iinfo(np.int64).max], np.int64))

    flat = node("Cast", [ids], "flat", to=7)                          # int64 ids
    n = node("Shape", [flat], "n")                                     # [total]
    n_scalar = node("Squeeze", [n, zero], "n_scalar")
    position = node("Range", [const("zero_s", np.array(0, np.int64)), n_scalar,
                              const("one_s", np.array(1, np.int64))], "position")
    # doc = np.repeat(arange(N), lengths): +1 at every later document's first position
    # (add-scatter, so empty documents sharing a start count), then a running sum.
    n_docs = node("Sub", [node("Shape", [offsets], "n_offsets"), one], "n_docs")
    later_starts = node("Slice", [offsets, one, minus1], "later_starts")   # offsets[1:-1]
    marks0 = node("ConstantOfShape", [node("Add", [n, one], "n_plus_1")], "marks0",
                  value=helper.make_tensor("v", 7, [1], [0]))
    ones = node("ConstantOfShape", [node("Shape", [later_starts], "n_later")], "ones",
                value=helper.make_tensor("v", 7, [1], [1]))
    marks = node("ScatterElements", [marks0, later_starts, ones], "marks", axis=0,
                 reduction="add")
    doc = node("Slice", [node("CumSum", [marks, axis0], "doc_all"), zero, n], "doc")
    # doc_start: the token sits at its document's offset.
    doc_offset = node("Gather", [offsets, doc], "doc_offset")
    doc_start = node("Equal", [position, doc_offset], "doc_start")
    # term = terminal[flat]; word = starts_word[flat]   (table lookups)
    term = node("Gather", [const("terminal", terminal.astype(bool)), flat], "term")
    word = node("Gather", [const("starts_word", starts_word.astype(bool)), flat], "word")
    # ends[:-1] = term[:-1] & word[1:] & ~doc_start[1:]; ends[-1] = False
    false1 = const("false1", np.array([False]))
    term_head = node("Slice", [term, zero, minus1], "term_head")
    word_tail = node("Slice", [word, one, big], "word_tail")
    start_tail = node("Slice", [doc_start, one, big], "start_tail")
    ends_head = node("And", [node("And", [term_head, word_tail], "tw"),
                             node("Not", [start_tail], "not_start_tail")], "ends_head")
    # starts = doc_start; starts[1:] |= ends[:-1] & ~term[1:]
    term_tail = node("Slice", [term, one, big], "term_tail")
    after_end = node("And", [ends_head, node("Not", [term_tail], "not_term_tail")], "after_end")
    shifted = node("Concat", [false1, after_end], "after_end_shifted", axis=0)
    # (n == 0: the Concat gives [False] against an empty doc_start; slice it to n)
    shifted = node("Slice", [shifted, zero, n], "after_end_n")
    starts = node("Or", [doc_start, shifted], "starts")
    # sentence = cumsum(starts) - 1; sentence_first = flatnonzero(starts)
    sentence = node("Sub", [node("CumSum", [node("Cast", [starts], "starts_i", to=7), axis0],
                                 "starts_cum"), one], "sentence")
    sentence_first = node("Squeeze", [node("NonZero", [starts], "starts_nz"), zero],
                          "sentence_first")
    token_in_sentence = node("Sub", [position, node("Gather", [sentence_first, sentence],
                                                    "first_of_sentence")], "token_in_sentence")
    # sentence_in_doc = sentence - (sentence number of the document's first token)
    first_sentence_of_doc = node("Gather", [sentence, doc_offset], "first_sentence_of_doc")
    sentence_in_doc = node("Sub", [sentence, first_sentence_of_doc], "sentence_in_doc")
    # keep the first S sentences and first T tokens
    s_const = const("S", np.array(max_sentences, np.int64))
    t_const = const("T", np.array(max_tokens, np.int64))
    keep = node("And", [node("Less", [sentence_in_doc, s_const], "in_s"),
                        node("Less", [token_in_sentence, t_const], "in_t")], "keep")
    kept = node("Squeeze", [node("NonZero", [keep], "keep_nz"), zero], "kept")
    return {"doc": doc, "sentence_in_doc": sentence_in_doc,
            "token_in_sentence": token_in_sentence, "kept": kept, "n_docs": n_docs,
            "sentence": sentence, "sentence_first": sentence_first, "word": word,
            "S": s_const, "T": t_const, "zero": zero, "one": one}


def grid_nodes(terminal: np.ndarray, starts_word: np.ndarray, max_sentences: int,
               max_tokens: int, *, ids: str = "ids", offsets: str = "offsets",
               grid: str = "grid", prefix: str = "grid_"):
    """Nodes and initializers turning flat ``ids`` (int32[total]) and ``offsets``
    (int64[N + 1]) into ``grid`` (int32[N, max_sentences, max_tokens])."""
    from onnx import helper

    g = Nodes(prefix)
    const, node = g.const, g.node
    at = token_coordinates(g, terminal, starts_word, max_sentences, max_tokens, ids, offsets)
    doc, sentence_in_doc, token_in_sentence = (at["doc"], at["sentence_in_doc"],
                                               at["token_in_sentence"])
    kept, n_docs, s_const, t_const, one = (at["kept"], at["n_docs"], at["S"], at["T"],
                                           at["one"])
    # scatter the kept tokens into the flat grid at (doc, sentence, token)
    row = node("Add", [node("Mul", [node("Gather", [doc, kept], "kept_doc"), s_const], "ds"),
                       node("Gather", [sentence_in_doc, kept], "kept_sentence")], "row")
    cell = node("Add", [node("Mul", [row, t_const], "rt"),
                        node("Gather", [token_in_sentence, kept], "kept_token")], "cell")
    size = node("Mul", [n_docs, const("ST", np.array([max_sentences * max_tokens], np.int64))],
                "size")
    empty = node("ConstantOfShape", [size], "empty", value=helper.make_tensor("v", 6, [1], [0]))
    values = node("Gather", [ids, kept], "kept_ids")
    scattered = node("ScatterND", [empty, node("Unsqueeze", [cell, one], "cell_2d"), values],
                     "scattered")
    shape = node("Concat", [n_docs, const("SxT", np.array([max_sentences, max_tokens],
                                                           np.int64))], "grid_shape", axis=0)
    g.nodes.append(helper.make_node("Reshape", [scattered, shape], [grid],
                                    name=g.name("grid")))
    return g.nodes, g.inits


def text_to_grid_nodes(tokenizer, *, text: str = "text", grid: str = "grid",
                       prefix: str = ""):
    """Encoder nodes (:func:`~tlc.tokenizer.graph.encoder_nodes`) followed by the grid nodes:
    raw ``text`` (string[N]) -> ``grid`` (int32[N, S, T]) for ``tokenizer``'s vocabulary and
    grid size, exactly as :meth:`~tlc.tokenizer.Tokenizer.encode_grid` computes it."""
    from tlc.tokenizer.graph import encoder_nodes

    cfg = tokenizer.config
    ids, offsets = prefix + "tok/ids", prefix + "tok/offsets"
    enc, enc_inits = encoder_nodes(tokenizer.model_proto, text=text, ids=ids, offsets=offsets,
                                   prefix=prefix + "tok/")
    nodes, inits = grid_nodes(tokenizer.terminal, tokenizer.starts_word, cfg.max_sentences,
                              cfg.max_tokens, ids=ids, offsets=offsets, grid=grid,
                              prefix=prefix + "grid/")
    return enc + nodes, enc_inits + inits


def text_to_grid_model(tokenizer):
    """A stand-alone ONNX model of :func:`text_to_grid_nodes`: ``text`` in, ``grid`` out."""
    from onnx import TensorProto, helper

    from tlc.tokenizer.graph import CONTRIB_DOMAIN, IR_VERSION, ONNX_OPSET

    cfg = tokenizer.config
    nodes, inits = text_to_grid_nodes(tokenizer)
    graph = helper.make_graph(
        nodes, "tlc_text_to_grid",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("grid", TensorProto.INT32,
                                       ["N", cfg.max_sentences, cfg.max_tokens])],
        initializer=inits)
    return helper.make_model(graph, ir_version=IR_VERSION,
                             opset_imports=[helper.make_opsetid("", ONNX_OPSET),
                                            helper.make_opsetid(CONTRIB_DOMAIN, 1)])
