"""A run folder: everything a trained model needs, saved and loaded as one piece.

    RUN/config.json     every setting (see :mod:`.config`)
    RUN/tokenizer/      sentencepiece model + its config (grid size included)
    RUN/model.keras     the Keras model (custom layers load with safe_mode=True)
    RUN/weights.npz     instead of model.keras, in a packed base (:mod:`tlc.bases.pack`): the
                        network's weights alone, float16, by Keras weight path; the network
                        is built again from config.json, the tokenizer and the labels
    RUN/card.json, RUN/CARD.md  a packed base's model card (facts, and the same for people)
    RUN/run.json        written last: labels, versions, training summary, validation report
    RUN/.tlc-run        written first: marks the folder as a tlc run (tlc version, when)
    RUN/stage-self/     a run trained by a recipe that self-trains first: its first stage,
                        the base self-trained on unlabelled text (a finished run folder that
                        RUN was fine-tuned from; see :mod:`.start`)
    RUN/held_out.json.gz  only for a run trained from memory (the Python API): the text the
                        export guard compares on, since no data file holds it

A folder without ``run.json`` is unfinished (interrupted, or still training): it can be resumed
with ``--resume`` but not used as a source or evaluated.

tlc deletes only what it wrote: ``--force`` (and the clean-up after a failed start) removes the
entries of :data:`RUN_ENTRIES` and refuses when the folder holds anything else; a folder is
taken for a run by its marker, or, for runs made before the marker existed, by ``run.json`` or
``config.json`` beside ``tokenizer/``. Anything else is not a run, and tlc train does not write
into it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import TlcError
from ..ownership import entry_name, listing
from ..tokenizer import Tokenizer
from .config import RunConfig

RUN_FORMAT = 1
RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
WEIGHTS_FILE = "weights.npz"
CARD_FILE = "card.json"
CARD_TEXT = "CARD.md"
TOKENIZER_DIR = "tokenizer"
RUN_MARKER = ".tlc-run"
CHECKPOINT_DIR = "checkpoint"   # written by the trainer while a run is unfinished
PROGRESS_FILE = "progress.json"
EVAL_DIR = "eval"
# A run trained on texts given in memory keeps the export guard's held-out text here (its
# data came from no file the exporter could read again; see :mod:`.memory`).
HELD_OUT_FILE = "held_out.json.gz"
# A recipe's first stage, a run folder of its own inside the run (its entries are judged,
# and removed, as a run's: see foreign_entries and remove_run).
STAGE_DIR = "stage-self"
# Everything tlc writes into a run folder, and what each of its sub-folders may hold.
# command.json is benchmarks/seed_table.py's note of the arguments that made the run;
# .tmp-* are write_json's and the checkpoint's half-written files.
_TEMP = ".tmp-"
DAMAGED = "the run folder is damaged or incomplete: train it again (`tlc train ... --force`)"
PACKED_DAMAGED = ("the packed base is damaged or incomplete: build it again (`tlc base build "
                  "NAME --out FOLDER --force`), or reinstall tlc if it came with it")
RUN_ENTRIES: dict[str, Callable[[str], bool] | None] = {
    RUN_MARKER: None, CONFIG_FILE: None, RUN_FILE: None, MODEL_FILE: None, "command.json": None,
    HELD_OUT_FILE: None, WEIGHTS_FILE: None, CARD_FILE: None, CARD_TEXT: None,
    TOKENIZER_DIR: lambda n: n in ("tokenizer.model", "tokenizer.json"),
    CHECKPOINT_DIR: lambda n: n in ("last.keras", "best-weights.npz", "progress.json")
    or n.startswith(_TEMP),
    EVAL_DIR: lambda n: n.endswith(".json") or n.startswith(_TEMP),
    # (its lock file, .stage-self.lock, lives beside it while it trains)
    STAGE_DIR: None, f".{STAGE_DIR}.lock": None,
}


@dataclass
class Run:
    path: Path
    config: RunConfig
    labels: list[str]
    info: dict[str, Any]
    tokenizer: Tokenizer
    _model: Any = None

    @property
    def model(self):
        """The Keras model, loaded on first use: model.keras with ``safe_mode=True``, or, in
        a packed base, the network built from the settings with weights.npz's weights."""
        if self._model is None:
            from . import import_keras, layers

            keras = import_keras()
            del layers  # imported for its side effect: it registers the custom layers

            path = self.path / MODEL_FILE
            if not path.is_file() and (self.path / WEIGHTS_FILE).is_file():
                self._model = self._packed_model()
                return self._model
            if not path.is_file():
                raise TlcError("the run's model file is missing", path=path, hint=DAMAGED)
            try:
                self._model = keras.saving.load_model(path, safe_mode=True)
            except Exception as err:  # a damaged file fails in many ways; none is a tlc bug
                import zipfile

                why = (str(err).splitlines()[0] if zipfile.is_zipfile(path)
                       else "not a Keras model file (damaged or replaced?)")
                raise TlcError(f"cannot load the run's model: {why}", path=path,
                               hint=DAMAGED) from None
        return self._model

    def _packed_model(self):
        """The network of config.json (vocabulary from the tokenizer, grid from the
        settings, classes from the labels) with weights.npz's weights, cast to float32."""
        import zipfile

        import numpy as np

        from .model import build_model

        path = self.path / WEIGHTS_FILE
        grid = self.config.tokenizer
        model = build_model(self.config.model, vocab_size=self.tokenizer.vocab_size,
                            sentences=grid.max_sentences, tokens=grid.max_tokens,
                            n_classes=len(self.labels), seed=self.config.training.seed)
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise TlcError(f"cannot read the packed weights: {err}", path=path,
                           hint=PACKED_DAMAGED) from None
        wanted = {w.path: w for w in model.weights}
        missing, extra = sorted(set(wanted) - set(arrays)), sorted(set(arrays) - set(wanted))
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else [])
            raise TlcError(f"the packed weights do not fit the network config.json describes "
                           f"({'; '.join(parts)})", path=path, hint=PACKED_DAMAGED)
        for key, weight in wanted.items():
            value = arrays[key]
            if tuple(value.shape) != tuple(weight.shape):
                raise TlcError(f"packed weight {key} has shape {tuple(value.shape)}, the "
                               f"network wants {tuple(weight.shape)}", path=path,
                               hint=PACKED_DAMAGED)
            weight.assign(value.astype(np.float32))
        return model


