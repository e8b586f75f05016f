"""What ``tlc data info`` reports: rows, label balance, length statistics, bad rows.

Streams each split once, keeping only per-row lengths, so it works on files larger than
memory would allow to load as text.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tlc.data.dataset import UNLABELLED_SPLITS, Dataset
from tlc.data.examples import reason_key, row_text
from tlc.data.labels import label_sort_key
from tlc.data.readers import read_records


@dataclass
class SplitStats:
    split: str
    path: str
    rows: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    chars: dict[str, float] = field(default_factory=dict)
    words: dict[str, float] = field(default_factory=dict)
    bad_rows: dict[str, int] = field(default_factory=dict)
    """Reason -> count; the first few line numbers are in ``bad_examples``."""
    bad_examples: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _summary(values: array) -> dict[str, float]:
    if not values:
        return {}
    a = np.frombuffer(values, dtype=np.int64)
    return {
        "min": int(a.min()),
        "median": float(np.median(a)),
        "mean": round(float(a.mean()), 1),
        "p95": float(np.percentile(a, 95)),
        "max": int(a.max()),
    }


def split_stats(
    dataset: Dataset, split: str, *, text_column: str = "text", label_column: str = "label",
    progress=None,
) -> SplitStats:
    path = dataset.path(split)
    stats = SplitStats(split, str(path))
    # Compact machine integers, not Python lists: 16 bytes a row, even for millions of rows.
    chars = array("q")
    words = array("q")
    labels: Counter = Counter()
    bad: Counter = Counter()
    labelled = split not in UNLABELLED_SPLITS
    for record in read_records(path, dataset.fmt):
        if not stats.columns and record.error is None:
            stats.columns = list(record.fields)
        if progress is not None:
            progress.update(1)
        text, problem = row_text(record, text_column)
        if problem is not None:
            bad[reason_key(problem)] += 1
            if len(stats.bad_examples) < 5:
                where = f"{record.source}:{record.line}" if record.line else record.source
                stats.bad_examples.append(f"{where}: {problem}")
            continue
        stats.rows += 1
        chars.append(len(text))
        words.append(len(text.split()))
        if labelled and label_column in record.fields:
            labels[record.fields[label_column].strip()] += 1
    stats.labels = {k: labels[k] for k in sorted(labels, key=label_sort_key)}
    stats.chars = _summary(chars)
    stats.words = _summary(words)
    stats.bad_rows = dict(bad)
    return stats
