"""`tlc predict`: formats, columns, order, bad rows, atomic write and resume, on a tiny model."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tlc.cli import app
from tlc.runtime import Classifier
from tlc.runtime import batch as sf

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
REVIEWS = [f"review {i}: " + ("great, works well. " if i % 3 else "broke at once! ") * (i % 9 + 1)
           for i in range(60)]
OUT_COLUMNS = ["label", "p_0", "p_1", "error"]
BLOCK_ROWS = sf.BLOCK_ROWS                     # before the fixture below sets it to 0


@pytest.fixture(autouse=True)
def blocks_of_batch_times_threads(monkeypatch):
    """These tests count blocks of --batch-size x --threads rows; real runs read at least
    sf.BLOCK_ROWS a block (see test_blocks_are_large_enough_to_group_texts_by_length)."""
    monkeypatch.setattr(sf, "BLOCK_ROWS", 0)


@pytest.fixture(scope="module")
def expected(model):
    """Label and probabilities of every REVIEWS text, from the Python API."""
    labels, proba = Classifier.load(model).score(REVIEWS)
    return {t: (lab, p) for t, lab, p in zip(REVIEWS, labels, proba, strict=True)}


def predict(*args: str):
    return runner.invoke(app, ["predict", *map(str, args)])


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_scores(rows, expected, text_key="text", prefix=""):
    for row in rows:
        label, proba = expected[row[text_key]]
        assert row[f"{prefix}label"] == label
        for j, name in enumerate(("p_0", "p_1")):
            assert abs(float(row[f"{prefix}{name}"]) - float(proba[j])) < 1e-5
        assert row[f"{prefix}error"] in ("", None)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ formats, columns, order


def test_csv_keeps_every_column_and_the_order(model, expected, tmp_path):
    src = write_csv(tmp_path / "in.csv", [["id", "text", "stars"],
                                          *[[str(i), t, str(i % 5)] for i, t in
                                            enumerate(REVIEWS)]])
    r = predict(model, src, "--batch-size", "7", "--threads", "3")
    assert r.exit_code == 0, r.output
    out = tmp_path / "in.scored.csv"                      # default: beside the input
    rows = read_csv(out)
    assert list(rows[0]) == ["id", "text", "stars", *OUT_COLUMNS]
    assert [row["id"] for row in rows] == [str(i) for i in range(len(REVIEWS))]
    assert [row["stars"] for row in rows] == [str(i % 5) for i in range(len(REVIEWS))]
    check_scores(rows, expected)
    assert f"scored {len(REVIEWS)} of {len(REVIEWS)} rows" in r.output and "rows/s" in r.output
    assert leftovers(tmp_path) == []                      # no .part files left behind


def test_tsv_and_output_format_choice(model, expected, tmp_path):
    src = tmp_path / "in.tsv"
    src.write_text("text\tn\n" + "".join(f"{t}\t{i}\n" for i, t in enumerate(REVIEWS)))
    assert predict(model, src).exit_code == 0
    lines = (tmp_path / "in.scored.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["text", "n", *OUT_COLUMNS]
    rows = [dict(zip(lines[0].split("\t"), x.split("\t"), strict=True)) for x in lines[1:]]
    assert [r["n"] for r in rows] == [str(i) for i in range(len(REVIEWS))]
    check_scores(rows, expected)
    # --out's extension picks the format; --out-format overrides it
    assert predict(model, src, "--out", tmp_path / "x.jsonl").exit_code == 0
    assert read_jsonl(tmp_path / "x.jsonl")[0]["n"] == "0"
    assert predict(model, src, "--out", tmp_path / "y.out", "--out-format", "csv").exit_code == 0
    assert list(read_csv(tmp_path / "y.out")[0]) == ["text", "n", *OUT_COLUMNS]
    r = predict(model, src, "--out", tmp_path / "z.xlsx")
    assert r.exit_code == 2 and "--out-format" in r.output
    assert not (tmp_path / "z.xlsx").exists()


def test_jsonl_keeps_json_values(model, expected, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"body": t, "n": i, "meta": {"ok": True}, "tags": ["a"]})
                           + "\n" for i, t in enumerate(REVIEWS)))
    r = predict(model, src, "--text-column", "body", "-o", tmp_path / "out.jsonl")
    assert r.exit_code == 0, r.output
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert list(rows[0]) == ["body", "n", "meta", "tags", *OUT_COLUMNS]
    assert [row["n"] for row in rows] == list(range(len(REVIEWS)))   # numbers stay numbers
    assert rows[0]["meta"] == {"ok": True} and rows[0]["tags"] == ["a"]
    assert rows[0]["error"] is None and isinstance(rows[0]["p_1"], float)
    check_scores(rows, expected, text_key="body")


def test_plain_text_one_document_a_line(model, expected, tmp_path):
    src = tmp_path / "reviews.txt"
    src.write_text("\n".join([REVIEWS[0], "", REVIEWS[1]]) + "\n")
    assert predict(model, src).exit_code == 0
    rows = read_jsonl(tmp_path / "reviews.scored.jsonl")            # text -> JSONL
    assert [row["text"] for row in rows] == [REVIEWS[0], "", REVIEWS[1]]  # lines line up
    assert rows[1]["error"] == "empty text" and rows[1]["label"] is None
    check_scores([rows[0], rows[2]], expected)


def test_gzip_in_and_out(model, expected, tmp_path):
    src = tmp_path / "in.csv.gz"
    with gzip.open(src, "wt", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([["text"], *[[t] for t in REVIEWS]])
    r = predict(model, src, "--batch-size", "5", "--threads", "2")   # many gzip members
    assert r.exit_code == 0, r.output
    out = tmp_path / "in.scored.csv.gz"
    rows = read_csv(out)
    assert [row["text"] for row in rows] == REVIEWS
    check_scores(rows, expected)
    assert subprocess.run(["gzip", "-t", str(out)]).returncode == 0


def test_stdin_to_stdout_without_tensorflow(model, expected, tmp_path):
    data = "".join(json.dumps({"text": t}) + "\n" for t in REVIEWS[:10]).encode()
    code = ("import sys\nfrom tlc.cli import main\ntry:\n    main()\nfinally:\n"
            "    bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tf2onnx', 'sentencepiece')]\n"
            "    print('HEAVY', bad, file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code, "predict", str(model), "-", "--format",
                        "jsonl", "--out", "-"], input=gzip.compress(data), capture_output=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert [row["text"] for row in rows] == REVIEWS[:10]
    check_scores(rows, expected)
    assert "HEAVY []" in r.stderr.decode()
    assert os.listdir(tmp_path) == []
    r = subprocess.run([sys.executable, "-m", "tlc.cli", "predict", str(model), "-"],
                       input=data, capture_output=True, timeout=300)
    assert r.returncode == 2 and b"pass --format" in r.stderr


def test_streams_rows_before_the_input_ends(model):
    """Output appears while standard input is still open: rows are not held in memory (a
    block is written once the next one is read, so two blocks' worth comes first)."""
    n = 2 * BLOCK_ROWS + 20
    proc = subprocess.Popen([sys.executable, "-m", "tlc.cli", "predict", str(model), "-",
                             "--format", "text", "-o", "-", "--batch-size", "4", "--threads",
                             "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        first: list[bytes] = []
        reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()))
        reader.start()
        proc.stdin.write(("".join(REVIEWS[i % len(REVIEWS)] + "\n" for i in range(n))).encode())
        proc.stdin.flush()
        reader.join(timeout=120)
        assert first and json.loads(first[0])["text"] == REVIEWS[0]   # stdin still open
        proc.stdin.close()
        rest = proc.stdout.read().decode().splitlines()
        assert proc.wait(timeout=120) == 0 and len(rest) == n - 1
    finally:
        proc.kill()


def test_blocks_are_large_enough_to_group_texts_by_length(model, tmp_path, monkeypatch):
    """A block holds BLOCK_ROWS rows (more than --batch-size x --threads), so the Classifier
    can sort them by length before it cuts them into runs; rows still come out in order."""
    assert BLOCK_ROWS >= 1024
    monkeypatch.setattr(sf, "BLOCK_ROWS", 100)
    src = _input(tmp_path, 250)
    scored = _interrupt_after(monkeypatch, 10**9)
    r = predict(model, src, "-o", tmp_path / "out.csv", "--batch-size", "8", "--threads", "2")
    assert r.exit_code == 0, r.output
    assert scored == [100, 99, 50]                  # the empty row 100 is not scored
    assert [row["n"] for row in read_csv(tmp_path / "out.csv")] == [str(i) for i in range(250)]


def test_a_closed_output_pipe_stops_quietly(model, tmp_path):
    """`tlc predict ... -o - | head -1`: no traceback, status 0, and the summary says why."""
    src = write_csv(tmp_path / "in.csv", [["text"], *[[t] for t in REVIEWS * 50]])
    proc = subprocess.Popen([sys.executable, "-m", "tlc.cli", "predict", str(model), str(src),
                             "-o", "-", "--batch-size", "8", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"text,label,")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "stopped early: the reader of standard output closed it" in err
    assert "Traceback" not in err


def test_text_column_selection_and_missing_column(model, expected, tmp_path):
    src = write_csv(tmp_path / "in.csv", [["review", "stars"], [REVIEWS[0], "5"]])
    r = predict(model, src)
    assert r.exit_code == 2
    assert "no text column 'text' (columns found: 'review', 'stars')" in r.output
    assert "fix: pass --text-column" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]   # nothing written
    assert predict(model, src, "--text-column", "review").exit_code == 0
    check_scores(read_csv(tmp_path / "in.scored.csv"), expected, text_key="review")


def test_input_columns_named_like_outputs_get_a_prefix(model, expected, tmp_path):
    src = write_csv(tmp_path / "in.csv", [["text", "label"], *[[t, "x"] for t in REVIEWS[:3]]])
    r = predict(model, src)
    assert r.exit_code == 0 and "pred_label" in r.output
    rows = read_csv(tmp_path / "in.scored.csv")
    assert list(rows[0]) == ["text", "label", "pred_label", "pred_p_0", "pred_p_1",
                             "pred_error"]
    assert {row["label"] for row in rows} == {"x"}
    check_scores(rows, expected, prefix="pred_")


# ------------------------------------------------------------------ bad rows


def test_every_bad_row_is_written_with_its_reason(model, expected, tmp_path):
    huge = "word " * 2_100_000                                            # a 10 MB document
    src = tmp_path / "in.csv"
    src.write_bytes(
        b"id,text\n"
        + f'1,"{REVIEWS[0]}"\n'.encode()
        + b"2,\n"                                                          # empty
        + b"3,   \n"                                                       # blank
        + b"4,caf\xe9 latin-1\n"                                           # invalid UTF-8
        + b"5,one,too many\n"                                              # malformed row
        + b"6\n"                                                           # missing text
        + f"7,{huge}\n".encode()                                           # 10 MB
        + f'8,"{REVIEWS[1]}"\n'.encode()
        + b'9,"a ""quoted"" word",extra\n')                               # malformed row
    start = time.perf_counter()
    r = predict(model, src)
    assert r.exit_code == 0, r.output
    assert time.perf_counter() - start < 60
    rows = read_csv(tmp_path / "in.scored.csv")
    by_id = {row["id"]: row for row in rows}
    assert [row["id"] for row in rows] == [str(i) for i in range(1, 10)]
    errors = {k: row["error"] for k, row in by_id.items()}
    assert errors["1"] == "" and errors["8"] == ""
    assert errors["2"] == errors["3"] == "empty text"
    assert errors["4"].startswith("not valid UTF-8") and "caf\ufffd" in by_id["4"]["text"]
    assert errors["5"] == "expected 2 fields (as in the header), found 3"
    assert errors["6"] == "expected 2 fields (as in the header), found 1"
    assert errors["7"].startswith("text too long (10,500,000 characters")
    assert len(by_id["7"]["text"]) == 10_500_000                         # still written
    assert errors["9"] == "expected 2 fields (as in the header), found 3"
    assert by_id["9"]["text"] == 'a "quoted" word'
    for k in "2345679":
        assert by_id[k]["label"] == by_id[k]["p_0"] == by_id[k]["p_1"] == ""
    check_scores([by_id["1"], by_id["8"]], expected)
    assert "scored 2 of 9 rows" in r.output
    assert "7 rows written with an error" in r.output and "3 wrong number of fields" in r.output
    assert "2 empty text" in r.output and "1 not valid UTF-8" in r.output
    assert "1 text too long" in r.output and "e.g. " in r.output
    # a higher --max-chars scores the long document (on its first 100,000 characters)
    r = predict(model, src, "--force", "--max-chars", "20000000")
    assert r.exit_code == 0 and read_csv(tmp_path / "in.scored.csv")[6]["label"] in ("0", "1")


def test_bad_json_lines(model, expected, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        json.dumps({"text": REVIEWS[0], "n": 1}).encode() + b"\n"
        + b'{"text": "unterminated\n'                                       # malformed JSON
        + b'["a list"]\n'                                                  # not an object
        + b'{"n": 4}\n'                                                    # missing text
        + b'{"text": null, "n": 5}\n'                                      # empty
        + b'{"text": "caf\xe9", "n": 6}\n'                                 # invalid UTF-8
        + json.dumps({"text": REVIEWS[1], "n": 7}).encode() + b"\n")
    r = predict(model, src)
    assert r.exit_code == 0, r.output
    rows = read_jsonl(tmp_path / "in.scored.jsonl")
    assert len(rows) == 7
    errors = [row["error"] for row in rows]
    assert errors[0] is None and errors[6] is None
    assert errors[1].startswith("not valid JSON")
    assert errors[2] == "expected a JSON object per line, found list"
    assert errors[3] == "no text field 'text' in this row" and rows[3]["n"] == 4
    assert errors[4] == "empty text"
    assert errors[5].startswith("not valid UTF-8")
    assert all(rows[i]["label"] is None and rows[i]["p_0"] is None for i in range(1, 6))
    check_scores([rows[0], rows[6]], expected)
    assert "scored 2 of 7 rows" in r.output
    for reason in ("1 not valid JSON", "1 not a JSON object", "1 missing text",
                   "1 empty text", "1 not valid UTF-8"):
        assert reason in r.output


def test_a_row_onnxruntime_rejects_costs_only_its_row(model, tmp_path, monkeypatch):
    real = Classifier.score

    def picky(self, texts):
        if any("POISON" in t for t in texts):
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : bad input")
        return real(self, texts)

    monkeypatch.setattr(Classifier, "score", picky)
    src = write_csv(tmp_path / "in.csv", [["text"], [REVIEWS[0]], ["POISON"], [REVIEWS[1]]])
    r = predict(model, src)
    assert r.exit_code == 0, r.output
    rows = read_csv(tmp_path / "in.scored.csv")
    assert [row["error"] for row in rows] == [
        "", "could not score: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : bad input", ""]
    assert "1 could not score" in r.output


# ------------------------------------------------------------------ what stops a run


def test_missing_model_or_input_exit_2_with_a_clear_message(model, models, tmp_path):
    src = write_csv(tmp_path / "in.csv", [["text"], ["x"]])
    r = predict(tmp_path / "nope.onnx", src)
    assert r.exit_code == 2 and "nope.onnx: model file not found" in r.output
    assert "fix: give the path of a file written by `tlc export" in r.output
    r = predict(models[1], src)
    assert r.exit_code == 2 and "takes token ids" in r.output
    r = predict(model, tmp_path / "missing.csv")
    assert r.exit_code == 2 and "missing.csv: no such file" in r.output
    r = predict(model, tmp_path / "in.unknown")
    assert r.exit_code == 2
    (tmp_path / "empty.csv").write_text("")
    r = predict(model, tmp_path / "empty.csv")
    assert r.exit_code == 2 and "the file is empty" in r.output
    r = predict(model, src, "--out", tmp_path / "no" / "dir.csv")
    assert r.exit_code == 2 and "output folder does not exist" in r.output
    r = predict(model, src, "--out", src)
    assert r.exit_code == 2 and "overwrite the input" in r.output
    assert predict(model, src).exit_code == 0
    r = predict(model, src)
    assert r.exit_code == 2 and "already exists" in r.output and "--force" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "in.csv",
                                                          "in.scored.csv"]


