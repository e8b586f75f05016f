"""Scoring on Spark with the same answers as one process (``pip install "tlc[spark]"``).

Two ways in:

- :func:`score_dataframe` adds ``label``, one ``p_<label>`` column per class and ``error`` to
  any Spark DataFrame with a string text column. The exported file is shipped to the
  executors by Spark (``SparkContext.addFile``) and loaded once per Python worker (Spark
  reuses its workers, so once per executor core), with the extensions' ops registered, by
  an iterator pandas UDF that sees only the text column: the other columns never leave the
  JVM.
- :func:`predict_file` is ``tlc predict --engine spark``: the formats ``tlc predict`` reads
  (CSV, TSV, JSONL, fastText, plain text, gzip; a file, a folder of them or a glob) and
  Parquet, written as one CSV/TSV/JSONL file or a Parquet folder.

Same answers means the same code: rows of tlc's formats are read by :mod:`tlc.data.readers`
inside Spark tasks (one task per file), every row goes through ``tlc.runtime.batch``'s own
bad-row rule (``tlc.data.examples.row_text`` plus the ``text too long`` limit) and is scored
by the same :class:`~tlc.runtime.Classifier`, and a file output is rendered row by row by
``tlc predict``'s own writer, so a row comes out byte for byte as ``tlc predict`` writes it.
Probabilities stay float32 in a DataFrame (written as ``tlc predict`` writes them only when
rendered to a file), and how Spark cuts the rows into batches never changes them (see
:meth:`Classifier._run`).

Rows keep their input order: each row carries (file number, row number); the rows are range
partitioned on it before scoring (so the scoring spreads over every executor even for one
file) and the driver streams the partitions back in order into one file, written to
``.NAME.part`` and renamed when complete, as ``tlc predict`` does.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlc.data.examples import check_columns, reason_key
from tlc.data.io import is_stdin, strip_compression
from tlc.data.readers import FORMATS, Record, detect_format, looks_like_aclimdb, read_records
from tlc.errors import DataError, TlcError
from tlc.runtime import batch
from tlc.runtime.batch import DEFAULT_MAX_CHARS, PREFIX, Summary
from tlc.runtime.classifier import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_TRUNCATE_CHARS,
    Classifier,
    available_cores,
)

PARQUET = "parquet"
READ_BATCH = 10_000
"""Rows per pandas frame that a reading task hands to Spark."""
PARTITION_BYTES = 32 << 20
"""About this much input text per scoring partition: the driver holds one partition at a
time while it writes a file output, so partitions stay small whatever the input's size."""
_MARK = "TLC-ERROR:"
_NAMES = ("label", "error")


def _spark_missing() -> TlcError:
    return TlcError("Spark scoring needs pyspark (with pandas and pyarrow)",
                    hint='pip install "tlc[spark]" (and Java 17 or later for Spark itself)')


def _require_pyspark():
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
        from pyspark.sql import functions  # noqa: F401
    except ImportError:
        raise _spark_missing() from None


# ---------------------------------------------------------------- the session


def spark_session(master: str | None = None, *, app_name: str = "tlc predict", quiet=True):
    """The active SparkSession, else a new one on ``master`` (default ``local[*]``).

    On a local master the Python workers run this interpreter and import this copy of
    tlc (the driver's ``sys.executable`` and the folder holding ``tlc``), so a virtual
    environment or a source checkout works without PYSPARK_PYTHON. A cluster needs tlc
    installed on its executors (``pip install "tlc[spark]"``)."""
    _require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    master = master or os.environ.get("SPARK_MASTER") or "local[*]"
    builder = SparkSession.builder.master(master).appName(app_name)
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        root = str(Path(__file__).resolve().parents[2])
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        path = os.pathsep.join([root, *(p for p in paths if p != root)])
        builder = builder.config("spark.executorEnv.PYTHONPATH", path)
        os.environ["PYTHONPATH"] = path  # the local JVM, and its Python workers, inherit it
    if quiet:
        builder = builder.config("spark.ui.showConsoleProgress", "false")
    try:
        spark = builder.getOrCreate()
    except Exception as err:  # Java missing, a bad master URL: Py4J/Spark's own types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TlcError(f"could not start Spark on {master}: {first}",
                       hint="check --master (local[N], spark://HOST:7077, yarn) and that "
                       "Java 17 or later is installed (java -version)") from None
    if quiet:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


