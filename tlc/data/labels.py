"""The label set of a data set: any strings, two or more classes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tlc.errors import DataError


def label_sort_key(label: str) -> tuple[int, float, str]:
    # Numbers in numeric order ("2" before "10"), then other strings alphabetically, so that
    # "0"/"1" and "1".."5" stars come out in their natural order on every machine.
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


@dataclass(frozen=True)
class LabelSet:
    """Ordered class names; index i is output unit i of a model."""

    names: tuple[str, ...]

    @classmethod
    def from_labels(cls, labels: Sequence[str], *, source: str | None = None) -> LabelSet:
        counts = Counter(labels)
        if len(counts) < 2:
            only = ", ".join(repr(k) for k in counts) or "none"
            raise DataError(
                f"a classifier needs at least 2 classes, found {len(counts)} ({only})",
                path=source,
                hint="check the label column (--label-column) or add examples of the other "
                "classes",
            )
        return cls(tuple(sorted(counts, key=label_sort_key)))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, labels: Sequence[str], *, source: str | None = None) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.names)}
        try:
            return np.fromiter((index[x] for x in labels), dtype=np.int32, count=len(labels))
        except KeyError as e:
            raise DataError(
                f"label {e.args[0]!r} is not one of the model's classes "
                f"({', '.join(self.names)})",
                path=source,
                hint="use data with the same label set, or train a new head",
            ) from None

    def decode(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        return [self.names[int(i)] for i in indices]
