"""Training data given in memory (the Python API) instead of read from a file.

Three jobs: check the lists a user hands over (the same rules as a file's rows: a text is a
non-empty string, every text has a label), name the data so a run says what it was trained
on (``data.train`` = ``<memory: N rows>`` plus a sha256 of the rows), and keep, inside the
run folder, the held-out text that ``tlc export``'s guard compares the ONNX file and the
Keras model on: a run read from a file finds it again in that file, one from memory has no
file to go back to.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, TlcError
from .run import DAMAGED, HELD_OUT_FILE

MEMORY_PREFIX = "<memory: "
SKIP_SETTING = "settings={'data.on_bad_rows': 'skip'}"
# Documents of held-out text kept in a run trained from memory: what the export guard
# compares on by default (exporter.VALIDATION_SAMPLE; a test keeps the two in step).
STORED_SAMPLE = 5000
STORED_FORMAT = 1


def is_memory_source(spec: str | None) -> bool:
    return bool(spec) and spec.startswith(MEMORY_PREFIX)


@dataclass(frozen=True)
class MemoryData:
    """Checked training data: parallel ``texts`` and ``labels``; an optional ``validation``
    set (texts, labels) used instead of a split of the training rows; ``unlabelled`` text
    for self-training; ``skipped``: bad rows left out (with ``data.on_bad_rows=skip``)."""

    texts: list[str]
    labels: list[str]
    validation: tuple[list[str], list[str]] | None = None
    unlabelled: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        return f"{MEMORY_PREFIX}{len(self.texts):,} rows>"

    def record(self) -> dict[str, Any]:
        """What run.json's ``data`` says about the rows, so two runs can be told apart."""
        info: dict[str, Any] = {"sha256": rows_sha256(self.texts, self.labels)}
        if self.validation is not None:
            info["validation_given_rows"] = len(self.validation[0])
            info["validation_sha256"] = rows_sha256(*self.validation)
        if self.unlabelled:
            info["unlabelled_rows"] = len(self.unlabelled)
            info["unlabelled_sha256"] = rows_sha256(self.unlabelled)
        if self.skipped:
            info["skipped_rows"] = dict(self.skipped)
        return info


def rows_sha256(texts: Sequence[str], labels: Sequence[str] | None = None) -> str:
    """sha256 of the rows in order, one JSON line each (so no text can imitate a boundary)."""
    digest = hashlib.sha256()
    for i, text in enumerate(texts):
        row = [text] if labels is None else [text, labels[i]]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        digest.update(b"\n")
    return digest.hexdigest()


def kind(value: Any) -> str:
    """'an int (5)': what a wrong item is, for a message."""
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name} ({repr(value)[:40]})"


def as_list(values: Any, what: str) -> list:
    """``values`` as a list: any sized iterable (list, tuple, numpy array, pandas Series),
    but not one string, whose characters would each become a document."""
    if isinstance(values, (str, bytes)):
        raise DataError(f"{what} is a single {type(values).__name__}, not a list of them",
                        hint="pass a list of strings (for one text, a list of one)")
    try:
        return list(values)
    except TypeError:
        raise DataError(f"{what} must be a list of strings, got {kind(values)}",
                        hint=f"pass {what} as a list (or tuple, array, Series) of str") from None


def check_texts(texts: Any, what: str, *, skip: bool, skipped: Counter | None = None
                ) -> tuple[list[str], list[int]]:
    """(texts, indices kept): every item a non-empty string. A bad item is an error naming
    its index, or, with ``skip``, left out and counted in ``skipped`` by reason."""
    items = as_list(texts, what)
    kept: list[int] = []
    for i, text in enumerate(items):
        if not isinstance(text, str):
            reason, problem = "not a string", f"{what}[{i}] is {kind(text)}, not a string"
            hint = (f"every item of {what} must be a str: convert it ([str(t) for t in "
                    f"{what.split()[-1]}]) if it is meant as text, or drop it")
        elif not text.strip():
            reason, hint = "empty text", None
            problem = f"{what}[{i}] is empty (no text, or only whitespace)"
        else:
            kept.append(i)
            continue
        if skip:
            if skipped is not None:
                skipped[reason] += 1
            continue
        raise DataError(problem, hint=hint or f"remove the item, or pass {SKIP_SETTING} to "
                        "leave such items out (they are counted)")
    return [items[i] for i in kept], kept


def check_labels(labels: Any, what: str, count: int, texts_what: str) -> list[str]:
    items = as_list(labels, what)
    if len(items) != count:
        raise DataError(f"{texts_what} has {count:,} items but {what} has {len(items):,}",
                        hint="give one label per text, in the same order")
    for i, label in enumerate(items):
        if not isinstance(label, str):
            raise DataError(f"{what}[{i}] is {kind(label)}, not a string",
                            hint="tlc's labels are strings (they name the classes in the run "
                            f"and in the exported file): pass [str(y) for y in {what}]")
        if not label.strip():
            raise DataError(f"{what}[{i}] is empty", hint="give every text its class name")
    return items