def run_state(path: Path) -> str:
    """'missing', 'file' (not a folder), 'empty', 'complete', 'unfinished' (a run without
    run.json: interrupted, or still training) or 'other' (a folder that holds no tlc run)."""
    if not path.exists():
        return "missing"
    if not path.is_dir():
        return "file"
    names = {p.name for p in path.iterdir()}
    if not names:
        return "empty"
    if not (RUN_MARKER in names or RUN_FILE in names or {CONFIG_FILE, TOKENIZER_DIR} <= names):
        return "other"
    return "complete" if (path / RUN_FILE).is_file() else "unfinished"


def foreign_entries(path: Path) -> list[str]:
    """What a run folder holds that tlc did not write there (``eval/notes.txt`` for a file
    inside one of its sub-folders), sorted."""
    found = []
    for p in path.iterdir():
        if p.name == STAGE_DIR and p.is_dir() and not p.is_symlink():
            found += [f"{p.name}/{name}" for name in foreign_entries(p)]
            continue
        inner = None if p.name.startswith(_TEMP) else RUN_ENTRIES.get(p.name, False)
        if inner is False or (inner is None and not p.is_file()) or (
                inner is not None and (p.is_symlink() or not p.is_dir())):
            found.append(entry_name(p))
        elif inner is not None:
            found += [f"{p.name}/{entry_name(c)}" for c in p.iterdir()
                      if not (c.is_file() and inner(c.name))]
    return sorted(found)


