"""The document CNN as ONNX nodes over the texts' real tokens, not the fixed grid.

The Keras model reads an (N, sentences, tokens) grid that is mostly padding (on IMDB at
24 x 48, 77% of the slots). The graph built here computes the same probabilities with work
that follows the tokens of the batch:

* word level: the batch's real sentences (no empty sentence slots), sorted by length and cut
  into ``groups`` runs of equal count; each run is a grid of its own, ``W = min(tokens,
  longest + r + k)`` positions wide (``r`` the right "same" padding of the word convolution,
  ``k`` its k-max), on which the very Conv of the grid graph and TopK run. A grid position
  past a sentence's last token + ``r`` sees zeros only, so it holds ReLU(bias), the same for
  every such position; ONNX TopK prefers the lower index among equal values, so at most ``k``
  of them can win, and those are the first ``k``: the pooled values and their order are the
  fixed grid's.
* sentence level: the sentence vectors in a (N, S_b) grid, ``S_b = min(sentences, most
  sentences + r + k)`` of the sentence convolution, then the same Conv, TopK and masked mean as
  the grid graph (the mean's sum runs sentence by sentence, as there).
* the dense layers as MatMul + Add, as tf2onnx writes them. (k = 1 pooling is a ReduceMax.)

Measured alternatives (3,000 IMDB test reviews, 24 x 48 grid): a grid cut to each run's
longest sentence and document keeps 972 of the 1,152 slots per review in runs of 32 sorted by
length (84%: almost every run holds a 48-token sentence), where these sentence runs keep 351
(30%) and the tokens themselves are 260 (23%). One stream of all tokens with zero gaps
between sentences, one Conv over it and a Gather of each sentence's outputs into rows for
TopK did the least convolution, but that Gather (along the position axis) took 40% of the run:
0.57x the speed of these runs.

Every op is the grid graph's own kernel on the same numbers, so the probabilities are the
grid graph's whatever the batch holds: bit for bit on every IMDB test review and 99.9% of the
Amazon ones, within 1.2e-7 on the rest (``benchmarks/results/parity.json``; tests compare the
two graphs on many model and grid shapes). Padding ids never reach the embedding as real
tokens (the tokenizer never emits id 0), so row 0 of the table is stored as zeros, which is
what the Keras model's padding mask makes of it. The weights are Gather/Conv/MatMul
initializers, so :mod:`.quantize` finds and stores them as it does tf2onnx's, and
onnxruntime folds their rebuilding at load.
"""

from __future__ import annotations

import numpy as np

from ..tokenizer.grid_graph import Nodes, token_coordinates

INT64, INT32, FLOAT = 7, 6, 1
GROUPS = 4
"""Runs the sentences of a batch are cut into, by length. Measured on 1,000 IMDB test
reviews in runs of 32 sorted by length, a 24 x 48 model of the seed table's sizes, documents
per CPU-second: 1 run 1,511, 2 runs 1,705, 4 runs 1,856, 8 runs 1,827 (the grid graph 852)."""


def same_padding(kernel: int) -> tuple[int, int]:
    """(left, right) zeros of a Keras/TensorFlow "same" convolution of width ``kernel``."""
    left = (kernel - 1) // 2
    return left, kernel - 1 - left


def keras_weights(model) -> dict[str, list[np.ndarray]]:
    """The weights of the layers the graph needs, by layer name."""
    names = ("embedding", "word_conv", "sentence_conv", "hidden", "output", "wide")
    out = {}
    for name in names:
        try:
            layer = model.get_layer(name)
        except ValueError:
            continue
        out[name] = [np.asarray(w, np.float32) for w in layer.get_weights()]
        if name == "wide":      # the layer's own scale, whatever a config file says
            out[name].append(np.array(layer.scale, np.float32))
    return out


