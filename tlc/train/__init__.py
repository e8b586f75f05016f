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

    if "keras" in sys.modules:
        import keras

        return keras
    with _muted_stderr():
        import keras
    return keras


def seed_everything(keras, seed: int) -> None:
    """``keras.utils.set_random_seed``. Under another backend than TensorFlow it still
    imports TensorFlow when installed (to seed tf.data), after onnxruntime, as import_keras
    requires; its start-up lines are muted the same way."""
    with _muted_stderr():
        keras.utils.set_random_seed(seed)


class _muted_stderr:
    """File descriptor 2 sent to /dev/null for a block (TF_CPP_MIN_LOG_LEVEL=0: not)."""

    def __enter__(self):
        self.saved = None
        if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
            return self
        self.saved = os.dup(2)
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
