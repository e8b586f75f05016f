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


# What each structured key must decode to; a file whose metadata was edited by hand or
# damaged is reported key by key instead of failing somewhere downstream.
_SHAPES = {CONFIG: dict, EVALUATION: dict, QUANTIZATION: dict, VALIDATION: dict}


def labels_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a ``tlc.labels`` entry, or None when it is fine."""
    if value is None:
        return "missing"
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        return f"not a JSON list of strings ({json.dumps(value)[:60]})"
    if len(value) < 2:
        return f"{len(value)} label(s); a classifier has at least 2"
    if len(set(value)) != len(value):
        return "a label appears twice"
    return None


def problems(props: dict[str, Any]) -> dict[str, str]:
    """Key -> what is wrong with it, for the ``tlc.*`` entries of decoded metadata."""
    found: dict[str, str] = {}
    if any(k.startswith("tlc.") for k in props):
        problem = labels_problem(props.get(LABELS))
        if problem:
            found[LABELS] = problem
    for key, shape in _SHAPES.items():
        if key in props and props[key] is not None and not isinstance(props[key], shape):
            found[key] = f"not a JSON object ({str(props[key])[:60]!r})"
    return found


def entry(props: dict[str, Any], key: str) -> Any:
    """A structured entry if it has its proper shape, else None (see :func:`problems`)."""
    value = props.get(key)
    shape = _SHAPES.get(key)
    return value if shape is None or isinstance(value, shape) else None
