"""``tlc predict``: score a whole file, streaming, with bad rows kept and an atomic write.

Rows are read with :mod:`tlc.data.readers` (CSV, TSV, JSONL, fastText, plain text, gzip,
``-`` for stdin) a block at a time; the next block is read while the current one is scored
(the :class:`~tlc.runtime.Classifier` runs its chunks on every core), so memory stays flat on
a file of any size and rows come out in input order.

Every input row gives exactly one output row: every input column, then ``label``, one
``p_<label>`` column per class and ``error``. A row that cannot be scored (empty or missing
text, invalid UTF-8, a malformed CSV row or JSON line, a text over ``max_chars``) is written
with empty label and probabilities and the reason in ``error``, and counted.

The output is written to ``.NAME.part`` beside it, with a progress record
``.NAME.progress.part`` (rows done, bytes written, what input, model and settings) updated at
every block boundary, and renamed to NAME only when the last row is written: an interrupted
run never leaves a truncated file that looks complete, and ``resume=True`` cuts the partial
file back to the last record and continues after the rows it holds: every row is written
exactly once, and no row already written is scored again.

The output is locked (``.NAME.lock`` beside it, see :class:`~tlc.ownership.OutputLock`) from
before its files are looked at until the rename: a second run on the same output is refused
at once and never touches the first's files. ``force=True`` replaces only what tlc predict
writes (see :func:`is_predict_output`) and its own partial files, never another file.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlc.data.examples import check_columns, reason_key, row_text
from tlc.data.io import csv_text, is_stdin, strip_compression
from tlc.data.readers import EXTENSIONS, FORMATS, Record, detect_format, read_records
from tlc.errors import DataError, TlcError
from tlc.ownership import OutputLock, check_replace, first_line
from tlc.runtime.classifier import DEFAULT_TRUNCATE_CHARS, Classifier

OUT_FORMATS = ("csv", "tsv", "jsonl")
DEFAULT_MAX_CHARS = DEFAULT_TRUNCATE_CHARS
"""Longer texts are not scored (error "text too long"); raised, they are scored on their first
``DEFAULT_TRUNCATE_CHARS`` characters (the Classifier's cut). The model reads only the beginning
of a document (its sentences x tokens grid, about 10,000 characters), so this only stops
runaway rows (a log dump, a whole book) from costing time and memory."""
BLOCK_ROWS = 2048
"""Rows read, scored and written at a time (or ``batch_size x threads`` when larger). The
Classifier sorts a block's texts by length before cutting it into runs, and the graph's work
follows the longest text of a run, so a block must hold enough rows for similar lengths to
meet: 2,048 IMDB reviews are about 3 MB of text; two blocks are in memory at a time."""
PROGRESS_VERSION = 1
PREFIX = "pred_"
EXPLAIN_COLUMNS = ("decisive_sentence", "summary")
"""The columns `tlc predict --explain` adds after `error`."""
_DEFAULT_OUT = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "text": "jsonl",
                "fasttext": "jsonl", "aclimdb": "csv"}
_OUT_SUFFIX = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl"}


@dataclass
class Summary:
    """What a run did; ``describe()`` is the line ``tlc predict`` prints at the end."""

    out: str
    rows: int = 0
    """Rows in the output (including those written before a resume)."""
    scored: int = 0
    errors: Counter = field(default_factory=Counter)
    """Reason -> rows that were written with an error instead of a prediction."""
    examples: list[str] = field(default_factory=list)
    """A few bad rows, as ``file:line: reason``."""
    resumed_rows: int = 0
    """Rows already done by the interrupted run this one continued."""
    seconds: float = 0.0
    """This run's time (not the interrupted run's)."""
    output_closed: bool = False
    """The reader of standard output went away (e.g. ``| head``) before the end."""

    @property
    def rows_per_second(self) -> float:
        done = self.rows - self.resumed_rows
        return done / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        bad = sum(self.errors.values())
        text = (f"scored {self.scored:,} of {self.rows:,} rows in {self.seconds:,.1f} s "
                f"({self.rows_per_second:,.0f} rows/s)")
        if self.resumed_rows:
            text += f", resumed after row {self.resumed_rows:,}"
        text += " -> standard output" if self.out == "-" else f" -> {self.out}"
        if bad:
            reasons = ", ".join(f"{n:,} {k}" for k, n in self.errors.most_common())
            text += f"\n{bad:,} row{'s' * (bad != 1)} written with an error instead of a " \
                    f"label: {reasons}"
            for example in self.examples:
                text += f"\n  e.g. {example}"
        if self.output_closed:
            text += "\nstopped early: the reader of standard output closed it"
        return text


# ---------------------------------------------------------------- where and how to write


def output_format(input_fmt: str, out: str | os.PathLike[str] | None,
                  out_format: str | None) -> str:
    """--out-format, else the --out file's extension, else the input's own format (plain
    text and fastText come out as JSONL, aclImdb folders as CSV)."""
    if out_format is not None:
        if out_format not in OUT_FORMATS:
            raise DataError(f"unknown output format {out_format!r}",
                            hint=f"use one of: {', '.join(OUT_FORMATS)}")
        return out_format
    if out is not None and not is_stdin(out):
        name = strip_compression(Path(out).name)
        suffix = Path(name).suffix.lower()
        fmt = EXTENSIONS.get(suffix)
        if fmt in OUT_FORMATS:
            return fmt
        if suffix:
            raise DataError(f"cannot tell the output format from {suffix!r}", path=out,
                            hint="name the file .csv, .tsv or .jsonl (optionally .gz), or "
                            "pass --out-format csv|tsv|jsonl")
    return _DEFAULT_OUT[input_fmt]


def default_output(input_path: str | os.PathLike[str], out_fmt: str) -> str:
    """``reviews.csv.gz`` -> ``reviews.scored.csv.gz``; ``reviews.txt`` -> ``reviews.scored
    .jsonl``; standard input -> standard output."""
    if is_stdin(input_path):
        return "-"
    p = Path(input_path)
    if p.is_dir():
        return str(p.parent / f"{p.name}.scored{_OUT_SUFFIX[out_fmt]}")
    base = strip_compression(p.name)
    stem = base[: -len(Path(base).suffix)] if Path(base).suffix else base
    gz = ".gz" if p.name.endswith(".gz") else ""
    return str(p.with_name(f"{stem}.scored{_OUT_SUFFIX[out_fmt]}{gz}"))


def part_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The temporary output and its progress record, beside ``out``."""
    p = Path(out)
    return p.with_name(f".{p.name}.part"), p.with_name(f".{p.name}.progress.part")


