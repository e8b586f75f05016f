"""Label budgets and validation splits: deterministic, stratified, seeded.

"100 labels with seed 1" must pick the same rows on every machine and every numpy version,
so rows are ranked by a keyed hash of (purpose, seed, row index) instead of a random
generator's stream. Within each class the rows with the smallest hashes are taken, which
also makes budgets nested: the 100-label subset of a seed is inside its 1,250-label subset
(up to rounding of the per-class quotas).

Only the training side is ever passed in here; the test split is never sampled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from tlc.errors import DataError


def _ranks(n: int, seed: int, purpose: str) -> np.ndarray:
    key = f"tlc:{purpose}:{seed}".encode()
    digests = b"".join(
        hashlib.blake2b(i.to_bytes(8, "little"), digest_size=8, key=key).digest()
        for i in range(n)
    )
    return np.frombuffer(digests, dtype="<u8")


def _quotas(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainder), with at
    least one row per class so no class disappears from a small budget."""
    n = counts.sum()
    exact = counts * (total / n)
    q = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - q), kind="stable")
    q[order[: total - q.sum()]] += 1
    for k in np.flatnonzero(q == 0):  # take from the largest class to give every class one
        q[np.argmax(q)] -= 1
        q[k] = 1
    return np.minimum(q, counts)


def _budget_size(n_rows: int, n_classes: int, count: int | None, fraction: float | None,
                 source: str | None) -> int:
    if (count is None) == (fraction is None):
        raise DataError("give exactly one of a label count or a fraction",
                        hint="use --labels N or --fraction F")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise DataError(f"fraction {fraction} is not in (0, 1]", hint="e.g. --fraction 0.05")
        count = round(fraction * n_rows)
    assert count is not None
    if count > n_rows:
        raise DataError(
            f"a budget of {count:,} labels is larger than the {n_rows:,} labelled rows",
            path=source,
            hint=f"use --labels {n_rows} or fewer (or leave the budget out to use all)",
        )
    if count < n_classes:
        raise DataError(
            f"a budget of {count} labels cannot hold one example of each of the "
            f"{n_classes} classes",
            path=source,
            hint=f"use --labels {n_classes} or more",
        )
    return count


def stratified_subset(
    labels: Sequence[str],
    *,
    count: int | None = None,
    fraction: float | None = None,
    seed: int = 0,
    purpose: str = "budget",
    source: str | None = None,
) -> np.ndarray:
    """Indices (ascending) of a stratified subset of ``labels`` of the requested size."""
    labels_arr = np.asarray(labels, dtype=object)
    classes, inverse, counts = np.unique(labels_arr.astype(str), return_inverse=True,
                                         return_counts=True)
    size = _budget_size(len(labels_arr), len(classes), count, fraction, source)
    ranks = _ranks(len(labels_arr), seed, purpose)
    chosen = []
    for k, quota in enumerate(_quotas(counts, size)):
        members = np.flatnonzero(inverse == k)
        chosen.append(members[np.argsort(ranks[members], kind="stable")[:quota]])
    return np.sort(np.concatenate(chosen))


def validation_split(
    labels: Sequence[str],
    *,
    fraction: float = 0.1,
    seed: int = 0,
    source: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions 0..len(labels)-1 into (train, validation), stratified.

    Pass the labels of the *training side only* (after any label budget): with 100 labels,
    the validation rows come out of those 100, never from extra labelled data."""
    n = len(labels)
    n_classes = len(set(labels))
    size = max(n_classes, round(fraction * n))
    if n - size < n_classes:
        raise DataError(
            f"{n} labelled rows are too few to hold out a validation split "
            f"and still train on every class",
            path=source,
            hint="use a larger label budget or a smaller validation fraction",
        )
    valid = stratified_subset(labels, count=size, seed=seed, purpose="valid", source=source)
    train = np.setdiff1d(np.arange(n), valid, assume_unique=True)
    return train, valid