# ---------------------------------------------------------------- what executors need


@dataclass(frozen=True)
class _Spec:
    """Everything a scoring task needs, pickled into the UDF."""

    model_name: str
    """The file's name in SparkFiles (``addFile``), or its path when not shipped."""
    shipped: bool
    sha256: str
    labels: tuple[str, ...]
    text_column: str
    max_chars: int
    fmt: str
    """The input format (``_prepare``'s fastText rule), or ``dataframe``."""
    batch_size: int
    threads: int
    rows: batch._Rows | None = None
    """The file writer's row renderer (file outputs), else None (columns)."""


_LOADED: dict[tuple, Classifier] = {}


def _classifier(spec: _Spec) -> Classifier:
    """The model, loaded once per Python worker (Spark reuses workers between tasks)."""
    key = (spec.model_name, spec.sha256, spec.batch_size, spec.threads)
    clf = _LOADED.get(key)
    if clf is None:
        path = spec.model_name
        if spec.shipped:
            from pyspark import SparkFiles

            path = SparkFiles.get(spec.model_name)
        clf = Classifier.load(path, threads=spec.threads, batch_size=spec.batch_size,
                              truncate_chars=DEFAULT_TRUNCATE_CHARS)
        if clf.sha256 != spec.sha256:
            raise TlcError("the model file an executor got is not the driver's", path=path,
                           hint="give every model file its own name within one Spark "
                           "application")
        _LOADED[key] = clf
    return clf


def _encode_record(record: Record) -> str:
    """A row read by tlc's readers, as it travels between Spark stages."""
    return json.dumps({"s": record.source, "l": record.line, "f": record.fields,
                       "e": record.error, "p": record.parsed})


def _decode_record(text: str, fmt: str, source: str) -> Record:
    obj = json.loads(text)
    if fmt != "dataframe":
        return Record(obj["s"], obj["l"], obj["f"], obj["e"], obj["p"])
    from tlc.data.readers import _json_value

    # A DataFrame row (to_json of its columns): its values as a JSON line's would be read.
    return Record(source, None, {k: _json_value(v) for k, v in obj.items()}, None, obj)


def _score_records(values, spec: _Spec, source: str) -> list[tuple[Record, tuple]]:
    """(record, (label, probabilities, error)) per encoded row: ``tlc predict``'s rule and
    scoring, row for row."""
    records = [_decode_record(v, spec.fmt, source) for v in values]
    prepared = [batch._prepare(r, spec.text_column, spec.max_chars, spec.fmt)
                for r in records]
    texts = [p for p in prepared if isinstance(p, str)]
    scored = iter(batch._score_safely(_classifier(spec), texts) if texts else [])
    return [(r, next(scored) if isinstance(p, str) else (None, None, p[0]))
            for r, p in zip(records, prepared, strict=True)]


def _scored_columns(pairs, spec: _Spec):
    import numpy as np
    import pandas as pd

    n = len(spec.labels)
    proba = np.full((len(pairs), n), np.nan, dtype=np.float32)  # NaN goes to Spark as null
    for i, (_, (_, p, _)) in enumerate(pairs):
        if p is not None:
            proba[i] = p
    frame = {"label": [lab for _, (lab, _, _) in pairs]}
    for j in range(n):
        frame[f"p{j}"] = proba[:, j]
    frame["error"] = [err for _, (_, _, err) in pairs]
    return pd.DataFrame(frame)


def _rendered_columns(pairs, spec: _Spec):
    import pandas as pd

    keep_json = spec.rows.fmt == "jsonl"
    out, errors, where = [], [], []
    for record, result in pairs:
        out.append(spec.rows.render([(record, record.parsed if keep_json else None)],
                                    [result]))
        errors.append(result[2])
        where.append(None if result[2] is None else
                     record.source if record.line is None else f"{record.source}:{record.line}")
    return pd.DataFrame({"out": out, "error": errors, "where": where})


