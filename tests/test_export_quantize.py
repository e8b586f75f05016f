"""Weight quantisation (tlc.export.quantize) and `tlc export --quantize`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_model import train_tiny_run
from typer.testing import CliRunner

import tlc.export  # noqa: F401  (import order: extensions before TensorFlow)
from tlc.cli import app
from tlc.errors import TlcError
from tlc.export.exporter import Split, export
from tlc.export.quantize import (
    ROW_BITS,
    allocate_bits,
    coded_rows,
    frequent_rows,
    int8_rows,
    low_bit_rows,
    quantize_weights,
    row_bits,
    row_bytes,
    row_weights,
)
from tlc.session import open_session

runner = CliRunner()
LOOSE = {"min_agreement": 0.0, "max_accuracy_drop": 100.0}   # a 1-epoch model sits near 0.5


def _toy_model(vocab=300, dim=9, filters=40, seed=0):
    """ids (N, T) -> Gather(embedding) -> Conv over T (as N, D, 1, T) -> MatMul -> out."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocab, dim)).astype(np.float32)
    table[5] = 0.0                                      # an all-zero row must survive
    conv = rng.normal(size=(filters, dim, 1, 3)).astype(np.float32)
    dense = rng.normal(size=(filters, 70)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], axis=0),          # (N, T, D)
        helper.make_node("Transpose", ["e"], ["et"], perm=[0, 2, 1]),         # (N, D, T)
        helper.make_node("Unsqueeze", ["et", "two"], ["e4"]),                 # (N, D, 1, T)
        helper.make_node("Conv", ["e4", "conv"], ["c"], pads=[0, 1, 0, 1]),   # (N, F, 1, T)
        helper.make_node("ReduceMax", ["c"], ["m"], axes=[2, 3], keepdims=0),  # (N, F)
        helper.make_node("MatMul", ["m", "dense"], ["out"]),                  # (N, 70)
    ]
    inits = [numpy_helper.from_array(table, "table"), numpy_helper.from_array(conv, "conv"),
             numpy_helper.from_array(dense, "dense"),
             numpy_helper.from_array(np.array([2], np.int64), "two")]
    graph = helper.make_graph(
        nodes, "toy", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 7])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 70])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, {"table": table, "conv": conv, "dense": dense}


def _reference(weights, ids):
    e = weights["table"][ids]                                          # (N, T, D)
    padded = np.pad(e, ((0, 0), (1, 1), (0, 0)))
    w = weights["conv"][:, :, 0, :]                                    # (F, D, 3)
    c = sum(np.einsum("ntd,fd->ntf", padded[:, k:k + e.shape[1]], w[:, :, k])
            for k in range(3))
    return c.max(axis=1) @ weights["dense"]


def test_codes_rebuild_exactly_and_stay_in_range():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(20, 9)).astype(np.float32)
    values[3] = 0.0
    codes, scale, back = int8_rows(values)
    assert codes.dtype == np.int8 and np.abs(codes).max() <= 127 and scale.dtype == np.float16
    assert np.array_equal(back, codes.astype(np.float32) * scale.astype(np.float32)[:, None])
    assert np.abs(back - values).max() <= (scale.astype(np.float32).max() / 2) + 1e-6
    assert np.all(back[3] == 0)
    for bits, limit in ((4, 7), (5, 15)):
        stored, scale_lo, back_lo = low_bit_rows(values, bits)
        packed = stored["nibbles"]
        assert packed.shape == (20, 5) and packed.dtype == np.uint8    # 9 columns -> 5 bytes
        u = np.stack([packed & 15, packed >> 4], -1).reshape(20, 10)[:, :9].astype(int)
        if bits == 5:
            assert stored["top"].shape == (20, 2)                     # 9 bits -> 2 bytes
            u += 16 * np.unpackbits(stored["top"], axis=1, bitorder="little")[:, :9]
        else:
            assert set(stored) == {"nibbles"}
        codes = u - (limit + 1)
        assert np.abs(codes).max() <= limit and np.abs(codes).max() == limit
        assert np.allclose(back_lo, codes * scale_lo.astype(np.float32)[:, None])
        assert np.all(back_lo[3] == 0)


