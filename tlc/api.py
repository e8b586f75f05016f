"""``tlc.TextClassifier``: train, score, evaluate, save and export from Python, on lists.

In the scikit-learn manner: the constructor only stores its arguments; :meth:`fit` trains
and returns the object; what fitting learnt is in attributes ending in ``_`` (``run_``,
``classes_``, ``validation_``), set only by :meth:`fit` and :meth:`load`. Each step calls
what the command line calls, so the two cannot drift apart: :func:`tlc.train.pipeline.train`
(``tlc train``; the rows come from memory instead of a file), :func:`tlc.train.evaluate.
evaluate_rows` (``tlc evaluate``), :func:`tlc.export.exporter.export` (``tlc export``, guard
included).

Where the run lives: :meth:`fit` trains into a temporary folder that the object owns,
removed when the object is garbage-collected or the interpreter exits; :meth:`save` copies
it to a folder of the user's as an ordinary run folder, which ``tlc evaluate``, ``tlc
export`` and :meth:`load` read. Importing this module does not import TensorFlow; fit,
predict and export do, on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, NotFittedError, TlcError

_PARAMS = ("base", "recipe", "settings", "seed", "quiet")
# The constructor's defaults (repr leaves them out). The default base is tlc train's: the
# bundled base, with the recipe for the label count (tlc/train/start.py); base=None trains
# from scratch with tlc's plain defaults.
_DEFAULTS = {"base": "reviews-en", "recipe": "auto", "quiet": False}
# Settings that mean a from-scratch run (as --init-vectors and --tokenizer do for tlc train).
_SCRATCH_ONLY = ("transfer.init_vectors", "transfer.tokenizer")
# Settings fit decides itself: the rows are its arguments and the source run is `base`.
_RESERVED = {"data.train": "the training rows are fit's arguments: fit(texts, labels)",
             "transfer.init": "give the source run as TextClassifier(base=...)",
             "self_training.unlabelled": "give unlabelled text as fit(..., unlabelled=texts)"}


class TextClassifier:
    """A document CNN text classifier trained on lists of texts and labels.

    ``base``: the name of a base bundled with tlc (default: ``"reviews-en"``), a finished
    run folder to transfer from (its tokenizer, embeddings and convolutions, and its head
    when the labels match), or None to train from scratch. ``recipe``: for a bundled base,
    ``"auto"`` takes the seed table's best settings for the number of labels (``tlc train
    --recipe``; with ``fit(unlabelled=...)`` small budgets self-train the base first); a
    recipe's name picks one, None or ``"none"`` keeps tlc's plain defaults. ``settings``:
    any setting ``tlc train --set`` takes, as a dict of the same dotted keys, e.g.
    ``{"training.epochs": 3, "data.labels": 100}``; they override the recipe's. ``seed``:
    training.seed (the label budget, validation split and initial weights). ``quiet``: no
    progress output.

    >>> clf = TextClassifier(settings={"training.epochs": 3}).fit(texts, labels)
    >>> clf.predict(["A wonderful film."])
    array(['pos'], dtype='<U3')
    """

    def __init__(self, base: str | os.PathLike[str] | None = _DEFAULTS["base"], *,
                 recipe: str | None = _DEFAULTS["recipe"],
                 settings: dict[str, Any] | None = None, seed: int | None = None,
                 quiet: bool = False) -> None:
        self.base = base
        self.recipe = recipe
        self.settings = settings
        self.seed = seed
        self.quiet = quiet

    # -- parameters ------------------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> TextClassifier:
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise TlcError(f"TextClassifier has no parameter {', '.join(map(repr, unknown))}",
                           hint=f"its parameters are {', '.join(_PARAMS)}; training settings "
                           "go in settings={'section.key': value}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        given = [f"{name}={getattr(self, name)!r}" for name in _PARAMS
                 if getattr(self, name) != _DEFAULTS.get(name)]
        return f"TextClassifier({', '.join(given)})"

    # -- training --------------------------------------------------------------------------

    def fit(self, texts, labels, *, unlabelled=None, validation=None) -> TextClassifier:
        """Train on ``texts`` (strings) and their ``labels`` (class names, strings).

        ``validation``: a pair (texts, labels) to validate on (early stopping and the
        ``validation_`` report) instead of a share of the training rows
        (``data.valid_fraction``). ``unlabelled``: texts the ``base`` run labels for
        self-training (needs a base). Returns self."""
        from .train.memory import memory_data
        from .train.pipeline import train

        config = self._config()     # (settings are checked before the rows)
        data = memory_data(texts, labels, validation=validation, unlabelled=unlabelled,
                           on_bad_rows=config.data.on_bad_rows)
        start = self._config(data)
        folder = Path(tempfile.mkdtemp(prefix="tlc-fit-"))
        cleanup = weakref.finalize(self, shutil.rmtree, str(folder), ignore_errors=True)
        try:
            run = train(start.config, folder / "run", memory=start.memory, quiet=self.quiet,
                        stage=start.stage, record=start.record)
        except BaseException:
            cleanup()
            raise
        previous = getattr(self, "_cleanup", None)
        if previous is not None:
            previous()          # the run of an earlier fit: replaced, so removed now
        self._cleanup = cleanup
        self._learn(run)
        return self

    def _config(self, data=None):
        """The configuration fit trains with (its recipe's settings included); given the
        rows (``data``), the whole :class:`~tlc.train.start.Start`: the recipe needs the
        label count, and self-training the unlabelled text."""
        from .train import start

        settings = {} if self.settings is None else self.settings
        if not isinstance(settings, dict):
            raise TlcError(f"settings must be a dict, got {type(settings).__name__}",
                           hint="pass settings={'training.epochs': 3} (the keys of "
                           "`tlc train --set`)")
        assignments = []
        init_vectors = None
        for key, value in settings.items():
            if not isinstance(key, str) or key.count(".") != 1:
                raise TlcError(f"settings key {key!r} is not section.key",
                               hint="write keys as `tlc train --set` does, e.g. "
                               "{'training.epochs': 3, 'tokenizer.max_sentences': 24}")
            if key in _RESERVED:
                raise TlcError(f"settings may not hold {key!r}", hint=_RESERVED[key])
            if key in _SCRATCH_ONLY and value is not None and self.base is not None:
                raise TlcError(f"settings[{key!r}] is for a run trained from scratch, and "
                               f"base={self.base!r} starts from a base"
                               + (" (the default)" if self.base == _DEFAULTS["base"] else ""),
                               hint="pass base=None to train from scratch with it, or leave "
                               "it out to transfer")
            if key == "transfer.init_vectors" and value is not None:
                init_vectors = value    # a path or a fetched GloVe file's name, as --init-vectors
                continue
            assignments.append(f"{key}={json.dumps(value, default=_plain)}")
        if self.seed is not None:
            if "training.seed" in settings and settings["training.seed"] != self.seed:
                raise TlcError(f"seed={self.seed!r} and settings['training.seed']="
                               f"{settings['training.seed']!r} disagree",
                               hint="give the seed once")
        direct = [] if self.seed is None else [f"training.seed={json.dumps(self.seed)}"]
        init = None if self.base is None else os.fspath(self.base)
        say = (lambda message: None) if self.quiet else (
            lambda message: print(message, file=sys.stderr, flush=True))
        if data is None:     # the settings alone, checked (no recipe: it needs the rows)
            return start.plan(direct=direct, sets=assignments, init=init, recipe=None,
                              init_vectors=init_vectors, init_option="base").config
        if init == _DEFAULTS["base"]:
            say(f"starting from the bundled base {init}; base=None trains from scratch")
        return start.plan(direct=direct, sets=assignments, init=init, recipe=self.recipe,
                          init_vectors=init_vectors, memory=data, init_option="base",
                          recipe_option="recipe=", say=say)

    def _learn(self, run) -> None:
        self.run_ = run
        self.classes_ = np.asarray(run.labels)
        self.validation_ = run.info.get("validation")

    def _fitted(self):
        run = self.__dict__.get("run_")
        if run is None:
            raise NotFittedError("this TextClassifier is not fitted yet",
                                 hint="call fit(texts, labels) first, or get a trained one "
                                 "with TextClassifier.load(RUN_FOLDER)")
        return run

    # -- scoring ---------------------------------------------------------------------------

    def predict_proba(self, texts) -> np.ndarray:
        """float32 (len(texts), len(classes_)): column j is the probability of classes_[j]."""
        from .train.evaluate import predict_proba
        from .train.memory import as_list, kind

        run = self._fitted()
        items = as_list(texts, "texts")
        for i, text in enumerate(items):
            if not isinstance(text, str):
                # (an empty text is scored, as the exported file scores it)
                raise DataError(f"texts[{i}] is {kind(text)}, not a string",
                                hint="every text must be a str: convert it ([str(t) for t "
                                "in texts]) if it is meant as text, or drop it")
        if not items:
            return np.zeros((0, len(run.labels)), dtype=np.float32)
        return predict_proba(run, items)

    def predict(self, texts) -> np.ndarray:
        """The likeliest class of each text (an array of class names, input order)."""
        proba = self.predict_proba(texts)   # (checks first that the object is fitted)
        return self.classes_[proba.argmax(axis=1)]

    def evaluate(self, texts, labels) -> dict[str, Any]:
        """The report ``tlc evaluate`` writes (accuracy, macro-F1, per class, confusion
        matrix, ROC-AUC for two classes), on these rows."""
        from .train.evaluate import evaluate_rows
        from .train.memory import MEMORY_PREFIX, labelled

        run = self._fitted()
        texts, labels = labelled(texts, labels, "", skip=False)
        if not texts:
            raise TlcError("no rows to evaluate on: texts is empty",
                           hint="pass labelled texts: evaluate(texts, labels)")
        return evaluate_rows(run, texts, labels, data=f"{MEMORY_PREFIX}{len(texts):,} rows>")

    def score(self, texts, labels) -> float:
        """Accuracy on these rows (scikit-learn's ``score``)."""
        return float(self.evaluate(texts, labels)["accuracy"])

    # -- files -----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Copy the run to ``path`` as an ordinary run folder (``tlc evaluate PATH DATA``,
        ``tlc export PATH``, :meth:`load`). ``path`` must be new or empty; ``force``
        replaces a run there (only the files tlc writes: refused when it holds others).
        Returns the folder."""
        from .ownership import OutputLock, entry_name, listing
        from .train.run import RUN_ENTRIES, foreign_entries, remove_run, run_state

        run = self._fitted()
        path = Path(path)
        if path.exists() and path.resolve() == run.path.resolve():
            return path         # loaded from there: already saved
        path.parent.mkdir(parents=True, exist_ok=True)
        with OutputLock(path, "TextClassifier.save", "this run folder",
                        hint="wait for it to finish, or save to another folder"):
            state = run_state(path)
            if state == "file":
                raise TlcError("is a file, not a folder", path=path,
                               hint="save to a new or empty folder")
            if state == "other":
                held = listing(entry_name(p) for p in path.iterdir())
                raise TlcError(f"holds no tlc run ({held}), so nothing is written into it",
                               path=path, hint="save to a new or empty folder")
            if state in ("complete", "unfinished"):
                foreign = foreign_entries(path)
                if not force:
                    raise TlcError("a run is already here", path=path,
                                   hint="pass force=True to replace it, or save to another "
                                   "folder")
                if foreign:
                    raise TlcError(f"force refused: besides a tlc run, this folder holds "
                                   f"{listing(foreign)}, which tlc did not write (nothing "
                                   "was deleted)", path=path,
                                   hint="move those out, or save to another folder")
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                # the run's own entries only: a loaded folder may hold the user's files too
                shutil.copytree(run.path, tmp, ignore=lambda folder, names: [
                    n for n in names if Path(folder) == run.path and n not in RUN_ENTRIES])
                if state in ("complete", "unfinished"):
                    remove_run(path)
                if path.exists():
                    path.rmdir()    # empty now; the finished copy takes its name at once
                os.replace(tmp, path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, quiet: bool = False) -> TextClassifier:
        """A fitted TextClassifier from a finished run folder (``save``'s or ``tlc
        train``'s). The folder stays the user's: it is read, never removed. Its parameters
        are those that would train the same configuration again."""
        from .train.run import load_run

        run = load_run(path, purpose="load")
        init = run.info.get("init") or {}
        # (a run fine-tuned from its first stage names the base the stage started from)
        recipe = (run.info.get("recipe") or {}).get("name")
        clf = cls(base=init.get("base") or init.get("run"), settings=_settings_of(run.config),
                  recipe=recipe or None, seed=run.config.training.seed, quiet=quiet)
        clf._learn(run)
        return clf

    def export(self, path: str | os.PathLike[str], quantize: bool = False,
               **options: Any) -> dict[str, Any]:
        """Write one ONNX file (tokenizer inside) with ``tlc export``'s exporter and guard;
        ``options`` are its keywords (``force``, ``explain``, ``ratio``, ``int8_rows``,
        ``min_agreement``, ``validation_data``, ...). Returns the export report; score the
        file with :class:`tlc.runtime.Classifier`."""
        import tlc.export  # noqa: F401  (import order: onnxruntime's extensions first)

        from .export.exporter import export

        run = self._fitted()
        say = options.pop("say", None) or (
            (lambda message: None) if self.quiet
            else (lambda message: print(message, file=sys.stderr, flush=True)))
        return export(run.path, path, quantize=quantize, say=say, **options)


def _plain(value: Any) -> Any:
    """A settings value json cannot write: a numpy scalar as its number, a path as text."""
    return value.item() if isinstance(value, np.generic) else os.fspath(value) if isinstance(
        value, os.PathLike) else str(value)


def _settings_of(config) -> dict[str, Any]:
    """The dotted settings in which ``config`` differs from the defaults, less those
    :class:`TextClassifier` takes elsewhere (the rows, the base, the seed)."""
    from .train.config import RunConfig

    default = RunConfig().to_dict()
    found = {}
    for section, values in config.to_dict().items():
        for key, value in values.items():
            name = f"{section}.{key}"
            if name not in _RESERVED and name != "training.seed" and (
                    value != default[section].get(key)):
                found[name] = value
    return found
