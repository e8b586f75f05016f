"""Score raw text with a file from `tlc export`, using only onnxruntime and
onnxruntime-extensions (no tlc, no TensorFlow):

    pip install onnxruntime onnxruntime-extensions
    python score.py model.onnx "A wonderful film." "Two hours I will never get back."
"""

import json
import sys

import numpy as np
import onnxruntime as ort
from onnxruntime_extensions import get_library_path

options = ort.SessionOptions()
options.register_custom_ops_library(get_library_path())  # the tokenizer's ops live here
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
labels = json.loads(session.get_modelmeta().custom_metadata_map["tlc.labels"])

texts = sys.argv[2:]
probabilities, predicted = session.run(None, {"text": np.array(texts, dtype=object)})
for text, p, label in zip(texts, probabilities, predicted, strict=True):
    scores = ", ".join(f"{name}={score:.3f}" for name, score in zip(labels, p, strict=True))
    print(f"{label}\t{scores}\t{text}")