def remove_run(path: Path) -> None:
    """Delete what tlc wrote into a run folder, file by file: anything else stays, and so
    do the folder and any sub-folder that still holds something."""
    for p in path.iterdir():
        if p.name == STAGE_DIR and p.is_dir() and not p.is_symlink():
            remove_run(p)
            with contextlib.suppress(OSError):
                p.rmdir()  # only when empty
            continue
        inner = None if p.name.startswith(_TEMP) else RUN_ENTRIES.get(p.name, False)
        if inner is False:
            continue
        if inner is None:
            if p.is_file():
                p.unlink()
        elif p.is_dir() and not p.is_symlink():
            for c in p.iterdir():
                if c.is_file() and inner(c.name):
                    c.unlink()
            with contextlib.suppress(OSError):
                p.rmdir()  # only when empty


def mark_run(path: Path) -> None:
    """The marker that makes ``path`` a tlc run folder, written before anything else."""
    marker = path / RUN_MARKER
    if not marker.is_file():
        write_json(marker, {"made_by": "tlc train", "tlc_version": __version__,
                            "created": time.strftime("%Y-%m-%d %H:%M:%S")})


def load_run(path: str | Path, *, purpose: str = "use", option: str | None = None) -> Run:
    """The finished run in ``path``; ``option`` names the command-line option that gave it
    (e.g. ``--init``), for the messages. Every problem is one TlcError."""
    path = Path(path)
    state = run_state(path)
    give = f"give {option}" if option else "give"
    expected = f"{give} a run folder: the --out folder of a finished `tlc train`"
    if state == "missing":
        raise TlcError("run folder not found", path=path, hint=expected)
    if state == "file":
        if path.suffix.lower() == ".onnx":
            hint = (f"{give} the run folder it was exported from"
                    + ("; an exported model is scored with `tlc predict MODEL DATA`"
                       if purpose == "evaluate" else ""))
            raise TlcError(f"is an exported model, not a run folder (tlc cannot {purpose} "
                           "an .onnx file)", path=path, hint=hint)
        raise TlcError("is a file, not a run folder", path=path, hint=expected)
    if state == "empty":
        raise TlcError("is an empty folder, not a run", path=path, hint=expected)
    if state == "other":
        held = listing(entry_name(p) for p in path.iterdir())
        raise TlcError(f"holds no tlc run (no {RUN_FILE}; it holds {held})", path=path,
                       hint=expected)
    if state != "complete":
        if (path / CHECKPOINT_DIR / "progress.json").is_file():
            raise TlcError(f"run is not finished (no {RUN_FILE}), so it cannot be used to "
                           f"{purpose}", path=path,
                           hint=f"finish it first with the `tlc train ... --out {path}` "
                           "command that started it, plus --resume")
        raise TlcError(f"run is not finished (no {RUN_FILE}) and stopped before its first "
                       f"checkpoint, so it cannot be used to {purpose}", path=path,
                       hint=f"train it again (`tlc train ... --out {path} --force`), or {give} "
                       "a finished run")
    info_path = path / RUN_FILE
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TlcError(f"run metadata is unreadable: {err}", path=info_path,
                       hint=DAMAGED) from None
    if not isinstance(info, dict):
        raise TlcError("run metadata is not a JSON object", path=info_path, hint=DAMAGED)
    fmt = info.get("format")
    if fmt != RUN_FORMAT:
        raise TlcError(
            f"run format {fmt!r} (made by tlc {info.get('tlc_version', '?')}) is not the "
            f"format this tlc {__version__} reads ({RUN_FORMAT})",
            path=info_path,
            hint=f"use the tlc version that made it, or train the run again with tlc "
            f"{__version__}",
        )
    labels = info.get("labels")
    if not isinstance(labels, list) or len(labels) < 2:
        raise TlcError("run metadata has no label list", path=info_path, hint=DAMAGED)
    try:
        config = RunConfig.load(path / CONFIG_FILE)
        tokenizer = Tokenizer.load(path / TOKENIZER_DIR)
    except TlcError as err:
        if err.hint is not None:
            raise
        raise type(err)(err.message, path=err.path, line=err.line, hint=DAMAGED) from None
    return Run(path, config, [str(x) for x in labels], info, tokenizer)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
