"""A finished run packed into a base: the run folder's shape, the network stored small.

A transfer needs from its source the tokenizer, the settings, the labels and the network's
weights. model.keras holds more (the optimiser's state: Adam keeps two more copies of every
weight) and stores float32; a base keeps the weights alone, float16, compressed, in
``weights.npz`` keyed by Keras weight path, and :attr:`~tlc.train.run.Run.model` builds the
network again from config.json. The head (hidden, output, wide) stays: a transfer with the
same labels reuses it (self-training needs it), one with other labels trains a new head.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import TlcError
from ..train.run import (
    CONFIG_FILE,
    RUN_FILE,
    RUN_MARKER,
    TOKENIZER_DIR,
    WEIGHTS_FILE,
    Run,
    write_json,
)

DTYPE = np.float16
# run.json's record of the packing (a transferred run's init.base names the base instead)
PACKED_KEY = "packed"


def network_weights(model) -> dict[str, np.ndarray]:
    """Every weight of a Keras model by its path (``embedding/embeddings``), float32."""
    weights: dict[str, np.ndarray] = {}
    for w in model.weights:
        if w.path in weights:  # cannot happen for tlc's network; a key must mean one weight
            raise TlcError(f"two weights share the path {w.path!r}, so they cannot be stored "
                           "by path", hint="this network cannot be packed into a base")
        weights[w.path] = np.asarray(w.numpy(), dtype=np.float32)
    return weights


def to_float16(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    limit = float(np.finfo(DTYPE).max)
    for key, value in weights.items():
        if value.size and float(np.abs(value).max()) > limit:
            raise TlcError(f"weight {key} reaches {float(np.abs(value).max()):.3g}, beyond "
                           f"float16's {limit:g}, so the run cannot be packed at float16",
                           hint="pack another run (its training diverged?)")
    return {key: value.astype(DTYPE) for key, value in weights.items()}


def pack_run(run: Run, out: Path, *, name: str) -> dict[str, Any]:
    """Write the base ``name`` into ``out`` (a new or empty folder) from the finished ``run``:
    marker, config.json, tokenizer/, weights.npz, then run.json (the run's own, with a
    ``packed`` record) last, as a run folder is finished. Returns that record."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise TlcError("the folder to pack a base into is not empty", path=out,
                       hint="give a new or empty folder")
    write_json(out / RUN_MARKER, {"made_by": "tlc base build", "tlc_version": __version__,
                                  "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    # the settings as trained, but the word vectors by file name: a path on the machine that
    # trained the source means nothing where the base is installed (transfers never read it)
    config = json.loads((run.path / CONFIG_FILE).read_text(encoding="utf-8"))
    vectors = config.get("transfer", {}).get("init_vectors")
    if vectors:
        config["transfer"]["init_vectors"] = Path(vectors).name
    write_json(out / CONFIG_FILE, config)
    # the tokenizer's files as they are: its sha256, which transfers record, stays the same
    shutil.copytree(run.path / TOKENIZER_DIR, out / TOKENIZER_DIR)
    weights = to_float16(network_weights(run.model))
    np.savez_compressed(out / WEIGHTS_FILE, **weights)
    record = {
        "name": name,
        "weights": WEIGHTS_FILE,
        "dtype": np.dtype(DTYPE).name,
        "parameters": int(sum(w.size for w in weights.values())),
        "from_run": {"name": run.path.name,
                     "run_json_sha256": hashlib.sha256(
                         (run.path / RUN_FILE).read_bytes()).hexdigest()},
        "tlc_version": __version__,
        "packed": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(out / RUN_FILE, {**run.info, PACKED_KEY: record})
    return record
