"""Training: the document CNN, pretraining, transfer, evaluation (`pip install tlc[train]`).

Import order matters here. TensorFlow and onnxruntime-extensions bundle different builds of
protobuf/abseil; when TensorFlow is loaded first, creating the tokenizer's onnxruntime session
(with the extensions' custom ops) segfaults. :func:`import_keras`, the one way tlc imports
Keras, loads onnxruntime and the extensions first. It runs when a module first needs Keras,
not on importing this package, so that commands check their arguments before paying for
TensorFlow's start-up (4 to 16 s): ``tlc train --data typo`` answers at once.
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN, "no CUDA drivers", cuInit) would bury the progress
# output; set TF_CPP_MIN_LOG_LEVEL=0 to see it again when debugging TensorFlow itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_keras():
    """Keras (and TensorFlow), imported with file descriptor 2 muted the first time: abseil
    prints its start-up lines before any log level applies. A failing import still raises,
    after stderr is back. onnxruntime and its extensions are loaded before it (see the
    module docstring)."""
    import sys

    import onnxruntime  # noqa: F401  (must precede TensorFlow)
    import onnxruntime_extensions  # noqa: F401

    if "keras" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import keras

        return keras
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras
