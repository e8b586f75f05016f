"""Scoring on Spark (`local[2]`): the same output as one-process `tlc predict`, row for row.

One Spark session serves the whole module (its start-up is 10-20 s). Without pyspark (the
`spark` extra) or Java the tests skip, except when TLC_REQUIRE_SPARK=1 (set by .ci/run),
where that is a failure.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tlc.cli import app
from tlc.errors import TlcError
from tlc.runtime import Classifier

runner = CliRunner()
REVIEWS = [f"review {i}: " + ("great, works well. " if i % 3 else "broke at once! ") * (i % 9 + 1)
           for i in range(240)]


def _skip_or_fail(reason: str):
    if os.environ.get("TLC_REQUIRE_SPARK") == "1":
        pytest.fail(f"TLC_REQUIRE_SPARK=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def spark():
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError:
        _skip_or_fail('pyspark, pandas or pyarrow is not installed (pip install ".[spark]")')
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        _skip_or_fail("no Java (Spark needs Java 17 or later)")
    from tlc.runtime.spark import spark_session

    session = spark_session("local[2]", app_name="tlc tests")
    yield session
    session.stop()


def predict(*args) -> object:
    return runner.invoke(app, ["predict", *map(str, args)])


def write_csv(path: Path, rows: list[list[str]], tail: bytes = b"") -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    with open(path, "ab") as f:
        f.write(tail)
    return path


def reviews_csv(path: Path, start: int = 0, n: int = len(REVIEWS)) -> Path:
    rows = [["id", "text", "stars"]]
    rows += [[str(i), REVIEWS[i % len(REVIEWS)], str(i % 5)] for i in range(start, start + n)]
    if start == 0:
        rows[1 + 3][1] = ""                                # empty text
        rows[1 + 7][1] = "  \t "                           # whitespace
        rows[1 + 11][1] = "x" * 100_001                    # over --max-chars
        rows[1 + 15][1] = 'a review "quoted", over\ntwo lines'  # a multi-line field
    bad = (b'9000,"bad \xff bytes",1\n9001,only two\n9002,"stray "quote,3\n'
           b'9003,too,many,fields\n9004,"fine again",2\n') if start == 0 else b""
    return write_csv(path, rows, bad)


def both(model, src: Path, tmp_path: Path, name: str, *extra) -> tuple[Path, Path]:
    one, spark = tmp_path / f"one-{name}", tmp_path / f"spark-{name}"
    r = predict(model, src, "-o", one, *extra)
    assert r.exit_code == 0, r.output
    r = predict(model, src, "-o", spark, "--engine", "spark", *extra)
    assert r.exit_code == 0, r.output
    return one, spark


def read_text(path: Path) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return f.read()


# ------------------------------------------------------------------ same output, row for row


def test_csv_output_is_byte_identical_with_bad_rows_in_order(spark, model, tmp_path):
    src = reviews_csv(tmp_path / "in.csv")
    one, sp = both(model, src, tmp_path, "out.csv")
    assert sp.read_bytes() == one.read_bytes()
    rows = list(csv.DictReader(sp.open(encoding="utf-8", newline="")))
    assert len(rows) == len(REVIEWS) + 5
    assert [r["id"] for r in rows][:5] == ["0", "1", "2", "3", "4"]
    errors = {r["id"]: r["error"] for r in rows if r["error"]}
    assert errors["3"] == errors["7"] == "empty text"
    assert errors["11"].startswith("text too long")
    assert "not valid UTF-8" in errors["9000"] and "expected 3 fields" in errors["9001"]
    assert not [p for p in sp.parent.iterdir() if p.name.startswith(".")]  # no .part left
    r = predict(model, src, "-o", sp, "--engine", "spark")
    assert r.exit_code == 2 and "already exists" in r.output


def test_jsonl_tsv_and_gzip_outputs_are_identical(spark, model, tmp_path):
    lines = [json.dumps({"id": i, "text": t if i % 11 else 7, "meta": {"n": i}})
             for i, t in enumerate(REVIEWS[:120])]
    lines += ['{"id": 500, "text": "cut of', "[1, 2]", json.dumps({"id": 501, "body": "x"}),
              json.dumps({"id": 502, "text": None})]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("out.jsonl", "out.csv", "out.tsv.gz"):
        one, sp = both(model, src, tmp_path, name)
        assert read_text(sp) == read_text(one), name
    rows = [json.loads(x) for x in read_text(tmp_path / "spark-out.jsonl").splitlines()]
    assert rows[0]["meta"] == {"n": 0} and rows[11]["error"].startswith("the text is a number")
    assert rows[-1]["error"] == "empty text" and rows[-2]["error"].startswith("no text field")


def test_a_folder_of_part_files_keeps_file_then_row_order(spark, model, tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    expected = []
    for k in range(3):  # named so that name order is not creation order
        f = reviews_csv(parts / f"part-{2 - k}.csv", start=100 * (2 - k), n=70)
        expected.append(f)
    singles = []
    for f in sorted(expected):
        r = predict(model, f, "-o", tmp_path / f"{f.stem}.scored.csv")
        assert r.exit_code == 0, r.output
        singles.append(read_text(tmp_path / f"{f.stem}.scored.csv").splitlines(True))
    out = tmp_path / "all.csv"
    r = predict(model, parts, "-o", out, "--engine", "spark")
    assert r.exit_code == 0, r.output
    want = singles[0][0] + "".join("".join(s[1:]) for s in singles)
    assert read_text(out) == want
    r = predict(model, str(parts / "part-*.csv"), "-o", tmp_path / "glob.csv", "--engine", "spark")
    assert r.exit_code == 0, r.output
    assert read_text(tmp_path / "glob.csv") == want


def test_parquet_out_and_in(spark, model, tmp_path):
    src = reviews_csv(tmp_path / "in.csv")
    one = tmp_path / "one.csv"
    assert predict(model, src, "-o", one).exit_code == 0
    expected = list(csv.DictReader(one.open(encoding="utf-8", newline="")))
    pq = tmp_path / "scored.parquet"
    r = predict(model, src, "-o", pq, "--engine", "spark")
    assert r.exit_code == 0, r.output
    assert pq.is_dir() and not (tmp_path / ".scored.parquet.part").exists()
    got = spark.read.parquet(str(pq)).toPandas()
    assert list(got.columns) == ["id", "text", "stars", "label", "p_0", "p_1", "error"]
    assert len(got) == len(expected)
    for row, want in zip(got.itertuples(index=False), expected, strict=True):
        assert row.id == want["id"] and (row.label or "") == want["label"]
        for name in ("p_0", "p_1"):
            value = getattr(row, name)
            assert ("" if value is None or value != value else f"{value:.6g}") == want[name]
        assert (row.error or "") == want["error"]
    # ... and Parquet in: the text column of any table; the output columns get a prefix
    back = tmp_path / "again.csv"
    r = predict(model, pq, "-o", back, "--engine", "spark")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(back.open(encoding="utf-8", newline="")))
    assert [r["id"] for r in rows] == [r["id"] for r in expected]
    for row, want in zip(rows, expected, strict=True):
        if not want["error"]:  # (the rows that were malformed CSV are plain rows now)
            assert (row["pred_label"], row["pred_p_1"]) == (want["label"], want["p_1"])
        elif want["error"] == "empty text":
            assert row["pred_error"] == "empty text"
    r = predict(model, pq, "-o", tmp_path / "x.csv")
    assert r.exit_code == 2 and "--engine spark" in r.output


# ------------------------------------------------------------------ the DataFrame API


def test_score_dataframe(spark, model):
    from tlc.runtime.spark import score_dataframe

    texts = REVIEWS[:50]
    rows = [(i, t) for i, t in enumerate(texts)] + [(50, None), (51, ""), (52, " \n"),
                                                   (53, "y" * 1001), (54, "z")]
    df = spark.createDataFrame(rows, "id long, text string").repartition(3)
    out = score_dataframe(df, model, max_chars=1000).orderBy("id").toPandas()
    assert list(out.columns) == ["id", "text", "label", "p_0", "p_1", "error"]
    clf = Classifier.load(model)
    labels, proba = clf.score(texts)
    got = out.iloc[:50]
    assert got["label"].tolist() == labels
    assert np.array_equal(got[["p_0", "p_1"]].to_numpy(dtype=np.float32), proba)  # same bits
    bad = out.iloc[50:]["error"].tolist()
    assert bad[:3] == ["empty text"] * 3 and bad[3].startswith("text too long (1,001 characters")
    assert bad[4] is None

    labelled = spark.createDataFrame([("fine", "1")], "text string, Label string")
    assert score_dataframe(labelled, model).columns == [
        "text", "Label", "pred_label", "pred_p_0", "pred_p_1", "pred_error"]
    with pytest.raises(TlcError, match="no text column 'body'"):
        score_dataframe(df, model, text_column="body")
    with pytest.raises(TlcError, match="holds bigint, not strings") as info:
        score_dataframe(df, model, text_column="id")
    assert "cast" in info.value.hint


# ------------------------------------------------------------------ whole-run problems


def test_problems_stop_with_status_2_and_leave_nothing(spark, model, tmp_path):
    src = reviews_csv(tmp_path / "in.csv")
    r = predict(model, src, "--engine", "spark", "--text-column", "body", "-o", tmp_path / "a.csv")
    assert r.exit_code == 2 and "no text column 'body'" in r.output
    r = predict(model, src, "--engine", "spark", "--resume", "-o", tmp_path / "a.csv")
    assert r.exit_code == 2 and "--resume" in r.output
    r = predict(model, "-", "--engine", "spark", "--format", "csv")
    assert r.exit_code == 2 and "standard input" in r.output
    r = predict(model, src, "--master", "local[2]")
    assert r.exit_code == 2 and "--engine spark" in r.output
    broken = tmp_path / "broken.csv.gz"
    data = gzip.compress(src.read_bytes() * 40)
    broken.write_bytes(data[: len(data) // 2])       # a truncated download
    r = predict(model, broken, "--engine", "spark", "-o", tmp_path / "b.csv")
    assert r.exit_code == 2, r.output
    assert "could not read the input" in r.output and "Traceback" not in r.output
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".b.csv", "b.csv"))]


def test_without_pyspark_the_engine_says_how_to_get_it(model, tmp_path):
    import subprocess
    import sys

    src = reviews_csv(tmp_path / "in.csv", start=1, n=3)
    code = ("import sys; sys.modules['pyspark'] = None\n"
            "from tlc.cli import main; sys.argv = ['tlc'] + sys.argv[1:]; main()")
    r = subprocess.run([sys.executable, "-c", code, "predict", str(model), str(src),
                        "--engine", "spark"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 2, r.stderr
    assert "needs pyspark" in r.stderr and 'tlc[spark]' in r.stderr
