"""What an exported file says about itself: ONNX ``metadata_props``, strings (JSON where
structured), readable with nothing but ``onnx`` or onnxruntime's ``modelmeta``.

Written by :mod:`tlc.export`, read by :mod:`tlc.runtime` and ``tlc inspect``: it lives at the
top of the package and imports nothing heavy, so the runtime can read it without TensorFlow."""

from __future__ import annotations

import json
from typing import Any

# Keys, all prefixed so they cannot collide with other tools' metadata.
LABELS = "tlc.labels"                # JSON list: output column i of `probabilities`
VERSION = "tlc.version"
FORMAT = "tlc.format"                # this layout's version
INPUT = "tlc.input"                  # "text" (raw strings) or "ids" (token grid)
CONFIG = "tlc.config"                # JSON: the run's whole configuration
TOKENIZER_SHA256 = "tlc.tokenizer_sha256"
EVALUATION = "tlc.evaluation"        # JSON: the run's validation report + tlc evaluate reports
QUANTIZATION = "tlc.quantization"    # JSON: {"mode": "float32"} or what was quantised and how
VALIDATION = "tlc.validation"        # JSON: the export-time comparison with the Keras model
METADATA_FORMAT = 1
JSON_KEYS = (LABELS, CONFIG, EVALUATION, QUANTIZATION, VALIDATION)


def set_metadata(model, values: dict[str, Any]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in values.items():
        text = json.dumps(value, sort_keys=True) if key in JSON_KEYS else str(value)
        if key in existing:
            existing[key].value = text
        else:
            prop = model.metadata_props.add()
            prop.key, prop.value = key, text


def read_metadata(props: dict[str, str]) -> dict[str, Any]:
    """Decode a ``{key: string}`` map (``onnx`` metadata_props or onnxruntime's
    ``get_modelmeta().custom_metadata_map``)."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key in JSON_KEYS:
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = value
        else:
            out[key] = value
    return out