class _Rows:
    """Turns scored blocks into output text in one of the OUT_FORMATS."""

    def __init__(self, fmt: str, columns: list[str], labels: tuple[str, ...], prefix: str,
                 explain: bool = False):
        self.fmt = fmt
        self.columns = columns
        self.labels = labels
        self.prefix = prefix
        self.explain = explain   # --explain: the decisive sentence and a summary, last
        self.label_name, self.proba_names, self.error_name = self.names(prefix)

    def explain_names(self, prefix: str) -> list[str]:
        return [f"{prefix}{n}" for n in EXPLAIN_COLUMNS] if self.explain else []

    def names(self, prefix: str) -> tuple[str, list[str], str]:
        return (f"{prefix}label", [f"{prefix}p_{name}" for name in self.labels],
                f"{prefix}error")

    def header(self) -> str:
        if self.fmt == "jsonl":
            return ""
        return self._lines([[*self.columns, self.label_name, *self.proba_names,
                             self.error_name, *self.explain_names(self.prefix)]])

    def _lines(self, rows: list[list[str]]) -> str:
        if self.fmt == "tsv":  # plain TSV has no quoting: tabs and line breaks become spaces
            return "".join("\t".join(v.replace("\t", " ").replace("\r", " ").replace("\n", " ")
                                     for v in values) + "\n" for values in rows)
        return csv_text(rows)

    def render(self, block: list[tuple[Record, Any]], results: list) -> str:
        if self.fmt == "jsonl":
            lines = []
            for (record, raw), (label, proba, error, *extra) in zip(block, results,
                                                                    strict=True):
                obj = dict(raw) if isinstance(raw, dict) else dict(record.fields)
                label_name, proba_names, error_name = self.names(self.prefix)
                prefix = self.prefix
                while label_name in obj or error_name in obj or any(n in obj
                                                                    for n in proba_names):
                    # JSON objects need not share keys: one that holds an output name the
                    # first rows did not is never overwritten; its outputs get a longer prefix.
                    prefix += PREFIX
                    label_name, proba_names, error_name = self.names(prefix)
                obj[label_name] = label
                for i, name in enumerate(proba_names):
                    obj[name] = None if proba is None else float(f"{proba[i]:.6g}")
                obj[error_name] = error
                for i, name in enumerate(self.explain_names(prefix)):
                    obj[name] = extra[0][i] if extra and extra[0] is not None else None
                lines.append(_json_line(obj))
            return "".join(lines)
        rows = []
        empty = [""] * len(self.proba_names)
        for (record, _), (label, proba, error, *extra) in zip(block, results, strict=True):
            values = [record.fields.get(c, "") for c in self.columns]
            values.append(label or "")
            values.extend(empty if proba is None else [f"{p:.6g}" for p in proba])
            values.append(error or "")
            if self.explain:
                values.extend(extra[0] if extra and extra[0] is not None
                              else [""] * len(EXPLAIN_COLUMNS))
            rows.append(values)
        return self._lines(rows)


