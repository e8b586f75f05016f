"""From records to training examples: pick the text and label columns, enforce the rules.

Training must never lose rows silently. A bad row (unreadable, empty text, missing label)
stops loading with an error that names the file and line, unless the caller explicitly asks
to skip bad rows; then every skipped row is counted by reason and reported.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tlc.data.readers import Record, read_records
from tlc.errors import DataError

ON_BAD_ROWS = ("error", "skip")

SKIP_HINT = "fix the row, or pass --on-bad-rows skip to leave such rows out (they are counted)"


@dataclass
class Examples:
    """A loaded split: parallel lists of texts and (optionally) labels."""

    texts: list[str]
    labels: list[str] | None
    source: str
    skipped: Counter = field(default_factory=Counter)
    """Reason -> number of rows left out (only with on_bad_rows='skip')."""

    def __len__(self) -> int:
        return len(self.texts)

    def skipped_summary(self) -> str:
        if not self.skipped:
            return ""
        parts = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return f"skipped {sum(self.skipped.values())} rows of {self.source}: {parts}"


def _column_error(kind: str, column: str, record: Record, option: str) -> DataError:
    found = ", ".join(repr(c) for c in record.fields) or "none"
    return DataError(
        f"no {kind} column {column!r} (columns found: {found})",
        path=record.source,
        line=record.line,
        hint=f"pass {option} with one of the columns found",
    )


def iter_examples(
    records: Iterable[Record],
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    on_bad_rows: str = "error",
    skipped: Counter | None = None,
) -> Iterator[tuple[str, str | None]]:
    """Yield (text, label) pairs; label is None when ``label_column`` is None (unlabelled)."""
    if on_bad_rows not in ON_BAD_ROWS:
        raise DataError(f"unknown --on-bad-rows {on_bad_rows!r}", hint="use 'error' or 'skip'")
    skipped = skipped if skipped is not None else Counter()
    checked_columns = False
    for record in records:
        if record.error is None and not checked_columns:
            # The first good row fixes the columns: a wrong column name is a whole-file
            # problem, so it is reported once, not as thousands of bad rows.
            if text_column not in record.fields:
                raise _column_error("text", text_column, record, "--text-column")
            if label_column is not None and label_column not in record.fields:
                raise _column_error("label", label_column, record, "--label-column")
            checked_columns = True
        problem = record.error
        text = record.fields.get(text_column, "")
        label = record.fields.get(label_column, "") if label_column is not None else None
        if problem is None and not text.strip():
            problem = "empty text"
        if problem is None and label is not None and not label.strip():
            problem = "empty label"
        if problem is not None:
            if on_bad_rows == "skip":
                skipped[reason_key(problem)] += 1
                continue
            raise DataError(problem, path=record.source, line=record.line, hint=SKIP_HINT)
        yield text, (label.strip() if label is not None else None)


def reason_key(problem: str) -> str:
    """The kind of a row problem, for counts: "expected 4 fields, found 3" and "... found 5"
    are both "wrong number of fields"."""
    for key in ("not valid UTF-8", "malformed CSV", "not valid JSON", "expected "):
        if problem.startswith(key):
            return {"expected ": "wrong number of fields"}.get(key, key)
    return problem


def load_examples(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    text_column: str = "text",
    label_column: str | None = "label",
    on_bad_rows: str = "error",
) -> Examples:
    """Read a whole split into memory (texts, labels). Use :func:`iter_examples` to stream."""
    skipped: Counter = Counter()
    texts: list[str] = []
    labels: list[str] | None = [] if label_column is not None else None
    pairs = iter_examples(
        read_records(path, fmt),
        text_column=text_column,
        label_column=label_column,
        on_bad_rows=on_bad_rows,
        skipped=skipped,
    )
    for text, label in pairs:
        texts.append(text)
        if labels is not None:
            labels.append(label)  # type: ignore[arg-type]
    if not texts:
        raise DataError(
            "no usable rows" + (f" ({sum(skipped.values())} skipped)" if skipped else ""),
            path=path,
            hint="check that the file holds data rows below its header",
        )
    return Examples(texts, labels, os.fspath(path), skipped)
