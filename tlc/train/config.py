"""One configuration object holding every setting of a training run (spaCy-style).

It is saved as ``config.json`` in the run, can be read from a file (``--config``), and any key
can be overridden on the command line with ``--set section.key=value``. Sections:

- ``data``: what to train on and how to carve the label budget and validation split;
- ``tokenizer``: the sentencepiece vocabulary and the sentences x tokens grid;
- ``model``: every size of the network (:class:`~tlc.train.model.ModelConfig`);
- ``training``: optimisation, class balance, early stopping, seed;
- ``transfer``: what comes from a source run and what stays frozen for how long;
- ``self_training``: pseudo-labels on unlabelled target text from the source model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import TlcError
from ..tokenizer import TokenizerConfig
from .checks import as_list, check_int, check_number
from .model import BODY_LAYERS, HEAD_LAYERS, ModelConfig

BALANCE_MODES = ("weight", "undersample", "none")
HEAD_MODES = ("auto", "new", "reuse")


@dataclass(frozen=True)
class DataConfig:
    train: str = ""
    # Label budget: use at most this many labelled rows (stratified, seeded, nested); None = all.
    labels: int | None = None
    valid_fraction: float = 0.1
    # Extra text (no labels) the tokenizer also learns from, e.g. the target's unlabelled split.
    tokenizer_text: list[str] = field(default_factory=list)
    text_column: str = "text"
    label_column: str = "label"
    format: str | None = None
    on_bad_rows: str = "error"

    def __post_init__(self) -> None:
        if self.labels is not None:
            check_int("data", "labels", self.labels, 0)
        check_number("data", "valid_fraction", self.valid_fraction, 0.0, 1.0)
        object.__setattr__(self, "tokenizer_text",
                           as_list(self.tokenizer_text, "data", "tokenizer_text"))
        if self.on_bad_rows not in ("error", "skip"):
            raise TlcError(f"data.on_bad_rows must be 'error' or 'skip', got {self.on_bad_rows!r}")


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 1e-3
    # Stop when validation balanced accuracy has not improved for this many epochs (0 = never),
    # and restore the best epoch's weights.
    patience: int = 3
    # 'weight' scales each class's loss by N / (C * count); 'undersample' draws a fresh
    # class-balanced subset every epoch (faster on a skewed source); 'none' trains as is.
    balance: str = "weight"
    # Every epoch sees at most this many rows (0 = all); keeps epochs short on a big source.
    max_rows_per_epoch: int = 0
    # ...and at least this many (tiny budgets repeat their rows), so that 80 labelled reviews
    # get enough optimiser steps between two validation checks.
    min_rows_per_epoch: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            check_int("training", name, getattr(self, name), 1)
        for name in ("patience", "max_rows_per_epoch", "min_rows_per_epoch", "seed"):
            check_int("training", name, getattr(self, name), 0)
        check_number("training", "learning_rate", self.learning_rate, 0.0, 10.0)
        if self.learning_rate == 0:
            raise TlcError("training.learning_rate must be positive")
        if self.balance not in BALANCE_MODES:
            raise TlcError(f"training.balance must be one of {', '.join(BALANCE_MODES)}, "
                           f"got {self.balance!r}")


@dataclass(frozen=True)
class TransferConfig:
    # A finished run whose tokenizer, embeddings and convolution filters this run starts from.
    init: str | None = None
    # 'auto' reuses the source's head when the label sets are equal, else starts a new one.
    head: str = "auto"
    # Layers kept frozen for the first `freeze_epochs` epochs, then trained
    # (-1 = frozen for the whole run). Gradual unfreezing protects what the source learned
    # from the large, noisy gradients of a fresh head.
    freeze: list[str] = field(default_factory=lambda: ["embedding"])
    freeze_epochs: int = 1
    # Learning rate once everything trains (None = training.learning_rate).
    unfrozen_learning_rate: float | None = None
    # Word vectors (GloVe/word2vec text) seeding the embedding of a run without --init.
    init_vectors: str | None = None
    # Reuse this tokenizer (a run folder or a `tlc tokenizer train` folder) instead of
    # training one; runs that share it can be compared, and it saves the training time.
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        if self.head not in HEAD_MODES:
            raise TlcError(f"transfer.head must be one of {', '.join(HEAD_MODES)}, "
                           f"got {self.head!r}")
        object.__setattr__(self, "freeze", as_list(self.freeze, "transfer", "freeze"))
        unknown = sorted(set(self.freeze) - set(BODY_LAYERS + HEAD_LAYERS))
        if unknown:
            raise TlcError(f"transfer.freeze names unknown layer(s): {', '.join(unknown)}",
                           hint=f"layers with weights: {', '.join(BODY_LAYERS + HEAD_LAYERS)}")
        check_int("transfer", "freeze_epochs", self.freeze_epochs, -1)
        if self.unfrozen_learning_rate is not None:
            check_number("transfer", "unfrozen_learning_rate", self.unfrozen_learning_rate,
                         1e-12, 10.0)


PRIOR_MODES = ("em", "labels", "balanced")


@dataclass(frozen=True)
class SelfTrainingConfig:
    # Unlabelled target text (e.g. 'imdb:unsup') that the source model labels; the most
    # confident predictions join training, each class's count in proportion to `prior`.
    unlabelled: list[str] = field(default_factory=list)
    fraction: float = 0.5
    # Loss weight of a pseudo-labelled row relative to a real label.
    weight: float = 1.0
    # The target's class prior, which sets how many pseudo-labels each class gets and which
    # the finished model's outputs are calibrated to (see docs/self-training.md):
    # 'em' estimates it from the source's predictions on the unlabelled text (Saerens et al.
    # 2002; labelled rows, if any, join the estimate), 'labels' takes the labelled training
    # rows' class shares, 'balanced' assumes equal classes (equal counts, no calibration:
    # what self-training did before this setting existed); or the shares themselves, by
    # label ({"0": 0.5, "1": 0.5}): how `tlc train`'s first stage, which trains on no label,
    # takes the class shares of the labelled rows the run fine-tunes on.
    prior: str | dict[str, float] = "em"
    # With labelled validation rows: keep the source's weights as they are when the
    # self-trained model scores lower on them than the source does.
    keep_source_if_worse: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "unlabelled",
                           as_list(self.unlabelled, "self_training", "unlabelled"))
        check_number("self_training", "fraction", self.fraction, 1e-9, 1.0, high_open=False)
        check_number("self_training", "weight", self.weight, 1e-9, 1e9)
        if isinstance(self.prior, dict):
            _check_shares(self.prior)
        elif self.prior not in PRIOR_MODES:
            raise TlcError(f"self_training.prior must be one of {', '.join(PRIOR_MODES)} or "
                           f"the class shares by label, got {self.prior!r}",
                           hint='e.g. --set self_training.prior=balanced, or '
                           '--set \'self_training.prior={"0": 0.3, "1": 0.7}\'')
        if not isinstance(self.keep_source_if_worse, bool):
            raise TlcError("self_training.keep_source_if_worse must be true or false, got "
                           f"{self.keep_source_if_worse!r}")


def _check_shares(shares: dict) -> None:
    import math

    bad = [k for k, v in shares.items() if isinstance(v, bool) or not isinstance(v, int | float)
           or not math.isfinite(v) or v <= 0]
    if len(shares) < 2 or bad:
        raise TlcError(f"self_training.prior as shares needs a positive number for each of at "
                       f"least two labels, got {shares!r}",
                       hint='e.g. --set \'self_training.prior={"0": 0.3, "1": 0.7}\'')


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "tokenizer": TokenizerConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "transfer": TransferConfig,
    "self_training": SelfTrainingConfig,
}


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        return {name: _section_dict(getattr(self, name)) for name in SECTIONS}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str | Path | None = None) -> RunConfig:
        if not isinstance(data, dict):
            raise TlcError("a run configuration must be a JSON object", path=path)
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise TlcError(f"unknown configuration section(s): {', '.join(unknown)}", path=path,
                           hint=f"sections are: {', '.join(SECTIONS)}")
        sections = {}
        for name, kind in SECTIONS.items():
            values = data.get(name, {})
            if not isinstance(values, dict):
                raise TlcError(f"configuration section '{name}' must be an object", path=path)
            sections[name] = _section(kind, name, values, path)
        return cls(**sections)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TlcError("configuration file not found", path=path) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TlcError(f"configuration is not valid JSON: {err}", path=path) from None
        return cls.from_dict(data.get("config", data) if isinstance(data, dict) else data,
                             path=path)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def override(self, assignments: list[str]) -> RunConfig:
        """Apply ``section.key=value`` assignments; values are JSON (``3``, ``true``,
        ``["a"]``, ``null``) or else taken as a plain string."""
        data = self.to_dict()
        for item in assignments:
            key, sep, raw = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise TlcError(f"cannot read override {item!r}",
                               hint="write --set section.key=value, e.g. --set training.epochs=3")
            if section not in data:
                raise TlcError(f"unknown configuration section {section!r} in {item!r}",
                               hint=f"sections are: {', '.join(SECTIONS)}")
            if name not in data[section]:
                raise TlcError(f"unknown setting {key!r}",
                               hint=f"{section} has: {', '.join(data[section])}")
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            data[section][name] = value
        return RunConfig.from_dict(data)

    def replace(self, **sections: Any) -> RunConfig:
        """A copy with some sections' fields changed: ``replace(training={'epochs': 3})``."""
        changed = {name: replace(getattr(self, name), **values)
                   for name, values in sections.items()}
        return replace(self, **changed)


def _section_dict(section: Any) -> dict[str, Any]:
    return section.to_dict() if hasattr(section, "to_dict") else asdict(section)


def _section(kind: type, name: str, values: dict[str, Any], path: str | Path | None):
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TlcError(f"unknown setting(s) in '{name}': {', '.join(unknown)}", path=path,
                       hint=f"'{name}' has: {', '.join(sorted(known))}")
    try:
        return kind(**values)
    except TlcError as err:
        raise TlcError(err.message, path=path, hint=err.hint) from None
    except (TypeError, ValueError) as err:
        raise TlcError(f"bad value in '{name}': {err}", path=path) from None