def packed_network_nodes(weights: dict[str, list[np.ndarray]], config, max_sentences: int,
                         max_tokens: int, terminal: np.ndarray, starts_word: np.ndarray, *,
                         ids: str, offsets: str, probabilities: str, prefix: str = "net/",
                         groups: int = GROUPS, opset: int = 17, explain=None):
    """Nodes and initializers: the tokenizer's flat ``ids`` (int32[total]) and ``offsets``
    (int64[N + 1]) -> ``probabilities`` (float[N, C]) for a model of ``config``
    (:class:`~tlc.train.model.ModelConfig`) with ``weights`` (:func:`keras_weights`).

    ``explain`` (:class:`tlc.export.explain.ExplainOutputs`): also the sentence scores of
    :func:`occlusion_nodes` and the character spans of
    :func:`tlc.export.explain.sentence_span_nodes`."""
    from onnx import helper

    g = Nodes(prefix)
    const, node = g.const, g.node
    at = token_coordinates(g, terminal, starts_word, max_sentences, max_tokens, ids, offsets)
    kept, n_docs, zero, one = at["kept"], at["n_docs"], at["zero"], at["one"]
    big = const("big_", np.array([np.iinfo(np.int64).max], np.int64))
    minus1 = const("minus1_", np.array([-1], np.int64))
    axis0 = const("axis0_", np.array(0, np.int64))

    def scalar(x: str, out: str) -> str:
        return node("Squeeze", [x, zero], out)

    def arange(n: str, out: str) -> str:      # n: int64[1]
        return node("Range", [const(out + "/start", np.array(0, np.int64)), scalar(n, out + "/n"),
                              const(out + "/step", np.array(1, np.int64))], out)

    def column(x: str, out: str) -> str:      # [n] -> [n, 1]
        return node("Unsqueeze", [x, one], out)

    def filled(n: str, value: str, out: str, dtype: int = INT64) -> str:   # [n] of ``value``
        zeros = node("ConstantOfShape", [n], out + "/zeros",
                     value=helper.make_tensor("v", dtype, [1], [0]))
        return node("Add", [zeros, value], out)

    def segment_rows(starts: str, lengths: str, limit: int, extra: int, pad: str,
                     out: str) -> str:
        """int64[segments, w], w = min(limit, longest + extra): ``starts + t`` where t is
        below the segment's length, else ``pad``."""
        longest = node("ReduceMax", [node("Concat", [lengths, zero], out + "/l0", axis=0)],
                       out + "/longest", keepdims=1)
        w = node("Min", [const(out + "/limit", np.array([limit], np.int64)),
                         node("Add", [longest, const(out + "/extra", np.array([extra],
                                                                             np.int64))],
                              out + "/want")], out + "/w")
        t = node("Unsqueeze", [arange(w, out + "/t"), zero], out + "/t_row")   # [1, w]
        inside = node("Less", [t, column(lengths, out + "/lc")], out + "/inside")
        index = node("Add", [column(starts, out + "/sc"), t], out + "/index")
        return node("Where", [inside, index, pad], out)

    def top_k(values: str, k: int, out: str) -> tuple[str, str]:
        """TopK over the last axis: (values, positions), largest first; among equal values
        the lower position first (ONNX's rule, onnxruntime's too)."""
        if k == 1:      # max pooling: the value is all that is kept, and ReduceMax is cheap
            if opset >= 18:     # axes became an input in opset 18
                return node("ReduceMax", [values, minus1], out + "/v", keepdims=1), ""
            return node("ReduceMax", [values], out + "/v", axes=[-1], keepdims=1), ""
        v, i = g.name(out + "/v"), g.name(out + "/i")
        g.nodes.append(helper.make_node("TopK", [values, const(out + "/k", np.array(
            [k], np.int64))], [v, i], name=g.name(out + "/topk"), axis=-1, largest=1,
            sorted=1))
        return v, i

    def in_position_order(v: str, i: str, k: int, out: str) -> str:
        """The k values of :func:`top_k` reordered by position, as KMaxPooling keeps them."""
        if k == 1:
            return v
        if k == 2:
            # A swap where the runner-up comes first, as 0/1 weights (x * 1 + y * 0 is x
            # exactly): onnxruntime's Where is several times slower than Mul and Add here.
            halves = []
            for name, x in (("v", v), ("i", i)):
                a, b = g.name(f"{out}/{name}0"), g.name(f"{out}/{name}1")
                g.nodes.append(helper.make_node("Split", [x, const(
                    f"{out}/{name}_split", np.array([1, 1], np.int64))], [a, b],
                    name=g.name(f"{out}/{name}_halves"), axis=-1))
                halves.append((a, b))
            (v0, v1), (i0, i1) = halves
            keep = node("Cast", [node("Less", [i0, i1], out + "/in_order_b")],
                        out + "/in_order", to=FLOAT)
            # (positions differ, so this is 1 - keep; Sub with a scalar first took 4% here)
            swap = node("Cast", [node("Greater", [i0, i1], out + "/swap_b")], out + "/swap",
                        to=FLOAT)

            def pick(a: str, b: str, tag: str) -> str:
                return node("Add", [node("Mul", [a, keep], f"{out}/{tag}_a"),
                                    node("Mul", [b, swap], f"{out}/{tag}_b")], f"{out}/{tag}")

            return node("Concat", [pick(v0, v1, "first"), pick(v1, v0, "second")], out,
                        axis=-1)
        kk = const(out + "/k", np.array([k], np.int64))
        order = helper.make_node("TopK", [i, kk], [g.name(out + "/iv"), g.name(out + "/order")],
                                 name=g.name(out + "/argsort"), axis=-1, largest=0, sorted=1)
        g.nodes.append(order)
        return node("GatherElements", [v, g.name(out + "/order")], out, axis=-1)

    # ------------------------------------------------------------ word level
    table, = weights["embedding"]
    table = table.copy()
    table[0] = 0.0                      # padding: the Keras mask zeroes it wherever it is read
    kernel, bias = weights["word_conv"]            # (1, kw, d, f1), (f1,)
    kw, f1 = kernel.shape[1], kernel.shape[3]
    wl, wr = same_padding(kw)
    k1 = config.word_k
    w_kernel = const("w/kernel", np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    w_bias = const("w/bias", bias)
    table = const("embedding", table)

    k_ids = node("Concat", [node("Gather", [ids, kept], "s/ids"),
                            const("s/pad_id", np.array([0], np.int32))], "s/ids_pad", axis=0)
    k_tok = node("Gather", [at["token_in_sentence"], kept], "s/tok")
    k_doc = node("Gather", [at["doc"], kept], "s/doc")
    first = node("Equal", [k_tok, const("s/zero_s", np.array(0, np.int64))], "s/first")
    s_first = node("Squeeze", [node("NonZero", [first], "s/first_nz"), zero], "s/s_first")
    n_kept = node("Shape", [kept], "s/n_kept")
    m = node("Shape", [s_first], "s/m")                                 # real sentences
    lengths = node("Sub", [node("Concat", [node("Slice", [s_first, one, big], "s/next0"),
                                           n_kept], "s/next", axis=0), s_first], "s/len")
    # Sentences longest first, cut into ``groups`` runs of equal count; each run is a grid of
    # its own, as wide as its longest sentence needs.
    by_length = helper.make_node("TopK", [lengths, m], [g.name("s/len_sorted"),
                                                        g.name("s/order")],
                                 name=g.name("s/sort"), axis=0, largest=1, sorted=1)
    g.nodes.append(by_length)
    len_sorted, order = g.name("s/len_sorted"), g.name("s/order")
    parts: tuple[list[str], list[str]] = ([], [])        # TopK values, positions per group
    wide = WideScores(g, *weights["wide"], config.wide_buckets) if "wide" in weights else None
    wide_parts: list[str] = []                            # its sums per sentence, per group
    for b in range(groups):
        tag = f"w{b}"
        lo = node("Div", [node("Mul", [m, const(f"{tag}/b", np.array([b], np.int64))],
                               f"{tag}/mb"), const(f"{tag}/groups", np.array([groups],
                                                                            np.int64))],
                  f"{tag}/lo")
        hi = node("Div", [node("Mul", [m, const(f"{tag}/b1", np.array([b + 1], np.int64))],
                               f"{tag}/mb1"), g.name(f"{tag}/groups")], f"{tag}/hi")
        g_len = node("Slice", [len_sorted, lo, hi], f"{tag}/len")
        g_start = node("Gather", [s_first, node("Slice", [order, lo, hi], f"{tag}/which")],
                       f"{tag}/start")
        # one row more, all padding, so that no group is ever empty (Conv refuses 0 rows)
        g_len = node("Concat", [g_len, zero], f"{tag}/len1", axis=0)
        g_start = node("Concat", [g_start, zero], f"{tag}/start1", axis=0)
        rows = segment_rows(g_start, g_len, max_tokens, wr + k1,
                            node("Squeeze", [n_kept, zero], f"{tag}/pad"), f"{tag}/rows")
        cells = node("Gather", [k_ids, rows], f"{tag}/cells")                   # (M_b+1, W)
        emb = node("Gather", [table, cells], f"{tag}/emb")                      # (.., W, d)
        x = node("Unsqueeze", [node("Transpose", [emb], f"{tag}/emb_t", perm=[2, 0, 1]),
                               zero], f"{tag}/x")                              # (1, d, .., W)
        conv = node("Relu", [node("Conv", [x, w_kernel, w_bias], f"{tag}/conv",
                                  kernel_shape=[1, kw], pads=[0, wl, 0, wr], strides=[1, 1],
                                  dilations=[1, 1], group=1)], f"{tag}/relu")
        y = node("Squeeze", [conv, zero], f"{tag}/y")                          # (f1, .., W)
        n_b = node("Sub", [hi, lo], f"{tag}/n")
        if wide is not None:
            wide_parts.append(node("Slice", [wide.sentence_sums(cells, tag), zero, n_b, zero],
                                   f"{tag}/wide_real"))
        for part, top in zip(parts, top_k(y, k1, f"{tag}/top"), strict=True):  # (f1, .., k1)
            if top:                                # (k = 1 keeps no positions)
                part.append(node("Slice", [top, zero, n_b, one], top + "_real"))  # real rows
    values, positions = (("" if not p else p[0] if groups == 1
                          else node("Concat", p, f"w/top_{name}", axis=1))
                         for p, name in zip(parts, "vi", strict=True))
    pooled = in_position_order(values, positions, k1, "w/kmax")               # (f1, M, k1)
    c2 = k1 * f1
    sv = node("Reshape", [node("Transpose", [pooled], "w/sv_t", perm=[1, 2, 0]),
                          const("w/sv_shape", np.array([-1, c2], np.int64))], "w/sv")  # (M, c2)
    sv = node("Concat", [sv, const("w/zero_row", np.zeros((1, c2), np.float32))],
              "w/sv_pad", axis=0)                                    # + a padding sentence
    m_range = arange(m, "s/m_range")
    where_sorted = node("ScatterElements", [filled(m, zero, "s/inv0"), order, m_range],
                        "s/inv", axis=0)                 # sentence -> its row in ``sv``
    where_sorted = node("Concat", [where_sorted, m], "s/inv_pad", axis=0)

    # ------------------------------------------------------------ sentence level
    kernel2, bias2 = weights["sentence_conv"]      # (ks, c2, f2), (f2,)
    ks = kernel2.shape[0]
    sl, sr = same_padding(ks)
    k2 = config.sentence_k
    s_doc = node("Gather", [k_doc, s_first], "d/s_doc")                         # [M]
    ones = filled(m, one, "d/ones")
    n_sent = node("ScatterElements", [filled(n_docs, zero, "d/n0"), s_doc, ones], "d/n",
                  axis=0, reduction="add")                                      # [N]
    d_start = node("Sub", [node("CumSum", [n_sent, axis0], "d/n_cum"), n_sent], "d/start")
    rows2 = segment_rows(d_start, n_sent, max_sentences, sr + k2,
                         node("Squeeze", [m, zero], "d/pad"), "d/rows")        # (N, S_b)
    rows_sorted = node("Gather", [where_sorted, rows2], "d/rows_sorted")       # (N, S_b)
    x2 = node("Gather", [sv, rows_sorted], "d/x_rows")                          # (N, S_b, c2)
    x2 = node("Unsqueeze", [node("Transpose", [x2], "d/x_t", perm=[2, 0, 1]), zero], "d/x")
    d_kernel = const("d/kernel", np.ascontiguousarray(kernel2.transpose(2, 1, 0)[:, :, None, :]))
    conv2 = node("Conv", [x2, d_kernel], "d/conv", kernel_shape=[1, ks],
                 pads=[0, sl, 0, sr], strides=[1, 1], dilations=[1, 1], group=1)
    d_bias = const("d/bias", bias2[:, None, None])
    y2 = node("Relu", [node("Add", [node("Squeeze", [conv2, zero], "d/conv_3d"), d_bias],
                        "d/biased")], "d/y")                                   # (f2, N, S_b)
    pooled2 = in_position_order(*top_k(y2, k2, "d/top"), k2, "d/kmax")          # (f2, N, k2)
    doc = node("Reshape", [node("Transpose", [pooled2], "d/kmax_t", perm=[1, 2, 0]),
                           const("d/flat_shape", np.array([0, -1], np.int64))], "d/kmax_flat")
    if config.document_mean:
        # As the grid graph computes MaskedMean (a sum over the sentence axis that is not the
        # last one, so every document's sum runs sentence by sentence whatever S_b is).
        width2 = node("Shape", [rows2], "d/rows_shape")
        s_row = node("Unsqueeze", [arange(node("Slice", [width2, one, big], "d/sb"),
                                          "d/s"), zero], "d/s_row")
        real = node("Unsqueeze", [node("Cast", [node("Less", [s_row, column(
            n_sent, "d/nc")], "d/real_b")], "d/real_f", to=FLOAT), minus1],
            "d/real")                                                          # (N, S_b, 1)
        x_doc = node("Transpose", [y2], "d/y_t", perm=[1, 2, 0])               # (N, S_b, f2)
        total = node("ReduceSum", [node("Mul", [x_doc, real], "d/masked"), one],
                     "d/total", keepdims=0)                                    # (N, f2)
        count = node("Max", [node("ReduceSum", [real, one], "d/count0", keepdims=0),
                             const("d/one_f", np.array(1, np.float32))], "d/count")
        doc = node("Concat", [doc, node("Div", [total, count], "d/mean")], "d/vector", axis=1)

    # ------------------------------------------------------------ head
    head_weights = []
    if "hidden" in weights:
        wh, bh = weights["hidden"]
        head_weights.append((const("h/kernel", wh), const("h/bias", bh)))
    wo, bo = weights["output"]
    o_kernel, o_bias = const("o/kernel", wo), const("o/bias", bo)

    def head(doc: str, tag: str = "") -> str:
        """Logits of the document vectors ``doc``."""
        for kernel_h, bias_h in head_weights:
            doc = node("Relu", [node("Add", [node("MatMul", [doc, kernel_h], tag + "h/mm"),
                                             bias_h], tag + "h/add")], tag + "h/relu")
        return node("Add", [node("MatMul", [doc, o_kernel], tag + "o/mm"), o_bias],
                    tag + "o/logits")

    logits = head(doc)
    if wide is not None:
        logits = node("Add", [logits, wide.document_scores(
            wide_parts, len_sorted, rows_sorted)], "o/scores")
    g.nodes.append(helper.make_node("Softmax", [logits], [probabilities],
                                    name=g.name("o/softmax"), axis=-1))
    if explain is not None:
        from .explain import sentence_span_nodes

        # ---------------------------------------------------------- explain
        occlusion, slot = occlusion_nodes(
            g, sv=sv, where_sorted=where_sorted, m=m, s_doc=s_doc, n_sent=n_sent,
            d_start=d_start, rows2=rows2, kernel=d_kernel, bias=d_bias, ks=ks, f2=len(bias2),
            k2=k2, document_mean=config.document_mean, top_k=top_k,
            in_position_order=in_position_order, head=head, probabilities=probabilities,
            wide=None if wide is None else wide.without_sentences(where_sorted, s_doc))
        sentence_span_nodes(g, explain, at=at, s_first=s_first, kept=kept, s_doc=s_doc,
                            rows2=rows2, scores=occlusion, slot=slot, n_docs=n_docs,
                            offsets=offsets)
    return g.nodes, g.inits


def occlusion_nodes(g, *, sv: str, where_sorted: str, m: str, s_doc: str, n_sent: str,
                    d_start: str, rows2: str, kernel: str, bias: str, ks: int, f2: int, k2: int,
                    document_mean: bool, top_k, in_position_order, head, probabilities: str,
                    wide: str | None = None) -> tuple[str, str]:
    """Each kept sentence's effect on the probabilities: ``p(c | text) - p(c | text without
    the sentence)``, float[M, C] for the batch's M kept sentences (in stream order), and
    each sentence's slot ``doc * S_b + sentence`` (int64[M]) in the (N, S_b) grid.

    "Without the sentence" is the text with that sentence deleted: the later sentences move
    up one place, the masked mean counts one sentence fewer (the Keras model on the grid with
    that row removed and a padding row appended; a text longer than the grid does not pull its
    first unread sentence in). Only the sentence convolution, its pooling and the head run
    again, and not even the convolution's matrix products: the sentence convolution is
    linear in its input, so ``x_i @ W_t`` is computed once per sentence ``i`` and tap ``t``,
    and every variant's convolution is a sum of ``ks`` of those rows. To get all ``x_i @ W_t``
    from the very Conv (and kernel initializer, so :mod:`.quantize` stores it once) the
    sentence vectors go ``ks`` positions apart, each at offset ``sr`` of its block: every
    output position then sees one sentence through one tap (``x_i @ W_t`` lands at
    ``i * ks + ks - 1 - t``)."""
    from onnx import helper

    const, node = g.const, g.node
    zero, one = g.name("zero"), g.name("one")
    sl, sr = same_padding(ks)
    minus1 = const("x/minus1", np.array([-1], np.int64))

    def arange(n: str, out: str) -> str:      # n: int64[1]
        return node("Range", [const(out + "/start", np.array(0, np.int64)),
                              node("Squeeze", [n, zero], out + "/n"),
                              const(out + "/step", np.array(1, np.int64))], out)

    # ------------------------------------------------ x_i @ W_t for every sentence and tap
    rows = node("Slice", [node("Shape", [sv], "x/sv_shape"), zero, one], "x/rows")  # [M + 1]
    c2 = node("Slice", [g.name("x/sv_shape"), one, const("x/two", np.array([2], np.int64))],
              "x/c2")
    parts = []
    for tag, width in (("pad_before", sr), ("pad_after", ks - 1 - sr)):
        if width:
            parts.append((tag, node("ConstantOfShape", [node("Concat", [
                rows, const(f"x/{tag}_w", np.array([width], np.int64)), c2], f"x/{tag}_shape",
                axis=0)], f"x/{tag}", value=helper.make_tensor("v", 1, [1], [0.0]))))
    spread = node("Concat", [p for t, p in parts if t == "pad_before"]
                  + [node("Unsqueeze", [sv, one], "x/sv_1")]
                  + [p for t, p in parts if t == "pad_after"], "x/spread", axis=1)  # (M+1, ks, c2)
    flat = node("Reshape", [spread, node("Concat", [minus1, c2], "x/flat_shape", axis=0)],
                "x/spread_flat")                                           # ((M+1) ks, c2)
    x = node("Unsqueeze", [node("Transpose", [flat], "x/spread_t", perm=[1, 0]),
                           const("x/axes02", np.array([0, 2], np.int64))], "x/in")  # (1,c2,1,L)
    taps = node("Conv", [x, kernel], "x/conv", kernel_shape=[1, ks], pads=[0, sl, 0, sr],
                strides=[1, 1], dilations=[1, 1], group=1)                  # (1, f2, 1, L)
    taps = node("Transpose", [node("Reshape", [taps, const("x/taps_shape", np.array(
        [f2, -1], np.int64))], "x/taps_2d")], "x/taps", perm=[1, 0])        # (L, f2)

    # ------------------------------------------------ every variant's convolution input
    v = arange(node("Shape", [s_doc], "x/m"), "x/v")                           # [V]
    d_first = node("Gather", [d_start, s_doc], "x/d_first")                    # [V]
    j = node("Sub", [v, d_first], "x/j")                                       # [V]
    left = node("Sub", [node("Gather", [n_sent, s_doc], "x/n"), const(
        "x/one_s", np.array(1, np.int64))], "x/left")                          # n - 1, [V]

    axes12 = const("x/axes12", np.array([1, 2], np.int64))

    def cube(x: str, out: str) -> str:        # [V] -> [V, 1, 1]
        return node("Unsqueeze", [x, axes12], out)

    width2 = node("Slice", [node("Shape", [rows2], "x/rows2_shape"), one, const(
        "x/two_e", np.array([2], np.int64))], "x/sb")                          # [1]: S_b
    p = node("Unsqueeze", [arange(width2, "x/p"), const("x/axes02b", np.array([0, 2],
                                                                              np.int64))],
             "x/p_3d")                                                         # (1, S_b, 1)
    t = const("x/t", np.arange(ks, dtype=np.int64).reshape(1, 1, ks))
    q = node("Sub", [node("Add", [p, t], "x/pt"), const("x/sl", np.array(sl, np.int64))],
             "x/q")                                                            # (1, S_b, ks)
    valid = node("And", [node("GreaterOrEqual", [q, const("x/zero_s", np.array(0, np.int64))],
                              "x/q_pos"),
                         node("Less", [q, cube(left, "x/left_3d")], "x/q_in")], "x/valid")
    after = node("Cast", [node("GreaterOrEqual", [q, cube(j, "x/j_3d")], "x/after_b")],
                 "x/after", to=INT64)
    sentence = node("Add", [cube(d_first, "x/d_first_3d"), node("Add", [q, after], "x/o")],
                    "x/sentence")                                              # (V, S_b, ks)
    sentence = node("Where", [valid, sentence, node("Squeeze", [m, zero], "x/m_s")],
                    "x/sentence_ok")
    row = node("Gather", [where_sorted, sentence], "x/row")                    # m: zeros
    index = node("Add", [node("Mul", [row, const("x/ks", np.array(ks, np.int64))], "x/row_ks"),
                         const("x/tap", (ks - 1 - np.arange(ks, dtype=np.int64)).reshape(
                             1, 1, ks))], "x/index")
    # one Gather per tap, added: a ReduceSum over the tap axis of one (V, S_b, ks, f2)
    # Gather took twice as long in onnxruntime
    y = ""
    for tap in range(ks):
        picked = node("Gather", [taps, node("Gather", [index, const(
            f"x/tap{tap}", np.array(tap, np.int64))], f"x/index{tap}", axis=2)],
            f"x/picked{tap}")                                                  # (V, S_b, f2)
        y = picked if not y else node("Add", [y, picked], f"x/sum{tap}")
    y = node("Relu", [node("Add", [y, node("Reshape", [bias, minus1], "x/bias")], "x/biased")],
             "x/y")                                                            # (V, S_b, f2)
    y_t = node("Transpose", [y], "x/y_t", perm=[2, 0, 1])                     # (f2, V, S_b)
    pooled = in_position_order(*top_k(y_t, k2, "x/top"), k2, "x/kmax")        # (f2, V, k2)
    doc = node("Reshape", [node("Transpose", [pooled], "x/kmax_t", perm=[1, 2, 0]),
                           const("x/flat2", np.array([0, -1], np.int64))], "x/kmax_flat")
    if document_mean:
        real = node("Unsqueeze", [node("Cast", [node("Less", [
            node("Squeeze", [p, const("x/axis2b", np.array([2], np.int64))], "x/p_2d"),
            node("Unsqueeze", [left, one], "x/left_2d")], "x/real_b")], "x/real_f", to=FLOAT),
            minus1], "x/real")                                                 # (V, S_b, 1)
        total = node("ReduceSum", [node("Mul", [y, real], "x/masked"), one], "x/total",
                     keepdims=0)
        count = node("Max", [node("ReduceSum", [real, one], "x/count0", keepdims=0),
                             const("x/one_f", np.array(1, np.float32))], "x/count")
        doc = node("Concat", [doc, node("Div", [total, count], "x/mean")], "x/vector", axis=1)
    logits = head(doc, "x/")
    if wide is not None:        # the wide part's scores without the sentence, (V, C)
        logits = node("Add", [logits, wide], "x/scores_wide")
    without = node("Softmax", [logits], "x/probabilities", axis=-1)           # (V, C)
    scores = node("Sub", [node("Gather", [probabilities, s_doc], "x/with"), without],
                  "x/scores")
    slot = node("Add", [node("Mul", [s_doc, width2], "x/slot_row"), j], "x/slot")
    return scores, slot

class WideScores:
    """:class:`~tlc.train.layers.HashedNgrams` over the sentence runs of the word level.

    Each run's grid of ids (padding id 0 past a sentence's end) gives every sentence's sum of
    piece rows and of neighbour-pair rows (a pair: two real ids side by side in one row, as
    in the Keras grid); the sentences' sums reach their documents through the same rows the
    sentence vectors take (padding slots read a zero row), and a document's count of pieces
    and pairs is the sum of its sentences' ``2 * length - 1``. Dense Gathers and ReduceSums
    only: an add-scatter of every token's row into its document (ScatterND) made scoring
    14% slower than the network without the wide part."""

    def __init__(self, g: Nodes, table: np.ndarray, scale: np.ndarray, buckets: int) -> None:
        from ..train.model import WIDE_HASH
        from .quantize import WIDE_TABLE

        self.g, self.scale = g, float(scale)
        table = table.copy()
        table[0] = 0.0                  # the padding id: the Keras layer masks it out
        self.rows = g.const(WIDE_TABLE, table)
        self.hash = g.const("wide/hash", np.array(WIDE_HASH, np.int64))
        self.buckets = g.const("wide/buckets", np.array(buckets, np.int64))
        self.vocab = g.const("wide/vocab", np.array(len(table) - buckets, np.int64))
        # the int64[1] constants token_coordinates already put in the graph
        self.zero, self.one = g.name("zero"), g.name("one")
        self.minus1, self.big = g.name("minus1"), g.name("big")
        self.width = table.shape[1]

    def sentence_sums(self, cells: str, tag: str) -> str:
        """(rows, C): each row of the int32 id grid ``cells`` summed over its pieces and
        pairs (padding ids add the zero row 0; pairs with a padding id are masked)."""
        node, t = self.g.node, f"{tag}/wide"
        ids = node("Cast", [cells], f"{t}/ids", to=INT64)
        singles = node("ReduceSum", [node("Gather", [self.rows, ids], f"{t}/single"),
                                     self.one], f"{t}/single_sum", keepdims=0)
        first = node("Slice", [ids, self.zero, self.minus1, self.one], f"{t}/first")
        second = node("Slice", [ids, self.one, self.big, self.one], f"{t}/second")
        real = node("Cast", [node("And", [
            node("Greater", [first, self.zero], f"{t}/first_real"),
            node("Greater", [second, self.zero], f"{t}/second_real")], f"{t}/pair_b")],
            f"{t}/pair", to=FLOAT)
        bucket = node("Add", [node("Mod", [node("Add", [node("Mul", [first, self.hash],
                                                              f"{t}/a"), second], f"{t}/ab"),
                                           self.buckets], f"{t}/mod", fmod=0), self.vocab],
                      f"{t}/bucket")
        pairs = node("Mul", [node("Gather", [self.rows, bucket], f"{t}/pair_rows"),
                             node("Unsqueeze", [real, self.minus1], f"{t}/pair_c")],
                     f"{t}/paired")
        return node("Add", [singles, node("ReduceSum", [pairs, self.one], f"{t}/pair_sum",
                                          keepdims=0)], f"{t}/sum")

    def document_scores(self, parts: list[str], len_sorted: str, rows_sorted: str) -> str:
        """(N, C): the documents' mean rows times the scale. ``parts``: each group's
        sentence sums, concatenated in the sorted order that ``rows_sorted`` (N, S_b) indexes
        (its padding index is one past the last sentence)."""
        const, node = self.g.const, self.g.node
        sums = node("Concat", [*parts, const("wide/zero_row", np.zeros((1, self.width),
                                                                    np.float32))],
                    "wide/sums", axis=0)                                          # (M + 1, C)
        two = const("wide/two", np.array(2, np.int64))
        counts = node("Concat", [node("Cast", [node("Sub", [node("Mul", [len_sorted, two],
                                                                 "wide/len2"), const(
                                                            "wide/one_s", np.array(1, np.int64))],
                                                  "wide/n_rows")], "wide/n_rows_f", to=FLOAT),
                                 const("wide/zero_f", np.zeros(1, np.float32))],
                      "wide/counts", axis=0)                                      # (M + 1,)
        total = node("ReduceSum", [node("Gather", [sums, rows_sorted], "wide/doc_rows"),
                                   self.one], "wide/total", keepdims=0)           # (N, C)
        count = node("ReduceSum", [node("Gather", [counts, rows_sorted], "wide/doc_counts"),
                                   self.one], "wide/count0", keepdims=0)          # (N,)
        self.sums, self.counts, self.total, self.count0 = sums, counts, total, count
        count = node("Max", [count, const("wide/one_f", np.array(1, np.float32))], "wide/count")
        # total * (scale / count), in the Keras layer's order of operations
        factor = node("Div", [const("wide/scale", np.array(self.scale, np.float32)), count],
                      "wide/factor")
        return node("Mul", [total, node("Unsqueeze", [factor, self.one], "wide/factor_c")],
                    "wide/mean")

    def without_sentences(self, where_sorted: str, s_doc: str) -> str:
        """(V, C) for explain's occlusion variants (after :meth:`document_scores`): the
        wide scores of each kept sentence's document (``s_doc``, stream order) with that
        sentence's pieces and pairs taken out of the mean (no pair crosses sentences, so
        that is the document without the sentence)."""
        const, node = self.g.const, self.g.node
        rows = node("Slice", [where_sorted, self.zero, self.minus1], "wide/v_rows")  # [V]
        total = node("Sub", [node("Gather", [self.total, s_doc], "wide/v_total"),
                             node("Gather", [self.sums, rows], "wide/v_sums")], "wide/v_rest")
        count = node("Max", [node("Sub", [node("Gather", [self.count0, s_doc], "wide/v_n"),
                                          node("Gather", [self.counts, rows], "wide/v_c")],
                                  "wide/v_left"),
                             const("wide/v_one", np.array(1, np.float32))], "wide/v_count")
        factor = node("Div", [const("wide/v_scale", np.array(self.scale, np.float32)), count],
                      "wide/v_factor")
        return node("Mul", [total, node("Unsqueeze", [factor, self.one], "wide/v_factor_c")],
                    "wide/v_mean")