def labelled(texts: Any, labels: Any, what: str, *, skip: bool,
             skipped: Counter | None = None) -> tuple[list[str], list[str]]:
    """Checked parallel (texts, labels); ``what`` is "" or a prefix such as "validation "."""
    texts_what, labels_what = f"{what}texts", f"{what}labels"
    items = as_list(texts, texts_what)
    names = check_labels(labels, labels_what, len(items), texts_what)
    kept_texts, kept = check_texts(items, texts_what, skip=skip, skipped=skipped)
    return kept_texts, [names[i] for i in kept]


def memory_data(texts: Any, labels: Any, *, validation: Any = None, unlabelled: Any = None,
                on_bad_rows: str = "error") -> MemoryData:
    """Check what ``TextClassifier.fit`` was given and hold it for :func:`~.pipeline.train`."""
    skip, skipped = on_bad_rows == "skip", Counter()
    train_texts, train_labels = labelled(texts, labels, "", skip=skip, skipped=skipped)
    if not train_texts:
        raise DataError("no texts to train on" + (" (every one was a bad row)" if skipped
                                                  else ": texts is empty"),
                        hint="pass a list of texts and a list of their labels")
    classes = Counter(train_labels)
    if len(classes) < 2:
        raise DataError(f"labels hold one class only ({next(iter(classes))!r}): a classifier "
                        "needs at least 2", hint="add texts of at least one other class")
    valid = None
    if validation is not None:
        if (isinstance(validation, (str, bytes)) or not isinstance(validation, Sequence)
                or len(validation) != 2):
            raise DataError("validation must be a pair (texts, labels)",
                            hint="pass validation=(valid_texts, valid_labels)")
        valid = labelled(*validation, "validation ", skip=skip, skipped=skipped)
        if not valid[0]:
            raise DataError("validation holds no texts",
                            hint="leave validation out to split it from the training rows")
        unknown = sorted(set(valid[1]) - set(classes))
        if unknown:
            raise DataError(f"validation labels {', '.join(map(repr, unknown[:5]))} are not "
                            f"among the training labels ({', '.join(map(repr, classes))})",
                            hint="validate on the classes the model is trained on")
    extra = (check_texts(unlabelled, "unlabelled", skip=skip, skipped=skipped)[0]
             if unlabelled is not None else [])
    return MemoryData(train_texts, train_labels, valid, extra, skipped)


# -- the held-out text the export guard reads ------------------------------------------------


@dataclass
class StoredText:
    """Held-out rows (texts and labels) and text for the agreement check alone."""

    texts: list[str]
    labels: list[str]
    unlabelled: list[str]
    training: list[str]


def write_held_out(out: Path, texts: list[str], labels: list[str], train_rows: np.ndarray,
                   unlabelled: list[str], seed: int = 0, limit: int = STORED_SAMPLE) -> None:
    """Keep the rows the run did not train on (validation rows, rows outside the label
    budget), then, while fewer than ``limit``, unlabelled and training text: what
    :func:`tlc.export.exporter.held_out` would read from the data file."""
    rng = np.random.default_rng(seed)

    def pick(rows: np.ndarray, room: int) -> np.ndarray:
        room = max(room, 0)
        return rows if len(rows) <= room else np.sort(rng.choice(rows, room, replace=False))

    held = pick(np.setdiff1d(np.arange(len(texts)), train_rows), limit)
    extra = [unlabelled[i] for i in pick(np.arange(len(unlabelled)), limit - len(held))]
    training = [texts[i] for i in pick(np.asarray(train_rows, dtype=np.int64),
                                       limit - len(held) - len(extra))]
    data = {"format": STORED_FORMAT,
            "held_out": {"texts": [texts[i] for i in held], "labels": [labels[i] for i in held]},
            "unlabelled": extra, "training": training}
    tmp = out / f".tmp-{HELD_OUT_FILE}"
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False)
    tmp.replace(out / HELD_OUT_FILE)


def read_held_out(run) -> StoredText | None:
    """The stored text of a run trained from memory; None for a run read from a file."""
    path = run.path / HELD_OUT_FILE
    if not path.is_file():
        if is_memory_source(run.config.data.train):
            raise TlcError("the run was trained on texts given in memory and its held-out "
                           "text, which the export guard compares on, is missing", path=path,
                           hint="pass --validation-data NAME:SPLIT (labelled text of the "
                           "run's classes) to export it, or " + DAMAGED.split(": ", 1)[1])
        return None
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        held = data["held_out"]
        stored = StoredText(list(held["texts"]), list(held["labels"]),
                            list(data["unlabelled"]), list(data["training"]))
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise TlcError(f"the run's held-out text is unreadable ({err})", path=path,
                       hint=DAMAGED) from None
    if len(stored.texts) != len(stored.labels):
        raise TlcError("the run's held-out text is damaged (texts and labels differ in "
                       "number)", path=path, hint=DAMAGED)
    return stored
