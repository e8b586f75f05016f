"""Scoring with a file from ``tlc export``: the part of tlc that apps and batch jobs need.

``pip install tlc`` (no extras) is enough: this package imports only onnxruntime,
onnxruntime-extensions and numpy (plus tqdm for ``tlc predict``'s progress bar), never
TensorFlow, Keras, tf2onnx or sentencepiece, and nothing from tlc's training side.

    from tlc.runtime import Classifier
    clf = Classifier.load("model.onnx")
    clf.predict(["A wonderful film."])          # ['1']
    clf.predict_proba(["A wonderful film."])    # array([[0.03, 0.97]], dtype=float32)
    score_file(clf, "reviews.csv", "scored.csv")  # what `tlc predict` does
    clf.explain(["Great cast. Dull plot."])     # a file from `tlc export --explain`
"""

from tlc.runtime.batch import Summary, score_file
from tlc.runtime.classifier import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_TRUNCATE_CHARS,
    Classifier,
    Explanation,
    Sentence,
)

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_TRUNCATE_CHARS", "Classifier", "Explanation",
           "Sentence", "Summary", "score_file"]
