"""An onnxruntime session with the extensions' custom ops: the one place tlc opens one.

The exported graph tokenises inside itself with onnxruntime-extensions' ops
(``StringRegexReplace``, ``SentencepieceTokenizer``), so every session must register that
library first; this is the one place the runtime does it. Nothing here imports tlc's training
side (TensorFlow, Keras, tf2onnx, sentencepiece): only onnxruntime, onnxruntime-extensions
and numpy.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
from pathlib import Path

from tlc.errors import TlcError


def read_model(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, or a :class:`TlcError` that says what is wrong with the path. A
    bundled model's name (``sentiment-en``) reads its file (:mod:`tlc.models`)."""
    from tlc.models import resolve_model

    p = resolve_model(path)
    if p.is_dir():
        raise TlcError("is a folder, not a model file", path=p,
                       hint="give the .onnx file written by `tlc export`")
    try:
        return p.read_bytes()
    except OSError as err:
        raise TlcError(f"cannot read the model file: {err.strerror or err}", path=p,
                       hint="check the file's permissions") from None


def extensions_library() -> str:
    """Path of onnxruntime-extensions' custom-op library.

    Found without importing the ``onnxruntime_extensions`` package, whose ``__init__`` also
    imports ``onnx`` when that happens to be installed (60 ms and tens of MB for nothing here);
    the file is the one ``onnxruntime_extensions.get_library_path()`` returns.
    """
    spec = importlib.util.find_spec("onnxruntime_extensions")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = Path(folder) / f"_extensions_pydll{suffix}"
            if candidate.is_file():
                return str(candidate)
    from onnxruntime_extensions import get_library_path  # another layout: ask the package

    return get_library_path()


def model_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_session(model: bytes, *, intra_threads: int | None = None,
                 source: str | None = None):
    """An ``InferenceSession`` on the CPU with the extensions' ops registered.

    ``intra_threads`` is onnxruntime's own thread count *per run* (None: onnxruntime's
    default, every core); the :class:`~tlc.runtime.Classifier` and the training-side
    :class:`~tlc.tokenizer.graph.GraphEncoder` keep it at 1 and run several chunks at once
    instead (the in-graph tokenizer works on one core whatever this says).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.register_custom_ops_library(extensions_library())  # the tokenizer's ops live here
    if intra_threads is not None:
        options.intra_op_num_threads = max(1, intra_threads)
        options.inter_op_num_threads = 1
    if intra_threads is not None and intra_threads <= 1:
        # No spinning worker threads: with one thread per run there are none to keep warm,
        # and spinning threads steal the cores that the other chunks run on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TlcError(f"not a loadable ONNX model: {first}", path=source,
                       hint="give a file written by `tlc export` (check that it was copied "
                       "whole)") from None