def _result_type(spec: _Spec):
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    if spec.rows is not None:
        return StructType([StructField("out", StringType()), StructField("error", StringType()),
                           StructField("where", StringType())])
    return StructType([StructField("label", StringType()),
                       *[StructField(f"p{j}", FloatType()) for j in range(len(spec.labels))],
                       StructField("error", StringType())])


def _scoring_udf(spec: _Spec, source: str):
    """An iterator pandas UDF: encoded rows in, one struct of results out, model loaded once
    per worker."""
    from pyspark.sql.functions import pandas_udf

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        try:
            for values in batches:
                pairs = _score_records(values.tolist(), spec, source)
                yield (_rendered_columns if spec.rows is not None else _scored_columns)(
                    pairs, spec)
        except TlcError as err:
            raise RuntimeError(_carry(err)) from None

    import pandas as pd

    # pyspark reads the UDF's kind (iterator of Series -> iterator of frames) off its hints.
    score.__annotations__ = {"batches": Iterator[pd.Series], "return": Iterator[pd.DataFrame]}
    return pandas_udf(score, _result_type(spec))


# ---------------------------------------------------------------- errors across the wire


def _carry(err: TlcError) -> str:
    """A TlcError raised on an executor, as text that survives Spark's error wrapping."""
    return _MARK + json.dumps({"message": err.message, "path": err.path, "line": err.line,
                               "hint": err.hint, "kind": type(err).__name__})


def _carried(err: BaseException) -> TlcError | None:
    text = str(err)
    at = text.find(_MARK)
    if at < 0:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(text, at + len(_MARK))
    except ValueError:
        return None
    kind = DataError if data.pop("kind") == "DataError" else TlcError
    return kind(data.pop("message"), **data)


def _as_tlc_error(err: BaseException, what: str) -> TlcError | None:
    """What Spark raised, as a TlcError: one raised in a task comes back as itself, anything
    else from Spark (a lost executor, Java out of memory) as one message. None: not Spark's."""
    if isinstance(err, TlcError):
        return err
    if not type(err).__module__.startswith(("pyspark", "py4j")):
        return None
    carried = _carried(err)
    if carried is not None:
        return carried
    text = str(err).strip()
    first = next((ln for ln in text.splitlines() if "Error" in ln or "Exception" in ln),
                 text.splitlines()[0] if text else type(err).__name__)
    return TlcError(f"Spark failed while {what}: {first.strip()[:500]}",
                    hint="see the Spark log above; a task that fails 4 times stops the job")


def _run_spark(fn, what: str):
    """Run a Spark action, its errors as :func:`_as_tlc_error` says."""
    try:
        return fn()
    except Exception as err:
        converted = _as_tlc_error(err, what)
        if converted is None or converted is err:
            raise
        raise converted from None


# ---------------------------------------------------------------- DataFrames


def _output_prefix(columns: list[str], labels: tuple[str, ...]) -> str:
    """``pred_`` (repeated) when an input column is named like an output column; Spark's
    column names are case-insensitive, so the comparison is too."""
    taken = {c.lower() for c in columns}
    names = [*_NAMES, *(f"p_{name}" for name in labels)]
    prefix = ""
    while any(f"{prefix}{n}".lower() in taken for n in names):
        prefix += PREFIX
    return prefix


def _ship(spark, model: str | os.PathLike[str]) -> tuple[Classifier, str, bool]:
    """Load the model on the driver (every problem with it is found here, once) and hand it
    to Spark to copy to the executors."""
    clf = Classifier.load(model, threads=1)
    path = str(Path(model).resolve())
    try:
        spark.sparkContext.addFile(path)
    except Exception as err:  # Py4J's: another file of this name was added before
        raise TlcError(f"Spark could not ship the model: {str(err).splitlines()[0][:300]}",
                       path=path, hint="give every model file its own name within one Spark "
                       "application") from None
    return clf, Path(path).name, True


