"""Evaluation metrics from predicted class probabilities, in plain numpy.

Kept free of Keras and scikit-learn so that scoring an exported model (``pip install tlc``)
can report the same numbers as training does, and so the arithmetic is testable in isolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _validate(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Check shapes and values; return ``y_true`` as int64. Raises ValueError."""
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D (one class index per example), got shape "
                         f"{y_true.shape}")
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-D (examples x classes), got shape {proba.shape}")
    n, c = proba.shape
    if y_true.shape[0] != n:
        raise ValueError(f"y_true has {y_true.shape[0]} examples but proba has {n} rows")
    if n == 0:
        raise ValueError("no examples: y_true and proba are empty")
    if c != len(labels):
        raise ValueError(f"proba has {c} columns but {len(labels)} labels were given")
    if c < 2:
        raise ValueError(f"need at least 2 classes, got {c}")
    if not np.all(np.isfinite(proba)):
        raise ValueError("proba contains NaN or infinite values")
    if y_true.dtype.kind not in "iub":
        if y_true.dtype.kind != "f" or not np.all(np.equal(np.mod(y_true, 1), 0)):
            raise ValueError(f"y_true must hold integer class indices, got dtype {y_true.dtype}")
    y = y_true.astype(np.int64)
    if y.min() < 0 or y.max() >= c:
        raise ValueError(f"y_true holds class indices outside 0..{c - 1} "
                         f"(min {y.min()}, max {y.max()})")
    return y


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of ``scores``; tied scores share the mean of the ranks they span."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Start index of each run of equal scores, and the run lengths.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    lengths = np.diff(np.r_[starts, len(scores)])
    # Ranks starts+1 .. starts+length average to starts + (length + 1) / 2.
    run_ranks = starts + (lengths + 1) / 2.0
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.repeat(run_ranks, lengths)
    return ranks


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """AUC of ``scores`` for class 1 by the Mann-Whitney rank formula; None without both classes.

    The rank form counts a tied positive/negative pair as half right, which matches the area
    under the (interpolated) ROC curve without building the curve.
    """
    positive = y_true == 1
    n_pos = int(positive.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def classification_report(
    y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, per-class scores, confusion matrix (and binary AUC).

    Everything is plain Python numbers so the report can be written as JSON as it is. Scores
    that would divide by zero (precision of a class never predicted, recall of a class absent
    from ``y_true``) are 0.0 rather than NaN. Balanced accuracy averages recall over the
    classes present in ``y_true`` (an absent class has no recall to average); macro-F1
    averages over all labels, so a label never seen nor predicted counts as F1 0.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    labels = [str(label) for label in labels]
    y = _validate(y_true, proba, labels)
    n, c = proba.shape
    pred = np.argmax(proba, axis=1)

    confusion = np.bincount(y * c + pred, minlength=c * c).reshape(c, c)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.zeros(len(num), dtype=np.float64)
        np.divide(num, den, out=out, where=den > 0)
        return out

    precision = ratio(tp, predicted.astype(np.float64))
    recall = ratio(tp, support.astype(np.float64))
    f1 = ratio(2 * precision * recall, precision + recall)

    per_class = [
        {
            "label": labels[k],
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k in range(c)
    ]
    return {
        "n": int(n),
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": balanced_accuracy(y, pred, c),
        "macro_f1": float(f1.mean()),
        "roc_auc": roc_auc(y, proba[:, 1]) if c == 2 else None,
        "labels": labels,
        "per_class": per_class,
        "confusion_matrix": confusion.astype(int).tolist(),
    }


def balanced_accuracy(y_true: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Mean recall over the classes present in ``y_true``: the early-stopping score. On a skewed
    source (86% positive) plain accuracy rewards predicting the majority class; this does not."""
    recalls = [float((pred[y_true == c] == c).mean()) for c in range(n_classes)
               if (y_true == c).any()]
    return float(np.mean(recalls)) if recalls else 0.0


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f}%"


def format_report(report: dict[str, Any], title: str | None = None) -> str:
    """The report as a fixed-width text table, for the terminal and for log files."""
    lines: list[str] = []
    if title:
        lines += [title, "=" * len(title)]
    summary = (
        f"n={report['n']}  accuracy {_pct(report['accuracy'])}  "
        f"balanced accuracy {_pct(report['balanced_accuracy'])}  "
        f"macro-F1 {_pct(report['macro_f1'])}"
    )
    if report.get("roc_auc") is not None:
        summary += f"  ROC-AUC {report['roc_auc']:.4f}"
    lines += [summary, ""]

    labels = [str(label) for label in report["labels"]]
    width = max(5, *(len(label) for label in labels))
    lines.append(f"{'label':<{width}}  {'precision':>9}  {'recall':>8}  {'F1':>8}  {'support':>7}")
    for row in report["per_class"]:
        lines.append(
            f"{row['label']:<{width}}  {_pct(row['precision']):>9}  {_pct(row['recall']):>8}  "
            f"{_pct(row['f1']):>8}  {row['support']:>7}"
        )
    lines.append("")

    corner = "true \\ predicted"
    matrix = report["confusion_matrix"]
    head_width = max(len(corner), width)
    cell = max(max(len(label) for label in labels),
               *(len(str(v)) for row in matrix for v in row))
    lines.append(f"{corner:<{head_width}}  " + "  ".join(f"{lab:>{cell}}" for lab in labels))
    for label, row in zip(labels, matrix, strict=True):
        lines.append(f"{label:<{head_width}}  " + "  ".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines) + "\n"