def _json_line(obj: dict) -> str:
    """One JSON Lines record. U+0085, U+2028 and U+2029 are legal in JSON strings, but line
    ends to ``str.splitlines`` and to older JavaScript: escaped, so no reader splits a row."""
    text = json.dumps(obj, ensure_ascii=False)
    for c in ("\x85", "\u2028", "\u2029"):
        if c in text:
            text = text.replace(c, f"\\u{ord(c):04x}")
    return text + "\n"


# ---------------------------------------------------------------- reading


def _records(path: str | os.PathLike[str], fmt: str, keep_json: bool, header: list[str],
             text_column: str) -> Iterator[tuple[Record, Any]]:
    """(record, its JSON object when the output keeps JSON values as they were, else None).
    A CSV/TSV header's names land in ``header`` as soon as it is read; a text column that no
    row has stops the run before any output."""
    records = check_columns(read_records(path, fmt, on_header=header.extend),
                            [("text", text_column, "--text-column")])
    for record in records:
        yield record, record.parsed if keep_json else None


def _fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


# ---------------------------------------------------------------- the run


class _Output:
    """The bytes of the output: a ``.part`` file (then renamed) or standard output.
    With gzip, every block is a complete gzip member, so the file can be cut back to any
    block boundary and continued; gzip readers read the members as one stream."""

    def __init__(self, out: str, compress: bool, *, resume_at: int | None = None):
        self.out = out
        self.compress = compress
        self.stdout = is_stdin(out)
        if self.stdout:
            self.file = sys.stdout.buffer
            self.part = self.progress = None
            self.offset = 0
            return
        self.part, self.progress = part_paths(out)
        if resume_at is None:
            self.file = open(self.part, "wb")  # closed in close()
            self.offset = 0
        else:
            self.file = open(self.part, "r+b")
            self.file.truncate(resume_at)
            self.file.seek(resume_at)
            self.offset = resume_at

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        if self.compress:
            data = gzip.compress(data, compresslevel=6, mtime=0)
        self.file.write(data)
        self.file.flush()
        self.offset += len(data)

    def save_progress(self, record: dict[str, Any]) -> None:
        if self.progress is None:
            return
        tmp = self.progress.with_name(self.progress.name + ".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, self.progress)  # never a half-written record

    def finish(self) -> None:
        if self.stdout:
            self.file.flush()
            return
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.part, self.out)
        self.progress.unlink(missing_ok=True)

    def close(self) -> None:
        if not self.stdout and not self.file.closed:
            self.file.close()

    def discard(self) -> None:
        self.close()
        if not self.stdout:
            self.part.unlink(missing_ok=True)
            self.progress.unlink(missing_ok=True)


def _check_target(input_path: str, out: str, *, resume: bool) -> None:
    """Refuse an output that cannot work, before anything is locked, read or written."""
    if is_stdin(out):
        if resume:
            raise DataError("standard output cannot be resumed", path="-",
                            hint="write to a file with --out FILE to be able to --resume")
        return
    p = Path(out)
    if p.is_dir():
        raise DataError("is a folder", path=p, hint="give a file name for --out")
    if not p.parent.is_dir():
        raise DataError("output folder does not exist", path=p.parent,
                        hint=f"create it first: mkdir -p {p.parent}")
    if not is_stdin(input_path) and Path(input_path).exists() and p.exists() and \
            p.resolve() == Path(input_path).resolve():
        raise DataError("the output would overwrite the input", path=p,
                        hint="choose another --out")
    if p.name.endswith((".bz2", ".xz")):
        raise DataError("only gzip output is supported", path=p,
                        hint="name the output .gz, or leave it uncompressed")