def _check_text_column(df, text_column: str) -> None:
    from pyspark.sql.types import StringType

    fields = {f.name: f for f in df.schema.fields}
    if text_column not in fields:
        found = ", ".join(repr(c) for c in df.columns) or "none"
        raise DataError(f"no text column {text_column!r} (columns found: {found})",
                        hint="pass --text-column (text_column=) with the column holding the "
                        "text")
    kind = fields[text_column].dataType
    if not isinstance(kind, StringType):
        raise DataError(f"the text column {text_column!r} holds {kind.simpleString()}, not "
                        "strings", hint=f"cast it first: df.withColumn({text_column!r}, "
                        f"df[{text_column!r}].cast('string')), or name another column")


def score_dataframe(df, model: str | os.PathLike[str], *, text_column: str = "text",
                    max_chars: int = DEFAULT_MAX_CHARS, batch_size: int = DEFAULT_BATCH_SIZE,
                    threads: int = 1):
    """``df`` with ``label``, ``p_<label>`` (float32, one per class, in the model's label
    order) and ``error`` added (``pred_`` before each if ``df`` has such a column already).

    A row that cannot be scored keeps null label and probabilities, and says why in
    ``error``: a null, empty or whitespace text is ``empty text``, one over ``max_chars``
    characters ``text too long (...)``, as ``tlc predict`` writes them. The text column must
    hold strings (a whole-column problem is a :class:`TlcError` at once, not a million bad
    rows). ``threads``: cores one Spark task scores on (Spark runs one task per core).
    Lazy, like every Spark transformation."""
    _require_pyspark()
    from pyspark.sql import functions as F

    if max_chars < 1:
        raise DataError("max_chars must be at least 1")
    _check_text_column(df, text_column)
    spark = df.sparkSession
    clf, name, shipped = _ship(spark, model)
    spec = _Spec(name, shipped, clf.sha256, clf.labels, text_column, max_chars, "dataframe",
                 batch_size, threads)
    prefix = _output_prefix(df.columns, clf.labels)
    encoded = F.to_json(F.struct(F.col(f"`{text_column}`")),
                        {"ignoreNullFields": "false"})
    result = _scoring_udf(spec, "<DataFrame>")(encoded)
    tmp = "__tlc_result"
    while tmp in df.columns:
        tmp += "_"
    out = df.withColumn(tmp, result)
    return out.select(
        *[F.col(f"`{c}`") for c in df.columns],
        F.col(f"{tmp}.label").alias(f"{prefix}label"),
        *[F.col(f"{tmp}.p{j}").alias(f"{prefix}p_{name}") for j, name in enumerate(clf.labels)],
        F.col(f"{tmp}.error").alias(f"{prefix}error"))


# ---------------------------------------------------------------- tlc predict --engine spark


@dataclass
class _Input:
    fmt: str
    units: list[str]
    """Files (or aclImdb folders) read by one task each, in order; a Parquet input's path."""
    nbytes: int


def _is_parquet_name(path: str) -> bool:
    return strip_compression(Path(path).name).lower().endswith(".parquet")


def _find_input(input_path: str, fmt: str | None) -> _Input:
    """A file, a folder (Parquet, aclImdb, or files of one of tlc's formats) or a glob."""
    if is_stdin(input_path):
        raise DataError("--engine spark reads files, not standard input", path="-",
                        hint="write the input to a file (or leave out --engine spark)")
    if fmt is not None and fmt not in (*FORMATS, PARQUET):
        raise DataError(f"unknown format {fmt!r}",
                        hint=f"use one of: {', '.join((*FORMATS, PARQUET))}")
    p = Path(input_path)
    if any(c in input_path for c in "*?[") and not p.exists():
        files = sorted(f for f in glob.glob(input_path) if Path(f).is_file())
        if not files:
            raise DataError("no file matches this pattern", path=input_path,
                            hint="check the pattern (quote it so the shell leaves it alone)")
    elif p.is_dir():
        if fmt == "aclimdb" or (fmt is None and looks_like_aclimdb(p)):
            return _Input("aclimdb", [str(p)], sum(f.stat().st_size for f in p.rglob("*.txt")))
        files = sorted(str(f) for f in p.iterdir()
                       if f.is_file() and not f.name.startswith((".", "_")))
        if fmt == PARQUET or (fmt is None and files and all(_is_parquet_name(f)
                                                            for f in files)):
            return _Input(PARQUET, [str(p)], sum(Path(f).stat().st_size for f in files))
        if not files:
            raise DataError("the folder holds no input files", path=p,
                            hint="name a file, a folder of files, or a glob")
    elif p.is_file():
        files = [str(p)]
    else:
        raise DataError("no such file", path=input_path,
                        hint="check the path (relative paths start at the current folder)")
    if fmt == PARQUET or (fmt is None and all(_is_parquet_name(f) for f in files)):
        return _Input(PARQUET, files, sum(Path(f).stat().st_size for f in files))
    kinds = {f: fmt or detect_format(f) for f in files}
    if len(set(kinds.values())) > 1:
        found = ", ".join(f"{Path(f).name}: {k}" for f, k in list(kinds.items())[:6])
        raise DataError(f"the input files are of different formats ({found})",
                        path=input_path, hint="score each format separately, or pass --format")
    size = 0
    for f in files:
        size += Path(f).stat().st_size * (4 if f.endswith((".gz", ".bz2", ".xz")) else 1)
    return _Input(next(iter(kinds.values())), files, size)


