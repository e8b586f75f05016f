"""``tlc evaluate``: score a finished run on labelled data and report the metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset import open_dataset, parse_source
from ..errors import DataError
from .metrics import classification_report
from .run import Run


def predict_proba(run: Run, texts: list[str], batch_size: int = 256) -> np.ndarray:
    grids = run.tokenizer.encode_grid(texts)
    return run.model.predict(grids, batch_size=batch_size, verbose=0)


def evaluate(run: Run, spec: str, *, data_dir=None, split: str = "test",
             text_column: str = "text", label_column: str = "label", fmt: str | None = None,
             on_bad_rows: str = "error") -> dict[str, Any]:
    """Metrics of ``run`` on ``spec`` (NAME, NAME:SPLIT, a folder or a file)."""
    name, named_split = parse_source(spec)
    ds = open_dataset(name, data_dir, fmt)
    split = named_split or (split if split in ds.files else ds.splits[0])
    path = ds.path(split)
    examples = ds.load(split, text_column=text_column, label_column=label_column,
                       on_bad_rows=on_bad_rows)
    if examples.labels is None or not len(examples):
        raise DataError(f"split {split!r} has no labelled rows to evaluate on", path=path)
    return evaluate_rows(run, examples.texts, examples.labels, data=spec, split=split,
                         file=str(path), skipped_rows=sum(examples.skipped.values()))


def evaluate_rows(run: Run, texts: list[str], labels: list[str], *, data: str,
                  split: str | None = None, file: str | None = None,
                  skipped_rows: int = 0) -> dict[str, Any]:
    """The report of ``run`` on these rows: what ``tlc evaluate`` writes for a file and
    ``TextClassifier.evaluate`` returns for lists (``data`` names where they came from)."""
    index = {label: i for i, label in enumerate(run.labels)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"labels {', '.join(map(repr, unknown[:5]))} are not among the run's "
                        f"classes ({', '.join(run.labels)})", path=file,
                        hint="evaluate on data with the run's label set")
    y = np.array([index[label] for label in labels], dtype=np.int64)
    start = time.perf_counter()
    proba = predict_proba(run, texts)
    seconds = time.perf_counter() - start
    report = classification_report(y, proba, run.labels)
    report.update({"run": str(run.path), "data": data, "split": split, "file": file,
                   "skipped_rows": skipped_rows,
                   "docs_per_second": len(y) / seconds if seconds else None})
    return report


def check_report_out(path: Path) -> None:
    """--out may replace an earlier report (re-running an evaluation is normal), never
    another file: only a JSON object with a report's accuracy and confusion matrix."""
    from ..ownership import json_object

    if path.is_dir():
        raise DataError("--out is a folder", path=path, hint="give a file name, e.g. report.json")
    if not path.exists() or path.stat().st_size == 0:
        return
    report = json_object(path)
    if report is None or not {"accuracy", "confusion_matrix", "run"} <= set(report):
        raise DataError("already exists, and is not a tlc evaluate report, so it is not "
                        "overwritten", path=path,
                        hint="choose another --out, or move the file away")


def default_report_path(run: Run, spec: str, split: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{spec}-{split}")
    return run.path / "eval" / f"{safe}.json"