def is_predict_output(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds what tlc predict writes, so --force may replace it: an empty
    file, or one whose first line (the header, or the first JSON record) ends with the output
    columns ``label``, ``p_<label>``... and ``error``, all with one prefix (``pred_``...)."""
    p = Path(path)
    try:
        if p.stat().st_size == 0:
            return True
    except OSError:
        return False
    line = first_line(p)
    if line is None:
        return False
    line = line.rstrip("\r\n")
    if not line:
        return True  # a compressed empty output
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return False
        return isinstance(record, dict) and _output_columns_last(list(record))
    return any(_output_columns_last(next(csv.reader([line], delimiter=d), []))
               for d in ("\t", ","))


def _output_columns_last(names: list[str]) -> bool:
    # --explain output: the EXPLAIN_COLUMNS follow ``error``, with its prefix
    tail = list(EXPLAIN_COLUMNS)
    if len(names) > 3 + len(tail) and names[-1].endswith(tail[-1]):
        prefix = names[-1][: -len(tail[-1])]
        if names[-len(tail):] == [prefix + n for n in tail]:
            names = names[:-len(tail)]
    if len(names) < 3 or not names[-1].endswith("error"):
        return False
    prefix = names[-1][: -len("error")]
    if prefix != PREFIX * (len(prefix) // len(PREFIX)):
        return False
    i = len(names) - 2
    while i >= 0 and names[i].startswith(f"{prefix}p_"):
        i -= 1
    return i < len(names) - 2 and i >= 0 and names[i] == f"{prefix}label"


def _check_paths(input_path: str, out: str, *, resume: bool, force: bool
                 ) -> dict[str, Any] | None:
    """With the output locked: refuse what must not be overwritten; return the progress
    record to resume. --force replaces only tlc predict output and its own partial files."""
    if is_stdin(out):
        return None
    p = Path(out)
    part, progress = part_paths(p)
    check_replace(p, force=force, ours=is_predict_output(p), made="tlc predict output",
                  seems="its first line lacks the label, p_<label> and error columns",
                  error=DataError)
    if force:
        part.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
        return None
    if resume:
        if is_stdin(input_path):
            raise DataError("a run reading standard input cannot be resumed", path="-",
                            hint="give the input as a file to be able to --resume")
        if not part.exists():
            return {}  # nothing to resume: start from the beginning
        if not progress.exists():
            return {"rows": 0, "bytes": 0}  # killed before the first block was written
        try:
            record = json.loads(progress.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"the progress record is unreadable ({err})", path=progress,
                            hint="pass --force to start over") from None
        if record.get("version") != PROGRESS_VERSION:
            raise DataError("the progress record is from another version of tlc",
                            path=progress, hint="pass --force to start over")
        if part.stat().st_size < record["bytes"]:
            raise DataError(
                f"the partial output holds fewer bytes ({part.stat().st_size:,}) than its "
                f"progress record says ({record['bytes']:,}); it was damaged", path=part,
                hint="pass --force to start over")
        return record
    if part.exists():
        done = ""
        if progress.exists():
            try:
                done = f" ({json.loads(progress.read_text())['rows']:,} rows done)"
            except (OSError, ValueError, KeyError):
                pass
        raise DataError(f"an interrupted run left a partial output{done}", path=part,
                        hint="pass --resume to continue it, or --force to start over")
    return None


def _same_run(record: dict[str, Any], expected: dict[str, Any], progress: Path) -> None:
    for key, what in (("input", "a different input file"), ("model_sha256", "a different model"),
                      ("settings", "different options")):
        if record.get(key) != expected[key]:
            if key == "settings":
                what += " (" + ", ".join(f"{k}={record[key].get(k)!r}, now {v!r}"
                                         for k, v in expected[key].items()
                                         if record[key].get(k) != v) + ")"
            raise DataError(f"cannot resume: the interrupted run used {what}", path=progress,
                            hint="resume with the same input, model and options, or pass "
                            "--force to start over")


def score_file(
    classifier: Classifier,
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    fmt: str | None = None,
    out_format: str | None = None,
    text_column: str = "text",
    max_chars: int = DEFAULT_MAX_CHARS,
    resume: bool = False,
    force: bool = False,
    progress: bool | None = None,
    say: Callable[[str], None] | None = None,
    explain: int = 0,
) -> Summary:
    """Score every row of ``input_path`` into ``out`` (a file, or ``-`` for standard output;
    default: beside the input, ``NAME.scored.EXT``). ``progress``: None shows a bar on a
    terminal only, False never. Raises :class:`~tlc.errors.TlcError` for what stops the whole
    run (a missing input, a missing text column, an output that exists); bad rows never do.
    ``explain`` (a file from ``tlc export --explain``): adds the columns of
    :data:`EXPLAIN_COLUMNS`, the most decisive sentence and the ``explain`` most decisive
    ones in text order (:meth:`~tlc.runtime.classifier.Explanation.summary`).
    """
    say = say or (lambda m: print(m, file=sys.stderr))
    input_path = os.fspath(input_path)
    if max_chars < 1:
        raise DataError("--max-chars must be at least 1")
    if explain and not classifier.explains:
        raise DataError("--explain needs a model file with sentence scores",
                        path=classifier.path, hint="export the run again with "
                        "`tlc export RUN --explain`, or leave out --explain")
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    if not is_stdin(input_path) and not Path(input_path).exists():
        raise DataError("no such file", path=input_path,
                        hint="check the path (relative paths start at the current folder)")
    in_fmt = fmt or detect_format(input_path)
    out_fmt = output_format(in_fmt, out, out_format)
    out = os.fspath(out) if out is not None else default_output(input_path, out_fmt)
    compress = not is_stdin(out) and out.endswith(".gz")
    _check_target(input_path, out, resume=resume)
    # Held from before the output's files are looked at to after the rename: a second tlc
    # predict on the same output is refused at once and never touches the first's files.
    lock = contextlib.nullcontext() if is_stdin(out) else OutputLock(
        out, "tlc predict", "this output", hint="wait for it to finish, or choose another --out")
    with lock:
        return _score(classifier, input_path, out, in_fmt=in_fmt, out_fmt=out_fmt,
                      compress=compress, text_column=text_column, max_chars=max_chars,
                      resume=resume, force=force, progress=progress, say=say,
                      explain=explain)


def _score(classifier: Classifier, input_path: str, out: str, *, in_fmt: str, out_fmt: str,
           compress: bool, text_column: str, max_chars: int, resume: bool, force: bool,
           progress: bool | None, say: Callable[[str], None], explain: int = 0) -> Summary:
    state = _check_paths(input_path, out, resume=resume, force=force)
    expected = {
        "input": None if is_stdin(input_path) else _fingerprint(input_path),
        "model_sha256": classifier.sha256,
        "settings": {"format": in_fmt, "out_format": out_fmt, "text_column": text_column,
                     "max_chars": max_chars, "gzip": compress, "labels": list(classifier.labels),
                     **({"explain": explain} if explain else {})},
    }
    skip = 0
    summary = Summary(out=out)
    rows_writer: _Rows | None = None
    if state:  # resuming
        if "version" in state:
            _same_run(state, expected, part_paths(out)[1])
            skip = state["rows"]
            summary.rows, summary.scored = state["rows"], state["scored"]
            summary.errors.update(state["errors"])
            summary.examples = list(state["examples"])
            rows_writer = _Rows(out_fmt, state["columns"], classifier.labels, state["prefix"],
                                explain=bool(explain))
        summary.resumed_rows = skip
        say(f"resuming after row {skip:,}" if skip else "resuming from the first row")
    elif state == {}:
        say(f"nothing to resume for {out}: starting from the first row")

    header: list[str] = []
    records = _records(input_path, in_fmt, keep_json=out_fmt == "jsonl", header=header,
                       text_column=text_column)
    block_rows = max(BLOCK_ROWS, classifier.batch_size * max(1, classifier.threads))

    def next_block(skip: int = 0) -> tuple[list, list]:
        block = _read_block(records, block_rows, skip=skip, source=input_path)
        return block, [_prepare(rec, text_column, max_chars, in_fmt) for rec, _ in block]

    try:  # whole-file problems (unreadable input, no such column) stop before any output
        block, prepared = next_block(skip)
    except BaseException:
        records.close()
        raise
    output = _Output(out, compress, resume_at=state.get("bytes", 0) if state else None)
    scorer = ThreadPoolExecutor(1, thread_name_prefix="tlc-predict")
    bar = _bar(progress, initial=skip)
    start = time.perf_counter()
    pending: tuple[list, list, Future | None] | None = None
    try:
        while block or pending is not None:
            submitted = None
            if block:  # score this block while the previous one is written
                texts = [p for p in prepared if isinstance(p, str)]
                future = (scorer.submit(_score_safely, classifier, texts, explain) if texts
                          else None)
                submitted = (block, prepared, future)
            if pending is not None:
                if rows_writer is None:
                    rows_writer = _first_rows(out_fmt, pending[0], header, classifier,
                                              text_column, say, explain=bool(explain))
                    output.write(rows_writer.header())
                _write_block(pending, rows_writer, output, summary)
                output.save_progress({
                    "version": PROGRESS_VERSION, "rows": summary.rows, "bytes": output.offset,
                    "scored": summary.scored, "errors": dict(summary.errors),
                    "examples": summary.examples, "columns": rows_writer.columns,
                    "prefix": rows_writer.prefix, **expected})
                bar.update(len(pending[0]))
                if summary.errors:
                    bar.set_postfix(errors=sum(summary.errors.values()), refresh=False)
            pending = submitted
            block, prepared = next_block() if block else ([], [])
        if rows_writer is None:  # no rows at all: the header alone
            rows_writer = _first_rows(out_fmt, [], header, classifier, text_column, say,
                                      explain=bool(explain))
            output.write(rows_writer.header())
        summary.seconds = time.perf_counter() - start
        output.finish()
    except KeyboardInterrupt:
        if not output.stdout:
            say(f"interrupted after {summary.rows:,} rows; the rows done are kept in "
                f"{output.part}: run the same command with --resume to continue")
        raise
    except BrokenPipeError:
        if not output.stdout:
            raise
        summary.output_closed = True  # e.g. `tlc predict ... | head`: stop quietly
        summary.seconds = time.perf_counter() - start
        _silence_stdout()
    except TlcError:
        output.discard()  # the input cannot be read on: nothing to resume
        raise
    except OSError as err:
        where = output.part if output.part is not None else out
        raise DataError(f"could not write the output: {err.strerror or err}", path=where,
                        hint="free disk space or fix permissions, then run the same "
                        "command with --resume") from None
    finally:
        bar.close()
        scorer.shutdown(wait=True, cancel_futures=True)
        output.close()
        records.close()
    return summary


def _silence_stdout() -> None:
    # After a closed pipe, Python's own flush of stdout at exit would fail again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _bar(progress: bool | None, initial: int):
    from tqdm import tqdm

    return tqdm(desc="scoring", unit=" rows", unit_scale=True, initial=initial,
                file=sys.stderr, dynamic_ncols=True, leave=False,
                disable=None if progress is None else not progress)


def _read_block(records: Iterator[tuple[Record, Any]], n: int, *, source: str,
                skip: int = 0) -> list[tuple[Record, Any]]:
    block: list[tuple[Record, Any]] = []
    try:
        for _ in range(skip):
            if next(records, None) is None:
                raise DataError(
                    f"the input has fewer rows than the interrupted run already wrote "
                    f"({skip:,}): it is not the same input", path=source,
                    hint="pass --force to start over")
        for item in records:
            block.append(item)
            if len(block) >= n:
                break
    except TlcError:
        raise
    except (OSError, EOFError, ValueError) as err:  # a damaged gzip stream, a read error
        raise DataError(f"could not read the input: {err}", path=source,
                        hint="check the file (a damaged or truncated download?)") from None
    return block


def _prepare(record: Record, text_column: str, max_chars: int, fmt: str) -> str | tuple[str]:
    """The text to score, or a 1-tuple holding the reason the row is not scored."""
    if record.error and fmt == "fasttext" and "UTF-8" not in record.error:
        record.error = None  # a missing __label__ prefix only matters for training
    text, problem = row_text(record, text_column)
    if problem is not None:
        return (problem,)
    if len(text) > max_chars:
        return (f"text too long ({len(text):,} characters; the limit is {max_chars:,}, "
                "see --max-chars)",)
    return text


def _score_safely(classifier: Classifier, texts: list[str], explain: int = 0) -> list:
    """(label, probabilities, None) per text; a block that fails is scored one text at a
    time, so one text that onnxruntime rejects costs only its own row. ``explain``: (label,
    probabilities, None, (decisive sentence, summary of ``explain`` sentences))."""
    if explain:
        try:
            return [_explained(e, classifier.labels, explain) for e in classifier.explain(texts)]
        except TlcError:
            raise
        except Exception:
            out = []
            for t in texts:
                try:
                    out.append(_explained(classifier.explain([t])[0], classifier.labels,
                                          explain))
                except TlcError:
                    raise
                except Exception as err:
                    out.append((None, None, f"could not score: {str(err).splitlines()[0]}"))
            return out
    try:
        labels, proba = classifier.score(texts)
        return [(lab, p, None) for lab, p in zip(labels, proba, strict=True)]
    except TlcError:  # the model itself is at fault (e.g. a damaged file): stop the run
        raise
    except Exception:  # onnxruntime's own errors: find the row(s) responsible
        out = []
        for t in texts:
            try:
                labels, proba = classifier.score([t])
                out.append((labels[0], proba[0], None))
            except TlcError:
                raise
            except Exception as err:
                out.append((None, None, f"could not score: {str(err).splitlines()[0]}"))
        return out


def _explained(e, labels: tuple[str, ...], k: int) -> tuple:
    top = e.decisive(1)
    return (e.label, np.array([e.probabilities[c] for c in labels], np.float32), None,
            (" ".join(top[0].text.split()) if top else "", e.summary(k)))


def _first_rows(out_fmt: str, block: list[tuple[Record, Any]], header: list[str],
                classifier: Classifier, text_column: str, say: Callable[[str], None],
                explain: bool = False) -> _Rows:
    """The output's columns: a CSV/TSV header's (even when no data row follows it), else
    those of the first good row (else of the first row with fields)."""
    columns: list[str] | None = list(header) or None
    if columns is None and out_fmt == "jsonl":
        # JSON objects need not share keys: every key of the first block counts.
        seen = dict.fromkeys(k for record, _ in block for k in record.fields
                             if not k.startswith("_extra"))
        columns = list(seen) or None
    for record, _ in block if columns is None else ():
        if record.fields and (columns is None or record.error is None):
            columns = [c for c in record.fields if not c.startswith("_extra")]
            if record.error is None:
                break
    columns = columns or [text_column]
    names = ["label", "error", *(f"p_{name}" for name in classifier.labels),
             *(EXPLAIN_COLUMNS if explain else ())]
    prefix = ""
    while any(f"{prefix}{n}" in columns for n in names):
        prefix += PREFIX
    if prefix:
        say(f"the input already has a column named like an output column: the output "
            f"columns are {prefix}label, {prefix}p_<label>, {prefix}error")
    return _Rows(out_fmt, columns, classifier.labels, prefix, explain=explain)


def _write_block(pending, rows_writer: _Rows, output: _Output, summary: Summary) -> None:
    block, prepared, future = pending
    scored = iter(future.result() if future is not None else [])
    results, good, errors, examples = [], 0, Counter(), []
    for (record, _), item in zip(block, prepared, strict=True):
        extra: tuple = ()
        if isinstance(item, str):
            label, proba, error, *extra = next(scored)
        else:
            label, proba, error = None, None, item[0]
        if error is None:
            good += 1
        else:
            errors[reason_key(error)] += 1
            if len(summary.examples) + len(examples) < 3:
                where = record.source if record.line is None else \
                    f"{record.source}:{record.line}"
                examples.append(f"{where}: {error}")
        results.append((label, proba, error, *extra))
    output.write(rows_writer.render(block, results))
    # counted only once written, so the counts always match the rows in the output
    summary.rows += len(block)
    summary.scored += good
    summary.errors.update(errors)
    summary.examples.extend(examples)
