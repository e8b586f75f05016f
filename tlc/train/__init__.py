"""Training: the document CNN, pretraining, transfer, evaluation (`pip install tlc[train]`).

Import order matters here. TensorFlow and onnxruntime-extensions bundle different builds of
protobuf/abseil; when TensorFlow is loaded first, creating the tokenizer's onnxruntime session
(with the extensions' custom ops) segfaults. Loading onnxruntime and the extensions before
anything imports Keras avoids it, and every module of this package is reached through here.
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN, "no CUDA drivers", cuInit) would bury the progress
# output; set TF_CPP_MIN_LOG_LEVEL=0 to see it again when debugging TensorFlow itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import onnxruntime  # noqa: E402,F401  (see the docstring: must precede TensorFlow)
import onnxruntime_extensions  # noqa: E402,F401


def _import_keras_quietly() -> None:
    """Import Keras (and TensorFlow) with file descriptor 2 muted: abseil prints its start-up
    lines before any log level applies. A failing import still raises, after stderr is back."""
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import keras  # noqa: F401

        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_import_keras_quietly()