def test_a_damaged_input_stops_with_status_2_and_no_output(model, tmp_path):
    body = "text\n" + "".join(f"{t}\n" for t in REVIEWS * 20)
    data = gzip.compress(body.encode())
    src = tmp_path / "in.csv.gz"
    src.write_bytes(data[: len(data) // 2])                        # a truncated download
    r = predict(model, src, "--batch-size", "8", "--threads", "1")
    assert r.exit_code == 2 and "could not read the input" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv.gz"]


# ------------------------------------------------------------------ atomic write and resume


def _input(tmp_path: Path, n: int = 200) -> Path:
    rows = [["n", "text"], *[[str(i), REVIEWS[i % len(REVIEWS)]] for i in range(n)]]
    rows[1 + (100 if n > 100 else n // 2)][1] = ""              # one bad (empty) row
    return write_csv(tmp_path / "in.csv", rows)


def _interrupt_after(monkeypatch, calls: int, error=KeyboardInterrupt):
    real = Classifier.score
    seen: list[int] = []

    def score(self, texts):
        if len(seen) >= calls:
            raise error()
        seen.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(Classifier, "score", score)
    return seen


def test_an_interrupted_run_leaves_no_output_then_resumes_each_row_once(model, tmp_path,
                                                                        monkeypatch):
    src = _input(tmp_path)
    clean = tmp_path / "clean.csv"
    assert predict(model, src, "-o", clean, "--batch-size", "8", "--threads", "2").exit_code == 0
    out = tmp_path / "out.csv"
    args = [model, src, "-o", out, "--batch-size", "8", "--threads", "2"]     # blocks of 16
    _interrupt_after(monkeypatch, 4)   # the 5th block's scoring is interrupted
    r = predict(*args)
    assert r.exit_code == 130
    assert "--resume" in r.output
    assert not out.exists()                                      # never a truncated final file
    part, progress = sf.part_paths(out)
    assert part.exists() and json.loads(progress.read_text())["rows"] == 64  # 4 blocks written
    r = predict(*args)
    assert r.exit_code == 2 and "pass --resume to continue it, or --force" in r.output
    assert "(64 rows done)" in r.output
    monkeypatch.undo()
    scored = _interrupt_after(monkeypatch, 10**9)
    r = predict(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert "resuming after row 64" in r.output and "resumed after row 64" in r.output
    assert sum(scored) == 200 - 64 - 1                       # each remaining good row once
    assert "scored 199 of 200 rows" in r.output and "1 empty text" in r.output
    assert out.read_bytes() == clean.read_bytes()
    assert [row["n"] for row in read_csv(out)] == [str(i) for i in range(200)]
    assert not part.exists() and not progress.exists()


_KILL = r"""
import os, signal, sys
from tlc.runtime import batch as sf
sf.BLOCK_ROWS = 0                              # blocks of --batch-size x --threads rows
real, writes = sf._Output.write, []
def write(self, text):
    real(self, text)
    writes.append(1)
    if len(writes) == int(os.environ["KILL_AT_WRITE"]):
        os.kill(os.getpid(), signal.SIGKILL)   # data written, progress record not yet
sf._Output.write = write
from tlc.cli import main
main()
"""


@pytest.mark.parametrize("gz", [False, True])
def test_resume_after_a_hard_kill(model, tmp_path, gz):
    src = _input(tmp_path)
    name = "out.csv.gz" if gz else "out.csv"
    args = ["predict", str(model), str(src), "--batch-size", "8", "--threads", "2"]
    assert runner.invoke(app, [*args, "-o", str(tmp_path / f"clean-{name}")]).exit_code == 0
    out = tmp_path / name
    env = {**os.environ, "KILL_AT_WRITE": "5"}   # header, 3 blocks, then killed in block 4
    r = subprocess.run([sys.executable, "-c", _KILL, *args, "-o", str(out)], env=env,
                       capture_output=True, timeout=300)
    assert r.returncode == -9
    part, progress = sf.part_paths(out)
    assert not out.exists() and part.stat().st_size > json.loads(progress.read_text())["bytes"]
    r = runner.invoke(app, [*args, "-o", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    assert "resuming after row 48" in r.output
    assert read_csv(out) == read_csv(tmp_path / f"clean-{name}")
    if not gz:
        assert out.read_bytes() == (tmp_path / f"clean-{name}").read_bytes()


def test_resume_refuses_another_input_model_or_options(model, tmp_path, monkeypatch):
    src = _input(tmp_path)
    out = tmp_path / "out.csv"
    args = [model, src, "-o", out, "--batch-size", "8", "--threads", "1"]
    _interrupt_after(monkeypatch, 3)
    assert predict(*args).exit_code == 130
    monkeypatch.undo()
    r = predict(*args, "--resume", "--max-chars", "50")
    assert r.exit_code == 2 and "different options (max_chars=100000, now 50)" in r.output
    os.utime(src, ns=(0, 0))
    r = predict(*args, "--resume")
    assert r.exit_code == 2 and "a different input file" in r.output and "--force" in r.output
    assert not out.exists()
    r = predict(*args, "--force")                                 # starts over
    assert r.exit_code == 0 and "scored 199 of 200" in r.output
    assert leftovers(tmp_path) == []
    r = predict(model, src, "-o", "-", "--resume")
    assert r.exit_code == 2 and "standard output cannot be resumed" in r.output


def test_resume_with_nothing_to_resume_starts_from_the_top(model, tmp_path):
    src = _input(tmp_path, 10)
    r = predict(model, src, "--resume")
    assert r.exit_code == 0 and "nothing to resume" in r.output
    assert len(read_csv(tmp_path / "in.scored.csv")) == 10


def test_a_failed_write_keeps_the_rows_done_for_resume(model, tmp_path, monkeypatch):
    src = _input(tmp_path)
    out = tmp_path / "out.csv"
    args = [model, src, "-o", out, "--batch-size", "8", "--threads", "1"]
    real = sf._Output.write
    calls: list[int] = []

    def full_disk(self, text):
        calls.append(1)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        real(self, text)

    monkeypatch.setattr(sf._Output, "write", full_disk)
    r = predict(*args)
    assert r.exit_code == 2 and "No space left on device" in r.output and "--resume" in r.output
    assert not out.exists()
    monkeypatch.undo()
    r = predict(*args, "--resume")
    assert r.exit_code == 0 and "resuming after row 16" in r.output
    assert [row["n"] for row in read_csv(out)] == [str(i) for i in range(200)]


def test_progress_bar_counts_rows(model, tmp_path, monkeypatch):
    """With a terminal the bar shows rows/s on stderr; -q turns it off."""
    src = _input(tmp_path, 20)
    buf = io.StringIO()
    monkeypatch.setattr(sf.sys, "stderr", buf)
    summary = sf.score_file(Classifier.load(model), src, tmp_path / "a.csv", progress=True,
                            say=lambda m: None)
    assert "rows/s" in buf.getvalue() and summary.rows == 20 and summary.scored == 19
    assert summary.errors == {"empty text": 1}
    buf.truncate(0)
    sf.score_file(Classifier.load(model), src, tmp_path / "b.csv", progress=False,
                  say=lambda m: None)
    assert buf.getvalue() == ""
    assert np.isclose(summary.rows_per_second * summary.seconds, 20)


def test_a_data_set_split_by_name(model, tmp_path, monkeypatch):
    """`tlc predict model.onnx imdb:test` reads the split from the data folder and writes
    beside the user, not into the data folder."""
    monkeypatch.chdir(tmp_path)
    r = predict(model, "imdb:test", "--data-dir", ROOT / "tests" / "fixtures", "-q")
    assert r.exit_code == 0, r.output
    rows = read_csv(tmp_path / "imdb-test.scored.csv.gz")
    source = read_csv(ROOT / "tests" / "fixtures" / "imdb" / "test.csv.gz")
    assert [row["text"] for row in rows] == [row["text"] for row in source]
    assert all(row["pred_label"] in ("0", "1") for row in rows)     # input has a label column
    r = predict(model, "imdb:nosuch", "--data-dir", ROOT / "tests" / "fixtures")
    assert r.exit_code == 2 and "data set 'imdb' has no split 'nosuch'" in r.output
