"""Spark scoring against one-process `tlc predict`, on the 25,000 IMDB test reviews.

    .venv/bin/pip install ".[spark]"
    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/spark.py --model model-int8.onnx

Writes the test set with a row id (and 5 bad rows: empty, whitespace, over --max-chars,
invalid UTF-8, wrong number of fields) as one CSV, scores it with `tlc predict` in one
process and with `tlc predict --engine spark --master local[2]`, each as its own command, in
the same run, alternating, and compares the two outputs row for row by id: every column,
labels, probabilities as written, errors. Also times the two ways Spark can call the model
that tlc could use (an iterator pandas UDF on the text column, which tlc uses, and
mapInPandas over whole rows) on the same DataFrame. Results: benchmarks/results/spark.json
and spark.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
csv.field_size_limit(2**31 - 1)
BAD = [b'25000,,0,0,bad-empty\n', b'25001,"   ",0,0,bad-blank\n',
       b'25002,"' + b"x" * 100_001 + b'",1,10,bad-long\n',
       b'25003,"caf\xe9 latin-1",1,10,bad-bytes\n', b'25004,"two fields only"\n']


def build_input(data_dir: Path, out: Path) -> int:
    with gzip.open(data_dir / "imdb" / "test.csv.gz", "rt", encoding="utf-8",
                   newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", *header])
        for i, row in enumerate(rows):
            w.writerow([i, *row])
    with open(out, "ab") as f:
        for line in BAD:
            f.write(line)
    return len(rows)


def load(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def run(cmd: list[str]) -> dict:
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    m = re.search(r"scored ([\d,]+) of ([\d,]+) rows in ([\d.,]+) s", r.stderr)
    return {"wall_seconds": round(wall, 2),
            "scoring_seconds": float(m.group(3).replace(",", "")) if m else None,
            "summary": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""}


def compare(one: list[dict], spark: list[dict]) -> dict:
    by_id = {r["id"]: r for r in spark}
    cols = [c for c in one[0] if c not in ("id",)]
    label_col = next(c for c in one[0] if c.endswith("label") and c != "label") \
        if "pred_label" in one[0] else "label"
    prefix = label_col[: -len("label")]
    p_cols = [c for c in one[0] if c.startswith(f"{prefix}p_")]
    err_col = f"{prefix}error"
    same_rows = sum(1 for r in one if by_id.get(r["id"]) == r)
    return {
        "rows_one_process": len(one), "rows_spark": len(spark),
        "ids_matched": sum(1 for r in one if r["id"] in by_id),
        "rows_equal_every_column": same_rows,
        "labels_equal": sum(1 for r in one if by_id[r["id"]][label_col] == r[label_col]),
        "probabilities_equal_as_written": sum(
            1 for r in one if all(by_id[r["id"]][c] == r[c] for c in p_cols)),
        "bad_rows_one_process": sum(1 for r in one if r[err_col]),
        "bad_rows_spark": sum(1 for r in spark if r[err_col]),
        "errors_equal": sum(1 for r in one if by_id[r["id"]][err_col] == r[err_col]),
        "same_order": [r["id"] for r in one] == [r["id"] for r in spark],
        "columns": list(one[0]), "compared_columns": cols,
        "errors": {r["id"]: r[err_col][:80] for r in one if r[err_col]},
    }


def udf_methods(model: str, src: Path, work: Path, master: str) -> dict:
    """Iterator pandas UDF (what tlc uses) against mapInPandas, same DataFrame, same cores."""
    sys.path.insert(0, str(ROOT))
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    from tlc.runtime import spark as S

    spark = S.spark_session(master, app_name="tlc benchmark")
    pq = work / "imdb-test.parquet"
    if not pq.exists():
        spark.read.csv(str(src), header=True, multiLine=True, escape='"').where(
            "id < 25000").select("id", "text").repartition(4).write.parquet(str(pq))
    df = spark.read.parquet(str(pq)).cache()
    n = df.count()
    clf, name, shipped = S._ship(spark, model)
    spec = S._Spec(name, shipped, clf.sha256, clf.labels, "text", 100_000, "dataframe", 32, 1)

    def by_udf():
        S.score_dataframe(df, model).write.format("noop").mode("overwrite").save()

    labels = clf.labels  # (the closure below must not hold the driver's Classifier)
    schema = StructType([*df.schema.fields, StructField("label", StringType()),
                         *[StructField(f"p_{x}", FloatType()) for x in labels],
                         StructField("error", StringType())])

    def frames(batches):
        import json as _json

        for frame in batches:
            values = [_json.dumps({"text": t}) for t in frame["text"]]
            scored = S._scored_columns(S._score_records(values, spec, "<DataFrame>"), spec)
            scored.columns = ["label", *[f"p_{x}" for x in labels], "error"]
            yield frame.reset_index(drop=True).join(scored)

    def by_map():
        df.mapInPandas(frames, schema).write.format("noop").mode("overwrite").save()

    out = {"rows": n, "partitions": df.rdd.getNumPartitions()}
    for label, fn in (("iterator_pandas_udf", by_udf), ("map_in_pandas", by_map),
                      ("iterator_pandas_udf_again", by_udf), ("map_in_pandas_again", by_map)):
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        out[label] = {"seconds": round(seconds, 2), "rows_per_second": round(n / seconds)}
    spark.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "runs" / "bench" / "model-int8.onnx"))
    ap.add_argument("--data-dir", default=os.environ.get("TLC_DATA_DIR",
                                                         str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--work", default="/tmp/tlc-spark-bench")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    src = work / "imdb-test-id.csv"
    reviews = build_input(Path(args.data_dir), src)
    py = [sys.executable, "-m", "tlc.cli", "predict", args.model, str(src), "-q", "--force"]
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    runs: dict[str, list[dict]] = {"one_process": [], "spark": []}
    for _ in range(args.repeats):  # alternating, so that a change in load hits both
        runs["one_process"].append(run([*py, "-o", str(work / "one.csv")]))
        runs["spark"].append(run([*py, "-o", str(work / "spark.csv"), "--engine", "spark",
                                  "--master", args.master]))
    rows = reviews + len(BAD)
    best = {k: min(v, key=lambda r: r["wall_seconds"]) for k, v in runs.items()}
    comparison = compare(load(work / "one.csv"), load(work / "spark.csv"))
    comparison["byte_identical"] = (work / "one.csv").read_bytes() == \
        (work / "spark.csv").read_bytes()
    methods = udf_methods(args.model, src, work, args.master)
    result = {
        "what": "tlc predict, one process (2 threads) vs --engine spark --master "
                f"{args.master}, on the {reviews:,} IMDB test reviews + {len(BAD)} bad rows, "
                "same run, alternating; best of each",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "loadavg_before": load_before,
                    "loadavg_after": Path("/proc/loadavg").read_text().split()[:3]},
        "model": {"path": args.model, "bytes": Path(args.model).stat().st_size},
        "input_rows": rows,
        "one_process": {**best["one_process"],
                        "rows_per_second_wall": round(rows / best["one_process"]["wall_seconds"]),
                        "all": runs["one_process"]},
        "spark": {**best["spark"],
                  "rows_per_second_wall": round(rows / best["spark"]["wall_seconds"]),
                  "rows_per_second_scoring": round(rows / best["spark"]["scoring_seconds"]),
                  "all": runs["spark"]},
        "spark_over_one_process_wall": round(best["one_process"]["wall_seconds"]
                                             / best["spark"]["wall_seconds"], 3),
        "comparison": comparison,
        "udf_methods": methods,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "spark.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "spark.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    c, one, sp, m = r["comparison"], r["one_process"], r["spark"], r["udf_methods"]
    lines = [
        "# Spark scoring vs one process (benchmarks/spark.py)", "",
        r["what"] + ".", "",
        f"Machine: {r['machine']['cpus']} cores; load average before "
        f"{' '.join(r['machine']['loadavg_before'])}, after "
        f"{' '.join(r['machine']['loadavg_after'])}. Model: {r['model']['bytes']:,} bytes.", "",
        "| engine | command | wall s | rows/s (wall) | scoring s | rows/s (scoring) |",
        "|---|---|---:|---:|---:|---:|",
        f"| one process | `tlc predict` (2 threads) | {one['wall_seconds']} | "
        f"{one['rows_per_second_wall']:,} | {one['scoring_seconds']} | "
        f"{round(r['input_rows'] / one['scoring_seconds']):,} |",
        f"| Spark local[2] | `tlc predict --engine spark` | {sp['wall_seconds']} | "
        f"{sp['rows_per_second_wall']:,} | {sp['scoring_seconds']} | "
        f"{sp['rows_per_second_scoring']:,} |", "",
        "Wall: the whole command (Python, and for Spark the JVM and session start-up). "
        "Scoring: from the model load on (Spark: reading, shuffle, scoring, writing).", "",
        f"Same answers: {c['ids_matched']:,} of {c['rows_one_process']:,} ids matched; "
        f"{c['rows_equal_every_column']:,} rows equal in every column; labels equal "
        f"{c['labels_equal']:,}; probabilities equal as written "
        f"{c['probabilities_equal_as_written']:,}; "
        f"bad rows {c['bad_rows_one_process']} (one process) and {c['bad_rows_spark']} (Spark), "
        f"errors equal {c['errors_equal']:,}; same order: {c['same_order']}; files byte "
        f"identical: {c['byte_identical']}.", "",
        f"How Spark calls the model ({m['rows']:,} reviews from Parquet, {m['partitions']} "
        "partitions, noop sink):", "",
        "| method | s | rows/s | again s | rows/s |", "|---|---:|---:|---:|---:|",
        f"| iterator pandas UDF on the text column (tlc) | {m['iterator_pandas_udf']['seconds']} "
        f"| {m['iterator_pandas_udf']['rows_per_second']:,} | "
        f"{m['iterator_pandas_udf_again']['seconds']} | "
        f"{m['iterator_pandas_udf_again']['rows_per_second']:,} |",
        f"| mapInPandas over whole rows | {m['map_in_pandas']['seconds']} | "
        f"{m['map_in_pandas']['rows_per_second']:,} | {m['map_in_pandas_again']['seconds']} | "
        f"{m['map_in_pandas_again']['rows_per_second']:,} |", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
