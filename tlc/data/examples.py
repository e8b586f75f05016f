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

SKIP_OPTION = "--on-bad-rows skip"
"""How the command at hand asks to skip bad rows (``tlc train`` says it through --set)."""


def skip_hint(option: str = SKIP_OPTION) -> str:
    return f"fix the row, or pass {option} to leave such rows out (they are counted)"


def row_text(record: Record, text_column: str) -> tuple[str, str | None]:
    """The text of a row and why it cannot be used, if it cannot: the one bad-row rule that
    training, evaluation, ``tlc data info`` and ``tlc predict`` all apply.

    A row is bad when it could not be read (``record.error``: invalid UTF-8 or Unicode, a
    malformed CSV row, a line that is not a JSON object), lacks the text field, holds a JSON
    value that is not a string there (a number or an object would otherwise be read as its
    JSON spelling), or holds only whitespace."""
    if record.error is not None:
        return record.fields.get(text_column, ""), record.error
    if text_column not in record.fields:
        return "", f"no text field {text_column!r} in this row"
    text = record.fields[text_column]
    if isinstance(record.parsed, dict):
        value = record.parsed.get(text_column)
        if value is not None and not isinstance(value, str):
            kind = {bool: "a boolean", int: "a number", float: "a number", list: "a list",
                    dict: "an object"}.get(type(value), type(value).__name__)
            return text, f"the text is {kind} in JSON, not a string"
    if not text.strip():
        return text, "empty text"
    return text, None


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


COLUMN_WINDOW = 1000
"""Good rows read before a column none of them holds counts as missing from the file."""


def check_columns(records: Iterable[Record], wanted: list[tuple[str, str, str]]
                  ) -> Iterator[Record]:
    """``records``, passed through once every wanted column has been seen in a good row. A
    column that none of the first :data:`COLUMN_WINDOW` good rows holds is a whole-file
    problem (a wrong column name), raised once, not reported as a million bad rows; after
    that, a row lacking it is a bad row of its own. A window, not the first row, because JSON
    objects need not share keys. ``wanted``: (kind, column, the option naming it)."""
    missing = list(wanted)
    held: list[Record] = []
    first_good: Record | None = None
    good = 0
    records = iter(records)
    for record in records:
        held.append(record)
        if record.error is not None:
            continue
        first_good = first_good or record
        good += 1
        missing = [w for w in missing if w[1] not in record.fields]
        if not missing:
            break
        if good >= COLUMN_WINDOW:
            break
    if missing and first_good is not None:
        kind, column, option = missing[0]
        raise _column_error(kind, column, first_good, option)
    yield from held
    yield from records


def iter_examples(
    records: Iterable[Record],
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    on_bad_rows: str = "error",
    skipped: Counter | None = None,
    skip_option: str = SKIP_OPTION,
) -> Iterator[tuple[str, str | None]]:
    """Yield (text, label) pairs; label is None when ``label_column`` is None (unlabelled).
    ``skip_option`` is what the error's fix line tells the user to pass to skip bad rows."""
    if on_bad_rows not in ON_BAD_ROWS:
        raise DataError(f"unknown on_bad_rows value {on_bad_rows!r}",
                        hint="use 'error' or 'skip'")
    skipped = skipped if skipped is not None else Counter()
    wanted = [("text", text_column, "--text-column")]
    if label_column is not None:
        wanted.append(("label", label_column, "--label-column"))
    for record in check_columns(records, wanted):
        text, problem = row_text(record, text_column)
        label = record.fields.get(label_column, "") if label_column is not None else None
        if problem is None and label is not None and not label.strip():
            problem = "empty label"
        if problem is not None:
            if on_bad_rows == "skip":
                skipped[reason_key(problem)] += 1
                continue
            raise DataError(problem, path=record.source, line=record.line,
                            hint=skip_hint(skip_option))
        yield text, (label.strip() if label is not None else None)


# The kind of a row problem, for counts: "expected 4 fields, found 3" and "... found 5" are
# both "wrong number of fields". Prefix -> name; a problem matching none is its own kind.
_REASONS = (("not valid UTF-8", "not valid UTF-8"), ("not valid Unicode", "not valid Unicode"),
            ("malformed CSV", "malformed CSV"), ("not valid JSON", "not valid JSON"),
            ("expected a JSON object", "not a JSON object"),
            ("expected ", "wrong number of fields"), ("no text field", "missing text"),
            ("the text is ", "text not a string"), ("text too long", "text too long"),
            ("could not score", "could not score"))


def reason_key(problem: str) -> str:
    """The kind of a row problem, for the counts that every command prints."""
    for prefix, name in _REASONS:
        if problem.startswith(prefix):
            return name
    return problem


def load_examples(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    text_column: str = "text",
    label_column: str | None = "label",
    on_bad_rows: str = "error",
    skip_option: str = SKIP_OPTION,
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
        skip_option=skip_option,
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
