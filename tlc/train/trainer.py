"""The epoch loop: class balance, gradual unfreezing, early stopping, checkpoints, resume.

Keras' ``fit`` runs one epoch at a time; around it this loop owns what ``fit`` does not keep
across an interruption. After every epoch it writes ``checkpoint/last.keras`` (weights and
optimizer state), ``checkpoint/best-weights.npz`` when validation improved, and
``checkpoint/progress.json`` last, so a crash between files never claims progress that is not
on disk. ``resume=True`` continues from there.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TlcError
from . import import_keras
from .config import TrainingConfig, TransferConfig
from .distribute import Placement
from .metrics import balanced_accuracy
from .run import CHECKPOINT_DIR, PROGRESS_FILE

keras = import_keras()
LAST_MODEL = "last.keras"
BEST_WEIGHTS = "best-weights.npz"


@dataclass
class TrainingData:
    """Grids and integer labels; ``weights`` are per-row loss weights (pseudo-labels < 1)."""

    x: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Progress:
    epochs_done: int = 0
    best_score: float | None = None
    best_epoch: int = 0
    wait: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    docs_per_second: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def epoch_rows(y: np.ndarray, config: TrainingConfig, epoch: int, n_classes: int) -> np.ndarray:
    """The rows (in order) one epoch trains on; depends only on (seed, epoch), so a resumed
    run sees the same rows as an uninterrupted one."""
    rng = np.random.default_rng([config.seed, epoch, 0x7C])
    if config.balance == "undersample":
        present = [c for c in range(n_classes) if (y == c).any()]
        per_class = min(int((y == c).sum()) for c in present)
        rows = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                               for c in present])
    else:
        rows = np.arange(len(y))
    if config.min_rows_per_epoch > len(rows) > 0:
        repeats = -(-config.min_rows_per_epoch // len(rows))
        return np.concatenate([rng.permutation(rows) for _ in range(repeats)])
    rows = rng.permutation(rows)
    if config.max_rows_per_epoch and len(rows) > config.max_rows_per_epoch:
        rows = rows[: config.max_rows_per_epoch]
    return rows


def frozen_layers(transfer: TransferConfig | None, epoch: int) -> set[str]:
    if transfer is None or transfer.init is None:
        return set()
    if transfer.freeze_epochs == -1 or epoch < transfer.freeze_epochs:
        return set(transfer.freeze)
    return set()


def learning_rate(training: TrainingConfig, transfer: TransferConfig | None, epoch: int) -> float:
    if (transfer is not None and transfer.init is not None and not frozen_layers(transfer, epoch)
            and transfer.unfrozen_learning_rate is not None):
        return transfer.unfrozen_learning_rate
    return training.learning_rate


def compile_model(model, rate: float, frozen: set[str]) -> None:
    names = {layer.name for layer in model.layers}
    unknown = sorted(frozen - names)
    if unknown:
        raise TlcError(f"transfer.freeze names unknown layer(s): {', '.join(unknown)}",
                       hint=f"layers with weights: {', '.join(_weight_layers(model))}")
    for layer in model.layers:
        layer.trainable = layer.name not in frozen
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy",
                  weighted_metrics=[])


def _weight_layers(model) -> list[str]:
    return [layer.name for layer in model.layers if layer.weights]


class Trainer:
    """Trains ``model`` in place; the model ends holding the best validation epoch's weights."""

    def __init__(self, training: TrainingConfig, transfer: TransferConfig | None,
                 n_classes: int, workdir: str | Path, progress_bar: bool = True,
                 placement: Placement | None = None) -> None:
        self.training = training
        self.transfer = transfer
        self.n_classes = n_classes
        self.dir = Path(workdir) / CHECKPOINT_DIR
        self.progress_bar = progress_bar
        # The devices (see .distribute); the model must be built or loaded in its scope.
        self.placement = placement or Placement(keras.backend.backend(), 1, None, 1,
                                                training.batch_size, training.batch_size)

    # -- checkpoint files -------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return (self.dir / PROGRESS_FILE).is_file()

    def load_checkpoint(self):
        from . import layers  # noqa: F401  (registers the custom layers for loading)

        path = self.dir / PROGRESS_FILE
        try:
            progress = Progress(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as err:
            raise TlcError(f"checkpoint progress is unreadable: {err}", path=path,
                           hint="start the run again with --force") from None
        model = keras.saving.load_model(self.dir / LAST_MODEL, safe_mode=True)
        return model, progress

    def _save_checkpoint(self, model, progress: Progress, improved: bool) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic(self.dir / LAST_MODEL, lambda p: model.save(p))
        if improved:
            # Plain arrays, not save_weights: that also stores the optimizer, whose variable
            # count changes when layers unfreeze, and Keras warns on every such restore.
            _atomic(self.dir / BEST_WEIGHTS, lambda p: _save_arrays(p, model.get_weights()))
        _atomic(self.dir / PROGRESS_FILE, lambda p: Path(p).write_text(
            json.dumps(progress.to_dict(), indent=2), encoding="utf-8"))

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, model, train: TrainingData, valid: TrainingData | None,
            progress: Progress | None = None) -> Progress:
        cfg = self.training
        progress = progress or Progress()
        weights_by_class = (class_weights(train.y, self.n_classes) if cfg.balance == "weight"
                            else np.ones(self.n_classes))
        compiled_for: tuple[float, frozenset[str]] | None = None
        if progress.epochs_done:  # resumed: the loaded model is compiled as it was saved
            e = progress.epochs_done
            compiled_for = (learning_rate(cfg, self.transfer, e - 1),
                            frozenset(frozen_layers(self.transfer, e - 1)))
        train_seconds = 0.0
        train_rows = 0
        for epoch in range(progress.epochs_done, cfg.epochs):
            if valid is not None and progress.wait >= cfg.patience > 0:
                break  # a resumed run that had already stopped early
            want = (learning_rate(cfg, self.transfer, epoch),
                    frozenset(frozen_layers(self.transfer, epoch)))
            if want != compiled_for:
                compile_model(model, want[0], set(want[1]))
                compiled_for = want
            rows = self.placement.epoch_rows(epoch_rows(train.y, cfg, epoch, self.n_classes))
            sample_weight = weights_by_class[train.y[rows]]
            if train.weights is not None:
                sample_weight = sample_weight * train.weights[rows]
            start = time.perf_counter()
            history = model.fit(
                train.x[rows], train.y[rows], sample_weight=sample_weight.astype("float32"),
                batch_size=cfg.batch_size, epochs=1, shuffle=False, verbose=0,
                callbacks=[_ProgressBar(epoch, cfg.epochs, len(rows), cfg.batch_size)]
                if self.progress_bar else [],
            )
            train_seconds += time.perf_counter() - start
            train_rows += len(rows)
            record: dict[str, Any] = {
                "epoch": epoch + 1, "loss": float(history.history["loss"][-1]),
                "rows": int(len(rows)), "learning_rate": want[0], "frozen": sorted(want[1]),
            }
            improved = True
            if valid is not None and len(valid):
                proba = self.placement.predict(model, valid.x)
                score = balanced_accuracy(valid.y, proba.argmax(axis=1), self.n_classes)
                record["valid_balanced_accuracy"] = score
                record["valid_accuracy"] = float((proba.argmax(1) == valid.y).mean())
                improved = progress.best_score is None or score > progress.best_score
            if improved:
                progress.best_score = record.get("valid_balanced_accuracy")
                progress.best_epoch = epoch + 1
                progress.wait = 0
            else:
                progress.wait += 1
            progress.epochs_done = epoch + 1
            progress.history.append(record)
            progress.docs_per_second = train_rows / train_seconds if train_seconds else None
            _print_epoch(record, improved, self.progress_bar)
            self._save_checkpoint(model, progress, improved)
            if valid is not None and progress.wait >= cfg.patience > 0:
                break
        best = self.dir / BEST_WEIGHTS
        if valid is not None and best.is_file():
            with np.load(best) as arrays:  # early stopping: restore the best epoch
                model.set_weights([arrays[f"w{i}"] for i in range(len(arrays.files))])
        return progress


