"""Classify text as you type it, with a file from `tlc export` and nothing but onnxruntime,
onnxruntime-extensions and numpy (no tlc, no TensorFlow): the smallest app that embeds a model.

    pip install onnxruntime onnxruntime-extensions
    python classify.py model.onnx
    > A wonderful film, I loved every minute.
    1    0=0.031  1=0.969

One text a line; an empty line is skipped; Ctrl-D (Ctrl-Z on Windows) ends. Lines can also be
piped in: `python classify.py model.onnx < reviews.txt`.
"""

import json
import sys

import numpy as np
import onnxruntime as ort
from onnxruntime_extensions import get_library_path

if len(sys.argv) != 2:
    sys.exit("usage: python classify.py model.onnx")

# 1. Load once: register the extensions library (the in-graph tokenizer's ops live there).
options = ort.SessionOptions()
options.register_custom_ops_library(get_library_path())
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
labels = json.loads(session.get_modelmeta().custom_metadata_map["tlc.labels"])
print(f"labels: {', '.join(labels)}; type a text and press Enter", file=sys.stderr)

# 2. Score each line: raw text in, probabilities (one column per label) and the label out.
interactive = sys.stdin.isatty()
while True:
    if interactive:
        print("> ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        break
    text = line.rstrip("\n")
    if not text.strip():
        continue
    probabilities, label = session.run(None, {"text": np.array([text], dtype=object)})
    scores = "  ".join(f"{name}={p:.3f}" for name, p in zip(labels, probabilities[0], strict=True))
    print(f"{label[0]}\t{scores}", flush=True)
