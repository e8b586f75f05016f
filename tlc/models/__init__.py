"""Bundled models: finished exported files shipped inside the core package, picked by name.

``Classifier.load("sentiment-en")``, ``tlc predict``, ``tlc inspect`` and ``tlc explain``
take either a model file or the name of a folder ``tlc/models/NAME/`` holding ``model.onnx``
(with its ``card.json`` and ``CARD.md``), installed as package data, so ``pip install tlc``
alone can score. As with the bundled bases (:mod:`tlc.bases`), an existing path always wins,
and only a string that could not be a path to anything (no folder separator, no leading
``.`` or ``~``) is looked up as a name.

This module reads only the file system and JSON: it is part of the runtime, so it imports
nothing of tlc's training side.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import TlcError

# The folder holding the bundled models (this package's own folder); tests point it elsewhere.
MODELS_DIR = Path(__file__).resolve().parent
MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
DEFAULT_MODEL = "sentiment-en"
"""What `tlc predict INPUT` scores with when no model file is given."""


def bundled_models() -> list[str]:
    """The names of the models installed with this tlc, sorted."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_"))
                  and (p / MODEL_FILE).is_file())


def looks_like_name(spec: str) -> bool:
    """Whether ``spec`` may name a bundled model or base: no folder separator, no leading
    ``.`` or ``~`` (anything else can only be a path)."""
    seps = [os.sep] + ([os.altsep] if os.altsep else [])
    return bool(spec) and not any(s in spec for s in seps) and spec[0] not in ".~"


def bundled_name(spec: str | os.PathLike[str]) -> str | None:
    """The bundled model ``spec`` names, or None when it is (or could only be) a path."""
    text = os.fspath(spec)
    if Path(text).exists() or not looks_like_name(text):
        return None
    return text if text in bundled_models() else None


def resolve_model(spec: str | os.PathLike[str]) -> Path:
    """The model file ``spec`` means: an existing path as it is, a bundled model's name as
    its ``model.onnx``. A missing path or unknown name is a TlcError listing the bundled
    names (a name without a separator may have been either, so the message covers both)."""
    text = os.fspath(spec)
    path = Path(text)
    if path.exists():
        return path
    name = bundled_name(text)
    if name is not None:
        return MODELS_DIR / name / MODEL_FILE
    names = bundled_models()
    known = (f"the models bundled with this tlc: {', '.join(names)}" if names
             else "this tlc has no bundled models")
    what = "neither a file nor a bundled model's name" if looks_like_name(text) \
        else "model file not found"
    raise TlcError(f"{what} ({known})", path=text,
                   hint="give the path of a file written by `tlc export RUN --out "
                   "model.onnx`, or one of the bundled names")


def model_card(name: str) -> dict[str, Any]:
    """card.json of the bundled model ``name`` (its facts and measured figures)."""
    path = MODELS_DIR / name / CARD_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TlcError(f"the bundled model's card cannot be read: {err}", path=path,
                       hint="reinstall tlc; the package data is incomplete") from None


def figures_line(name: str) -> str:
    """``IMDB 89.56%, amazon 92.10%``: the card's test accuracies (benchmarks/bundled.py
    measured them), for notices; empty when the card has none yet."""
    tests = (model_card(name).get("figures") or {}).get("tests") or {}
    parts = []
    for test, report in tests.items():
        accuracy = report.get("accuracy") if isinstance(report, dict) else None
        if isinstance(accuracy, (int, float)):
            label = report.get("short") or test
            parts.append(f"{label} {100 * accuracy:.2f}%")
    return ", ".join(parts)
