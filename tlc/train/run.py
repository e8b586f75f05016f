"""A run folder: everything a trained model needs, saved and loaded as one piece.

    RUN/config.json     every setting (see :mod:`.config`)
    RUN/tokenizer/      sentencepiece model + its config (grid size included)
    RUN/model.keras     the Keras model (custom layers load with safe_mode=True)
    RUN/run.json        written last: labels, versions, training summary, validation report

A folder without ``run.json`` is unfinished (interrupted, or still training): it can be resumed
with ``--resume`` but not used as a source or evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import TlcError
from ..tokenizer import Tokenizer
from .config import RunConfig

RUN_FORMAT = 1
RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
TOKENIZER_DIR = "tokenizer"
CHECKPOINT_DIR = "checkpoint"   # written by the trainer while a run is unfinished
PROGRESS_FILE = "progress.json"


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
        """The Keras model, loaded on first use with ``safe_mode=True``."""
        if self._model is None:
            from . import import_keras, layers

            keras = import_keras()
            del layers  # imported for its side effect: it registers the custom layers

            path = self.path / MODEL_FILE
            try:
                self._model = keras.saving.load_model(path, safe_mode=True)
            except (OSError, ValueError) as err:
                raise TlcError(f"cannot load the run's model: {err}", path=path,
                               hint="the run folder is damaged or incomplete; train it again "
                               "with --force") from None
        return self._model


def run_state(path: Path) -> str:
    """'missing', 'empty', 'complete' or 'unfinished'."""
    if not path.exists():
        return "missing"
    if not path.is_dir():
        raise TlcError("run path exists and is not a folder", path=path,
                       hint="choose another --out")
    if (path / RUN_FILE).is_file():
        return "complete"
    return "unfinished" if any(path.iterdir()) else "empty"


def load_run(path: str | Path, *, purpose: str = "use") -> Run:
    path = Path(path)
    state = run_state(path)
    if state == "missing":
        raise TlcError("run folder not found", path=path,
                       hint="give the --out folder of a finished `tlc train`")
    if state != "complete":
        raise TlcError(f"run is not finished (no {RUN_FILE}), so it cannot be used to {purpose}",
                       path=path,
                       hint="finish it with `tlc train ... --resume`, or train it again with "
                       "--force")
    info_path = path / RUN_FILE
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TlcError(f"run metadata is unreadable: {err}", path=info_path) from None
    if not isinstance(info, dict):
        raise TlcError("run metadata is not a JSON object", path=info_path,
                       hint="the run folder is damaged; train it again with --force")
    fmt = info.get("format")
    if fmt != RUN_FORMAT:
        raise TlcError(
            f"run format {fmt!r} (made by tlc {info.get('tlc_version', '?')}) is not the "
            f"format this tlc {__version__} reads ({RUN_FORMAT})",
            path=info_path,
            hint=f"use the tlc version that made it, or train the run again with tlc "
            f"{__version__}",
        )
    config = RunConfig.load(path / CONFIG_FILE)
    labels = info.get("labels")
    if not isinstance(labels, list) or len(labels) < 2:
        raise TlcError("run metadata has no label list", path=info_path)
    tokenizer = Tokenizer.load(path / TOKENIZER_DIR)
    return Run(path, config, [str(x) for x in labels], info, tokenizer)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
