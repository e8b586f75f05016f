"""The lossless size pass (tlc.export.compact): bit-packed boolean tables, short names."""

from __future__ import annotations

import numpy as np
import pytest

from tlc.export.compact import compact


def _model(table_size=3001):
    """ids (N,) -> (flag[ids] as float) * weight[ids]: a boolean and a float table."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    flags = rng.random(table_size) < 0.3
    weight = rng.normal(size=table_size).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["a/very/long/flag/table/name", "ids"], ["some/long/f"],
                         name="a/long/node/name/one"),
        helper.make_node("Cast", ["some/long/f"], ["some/long/ff"], to=1, name="cast/it"),
        helper.make_node("Gather", ["weights/of/something", "ids"], ["some/long/w"]),
        helper.make_node("Mul", ["some/long/ff", "some/long/w"], ["out"], name="the/product"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(flags, "a/very/long/flag/table/name"),
         numpy_helper.from_array(weight, "weights/of/something")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, flags, weight


def _run(model, ids):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"ids": ids})[0]


@pytest.mark.parametrize("size", [3001, 4096])      # a ragged and a whole last byte
def test_compact_changes_bytes_not_numbers(size, tmp_path):
    import onnx
    import onnxruntime as ort

    model, flags, weight = _model(size)
    small = compact(model)
    onnx.checker.check_model(small, full_check=True)
    ids = np.arange(size, dtype=np.int64)
    assert np.array_equal(_run(small, ids), flags * weight)
    assert np.array_equal(_run(small, ids), _run(model, ids))
    assert small.ByteSize() < model.ByteSize() - size // 2     # ~7/8 of the table saved
    inits = {t.name: t for t in small.graph.initializer}
    assert not [t for t in inits.values() if t.data_type == 9 and len(t.raw_data) >= 1024]
    # the interface keeps its names; everything inside is short
    assert [v.name for v in small.graph.input] == ["ids"]
    assert [v.name for v in small.graph.output] == ["out"]
    inside = [*inits, *(o for n in small.graph.node for o in n.output if o != "out"),
              *(n.name for n in small.graph.node)]
    assert max(len(name) for name in inside) <= 3
    # the unpacking is folded when the session loads: the optimised graph is the original one
    def optimized_ops(m, name):
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / name)
        ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return sorted(n.op_type for n in onnx.load(str(tmp_path / name)).graph.node)

    assert optimized_ops(small, "small.onnx") == optimized_ops(model, "model.onnx")


def test_compact_twice_is_still_exact():
    model, flags, weight = _model()
    twice = compact(compact(model))
    ids = np.array([0, 5, 3000], np.int64)
    assert np.array_equal(_run(twice, ids), (flags * weight)[ids])
