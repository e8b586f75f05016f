"""Issue 13: inputs that crashed a command or changed its answer silently, one test each.

Each test reproduces a defect found on messy real-world files (numbered as in the issue) and
checks the fixed behaviour: one clear message and exit status 2 for what stops a job, the row
written with its reason for what does not, and the same reading of a text in training,
evaluation and scoring."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tlc.cli import app
from tlc.data.examples import iter_examples, load_examples
from tlc.data.readers import read_records
from tlc.errors import DataError
from tlc.runtime import Classifier
from tlc.text import model_text

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
GOOD = "A wonderful, moving film with a great cast."


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------ 1. lone surrogates

SURROGATE_JSONL = (b'{"id":1,"text":"good film","label":"1"}\n'
                   b'{"id":2,"text":"lone surrogate \\ud800 here","label":"0"}\n'
                   b'{"id":3,"text":"bad film","label":"0"}\n')


def test_1_lone_surrogate_escape_is_a_bad_row_when_scoring(model, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(SURROGATE_JSONL)
    r = cli("predict", model, src)
    assert r.exit_code == 0, r.output
    rows = jsonl_rows(tmp_path / "in.scored.jsonl")
    assert [row["id"] for row in rows] == [1, 2, 3]
    # the input has a label column, so the output's are prefixed
    assert rows[1]["pred_label"] is None
    assert rows[1]["pred_error"].startswith("not valid Unicode")
    assert rows[1]["text"] == "lone surrogate \ufffd here"
    assert rows[0]["pred_error"] is None and rows[2]["pred_error"] is None
    assert "1 not valid Unicode" in r.output
    assert not list(tmp_path.glob(".*part"))


def test_1_lone_surrogate_escape_in_training_data_is_reported_not_a_crash(tmp_path):
    src = tmp_path / "train.jsonl"
    src.write_bytes(SURROGATE_JSONL)
    with pytest.raises(DataError) as err:
        load_examples(src)
    assert err.value.line == 2 and "not valid Unicode" in err.value.message
    skipped = load_examples(src, on_bad_rows="skip")
    assert skipped.texts == ["good film", "bad film"]
    assert dict(skipped.skipped) == {"not valid Unicode": 1}


def test_1_surrogates_in_names_and_nested_values_never_reach_the_writer(model, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id":1,"\\udc80k":"v","text":"fine"}\n'
                    b'{"id":2,"meta":{"a":["\\ud83d"]},"text":"fine"}\n')
    r = cli("predict", model, src, "-o", tmp_path / "out.jsonl")
    assert r.exit_code == 0, r.output
    rows = jsonl_rows(tmp_path / "out.jsonl")
    assert [row["id"] for row in rows] == [1, 2]
    assert all(row["error"].startswith("not valid Unicode") for row in rows)
    assert rows[1]["meta"] == {"a": ["\ufffd"]}


def test_1_tokenizer_train_and_evaluate_report_the_row(tmp_path):
    src = tmp_path / "train.jsonl"
    src.write_bytes(SURROGATE_JSONL)
    r = cli("tokenizer", "train", "--data", src, "--out", tmp_path / "tok")
    assert r.exit_code == 2, r.output
    assert "train.jsonl:2: not valid Unicode" in r.output and "Traceback" not in r.output


# ------------------------------------------------------------------ 3. NUL characters

def test_3_nul_is_a_separator_not_the_end_of_the_text(model):
    clf = Classifier.load(model)
    long = GOOD + "\x00. Terrible, awful, boring and far too long."
    spaced = GOOD + " . Terrible, awful, boring and far too long."
    p = clf.predict_proba([long, spaced, GOOD, "\x00Terrible, awful.", " Terrible, awful.", ""])
    np.testing.assert_array_equal(p[0], p[1])            # NUL reads as a space ...
    assert not np.array_equal(p[0], p[2])                # ... and does not end the text
    np.testing.assert_array_equal(p[3], p[4])
    assert not np.array_equal(p[3], p[5])                # a leading NUL is not an empty text


def test_3_nul_reads_the_same_in_training_and_scoring(model, tmp_path):
    """The tokenizer used in training reads NUL as scoring does (both via model_text)."""
    pytest.importorskip("sentencepiece")
    from tiny_model import AMAZON

    from tlc.tokenizer import Tokenizer, TokenizerConfig

    texts = load_examples(AMAZON / "train.csv.gz").texts[:200]
    tok = Tokenizer.train(texts, TokenizerConfig(vocab_size=400, max_sentences=3,
                                                 max_tokens=8), progress=False)
    a, b = tok.encode([GOOD + "\x00 Terrible.", GOOD + "  Terrible."])
    assert a == b and len(a) > len(tok.encode([GOOD])[0])
    assert model_text("a\x00b\ud800") == "a b\ufffd"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "txt"])
def test_3_nul_through_every_format(model, tmp_path, fmt):
    text = GOOD + "\x00. Terrible, awful."
    src = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        src.write_text(f'id,text\n1,"{text}"\n2,"{GOOD}"\n', encoding="utf-8")
    elif fmt == "jsonl":
        src.write_text(json.dumps({"id": 1, "text": text}) + "\n"
                       + json.dumps({"id": 2, "text": GOOD}) + "\n", encoding="utf-8")
    else:
        src.write_text(f"{text}\n{GOOD}\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli("predict", model, src, "-o", out).exit_code == 0
    rows = jsonl_rows(out)
    want = Classifier.load(model).predict_proba([text.replace("\x00", " "), GOOD])
    for row, p in zip(rows, want, strict=True):
        assert row["error"] is None
        assert abs(row["p_1"] - float(p[1])) < 1e-5
    assert rows[0]["p_1"] != rows[1]["p_1"]


# ------------------------------------------------------------------ 4. byte-order marks

@pytest.mark.parametrize("name,body", [
    ("in.jsonl", b'{"id":1,"text":"good"}\n{"id":2,"text":"bad"}\n'),
    ("in.txt", b"good\nbad\n"),
    ("in.csv", b'"id","text"\n1,good\n2,bad\n'),
    ("in.tsv", b"id\ttext\n1\tgood\n2\tbad\n"),
])
def test_4_a_utf8_bom_is_not_part_of_the_first_record(name, body, tmp_path):
    src = tmp_path / name
    src.write_bytes(b"\xef\xbb\xbf" + body)
    records = list(read_records(src))
    assert [r.error for r in records] == [None, None]
    assert records[0].fields["text"] == "good"
    if "id" in records[0].fields:
        assert list(records[0].fields)[0] == "id"


def test_4_bom_before_a_fasttext_file_still_reads_as_fasttext(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"\xef\xbb\xbf__label__1 good\n__label__0 bad\n")
    assert [r.fields["label"] for r in read_records(src)] == ["1", "0"]


# ------------------------------------------------------------------ 5. invalid UTF-8 in JSONL

def test_5_jsonl_row_with_invalid_utf8_keeps_its_fields(model, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id":7,"text":"caf\xe9 au lait","stars":4}\n')
    r = cli("predict", model, src)
    assert r.exit_code == 0
    row = jsonl_rows(tmp_path / "in.scored.jsonl")[0]
    assert row["id"] == 7 and row["stars"] == 4 and row["text"] == "caf\ufffd au lait"
    assert row["error"].startswith("not valid UTF-8") and row["label"] is None


# ------------------------------------------------------------------ 6. header-only CSV

@pytest.mark.parametrize("name,body,sep", [("in.csv", "id,text,stars\n", ","),
                                           ("in.tsv", "id\ttext\tstars\n", "\t")])
def test_6_header_only_file_keeps_its_columns(model, tmp_path, name, body, sep):
    src = tmp_path / name
    src.write_text(body, encoding="utf-8")
    r = cli("predict", model, src)
    assert r.exit_code == 0, r.output
    out = src.with_name(name.replace(".", ".scored."))
    header = out.read_text(encoding="utf-8").splitlines()
    assert header == [sep.join(["id", "text", "stars", "label", "p_0", "p_1", "error"])]


def test_6_header_columns_survive_a_bad_first_row(model, tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(b"id,text\n1,caf\xe9\n2,good film\n")
    assert cli("predict", model, src).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(
        (tmp_path / "in.scored.csv").read_text(encoding="utf-8"))))
    assert [r["id"] for r in rows] == ["1", "2"]


# ------------------------------------------------------------------ 7. JSON text not a string

@pytest.mark.parametrize("value,kind", [(5, "a number"), ({"a": 1}, "an object"),
                                        ([1], "a list"), (True, "a boolean")])
def test_7_json_text_that_is_not_a_string_is_a_bad_row(model, tmp_path, value, kind):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 1, "text": value}) + "\n"
                   + json.dumps({"id": 2, "text": GOOD}) + "\n", encoding="utf-8")
    r = cli("predict", model, src)
    assert r.exit_code == 0
    rows = jsonl_rows(tmp_path / "in.scored.jsonl")
    assert rows[0]["error"] == f"the text is {kind} in JSON, not a string"
    assert rows[0]["text"] == value and rows[0]["label"] is None
    assert rows[1]["error"] is None
    with pytest.raises(DataError, match="not a string"):   # training refuses it too
        list(iter_examples(read_records(src), label_column=None))


# ------------------------------------------------------------------ 8. damaged metadata

def _with_metadata(model: Path, out: Path, **props: str) -> Path:
    import onnx

    proto = onnx.load(str(model))
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in props.items():
        key = key.replace("_", ".", 1)
        if key in existing:
            existing[key].value = value
        else:
            p = proto.metadata_props.add()
            p.key, p.value = key, value
    onnx.save(proto, str(out))
    return out


@pytest.mark.parametrize("labels", ['"positive"', '[1, 2]', '{"a": 1}', "not json", '["x"]'])
def test_8_damaged_labels_are_one_message(model, tmp_path, labels):
    bad = _with_metadata(model, tmp_path / "bad.onnx", tlc_labels=labels)
    src = tmp_path / "in.txt"
    src.write_text("good\n", encoding="utf-8")
    for args in (("predict", bad, src), ("inspect", bad)):
        r = cli(*args)
        assert r.exit_code == 2, r.output
        assert "tlc.labels" in r.output and "Traceback" not in r.output
    assert "p, o, s" not in cli("inspect", bad).output   # a string is not a list of labels


@pytest.mark.parametrize("key,value", [("tlc_validation", '"yes"'), ("tlc_validation", "[1]"),
                                       ("tlc_validation", '{"documents": "many"}'),
                                       ("tlc_quantization", '{"mode": "int8", "weights": 3}'),
                                       ("tlc_evaluation", '{"test": {"accuracy": "high"}}'),
                                       ("tlc_config", '"grid"')])
def test_8_damaged_records_do_not_stop_inspect(model, tmp_path, key, value):
    bad = _with_metadata(model, tmp_path / "bad.onnx", **{key: value})
    r = cli("inspect", bad)
    assert r.exit_code == 0, r.output
    assert "labels:" in r.output and "Traceback" not in r.output
    assert Classifier.load(bad).predict(["good"])   # scoring does not need those records


def test_8_a_model_returning_too_few_rows_stops_with_one_message(model, tmp_path):
    import onnx
    from onnx import helper

    proto = onnx.load(str(model))
    graph = proto.graph
    out = next(o for o in graph.output if o.name == "probabilities")
    # Rename the real output and expose only its first row as "probabilities".
    for node in graph.node:
        node.output[:] = ["probabilities_all" if o == "probabilities" else o
                          for o in node.output]
        node.input[:] = ["probabilities_all" if i == "probabilities" else i for i in node.input]
    starts = helper.make_tensor("cut_starts", onnx.TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("cut_ends", onnx.TensorProto.INT64, [1], [1])
    graph.initializer.extend([starts, ends])
    graph.node.append(helper.make_node("Slice", ["probabilities_all", "cut_starts", "cut_ends"],
                                       ["probabilities"]))
    del out
    bad = tmp_path / "short.onnx"
    onnx.save(proto, str(bad))
    src = tmp_path / "in.txt"
    src.write_text("good film\nbad film\nok film\n", encoding="utf-8")
    r = cli("predict", bad, src)
    assert r.exit_code == 2, r.output
    assert "returned probabilities of shape (1, 2) for 3 texts" in r.output
    assert "Traceback" not in r.output and not list(tmp_path.glob(".*part"))


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"random bytes \x89PNG\r\n",
                                     "truncated", "other-onnx"])
def test_8_bad_model_files_are_one_message(model, tmp_path, content):
    bad = tmp_path / "bad.onnx"
    if content == "truncated":
        data = model.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif content == "other-onnx":
        import onnx
        from onnx import TensorProto, helper

        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(bad))
    else:
        bad.write_bytes(content)
    src = tmp_path / "in.txt"
    src.write_text("good\n", encoding="utf-8")
    for args in (("predict", bad, src), ("inspect", bad)):
        r = cli(*args)
        if args[0] == "inspect" and content == "other-onnx":
            assert r.exit_code == 0 and "no tlc metadata" in r.output
            continue
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output and "fix:" in r.output


# ------------------------------------------------------------------ 9. hints that point right

def test_9_train_bad_row_hint_names_the_setting_train_has(tmp_path):
    src = tmp_path / "train.csv"
    src.write_text("text,label\ngood,1\n,0\nbad,0\n", encoding="utf-8")
    r = cli("train", "--data", src, "--out", tmp_path / "run")
    assert r.exit_code == 2, r.output
    assert "--set data.on_bad_rows=skip" in r.output and "--on-bad-rows" not in r.output


def test_9_wrong_split_name_says_so(tmp_path, monkeypatch, fixtures):
    monkeypatch.setenv("TLC_DATA_DIR", str(fixtures))
    r = cli("data", "info", "imdb:tset")
    assert r.exit_code == 2
    assert "has no split 'tset'" in r.output and "data fetch" not in r.output


def test_9_predict_on_a_data_set_name_suggests_its_test_split(model, monkeypatch, fixtures):
    monkeypatch.setenv("TLC_DATA_DIR", str(fixtures))
    r = cli("predict", model, "imdb")
    assert r.exit_code == 2
    assert "imdb:test" in r.output


# ------------------------------------------------------------------ 10. checks before TensorFlow

@pytest.mark.parametrize("args", [
    ["train", "--data", "no-such-data", "--out", "RUN"],
    ["train", "--data", "imdb:tset", "--out", "RUN"],
    ["train", "--data", "imdb", "--set", "training.epoch=3", "--out", "RUN"],
    ["evaluate", "no-such-run", "imdb"],
    ["export", "no-such-run", "--out", "m.onnx"],
])
def test_10_argument_errors_come_before_tensorflow(args, tmp_path, fixtures):
    """The command fails with its message and TensorFlow was never imported (it costs 4-16 s
    before any check could run)."""
    args = [str(tmp_path / "run") if a == "RUN" else a for a in args]
    code = ("import sys\nfrom tlc.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
            "'TensorFlow was imported'\nsys.exit(code)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}   # this checkout's tlc, from any folder
    r = subprocess.run([sys.executable, "-c", code, *args, "--data-dir", str(fixtures)],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stderr
    assert "error:" in r.stderr and "TensorFlow was imported" not in r.stderr


# ------------------------------------------------------------------ 11. one size per file

def test_11_export_names_one_size_for_the_file(tmp_path):
    pytest.importorskip("tensorflow")
    from tiny_model import train_tiny_run

    run = train_tiny_run(tmp_path / "run")
    out = tmp_path / "m.onnx"
    r = cli("export", run, "--quantize", "--min-agreement", "0", "--max-accuracy-drop", "100",
            "--out", out)
    assert r.exit_code == 0, r.output
    size = f"{out.stat().st_size:,} bytes"
    last = r.output.strip().splitlines()[-1]
    assert f"{size} on disk" in last
    for line in r.output.splitlines():      # every other byte count says what it counts
        if " bytes" in line and line != last:
            assert "before metadata" in line, line