def _print_epoch(record: dict[str, Any], improved: bool, verbose: bool) -> None:
    if not verbose:
        return
    parts = [f"epoch {record['epoch']}", f"loss {record['loss']:.4f}"]
    if "valid_balanced_accuracy" in record:
        parts.append(f"valid balanced acc {100 * record['valid_balanced_accuracy']:.2f}%"
                     + (" (best)" if improved else ""))
    if record["frozen"]:
        parts.append(f"frozen: {', '.join(record['frozen'])}")
    print("  " + ", ".join(parts), flush=True)


def _save_arrays(path: str, arrays: list[np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **{f"w{i}": a for i, a in enumerate(arrays)})


def _atomic(path: Path, write) -> None:
    # Keras picks the format from the suffix, so the temporary name keeps it.
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    write(str(tmp))
    os.replace(tmp, path)


class _ProgressBar(keras.callbacks.Callback):
    """A tqdm bar over batches with documents/second (Keras' own bar prints to stdout)."""

    def __init__(self, epoch: int, epochs: int, rows: int, batch_size: int) -> None:
        super().__init__()
        self.desc, self.rows, self.batch_size = f"epoch {epoch + 1}/{epochs}", rows, batch_size

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        # disable=None: a bar on a terminal, nothing in logs (epoch lines suffice).
        self.bar = tqdm(total=self.rows, desc=self.desc, unit="doc", leave=False,
                        dynamic_ncols=True, disable=None)
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None):
        step = max(0, min(self.rows, (batch + 1) * self.batch_size) - self.seen)
        self.seen += step
        self.bar.update(step)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_train_end(self, logs=None):
        self.bar.close()