def _first_block(unit: str, fmt: str, text_column: str, header: list[str],
                 want: int) -> list[tuple[Record, Any]]:
    """The first rows of a file, and ``tlc predict``'s whole-file check of its text column
    (:func:`~tlc.data.examples.check_columns`: a column no good row of the first 1,000 holds
    stops here, once, before Spark starts any work)."""
    block: list[tuple[Record, Any]] = []
    raw = read_records(unit, fmt, on_header=header.extend)
    records = check_columns(raw, [("text", text_column, "--text-column")])
    try:
        for record in records:
            if len(block) >= want:
                break
            block.append((record, record.parsed))
    except TlcError:
        raise
    except (OSError, EOFError, ValueError) as err:
        raise DataError(f"could not read the input: {err}", path=unit,
                        hint="check the file (a damaged or truncated download?)") from None
    finally:
        records.close()
        raw.close()
    return block


def _read_units(spark, units: list[str], fmt: str):
    """A DataFrame (unit, row, record) of every row of ``units``, read by tlc's readers,
    one Spark task per unit."""
    from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

    schema = StructType([StructField("unit", IntegerType()), StructField("row", LongType()),
                         StructField("record", StringType())])
    listing = spark.createDataFrame([(i, u) for i, u in enumerate(units)], "unit int, path string")
    listing = listing.repartition(len(units), "unit") if len(units) > 1 else \
        listing.coalesce(1)

    def read(frames: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        for frame in frames:
            for unit, path in zip(frame["unit"], frame["path"], strict=True):
                rows: list[int] = []
                texts: list[str] = []
                try:
                    for i, record in enumerate(read_records(path, fmt)):
                        rows.append(i)
                        texts.append(_encode_record(record))
                        if len(rows) >= READ_BATCH:
                            yield pd.DataFrame({"unit": unit, "row": rows, "record": texts})
                            rows, texts = [], []
                except TlcError as err:
                    raise RuntimeError(_carry(err)) from None
                except (OSError, EOFError, ValueError) as err:
                    raise RuntimeError(_carry(DataError(
                        f"could not read the input: {err}", path=path,
                        hint="check the file (a damaged or truncated download?)"))) from None
                if rows:
                    yield pd.DataFrame({"unit": unit, "row": rows, "record": texts})

    return listing.mapInPandas(read, schema)


def predict_file(
    model: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    fmt: str | None = None,
    out_format: str | None = None,
    text_column: str = "text",
    max_chars: int = DEFAULT_MAX_CHARS,
    force: bool = False,
    master: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int = 1,
    partitions: int | None = None,
    spark=None,
    say: Callable[[str], None] | None = None,
) -> Summary:
    """``tlc predict --engine spark``: score ``input_path`` into ``out`` on Spark.

    The output is ``tlc predict``'s, row for row: one CSV/TSV/JSONL file (optionally .gz) in
    input order, or a Parquet folder (``--out NAME.parquet`` or ``--out-format parquet``).
    ``partitions``: how many pieces the rows are scored in (default: enough for every core
    twice over, and at most ~32 MB of text each)."""
    say = say or (lambda m: print(m, file=sys.stderr))
    input_path = os.fspath(input_path)
    if max_chars < 1:
        raise DataError("--max-chars must be at least 1")
    found = _find_input(input_path, fmt)
    out_fmt = _output_format(found.fmt, out, out_format)
    if out is None:
        out = _default_output(input_path, found.fmt, out_fmt)
    out = os.fspath(out)
    if is_stdin(out):
        raise DataError("--engine spark writes a file, not standard output", path="-",
                        hint="give --out FILE (or leave out --engine spark)")
    target = Path(out)
    _check_out(input_path, target, out_fmt, force)
    if found.fmt != PARQUET:
        header: list[str] = []
        # tlc predict takes a JSONL output's columns from its first block of rows
        first = _first_block(found.units[0], found.fmt, text_column, header,
                             want=max(batch.BLOCK_ROWS, batch_size * available_cores()))
        for unit in found.units[1:]:
            _first_block(unit, found.fmt, text_column, [], want=0)
    spark = spark or spark_session(master)
    clf, name, shipped = _ship(spark, model)
    start = time.perf_counter()
    summary = Summary(out=out)

    # -- the rows, in order: (unit, row) and their record ------------------------------------
    from pyspark.sql import functions as F

    if found.fmt == PARQUET:
        df = _run_spark(lambda: spark.read.parquet(*found.units), "reading the input")
        _check_text_column(df, text_column)
        source = found.units[0] if len(found.units) == 1 else input_path
        rows_df = df.select(F.lit(0).alias("unit"),
                            F.monotonically_increasing_id().alias("row"),
                            F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns]),
                                      {"ignoreNullFields": "false"}).alias("record"),
                            *[F.col(f"`{c}`") for c in df.columns])
        columns = list(df.columns)
        spec_fmt = "dataframe"
    else:
        source = input_path
        n = partitions or max(2 * spark.sparkContext.defaultParallelism,
                              math.ceil(found.nbytes / PARTITION_BYTES))
        # Cached as read: the range partitioning samples the rows before it moves them, and
        # would otherwise read the input twice.
        from pyspark import StorageLevel

        read = _read_units(spark, found.units, found.fmt).persist(StorageLevel.MEMORY_AND_DISK)
        rows_df = read.repartitionByRange(n, "unit", "row").sortWithinPartitions("unit", "row")
        spec_fmt = found.fmt
        columns = None

    if out_fmt == PARQUET:
        if columns is None:  # tlc's formats: the columns tlc predict would write
            block_writer = batch._first_rows("csv", first, header, clf, text_column, say)
            columns = block_writer.columns
        prefix = _output_prefix(columns, clf.labels)
        if prefix:
            say(f"the input already has a column named like an output column: the output "
                f"columns are {prefix}label, {prefix}p_<label>, {prefix}error")
        spec = _Spec(name, shipped, clf.sha256, clf.labels, text_column, max_chars, spec_fmt,
                     batch_size, threads)
        result = _scoring_udf(spec, source)(F.col("record"))
        scored = rows_df.withColumn("__tlc", result)
        if found.fmt == PARQUET:
            keep = [F.col(f"`{c}`") for c in columns]
        else:
            fields = F.from_json(F.col("record"), "f map<string,string>")["f"]
            keep = [F.coalesce(fields[c], F.lit("")).alias(c) for c in columns]
        final = scored.select(
            *keep, F.col("__tlc.label").alias(f"{prefix}label"),
            *[F.col(f"__tlc.p{j}").alias(f"{prefix}p_{lab}") for j, lab in enumerate(clf.labels)],
            F.col("__tlc.error").alias(f"{prefix}error"))
        _write_parquet(spark, final, target, f"{prefix}error", summary)
    else:
        if found.fmt == PARQUET:
            rows_writer = batch._Rows(out_fmt, columns, clf.labels,
                                      _output_prefix(columns, clf.labels))
        else:
            rows_writer = batch._first_rows(out_fmt, first, header, clf, text_column, say)
        spec = _Spec(name, shipped, clf.sha256, clf.labels, text_column, max_chars, spec_fmt,
                     batch_size, threads, rows_writer)
        result = _scoring_udf(spec, source)(F.col("record"))
        scored = rows_df.select(result.alias("r")).select("r.out", "r.error", "r.where")
        _write_file(scored, out, rows_writer, summary)
    summary.seconds = time.perf_counter() - start
    if found.fmt != PARQUET:
        read.unpersist()
    return summary


