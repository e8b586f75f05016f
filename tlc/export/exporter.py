"""``tlc export``: a finished run -> one validated ONNX file, written atomically.

Order: convert, compose, stamp metadata, write to a temporary file beside the target, run that
file with onnxruntime against the Keras model on held-out text, and only then rename it into
place. A failure at any step leaves no file under the final name.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import TlcError
from ..tokenizer.graph import ort_session
from . import metadata as meta
from .compose import TEXT, text_classifier
from .network import IDS, network_to_onnx

FLOAT_TOLERANCE = 1e-4


def held_out_texts(run, data_dir, limit: int, seed: int = 0) -> tuple[list[str], str]:
    """Text the run never trained on: its training split minus its training rows (the
    validation rows and, under a label budget, every row outside it)."""
    from ..train.pipeline import choose_rows, load_training_split

    split = load_training_split(run.config, data_dir)
    train_rows, _ = choose_rows(split.labels, run.config, run.config.data.train)
    rows = np.setdiff1d(np.arange(len(split.texts)), train_rows)
    if len(rows) == 0:
        raise TlcError("the run trained on every row of its data, so there is no held-out "
                       "text to validate the export on",
                       hint="pass --validation-data NAME:SPLIT (e.g. imdb:unsup)")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(rows, size=min(limit, len(rows)), replace=False))
    return [split.texts[i] for i in pick], f"{run.config.data.train} (held-out rows)"


def texts_from(spec: str, data_dir, limit: int) -> tuple[list[str], str]:
    from itertools import islice

    from ..data.dataset import iter_texts

    return list(islice(iter_texts([spec], data_dir), limit)), spec


def export(run_dir: str | Path, out: str | Path, *, opset: int = 17, ids_input: bool = False,
           validate: bool = True, validation_data: str | None = None, sample: int = 2000,
           data_dir=None, force: bool = False, say=print) -> dict[str, Any]:
    from ..train.run import load_run

    out = Path(out)
    if not out.parent.is_dir():
        raise TlcError("the output folder does not exist", path=out.parent,
                       hint=f"create it first (mkdir -p {out.parent}) or choose another --out")
    if out.is_dir():
        raise TlcError("the output path is a folder", path=out, hint="give a file name, "
                       "e.g. model.onnx")
    if out.exists() and not force:
        raise TlcError("the output file already exists", path=out,
                       hint="pass --force to replace it, or choose another --out")
    run = load_run(run_dir, purpose="export")
    grid = run.tokenizer.config
    started = time.perf_counter()
    network = network_to_onnx(run.model, grid.max_sentences, grid.max_tokens, opset)
    model = network if ids_input else text_classifier(network, run.tokenizer, run.labels)
    evaluations = {p.stem: _load_json(p) for p in sorted((run.path / "eval").glob("*.json"))}
    values = {
        meta.FORMAT: meta.METADATA_FORMAT, meta.VERSION: __version__,
        meta.LABELS: run.labels, meta.INPUT: IDS if ids_input else TEXT,
        meta.CONFIG: run.config.to_dict(), meta.TOKENIZER_SHA256: run.tokenizer.sha256,
        meta.EVALUATION: {"valid_split": run.info.get("validation"), **evaluations},
        meta.QUANTIZATION: {"mode": "float32"},
    }
    report: dict[str, Any] = {"run": str(run.path), "out": str(out), "opset": opset,
                              "input": values[meta.INPUT]}
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        if validate:
            texts, source = (texts_from(validation_data, data_dir, sample) if validation_data
                             else held_out_texts(run, data_dir, sample))
            meta.set_metadata(model, values)
            tmp.write_bytes(model.SerializeToString())
            check = compare_with_keras(tmp, run, texts, ids_input)
            check["data"] = source
            report["validation"] = check
            say(f"validation on {check['documents']:,} documents of {source}: max |onnx - keras| "
                f"= {check['max_abs_diff']:.2e} (limit {FLOAT_TOLERANCE:g}), labels agree on "
                f"{100 * check['label_agreement']:.2f}%")
            if not check["max_abs_diff"] <= FLOAT_TOLERANCE:
                raise TlcError(
                    f"the exported model disagrees with the Keras model: max |difference| "
                    f"{check['max_abs_diff']:.3g} > {FLOAT_TOLERANCE:g} on {source}",
                    hint="this is a conversion bug; report it with the run folder")
            values[meta.VALIDATION] = check
        meta.set_metadata(model, values)
        tmp.write_bytes(model.SerializeToString())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    report["bytes"] = out.stat().st_size
    report["seconds"] = time.perf_counter() - started
    return report


def compare_with_keras(path: Path, run, texts: list[str], ids_input: bool) -> dict[str, Any]:
    session = ort_session(path.read_bytes())
    grids = run.tokenizer.encode_grid(texts)
    want = run.model.predict(grids, batch_size=256, verbose=0)
    got = []
    for start in range(0, len(texts), 256):
        feed = ({IDS: grids[start:start + 256]} if ids_input
                else {TEXT: np.array(texts[start:start + 256], dtype=object)})
        got.append(session.run(None, feed)[0])
    proba = np.concatenate(got) if got else np.zeros_like(want)
    return {"documents": len(texts), "max_abs_diff": float(np.abs(proba - want).max())
            if len(texts) else 0.0,
            "label_agreement": float((proba.argmax(1) == want.argmax(1)).mean())
            if len(texts) else 1.0}


def _load_json(path: Path):
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
