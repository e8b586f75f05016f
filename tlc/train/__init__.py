"""Training: the document CNN, pretraining, transfer, evaluation (`pip install tlc[train]`).

Import order matters here. TensorFlow and onnxruntime-extensions bundle different builds of
protobuf/abseil; when TensorFlow is loaded first, creating the tokenizer's onnxruntime session
(with the extensions' custom ops) segfaults. Loading onnxruntime and the extensions before
anything imports Keras avoids it, and every module of this package is reached through here.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter hides progress bars

import onnxruntime  # noqa: E402,F401  (see the docstring: must precede TensorFlow)
import onnxruntime_extensions  # noqa: E402,F401