def _output_format(input_fmt: str, out, out_format: str | None) -> str:
    if out_format == PARQUET or (out_format is None and out is not None and
                                 _is_parquet_name(os.fspath(out))):
        return PARQUET
    if input_fmt == PARQUET:
        return batch.output_format("csv", out, out_format) if (out or out_format) else PARQUET
    return batch.output_format(input_fmt, out, out_format)


def _default_output(input_path: str, input_fmt: str, out_fmt: str) -> str:
    if out_fmt != PARQUET and input_fmt != PARQUET and not any(c in input_path for c in "*?["):
        return batch.default_output(input_path, out_fmt)
    p = Path(input_path.rstrip("/"))
    stem = re.sub(r"[*?\[\]]", "", strip_compression(p.name)) or "input"
    stem = stem[: -len(Path(stem).suffix)] if Path(stem).suffix else stem
    suffix = ".parquet" if out_fmt == PARQUET else batch._OUT_SUFFIX[out_fmt]
    return str(p.with_name(f"{stem}.scored{suffix}"))


def _check_out(input_path: str, target: Path, out_fmt: str, force: bool) -> None:
    if out_fmt != PARQUET:
        batch._check_paths(input_path, str(target), resume=False, force=force)
        return
    if not target.parent.is_dir():
        raise DataError("output folder does not exist", path=target.parent,
                        hint=f"create it first: mkdir -p {target.parent}")
    if target.exists() and not force:
        raise DataError("already exists", path=target, hint="pass --force to overwrite it, "
                        "or choose another --out")
    if Path(input_path).exists() and target.exists() and \
            target.resolve() == Path(input_path).resolve():
        raise DataError("the output would overwrite the input", path=target,
                        hint="choose another --out")


