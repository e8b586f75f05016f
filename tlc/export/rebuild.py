"""Nodes that rebuild a tensor from compactly stored initializers.

Both the quantised weights (:mod:`.quantize`) and the bit-packed lookup tables
(:mod:`.compact`) are stored small and rebuilt by nodes that read initializers only.
onnxruntime's constant folding runs such nodes once, when the session loads, so they cost
nothing per batch. Ops are kept to opset 13-17 basics (Cast, Mul, Sub, BitShift, Reshape...),
which every onnxruntime since 1.10 folds.
"""

from __future__ import annotations

import numpy as np

FLOAT, INT64, BOOL = 1, 7, 9        # onnx.TensorProto data types


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(R, W) of 0/1 -> (R, ceil(W/8)) uint8, element 8j+k in bit k of byte j."""
    return np.packbits(np.asarray(bits, np.uint8), axis=1, bitorder="little")


def pack_nibbles(values: np.ndarray) -> np.ndarray:
    """(R, W) of 0..15 -> (R, ceil(W/2)) uint8, the even column in the low nibble."""
    v = np.asarray(values, np.uint8)
    if v.shape[1] % 2:
        v = np.concatenate([v, np.zeros((len(v), 1), np.uint8)], axis=1)
    return (v[:, 0::2] | (v[:, 1::2] << 4)).astype(np.uint8)


class Builder:
    """Collects rebuilding nodes and the initializers they read; every name gets ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.nodes, self.inits = prefix, [], []

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value), self.prefix + name))
        return self.prefix + name

    def node(self, op: str, inputs: list[str], out: str, exact: bool = False, **attrs) -> str:
        """A node with output ``prefix + out`` (``out`` itself where ``exact``: the name of
        the tensor it rebuilds)."""
        from onnx import helper

        name = out if exact else self.prefix + out
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def install(self, graph, replaced: set[str]) -> None:
        """Put the collected nodes and initializers into ``graph`` in place of the
        initializers named in ``replaced`` (the nodes now produce those names). The new
        nodes go first: they read initializers only."""
        kept = [t for t in graph.initializer if t.name not in replaced]
        del graph.initializer[:]
        graph.initializer.extend(kept + self.inits)
        nodes = self.nodes + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)

    def scaled(self, tag: str, values: str, scale: np.ndarray, out: str | None = None) -> str:
        """float32 = values * float(scale) (``scale`` float16, shaped to broadcast);
        written to ``out`` exactly where given."""
        s = self.node("Cast", [self.const(tag + "/scale", scale)], tag + "/scale_f", to=FLOAT)
        return self.node("Mul", [values, s], out or tag + "/rows", exact=out is not None)

    def dequantize_rows(self, tag: str, codes: np.ndarray, scale: np.ndarray,
                        out: str | None = None) -> str:
        """float32 = float(codes) * scale, ``scale`` shaped to broadcast over ``codes``;
        written to ``out`` exactly where given."""
        c = self.node("Cast", [self.const(tag + "/codes", codes)], tag + "/codes_f", to=FLOAT)
        return self.scaled(tag, c, scale, out)

    def _split(self, tag: str, packed: str, rows: int, per_byte: int, width: int,
               shift: int, mask_bits: int) -> str:
        """float32 (rows, width): the ``per_byte`` fields of ``mask_bits`` bits each of every
        byte of ``packed`` (rows, B), lowest field first: with low = p >> s_k (uint8
        BitShift), field_k = low - (low >> bits) * 2**bits (on floats)."""
        shifts = np.arange(per_byte, dtype=np.uint8) * shift
        p3 = self.node("Unsqueeze", [packed, self.const(tag + "/last", np.array([-1], np.int64))],
                       tag + "/p3")                                        # (R, B, 1)
        low = self.node("BitShift", [p3, self.const(tag + "/shifts", shifts)], tag + "/lo",
                        direction="RIGHT")                                 # p >> s_k
        step = self.const(tag + "/step", np.array(mask_bits, np.uint8))
        high = self.node("BitShift", [low, step], tag + "/hi",
                         direction="RIGHT")                                # p >> (s_k + bits)
        lf = self.node("Cast", [low], tag + "/lo_f", to=FLOAT)
        hf = self.node("Cast", [high], tag + "/hi_f", to=FLOAT)
        field = self.node("Sub", [lf, self.node("Mul", [hf, self.const(
            tag + "/radix", np.array(2 ** mask_bits, np.float32))], tag + "/hi_r")],
            tag + "/field")                                                # (R, B, per_byte)
        flat = self.node("Reshape", [field, self.const(
            tag + "/shape", np.array([rows, -1], np.int64))], tag + "/flat")
        # the last byte may carry padding fields past ``width``
        return self.node("Slice", [flat, self.const(tag + "/from", np.array([0], np.int64)),
                                   self.const(tag + "/to", np.array([width], np.int64)),
                                   self.const(tag + "/axis", np.array([1], np.int64))],
                         tag + "/cut")

    def unpack_nibbles(self, tag: str, packed: np.ndarray, width: int) -> str:
        """float32 (R, width) of 0..15 from :func:`pack_nibbles` output."""
        return self._split(tag, self.const(tag + "/packed", packed), len(packed), 2, width,
                           4, 4)

    def unpack_bits(self, tag: str, packed: np.ndarray, width: int) -> str:
        """float32 (R, width) of 0/1 from :func:`pack_bits` output."""
        return self._split(tag, self.const(tag + "/packed", packed), len(packed), 8, width,
                           1, 1)

    def unpack_planes(self, tag: str, values: np.ndarray, bits: int, width: int) -> str:
        """float32 (1, width) of the unsigned ``bits``-bit ``values`` (1, width), stored as
        ``bits`` bit planes, each packed by :func:`pack_bits` (bits * width / 8 bytes)."""
        values = np.asarray(values, np.uint8)
        total = None
        for p in range(bits):
            plane = self.unpack_bits(f"{tag}/p{p}", pack_bits((values >> p) & 1), width)
            if p:
                plane = self.node("Mul", [plane, self.const(
                    f"{tag}/w{p}", np.array(2 ** p, np.float32))], f"{tag}/x{p}")
            total = plane if total is None else self.node("Add", [total, plane],
                                                          f"{tag}/sum{p}")
        return total
