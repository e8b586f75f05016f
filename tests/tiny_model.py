"""A tiny trained run and its exported models, for the export and runtime tests.

Training imports TensorFlow into the test process; the tests that check that scoring does
without it run in a subprocess.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

AMAZON = Path(__file__).resolve().parent / "fixtures" / "amazon"
TINY = [
    "tokenizer.vocab_size=400", "tokenizer.max_sentences=3", "tokenizer.max_tokens=8",
    "model.embedding_dim=8", "model.word_filters=8", "model.sentence_filters=8",
    "model.hidden_units=8", "training.epochs=1", "training.min_rows_per_epoch=0",
]


def rows(path: Path) -> tuple[list[str], list[str]]:
    """(texts, labels) of a gzipped fixture CSV."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        found = list(csv.DictReader(fh))
    return [r["text"] for r in found], [r["label"] for r in found]


def train_tiny_run(out: Path, labels: int = 150) -> Path:
    """A tiny run trained on the Amazon fixtures into ``out`` (seconds)."""
    import tlc.export  # noqa: F401  (import order: extensions before TensorFlow)
    from tlc.train.config import RunConfig
    from tlc.train.pipeline import train

    config = RunConfig().override([*TINY, f"data.train={json.dumps(str(AMAZON))}",
                                   f"data.labels={labels}"])
    train(config, out, quiet=True)
    return out


def tiny_models(folder: Path) -> tuple[Path, Path]:
    """(text-input model, ids-input model) of a tiny run, written into ``folder``."""
    from tlc.export.exporter import export

    text, ids = folder / "model.onnx", folder / "ids.onnx"
    run = train_tiny_run(folder / "run")
    export(run, ids, ids_input=True, validate=False, say=lambda m: None)
    export(run, text, say=lambda m: None)
    return text, ids