def _count(summary: Summary, error: str | None, where: str | None) -> None:
    summary.rows += 1
    if error is None:
        summary.scored += 1
        return
    summary.errors[reason_key(error)] += 1
    if len(summary.examples) < 3 and where is not None:
        summary.examples.append(f"{where}: {error}")


def _write_file(scored, out: str, rows_writer, summary: Summary) -> None:
    """Stream the scored partitions back in order into one file, as tlc predict writes it.

    ``toLocalIterator`` runs one job per partition, one after the other, so the rows are
    scored first, on every executor at once, into Spark's cache (memory, else the
    executors' disks), and only then streamed to the driver partition by partition."""
    from pyspark import StorageLevel

    output = batch._Output(out, out.endswith(".gz"))
    try:
        scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
        scored.count()
        output.write(rows_writer.header())
        buf: list[str] = []
        size = 0
        for text, error, where in scored.toLocalIterator(prefetchPartitions=True):
            buf.append(text)
            size += len(text)
            _count(summary, error, where)
            if size >= 1 << 20:
                output.write("".join(buf))
                buf, size = [], 0
        output.write("".join(buf))
        output.finish()
        scored.unpersist()
    except Exception as err:
        output.discard()
        converted = _as_tlc_error(err, "scoring")
        if converted is None or converted is err:
            raise
        raise converted from None
    except BaseException:
        output.discard()
        raise


def _write_parquet(spark, final, target: Path, error_column: str, summary: Summary) -> None:
    """A Parquet folder, written beside the target and renamed when complete (local files);
    the rows' errors counted from what was written."""
    import shutil

    local = spark.sparkContext.master.startswith("local")
    part = target.with_name(f".{target.name}.part") if local else target
    if part.exists():
        shutil.rmtree(part)
    _run_spark(lambda: final.write.mode("overwrite").parquet(str(part)), "scoring")
    counts = _run_spark(lambda: spark.read.parquet(str(part)).groupBy(error_column).count()
                        .collect(), "counting the errors")
    for error, n in counts:
        summary.rows += n
        if error is None:
            summary.scored += n
        else:
            summary.errors[reason_key(error)] += n
    if local:
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(part, target)

