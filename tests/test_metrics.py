"""Evaluation metrics against values worked out by hand on tiny examples."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from tlc.train.metrics import classification_report, format_report, roc_auc


def binary_proba(scores: list[float]) -> np.ndarray:
    s = np.asarray(scores)
    return np.stack([1.0 - s, s], axis=1)


def onehot_proba(pred: list[int], c: int) -> np.ndarray:
    # The predicted class gets 1/2 + 1/(2c), the others 1/(2c): rows sum to 1, one clear max.
    return np.eye(c)[pred] * 0.5 + 1.0 / (2 * c)


# Two classes, 8 examples, with one tied score (0.7) across the classes.
Y2 = [0, 0, 0, 0, 1, 1, 1, 1]
S2 = [0.1, 0.3, 0.6, 0.7, 0.4, 0.7, 0.8, 0.9]


def test_binary_report_by_hand():
    r = classification_report(np.array(Y2), binary_proba(S2), ["neg", "pos"])
    # argmax == (score > 0.5): pred = [0, 0, 1, 1, 0, 1, 1, 1]
    # true neg -> pred [0,0,1,1] = 2 neg, 2 pos; true pos -> pred [0,1,1,1] = 1 neg, 3 pos
    assert r["confusion_matrix"] == [[2, 2], [1, 3]]
    assert r["n"] == 8
    assert r["labels"] == ["neg", "pos"]
    neg, pos = r["per_class"]
    # neg: precision 2/(2+1) = 2/3, recall 2/4 = 1/2, F1 = 2*(1/3)/(7/6) = 4/7
    assert neg["label"] == "neg" and neg["support"] == 4
    assert neg["precision"] == pytest.approx(2 / 3)
    assert neg["recall"] == pytest.approx(0.5)
    assert neg["f1"] == pytest.approx(4 / 7)
    # pos: precision 3/(2+3) = 0.6, recall 3/4 = 0.75, F1 = 2*0.45/1.35 = 2/3
    assert pos["label"] == "pos" and pos["support"] == 4
    assert pos["precision"] == pytest.approx(0.6)
    assert pos["recall"] == pytest.approx(0.75)
    assert pos["f1"] == pytest.approx(2 / 3)
    # accuracy (2+3)/8; balanced (1/2 + 3/4)/2; macro-F1 (4/7 + 2/3)/2 = (12+14)/42 = 13/21
    assert r["accuracy"] == pytest.approx(5 / 8)
    assert r["balanced_accuracy"] == pytest.approx(0.625)
    assert r["macro_f1"] == pytest.approx(13 / 21)
    # AUC over 4*4 = 16 (pos, neg) pairs, a tie counting 1/2:
    #   pos 0.4 beats 0.1, 0.3                    -> 2
    #   pos 0.7 beats 0.1, 0.3, 0.6, ties 0.7    -> 3.5
    #   pos 0.8 and 0.9 beat all four            -> 4 + 4
    # (2 + 3.5 + 8) / 16 = 13.5/16 = 0.84375.  By ranks: sorted 0.1 0.3 0.4 0.6 0.7 0.7 0.8 0.9,
    # positive ranks 3 + 5.5 + 7 + 8 = 23.5; U = 23.5 - 4*5/2 = 13.5.
    assert r["roc_auc"] == pytest.approx(0.84375)
    # Plain JSON all the way down.
    assert json.loads(json.dumps(r)) == r


def test_auc_ties():
    # Pairs: pos 0.5 beats 0.2 and ties 0.5 -> 1.5; pos 0.9 beats both -> 2. 3.5/4 = 0.875.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.2, 0.5, 0.5, 0.9])) == 0.875
    # Every score tied: every pair is half right.
    assert roc_auc(np.array([0, 1, 0, 1, 1]), np.full(5, 0.3)) == 0.5
    # Perfect and perfectly wrong orderings.
    assert roc_auc(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3])) == 1.0
    assert roc_auc(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.3])) == 0.0


def test_three_classes_by_hand():
    y = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    r = classification_report(np.array(y), onehot_proba(pred, 3), ["a", "b", "c"])
    # rows = true: a -> [a, b]; b -> [b, b]; c -> [c, a]
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    got = [(p["precision"], p["recall"], p["f1"]) for p in r["per_class"]]
    # a: P 1/2 (column a = 1+0+1), R 1/2, F1 1/2
    # b: P 2/3 (column b = 1+2+0), R 2/2, F1 = 2*(2/3)/(5/3) = 4/5
    # c: P 1/1, R 1/2, F1 = 2*(1/2)/(3/2) = 2/3
    expected = [(0.5, 0.5, 0.5), (2 / 3, 1.0, 0.8), (1.0, 0.5, 2 / 3)]
    assert np.allclose(got, expected)
    assert [p["support"] for p in r["per_class"]] == [2, 2, 2]
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    # (1/2 + 4/5 + 2/3) / 3 = (15 + 24 + 20) / 90 = 59/90
    assert r["macro_f1"] == pytest.approx(59 / 90)
    assert r["roc_auc"] is None


def test_class_never_predicted_is_zero_without_warnings():
    y = np.array([0, 1, 2, 2])
    proba = onehot_proba([2, 2, 2, 2], 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = classification_report(y, proba, ["a", "b", "c"])
    # a, b never predicted: P = R = F1 = 0. c: P 2/4, R 2/2, F1 = 2*(1/2)/(3/2) = 2/3.
    assert [p["precision"] for p in r["per_class"]] == [0.0, 0.0, 0.5]
    assert [p["recall"] for p in r["per_class"]] == [0.0, 0.0, 1.0]
    assert r["per_class"][2]["f1"] == pytest.approx(2 / 3)
    assert r["macro_f1"] == pytest.approx(2 / 9)
    assert r["balanced_accuracy"] == pytest.approx(1 / 3)
    assert r["confusion_matrix"] == [[0, 0, 1], [0, 0, 1], [0, 0, 2]]


def test_class_missing_from_truth():
    y = np.array([0, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = classification_report(y, binary_proba([0.2, 0.7, 0.1]), ["neg", "pos"])
    assert r["roc_auc"] is None
    # pos has no support: recall 0, precision 0/1 = 0. Balanced accuracy averages the classes
    # present only: neg recall 2/3.
    assert r["per_class"][1] == {
        "label": "pos", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0
    }
    assert r["balanced_accuracy"] == pytest.approx(2 / 3)
    assert r["accuracy"] == pytest.approx(2 / 3)
    assert "ROC-AUC" not in format_report(r)


@pytest.mark.parametrize(
    ("y", "proba", "labels", "match"),
    [
        (np.zeros((2, 1), int), np.full((2, 2), 0.5), ["a", "b"], "y_true must be 1-D"),
        (np.zeros(2, int), np.full(2, 0.5), ["a", "b"], "proba must be 2-D"),
        (np.zeros(3, int), np.full((2, 2), 0.5), ["a", "b"], "3 examples but proba has 2"),
        (np.zeros(2, int), np.full((2, 2), 0.5), ["a", "b", "c"], "2 columns but 3 labels"),
        (np.array([0, 2]), np.full((2, 2), 0.5), ["a", "b"], "outside 0..1"),
        (np.array([0, -1]), np.full((2, 2), 0.5), ["a", "b"], "outside 0..1"),
        (np.array([0.5, 1.0]), np.full((2, 2), 0.5), ["a", "b"], "integer class indices"),
        (np.zeros(0, int), np.zeros((0, 2)), ["a", "b"], "no examples"),
        (np.zeros(2, int), np.ones((2, 1)), ["a"], "at least 2 classes"),
        (np.zeros(2, int), np.array([[np.nan, 1], [0, 1]]), ["a", "b"], "NaN"),
    ],
)
def test_bad_shapes_raise(y, proba, labels, match):
    with pytest.raises(ValueError, match=match):
        classification_report(y, proba, labels)


def test_format_report_binary():
    r = classification_report(np.array(Y2), binary_proba(S2), ["negative", "positive"])
    text = format_report(r, title="IMDB test")
    assert text.startswith("IMDB test\n")
    assert "n=8" in text
    assert "accuracy 62.50%" in text  # 5/8
    assert "balanced accuracy 62.50%" in text
    assert "macro-F1 61.90%" in text  # 13/21 = 0.6190...
    assert "ROC-AUC 0.8438" in text  # 0.84375
    assert "66.67%" in text and "57.14%" in text and "75.00%" in text  # neg P, neg F1, pos R
    assert "true \\ predicted" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("true \\ predicted"))
    assert header.split()[-2:] == ["negative", "positive"]
    row = next(line for line in lines[lines.index(header):] if line.startswith("positive"))
    assert row.split()[1:] == ["1", "3"]


def test_format_report_three_classes():
    r = classification_report(
        np.array([0, 0, 1, 1, 2, 2]), onehot_proba([0, 1, 1, 1, 2, 0], 3), ["a", "b", "c"]
    )
    text = format_report(r)
    assert "ROC-AUC" not in text
    assert "macro-F1 65.56%" in text  # 59/90
    for label in ("a", "b", "c"):
        assert any(line.split()[0] == label for line in text.splitlines() if line.strip())
