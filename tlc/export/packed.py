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
                         groups: int = GROUPS, opset: int = 17):
    """Nodes and initializers: the tokenizer's flat ``ids`` (int32[total]) and ``offsets``
    (int64[N + 1]) -> ``probabilities`` (float[N, C]) for a model of ``config``
    (:class:`~tlc.train.model.ModelConfig`) with ``weights`` (:func:`keras_weights`)."""
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
    conv2 = node("Conv", [x2, const("d/kernel", np.ascontiguousarray(
        kernel2.transpose(2, 1, 0)[:, :, None, :]))], "d/conv", kernel_shape=[1, ks],
        pads=[0, sl, 0, sr], strides=[1, 1], dilations=[1, 1], group=1)
    y2 = node("Relu", [node("Add", [node("Squeeze", [conv2, zero], "d/conv_3d"), const(
        "d/bias", bias2[:, None, None])], "d/biased")], "d/y")                 # (f2, N, S_b)
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
    if "hidden" in weights:
        wh, bh = weights["hidden"]
        doc = node("Relu", [node("Add", [node("MatMul", [doc, const("h/kernel", wh)], "h/mm"),
                                         const("h/bias", bh)], "h/add")], "h/relu")
    wo, bo = weights["output"]
    logits = node("Add", [node("MatMul", [doc, const("o/kernel", wo)], "o/mm"),
                          const("o/bias", bo)], "o/logits")
    if wide is not None:
        logits = node("Add", [logits, wide.document_scores(
            wide_parts, len_sorted, rows_sorted)], "o/scores")
    g.nodes.append(helper.make_node("Softmax", [logits], [probabilities],
                                    name=g.name("o/softmax"), axis=-1))
    return g.nodes, g.inits



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
        self.hash = g.const("x/hash", np.array(WIDE_HASH, np.int64))
        self.buckets = g.const("x/buckets", np.array(buckets, np.int64))
        self.vocab = g.const("x/vocab", np.array(len(table) - buckets, np.int64))
        self.zero = g.const("x/zero", np.array([0], np.int64))
        self.one = g.const("x/one", np.array([1], np.int64))
        self.minus1 = g.const("x/minus1", np.array([-1], np.int64))
        self.big = g.const("x/big", np.array([np.iinfo(np.int64).max], np.int64))
        self.width = table.shape[1]

    def sentence_sums(self, cells: str, tag: str) -> str:
        """(rows, C): each row of the int32 id grid ``cells`` summed over its pieces and
        pairs (padding ids add the zero row 0; pairs with a padding id are masked)."""
        node, t = self.g.node, f"{tag}/x"
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
        sums = node("Concat", [*parts, const("x/zero_row", np.zeros((1, self.width),
                                                                    np.float32))],
                    "x/sums", axis=0)                                          # (M + 1, C)
        two = const("x/two", np.array(2, np.int64))
        counts = node("Concat", [node("Cast", [node("Sub", [node("Mul", [len_sorted, two],
                                                                 "x/len2"), const(
                                                            "x/one_s", np.array(1, np.int64))],
                                                  "x/n_rows")], "x/n_rows_f", to=FLOAT),
                                 const("x/zero_f", np.zeros(1, np.float32))],
                      "x/counts", axis=0)                                      # (M + 1,)
        total = node("ReduceSum", [node("Gather", [sums, rows_sorted], "x/doc_rows"),
                                   self.one], "x/total", keepdims=0)           # (N, C)
        count = node("ReduceSum", [node("Gather", [counts, rows_sorted], "x/doc_counts"),
                                   self.one], "x/count0", keepdims=0)          # (N,)
        count = node("Max", [count, const("x/one_f", np.array(1, np.float32))], "x/count")
        # total * (scale / count), in the Keras layer's order of operations
        factor = node("Div", [const("x/scale", np.array(self.scale, np.float32)), count],
                      "x/factor")
        return node("Mul", [total, node("Unsqueeze", [factor, self.one], "x/factor_c")],
                    "x/mean")