def test_frequent_rows_takes_top_scores_but_never_byte_pieces():
    scores = np.array([0, 0, 0, 0, -1, -5, -2, -3, -9], np.float32)
    is_byte = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0], bool)
    mask = frequent_rows(scores, is_byte, 5)
    assert mask.tolist() == [True, True, False, False, True, False, True, True, False]
    # 8 bits for the top 3 by score, 5 for the next two (-2, -3); -5, -9 and the byte
    # pieces stay at 4
    bits = row_bits(scores, is_byte, 3, 2)
    assert bits.tolist() == [8, 8, 4, 4, 8, 4, 5, 5, 4]


def _optimized(model, path):
    """The graph onnxruntime runs after its load-time optimisations (constant folding...)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return onnx.load(str(path))


@pytest.mark.parametrize("mixed", [False, True])
def test_quantized_graph_equals_its_numpy_reference_and_folds(mixed, tmp_path):
    import onnx
    import onnxruntime as ort

    model, weights = _toy_model()
    bits = None
    if mixed:                                   # several segments of each precision
        bits = np.full(300, 4, np.int8)
        bits[:40] = bits[100:180] = bits[299] = 8
        bits[40:60] = bits[250:290] = 5
    q, report = quantize_weights(model, bits)
    onnx.checker.check_model(q, full_check=True)
    kinds = {w["kind"]: w for w in report["weights"]}
    assert set(kinds) == {"embedding", "conv", "dense"}
    emb = kinds["embedding"]
    assert [emb[f"int{n}_rows"] for n in (8, 5, 4)] == ([300, 0, 0] if not mixed else
                                                         [121, 60, 119])
    # (mixed: nine runs of rebuilding nodes weigh on a table this small)
    assert q.ByteSize() < model.ByteSize() * (0.8 if mixed else 0.5)
    # int8: 9 code bytes + a 2-byte scale a row; 4-bit rows 5 + 2; 5-bit 5 + 2 (top bits) + 2
    assert emb["stored_bytes"] == (300 * 11 if not mixed else 121 * 11 + 119 * 7 + 60 * 9)

    # what the graph should rebuild, computed here with the same codes
    want = dict(weights)
    conv = weights["conv"]                              # per output channel = axis 0
    want["conv"] = int8_rows(conv.reshape(len(conv), -1))[2].reshape(conv.shape)
    want["dense"] = int8_rows(weights["dense"].T)[2].T
    table = int8_rows(weights["table"])[2]
    if mixed:                                   # each run of rows is coded on its own
        for a, b, n in ((40, 60, 5), (60, 100, 4), (180, 250, 4), (250, 290, 5),
                        (290, 299, 4)):
            table[a:b] = low_bit_rows(weights["table"][a:b], n)[2]
    want["table"] = table
    assert np.all(table[5] == 0)

    ids = np.random.default_rng(2).integers(0, 300, size=(4, 7))
    session = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"ids": ids})[0]
    assert np.allclose(got, _reference(want, ids), rtol=1e-4, atol=1e-3)
    assert not np.allclose(got, _reference(weights, ids), rtol=1e-6, atol=1e-6)

    # onnxruntime folds the rebuilding nodes away when it loads the file: at run time the
    # graph is the float one, which is why the quantised file is not slower
    ran = [n.op_type for n in _optimized(q, tmp_path / "q.onnx").graph.node]
    assert ran == [n.op_type for n in _optimized(model, tmp_path / "f.onnx").graph.node]


def test_rows_stored_grouped_by_width_rebuild_in_row_order_and_fold(tmp_path):
    """Any width 3..8 per row, in any order: the graph gives back each row as coded, and
    onnxruntime folds the width map, the bit planes and the reordering away."""
    import onnxruntime as ort

    model, weights = _toy_model()
    table = weights["table"]
    hessian = np.eye(table.shape[1]) + 0.1
    bits = np.random.default_rng(3).choice(ROW_BITS, len(table)).astype(np.int8)
    q, report = quantize_weights(model, bits, hessian)
    emb = next(w for w in report["weights"] if w["kind"] == "embedding")
    assert [emb[f"int{n}_rows"] for n in range(8, 2, -1)] == [
        int((bits == n).sum()) for n in range(8, 2, -1)]
    # bit planes packed over each group, a float16 scale a row, 2 bits a row of width map
    # (``bits`` holds 6 widths: 3 bits a row)
    planes = sum(int(np.ceil((bits == n).sum() * 9 * n / 8)) for n in ROW_BITS)
    assert emb["stored_bytes"] == planes + 2 * len(table) + int(np.ceil(300 * 3 / 8))
    want = dict(weights)
    want["table"] = np.empty_like(table)
    for n in ROW_BITS:
        want["table"][bits == n] = coded_rows(table[bits == n], int(n), hessian)[2]
    assert np.all(want["table"][5] == 0)
    conv = weights["conv"]
    want["conv"] = int8_rows(conv.reshape(len(conv), -1))[2].reshape(conv.shape)
    want["dense"] = int8_rows(weights["dense"].T)[2].T
    ids = np.arange(294).reshape(42, 7)                   # the toy graph reads 7 ids a row
    session = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.allclose(session.run(None, {"ids": ids})[0], _reference(want, ids),
                       rtol=1e-4, atol=1e-3)
    ran = [n.op_type for n in _optimized(q, tmp_path / "q.onnx").graph.node]
    assert ran == [n.op_type for n in _optimized(model, tmp_path / "f.onnx").graph.node]


def test_coded_rows_lose_less_with_more_bits():
    values = np.random.default_rng(4).normal(size=(200, 12)).astype(np.float32)
    hessian = np.eye(12)
    errors = [coded_rows(values, n, hessian)[3].sum() for n in ROW_BITS]
    assert all(a > 2 * b for a, b in zip(errors, errors[1:], strict=False))
    codes, scale, back, err = coded_rows(values, 3, hessian)
    assert codes.min() >= -3 and codes.max() <= 3 and scale.dtype == np.float16
    d = back.astype(np.float64) - values
    assert np.allclose(err, (d * d).sum(1), rtol=1e-3)


def test_allocate_bits_spends_the_budget_where_rows_are_read_most():
    rows, width = 400, 10
    weight = row_weights(np.linspace(0, -12, rows), np.zeros(rows, bool))
    errors = {n: np.full(rows, 4.0 ** -n) for n in ROW_BITS}        # rows alike but for use
    for budget in (rows * 6.0, rows * 8.5, rows * 11.0):      # 5.75 to 12 bytes a row
        bits = allocate_bits(errors, weight, budget, width)
        spent = sum(row_bytes(int(n), width) for n in bits)
        assert budget - 2 * row_bytes(8, width) < spent <= budget   # the budget, spent
        assert np.all(np.diff(bits) <= 0)               # commoner rows never get fewer bits
        assert bits[0] == bits[1] == bits.max()         # <pad>, <unk> weigh most
    assert set(allocate_bits(errors, weight, 1e9, width)) == {8}
    assert set(allocate_bits(errors, weight, 0.0, width)) == {3}
    # a row that rounding moves more gets more bits than its equally used neighbours
    errors = {n: np.full(rows, 4.0 ** -n) for n in ROW_BITS}
    errors = {n: e * np.where(np.arange(rows) == 200, 100.0, 1.0) for n, e in errors.items()}
    bits = allocate_bits(errors, np.ones(rows), rows * 8.0, width)
    assert bits[200] > bits[199]


def test_row_weights_follow_unigram_probability():
    scores = np.array([0.0, 0.0, -1.0, -2.0, 0.0, -9.0])
    is_byte = np.array([False, False, False, False, True, False])
    w = row_weights(scores, is_byte)
    assert w[0] == w[1] == w.max()                      # <pad>, <unk>
    assert w[2] > w[3] > w[5] and w[4] == w[5]          # a byte piece counts as the rarest
    assert np.isclose(w[2] / w[3], np.e)


def test_ratio_pins_a_size_target_or_says_it_is_out_of_reach(run_dir, tmp_path):
    from tlc.export.exporter import OutOfReach

    plain = export(run_dir, tmp_path / "f.onnx", validate=False, say=lambda m: None)
    report = export(run_dir, tmp_path / "r.onnx", quantize=True, ratio=1.02, validate=False,
                    say=lambda m: None)
    q = report["quantization"]
    assert q["target_ratio"] == 1.02 and q["float32_file_bytes"] / q["bytes"] >= 1.02
    emb = q["weights"][0]
    assert sum(emb[f"int{n}_rows"] for n in range(8, 2, -1) if f"int{n}_rows" in emb) == 400
    assert report["bytes"] < plain["bytes"]
    session = open_session((tmp_path / "r.onnx").read_bytes())
    proba, _ = session.run(None, {"text": np.array(["fine", ""], dtype=object)})
    assert proba.shape == (2, 2) and np.isfinite(proba).all()
    with pytest.raises(OutOfReach, match="out of reach for this model"):
        export(run_dir, tmp_path / "x.onnx", quantize=True, ratio=8, validate=False,
               say=lambda m: None)
    with pytest.raises(TlcError, match="--ratio only applies with --quantize"):
        export(run_dir, tmp_path / "x.onnx", ratio=2)
    with pytest.raises(TlcError, match="each choose"):
        export(run_dir, tmp_path / "x.onnx", quantize=True, ratio=2, int8_rows=10)
    with pytest.raises(TlcError, match="outside 1..8"):
        export(run_dir, tmp_path / "x.onnx", quantize=True, ratio=0.5)
    assert not (tmp_path / "x.onnx").exists()


def test_quantize_rejects_a_mask_of_the_wrong_size():
    model, _ = _toy_model()
    with pytest.raises(ValueError, match="rows"):
        quantize_weights(model, np.full(10, 8))
    with pytest.raises(ValueError, match="rows"):
        quantize_weights(model, np.full(300, 9))
    with pytest.raises(ValueError, match="hessian"):         # 3..8 bits per row need it
        quantize_weights(model, np.full(300, 6))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    # 80 labels of the fixture's 200 rows: 72 train, so 128 labelled rows are held out,
    # enough for the accuracy check (MIN_LABELLED)
    return train_tiny_run(tmp_path_factory.mktemp("quantize") / "run", labels=80)


def test_quantized_export_is_smaller_validated_and_says_how(run_dir, tmp_path):
    plain = export(run_dir, tmp_path / "float.onnx", say=lambda m: None)
    said = []
    report = export(run_dir, tmp_path / "int8.onnx", quantize=True, say=said.append, **LOOSE)
    assert report["bytes"] < plain["bytes"]
    check = report["validation"]
    # the 128 held-out rows, then the 72 training rows and passages of them all for the
    # agreement check
    assert check["labelled_documents"] == 128 and check["documents"] > 128 + 72
    assert [p["documents"] for p in check["texts"][:2]] == [128, 72]
    assert 0 <= check["label_agreement"] <= 1
    assert {"keras_accuracy", "onnx_accuracy", "accuracy_drop"} <= set(check)
    assert "labels agree" in said[-1] and "accuracy keras -> onnx" in said[-1]
    # the tokenizer outweighs a 400-row table, so the size targets are out of reach
    assert said[0].startswith("int8 (embedding rows at 3 to 8 bits, for a file 3.6x smaller): "
                              "skipped, a file 3.6x smaller is out of reach")
    assert said[2].startswith("int8 (every embedding row at 8 bits): ")
    session = open_session((tmp_path / "int8.onnx").read_bytes())
    props = session.get_modelmeta().custom_metadata_map
    q = json.loads(props["tlc.quantization"])
    assert q["mode"] == "int8-weights" and q["arithmetic"] == "float32"
    assert [w["kind"] for w in q["weights"]] == ["embedding"]   # tiny convs stay float
    assert json.loads(props["tlc.validation"])["label_agreement"] == check["label_agreement"]
    texts = ["", "  ", "\U0001f600 \u4f60\u597d\u3002", "ok " * 300_000]
    proba, labels = session.run(None, {"text": np.array(texts, dtype=object)})
    assert proba.shape == (4, 2) and np.isfinite(proba).all()


def test_quantized_export_fails_loudly_below_the_limits(run_dir, tmp_path):
    out = tmp_path / "q.onnx"
    with pytest.raises(TlcError, match="agree with the Keras model's on only"):
        export(run_dir, out, quantize=True, min_agreement=1.01, say=lambda m: None)
    with pytest.raises(TlcError, match="points of accuracy"):
        export(run_dir, out, quantize=True, min_agreement=0.0, max_accuracy_drop=-1.0,
               say=lambda m: None)
    assert not list(tmp_path.iterdir())          # no file, no temporary left behind


def test_quantize_falls_back_to_a_larger_split_when_the_guard_refuses(
        run_dir, tmp_path, monkeypatch):
    from tlc.export import exporter

    monkeypatch.setattr(exporter, "QUANTIZE_STEPS", (Split(100, 150), Split()))
    real, calls = exporter.compare, []

    def first_disagrees(*args):
        check = real(*args)
        calls.append(check)
        return {**check, "label_agreement": 0.5} if len(calls) == 1 else check

    monkeypatch.setattr(exporter, "compare", first_disagrees)
    said = []
    report = export(run_dir, tmp_path / "q.onnx", quantize=True, say=said.append,
                    min_agreement=0.9, max_accuracy_drop=100.0)
    assert len(calls) == 2
    text = "\n".join(said)
    assert "int8 (100 embedding rows at 8 bits + 150 at 5 bits, the rest at 4)" in text
    assert "the guard refuses it" in text and "50.00%" in text
    q = report["quantization"]
    assert q["weights"][0]["int8_rows"] == 400 and not q["weights"][0]["int4_rows"]
    assert q["refused_by_guard"][0]["int8_rows"] == 100
    props = open_session((tmp_path / "q.onnx").read_bytes()).get_modelmeta().custom_metadata_map
    assert json.loads(props["tlc.quantization"])["refused_by_guard"] == q["refused_by_guard"]
    r = runner.invoke(app, ["inspect", str(tmp_path / "q.onnx")])
    assert r.exit_code == 0 and "the guard refused 100 + 150 rows at 8 + 5 bits" in r.output


def test_quantize_steps_all_refused_or_unguarded(run_dir, tmp_path, monkeypatch):
    from tlc.export import exporter

    monkeypatch.setattr(exporter, "QUANTIZE_STEPS", (Split(100, 150), Split()))
    said = []
    with pytest.raises(TlcError, match="agree with the Keras model's on only"):
        export(run_dir, tmp_path / "q.onnx", quantize=True, min_agreement=1.01,
               say=said.append)
    assert sum(m.startswith("validation on") for m in said) == 2 and not list(tmp_path.iterdir())
    said.clear()
    report = export(run_dir, tmp_path / "q.onnx", quantize=True, validate=False,
                    say=said.append)
    assert "no guard to choose" in said[0] and "validation" not in report
    assert report["quantization"]["weights"][0]["int8_rows"] == 400
    report = export(run_dir, tmp_path / "p.onnx", quantize=True, int8_rows=100,
                    validate=False, say=said.append)
    assert report["quantization"]["weights"][0]["int4_rows"] > 0


def test_quantize_option_errors(run_dir, tmp_path):
    with pytest.raises(TlcError, match="only applies with --quantize"):
        export(run_dir, tmp_path / "m.onnx", int8_rows=10)
    with pytest.raises(TlcError, match="outside 0..400"):
        export(run_dir, tmp_path / "m.onnx", quantize=True, int8_rows=401)
    with pytest.raises(TlcError, match="--int5-rows -1 is outside"):
        export(run_dir, tmp_path / "m.onnx", quantize=True, int8_rows=10, int5_rows=-1)
    with pytest.raises(TlcError, match="needs --int8-rows"):
        export(run_dir, tmp_path / "m.onnx", quantize=True, int5_rows=10)
    assert not (tmp_path / "m.onnx").exists()
    # unlabelled --validation-data: agreement alone, and the record says so
    unlabelled = tmp_path / "texts.txt"
    unlabelled.write_text("a fine product\nbroke in a day\n", encoding="utf-8")
    report = export(run_dir, tmp_path / "m.onnx", quantize=True,
                    validation_data=str(unlabelled), say=lambda m: None, min_agreement=0.0)
    assert report["validation"]["accuracy_check"].startswith("skipped: only 0 labelled")


def test_cli_quantize_and_inspect(run_dir, tmp_path):
    out = tmp_path / "cli.onnx"
    r = runner.invoke(app, ["export", str(run_dir), "--out", str(out), "--quantize",
                            "--int8-rows", "100", "--int5-rows", "150", "--min-agreement", "0",
                            "--max-accuracy-drop", "100"])
    assert r.exit_code == 0, r.output
    assert "x smaller than float32" in r.output
    r = runner.invoke(app, ["inspect", str(out)])
    assert r.exit_code == 0, r.output
    assert "int8-weights (embedding rows 100" in r.output
    # (the tiny vocabulary has only 144 non-byte pieces, so fewer than 150 get 5 bits)
    assert " int5 + " in r.output and " int4;" in r.output
    assert "accuracy keras" in r.output
    r = runner.invoke(app, ["export", str(run_dir), "--out", str(out), "--force",
                            "--quantize", "--min-agreement", "1.5"])
    assert r.exit_code == 2 and "fix:" in r.output


def test_compensated_rounding_lowers_the_error_the_convolution_sees():
    from tlc.export.quantize import conv_hessian

    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(1, 3, 12, 6)).astype(np.float32)   # Keras (1, taps, D, F)
    hessian = conv_hessian(kernel)
    w = kernel.reshape(3, 12, 6)
    assert np.allclose(hessian, sum(w[k] @ w[k].T for k in range(3)))
    values = rng.normal(size=(500, 12)).astype(np.float32)

    def seen(rebuilt):
        d = (rebuilt - values).astype(np.float64)
        return float(np.einsum("rd,de,re->", d, hessian, d))

    from tlc.export.quantize import _symmetric

    codes, scale = _symmetric(values, 7)                 # plain rounding, full range
    plain = codes * scale.astype(np.float32)[:, None]
    _, _, clipped = low_bit_rows(values, 4)               # + searched clipping range
    stored, _, smart = low_bit_rows(values, 4, hessian)   # + error compensation through H
    assert seen(clipped) < seen(plain) and seen(smart) < 0.9 * seen(clipped)
    packed = stored["nibbles"]
    assert packed.shape == (500, 6) and np.all(((packed & 15) >= 1) & ((packed >> 4) >= 1))


BLOCKER = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tlc", "tensorflow", "keras", "tf2onnx", "sentencepiece"):
            raise ImportError(f"{name} is not allowed here")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_examples_score_py_needs_only_onnxruntime(run_dir, tmp_path):
    """The README's scoring script, on a quantised file, with tlc, TensorFlow, Keras, tf2onnx
    and sentencepiece made unimportable."""
    import subprocess
    import sys

    out = tmp_path / "model.onnx"
    export(run_dir, out, quantize=True, say=lambda m: None, **LOOSE)
    script = Path(__file__).resolve().parent.parent / "examples" / "score.py"
    done = subprocess.run([sys.executable, "-c", BLOCKER, str(script), str(out),
                           "Great value, works well.", "", "\u4f60\u597d \U0001f600"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(line.split("\t")[0] in ("0", "1") for line in lines)
    assert "0=" in lines[0] and "1=" in lines[0]


@pytest.mark.parametrize("perm, swapped", [([0, 2, 1, 3], True), ([0, 1, 3, 2], False)])
def test_topk_moves_before_a_transpose_that_keeps_its_axis(perm, swapped):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from tlc.export.network import topk_before_transpose

    x = np.random.default_rng(4).normal(size=(2, 5, 3, 7)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], name="t", perm=perm),
         helper.make_node("TopK", ["t", "k"], ["values", "indices"], name="topk", axis=-1)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("indices", TensorProto.INT64, None)],
        [numpy_helper.from_array(np.array([2], np.int64), "k")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    def run(m):
        return ort.InferenceSession(m.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})

    want = run(model)
    rewritten = topk_before_transpose(model)
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops == (["TopK", "Transpose", "Transpose"] if swapped else ["Transpose", "TopK"])
    for a, b in zip(run(rewritten), want, strict=True):
        assert np.array_equal(a, b)


@pytest.fixture(scope="module")
def small_file_run(tmp_path_factory) -> Path:
    """A run trained on a file that holds only its 100 labelled rows (90 train, 10 held
    out), 4 epochs so that it decides most documents."""
    import csv
    import gzip

    from tiny_model import AMAZON, TINY

    from tlc.train.config import RunConfig
    from tlc.train.pipeline import train

    root = tmp_path_factory.mktemp("small-file")
    with gzip.open(AMAZON / "train.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:100]
    data = root / "only-100.csv"
    with data.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        out.writerows((r["text"], r["label"]) for r in rows)
    config = RunConfig().override([*TINY, f"data.train={json.dumps(str(data))}",
                                   "training.epochs=4", "training.min_rows_per_epoch=2000"])
    train(config, root / "run", quiet=True)
    return root / "run"


def test_a_run_on_only_its_100_labels_exports_quantised_by_default(small_file_run, tmp_path):
    out = tmp_path / "q.onnx"
    r = runner.invoke(app, ["export", str(small_file_run), "--out", str(out), "--quantize"])
    assert r.exit_code == 0, r.output
    assert "x smaller than float32" in r.output
    assert "skipped: only 10 labelled documents held out" in r.output
    v = json.loads(open_session(out.read_bytes()).get_modelmeta()
                   .custom_metadata_map["tlc.validation"])
    assert v["labelled_documents"] == 10 and "accuracy_drop" not in v
    assert [p["data"].split(" (")[-1] for p in v["texts"][:2]] == ["held-out rows)",
                                                                  "training rows)"]
    assert v["documents"] > 100 and v["decided_documents"] > 0
    assert v["label_agreement"] >= 0.995


def test_the_guard_still_refuses_a_broken_quantisation(small_file_run, tmp_path, monkeypatch):
    from onnx import numpy_helper

    from tlc.export import exporter

    real = exporter._quantized

    def broken(model, bits, hessian):        # scramble every stored weight matrix
        quantized, info = real(model, bits, hessian)
        rng = np.random.default_rng(0)
        for init in quantized.graph.initializer:
            values = numpy_helper.to_array(init)
            if values.dtype == np.float32 and values.ndim >= 2 and values.size >= 16:
                init.CopyFrom(numpy_helper.from_array(
                    rng.permutation(values.ravel()).reshape(values.shape), init.name))
        return quantized, info

    monkeypatch.setattr(exporter, "_quantized", broken)
    with pytest.raises(TlcError, match="agree with the Keras model's on only"):
        export(small_file_run, tmp_path / "q.onnx", quantize=True, say=lambda m: None)
    assert not (tmp_path / "q.onnx").exists()


def test_accuracy_tolerance_fits_the_number_of_rows():
    from tlc.export.exporter import accuracy_tolerance

    assert accuracy_tolerance(25, 5000, 0.3) == 0.3          # large sets: the limit as before
    assert accuracy_tolerance(1, 100, 0.3) == pytest.approx(1.645)   # one row is noise
    assert accuracy_tolerance(0, 100, 0.3) == 0.3 and accuracy_tolerance(4, 100, -1) == -1
