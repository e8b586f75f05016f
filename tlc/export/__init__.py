"""Export: a trained run -> one ONNX file, raw text in, label out (``pip install tlc[train]``).

Importing :mod:`tlc.train` first keeps the onnxruntime-extensions-before-TensorFlow import
order that avoids a crash (see its docstring).
"""

import tlc.train  # noqa: F401
