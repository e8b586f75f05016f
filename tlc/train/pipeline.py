"""``tlc train`` end to end: data -> tokenizer -> grids -> model (+ transfer) -> fit -> run folder.

The steps run in the project's one direction of data flow; each is a small function so the
seed-table benchmark and the tests can drive them without the command line. The training data
comes from the file ``data.train`` names (``tlc train --data``) or, from the Python API
(:class:`tlc.TextClassifier`), as lists in memory (:mod:`.memory`); both go through
:func:`train`, and differ only in where the rows are read.
"""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.budget import stratified_subset, validation_split
from ..data.dataset import iter_texts, open_dataset, parse_source
from ..data.labels import LabelSet
from ..errors import DataError, TlcError
from ..ownership import OutputLock, entry_name, listing
from ..tokenizer import Tokenizer
from . import seed_everything
from .config import RunConfig
from .memory import MemoryData, is_memory_source, write_held_out
from .run import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    MODEL_FILE,
    RUN_FILE,
    RUN_FORMAT,
    STAGE_DIR,
    TOKENIZER_DIR,
    Run,
    foreign_entries,
    load_run,
    mark_run,
    remove_run,
    run_state,
    write_json,
)

# `tlc train` has no --on-bad-rows option: every setting goes through --set.
SKIP_OPTION = "--set data.on_bad_rows=skip"


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


@dataclass
class Stage:
    """A first stage trained into ``RUN/stage-self`` before the run itself, which then starts
    from it (a recipe's self-training; :mod:`.start` plans it): its settings and, from the
    Python API, its rows in memory (the unlabelled text among them)."""

    config: RunConfig
    memory: MemoryData | None = None


@dataclass
class Split:
    texts: list[str]
    labels: list[str]


def _no_file(train: str) -> None:
    if not train:
        raise TlcError("no training data given", hint="pass --data NAME or PATH")
    if is_memory_source(train):
        raise TlcError(f"data.train is {train}: this configuration's run was trained on texts "
                       "given in memory (the Python API), so there is no file to read",
                       hint="pass --data NAME or PATH, or train from Python with "
                       "TextClassifier.fit(texts, labels)")


def load_training_split(config: RunConfig, data_dir) -> Split:
    d = config.data
    _no_file(d.train)
    name, split = parse_source(d.train)
    ds = open_dataset(name, data_dir, d.format)
    examples = ds.load(split or "train", text_column=d.text_column,
                       label_column=d.label_column, on_bad_rows=d.on_bad_rows,
                       skip_option=SKIP_OPTION)
    if examples.skipped:
        print(examples.skipped_summary(), file=sys.stderr)
    if examples.labels is None:
        raise DataError(f"split {split!r} has no labels", path=ds.path(split or "train"),
                        hint="train on a labelled split; unlabelled text goes to "
                        "--unlabelled (self-training) or data.tokenizer_text")
    return Split(examples.texts, examples.labels)


def load_texts(specs: list[str], config: RunConfig, data_dir) -> list[str]:
    """Unlabelled text from NAME:SPLIT specs (a name alone means its 'unsup' split if it has
    one, else 'train'); labels, if the file has them, are ignored; test splits are refused."""
    return list(iter_texts(specs, data_dir, text_column=config.data.text_column,
                           on_bad_rows=config.data.on_bad_rows, allow_test=False,
                           skip_option=SKIP_OPTION,
                           default_splits=lambda ds: ["unsup" if "unsup" in ds.files
                                                      else "train"]))


def choose_rows(labels: list[str], config: RunConfig, source: str) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """(train rows, validation rows) after the label budget; validation comes from the budget."""
    d, seed = config.data, config.training.seed
    rows = np.arange(len(labels))
    if d.labels is not None:
        if d.labels > len(labels):
            raise DataError(f"a budget of {d.labels:,} labels is larger than the "
                            f"{len(labels):,} labelled rows", path=source,
                            hint=f"use --labels {len(labels)} or fewer (or leave it out for all)")
        if d.labels == 0:
            return rows[:0], rows[:0]
        rows = stratified_subset(labels, count=d.labels, seed=seed, source=source)
    if d.valid_fraction == 0:
        return rows, rows[:0]
    budget = [labels[i] for i in rows]
    train, valid = validation_split(budget, fraction=d.valid_fraction, seed=seed, source=source)
    return rows[train], rows[valid]


def training_rows(config: RunConfig, data_dir, memory: MemoryData | None
                  ) -> tuple[Split, np.ndarray, np.ndarray]:
    """(every labelled row, training rows, validation rows): read from data.train, or the
    rows given in memory. A validation set given in memory is appended after the training
    rows and takes the place of the split carved from the budget."""
    if memory is None:
        split = load_training_split(config, data_dir)
        return split, *choose_rows(split.labels, config, config.data.train)
    if memory.skipped:
        parts = ", ".join(f"{n} {why}" for why, n in memory.skipped.most_common())
        print(f"skipped {sum(memory.skipped.values()):,} bad items ({parts})", file=sys.stderr)
    source = config.data.train
    if memory.validation is None:
        return Split(memory.texts, memory.labels), *choose_rows(memory.labels, config, source)
    train_rows, _ = choose_rows(memory.labels, config.replace(data={"valid_fraction": 0.0}),
                                source)
    texts, labels = memory.validation
    n = len(memory.texts)
    return (Split(memory.texts + texts, memory.labels + labels), train_rows,
            np.arange(n, n + len(texts)))


def assemble_config(assignments: list[str], *, config_file: str | Path | None = None,
                    init: str | None = None, init_vectors: str | Path | None = None,
                    data_dir=None, init_option: str = "--init") -> RunConfig:
    """The configuration `tlc train` and ``TextClassifier.fit`` train with: a file's
    settings (or the defaults); for a transfer (``init``: a run folder or a bundled base's
    name) the source's vocabulary and grid, unless a file says otherwise; ``init_vectors``
    (a path, or a fetched GloVe file's name); then ``assignments`` (``section.key=value``)
    in order. Word vectors set model.embedding_dim to their width unless an assignment
    sets it. ``init_option`` names where ``init`` came from, for the messages."""
    config = RunConfig.load(config_file) if config_file else RunConfig()
    direct: list[str] = []
    if init is not None:
        if config_file is None:
            from ..bases import load_base

            source, _ = load_base(init, option=init_option)
            config = config.replace(tokenizer=source.config.tokenizer.to_dict())
        direct.append(f"transfer.init={json.dumps(str(init))}")
    if init_vectors is not None:
        from .vectors import vectors_file

        init_vectors = vectors_file(init_vectors, data_dir)
        direct.append(f"transfer.init_vectors={json.dumps(str(init_vectors))}")
    config = config.override(direct + list(assignments))
    if init_vectors is not None and not any(a.strip().startswith("model.embedding_dim=")
                                            for a in assignments):
        from .vectors import vector_dim

        config = config.replace(model={"embedding_dim": vector_dim(init_vectors)})
    return config


def prepare_tokenizer(config: RunConfig, source: Run | None, texts: list[str], data_dir,
                      quiet: bool) -> Tokenizer:
    """The source's vocabulary when transferring (no word goes missing between domains), a
    given one (transfer.tokenizer), or a new one; the grid size is always this run's."""
    grid = config.tokenizer
    if source is not None:
        base = source.tokenizer
    elif config.transfer.tokenizer:
        path = Path(config.transfer.tokenizer)
        base = Tokenizer.load(path / TOKENIZER_DIR if (path / TOKENIZER_DIR).is_dir() else path)
    else:
        extra = load_texts(config.data.tokenizer_text, config, data_dir)
        _say(f"training a {grid.vocab_size:,}-piece tokenizer on {len(texts) + len(extra):,} "
             "documents", quiet)
        return Tokenizer.train(texts + extra, grid, progress=not quiet)
    merged = {**base.config.to_dict(), "max_sentences": grid.max_sentences,
              "max_tokens": grid.max_tokens}
    return Tokenizer(base.model_proto, type(grid).from_dict(merged))


def check_sources(config: RunConfig, data_dir, memory: MemoryData | None = None) -> None:
    """Every data set the run will read exists, with the split it names: a mistyped --data
    or --unlabelled is reported before anything is written or TensorFlow starts (``memory``:
    the training rows were given in memory, so data.train names no file)."""
    d = config.data
    if memory is None:
        _no_file(d.train)
        name, split = parse_source(d.train)
        open_dataset(name, data_dir, d.format).path(split or "train")
    for spec in [*config.self_training.unlabelled, *d.tokenizer_text]:
        name, split = parse_source(spec)
        ds = open_dataset(name, data_dir)
        if split is not None:
            ds.path(split)


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prepare_out(out: Path, *, force: bool, resume: bool) -> bool:
    """Returns True when resuming a checkpoint. Never overwrites a finished run silently, and
    never deletes or writes into what is not a tlc run (see :mod:`.run`): --force removes
    only what tlc wrote, and refuses, naming them, when other entries are there."""
    state = run_state(out)
    if state == "file":
        raise TlcError("--out is a file, not a folder", path=out,
                       hint="give --out a new or empty folder (it is created), or a run folder")
    if state == "other":
        raise TlcError(f"--out holds no tlc run, so tlc train will not write into it (it "
                       f"holds {listing(entry_name(p) for p in out.iterdir())})", path=out,
                       hint="choose a new or empty folder for --out; --force deletes only "
                       "a run's own files, never a folder that is not a run")
    foreign = foreign_entries(out) if state in ("complete", "unfinished") else []
    resumable = (out / CHECKPOINT_DIR / "progress.json").is_file()
    if state == "unfinished" and resume and (resumable or stage_kept(out)):
        mark_run(out)
        return resumable   # (a first stage alone: the run starts anew from it)
    if force and foreign:
        raise TlcError(f"--force refused: besides a tlc run, this folder holds "
                       f"{listing(foreign)}, which tlc did not write (nothing was deleted)",
                       path=out, hint="move those out of the folder, or choose another --out")
    again = "" if foreign else "pass --force to train it again (the old run is deleted), or "
    blocked = (f" (--force would be refused: the folder also holds {listing(foreign)}, which "
               "tlc did not write)" if foreign else "")
    if state == "complete":
        if not force:
            raise TlcError("a finished run is already here", path=out,
                           hint=f"{again}choose another --out{blocked}")
        remove_run(out)
    elif state == "unfinished":
        if not force:
            if resumable or stage_kept(out):
                hint = ("pass --resume to continue it from its last epoch (a finished first "
                        f"stage, {STAGE_DIR}, is reused), or "
                        + (f"choose another --out{blocked}" if foreign
                           else "--force to start over"))
            else:  # stopped before its first epoch ended: nothing to resume
                hint = ("" if foreign else "pass --force to start over, or ") \
                    + f"choose another --out{blocked}"
            raise TlcError("an unfinished run is here (interrupted?)", path=out, hint=hint)
        remove_run(out)
    elif resume:
        raise TlcError("nothing to resume: no interrupted run here", path=out,
                       hint="leave out --resume to start a new run")
    out.mkdir(parents=True, exist_ok=True)
    mark_run(out)
    return False


def stage_kept(out: Path) -> bool:
    """Whether ``out`` holds a first stage worth keeping: finished, or resumable."""
    stage = out / STAGE_DIR
    return (stage / RUN_FILE).is_file() or (stage / CHECKPOINT_DIR / "progress.json").is_file()


def train(config: RunConfig, out: str | Path, *, memory: MemoryData | None = None,
          data_dir=None, force: bool = False, resume: bool = False, quiet: bool = False,
          devices: int | None = None, stage: Stage | None = None,
          record: dict | None = None) -> Run:
    """Train a run into ``out`` and return it. Settings errors are found before anything is
    written; a failure before the first checkpoint leaves nothing of this run behind. The
    run folder is locked (``.NAME.lock`` beside it) from before it is touched to the end: a
    second ``tlc train`` into it is refused at once. ``devices``: how many local accelerators
    to train on under JAX (None: all; see :mod:`.distribute`).

    ``memory``: the training rows (and any validation rows and unlabelled text) given in
    memory instead of the file data.train names; data.train then records them as
    ``<memory: N rows>``, and the run keeps its held-out text for the export guard.

    ``stage``: a first stage, trained into ``out/stage-self`` (a finished one there is
    reused by --resume) from ``config``'s source; the run then starts from it. ``record``:
    entries added to run.json (the recipe that chose the settings)."""
    out = Path(out)
    started = time.perf_counter()
    if memory is not None:
        if config.data.train and not is_memory_source(config.data.train):
            raise TlcError(f"data.train names a file ({config.data.train}), but the training "
                           "rows were given in memory", hint="give the rows one way: drop "
                           "data.train from the settings, or train on the file")
        config = config.replace(data={"train": memory.describe()})
    source, base_name = None, None
    if config.transfer.init:
        from ..bases import load_base

        source, base_name = load_base(config.transfer.init, option="--init")
    if source is not None:
        from .model import inherit_model

        config = config.replace(
            model=inherit_model(config.model, source.config.model).to_dict())
    st = config.self_training
    unlabelled = bool(st.unlabelled or (memory is not None and memory.unlabelled))
    if unlabelled and source is None:
        raise TlcError("self-training needs a source run to label the unlabelled text",
                       hint="pass --init RUN together with --unlabelled")
    if config.data.labels == 0 and not unlabelled:
        raise DataError("nothing to train on: the label budget is 0 and no unlabelled text was "
                        "given", path=config.data.train,
                        hint="evaluate the source run directly (`tlc evaluate SOURCE DATA`), "
                        "or pass --unlabelled NAME:SPLIT to self-train on pseudo-labels")
    check_sources(config, data_dir, memory)
    if stage is not None:
        check_sources(stage.config, data_dir, stage.memory)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # the lock file goes beside the run
    except OSError as err:
        raise TlcError(f"cannot create the folder for --out: {err.strerror or err}",
                       path=out.parent, hint="choose another --out") from None
    with OutputLock(out, "tlc train", "this run folder",
                    hint="wait for it to finish, or choose another --out"):
        created = not out.exists()
        resuming = prepare_out(out, force=force, resume=resume)
        try:
            if stage is not None:
                source, stage_info = _first_stage(stage, out, resume=resume, data_dir=data_dir,
                                                  quiet=quiet, devices=devices)
                config = config.replace(transfer={"init": str(source.path)})
                record = {**(record or {}), "stage_self": stage_info}
            return _train(config, out, source, resuming, data_dir=data_dir, quiet=quiet,
                          started=started, devices=devices, memory=memory,
                          base_name=base_name, record=record)
        except BaseException as err:
            # A run that failed before its first checkpoint has nothing worth resuming:
            # remove what it wrote (and the folder, if this run made it and nothing else is
            # in it), so the corrected command is not refused as "unfinished run here".
            if not (out / CHECKPOINT_DIR / "progress.json").is_file() and not stage_kept(out):
                if not resuming and out.is_dir() and not (out / RUN_FILE).is_file():
                    remove_run(out)
                    if created:
                        with contextlib.suppress(OSError):
                            out.rmdir()  # only when empty
            elif isinstance(err, KeyboardInterrupt):
                _say(f"interrupted; the finished epochs are saved in {out / CHECKPOINT_DIR}: "
                     "run the same command with --resume to continue", False)
            raise


def _first_stage(stage: Stage, out: Path, *, resume: bool, data_dir, quiet: bool,
                 devices: int | None) -> tuple[Run, dict]:
    """The finished first stage in ``out/stage-self``: trained now, resumed (--resume), or,
    when a finished one is there (only --resume keeps one), reused as it is. Returns the
    run and what run.json records of it."""
    folder = out / STAGE_DIR
    if (folder / RUN_FILE).is_file():
        _say(f"first stage: the finished run in {folder} is reused (its settings are those "
             "in its config.json)", quiet)
        run = load_run(folder)
    else:
        again = resume and (folder / CHECKPOINT_DIR / "progress.json").is_file()
        _say(f"first stage -> {folder}" + (" (resumed)" if again else ""), quiet)
        run = train(stage.config, folder, memory=stage.memory, data_dir=data_dir,
                    force=not again, resume=again, quiet=quiet, devices=devices)
        _say("first stage finished; the run starts from it", quiet)
    st = run.info.get("self_training") or {}
    return run, {"run": STAGE_DIR, "from": run.config.transfer.init,
                 "unlabelled": list(run.config.self_training.unlabelled),
                 "unlabelled_rows": st.get("unlabelled_rows"),
                 "pseudo_labelled_rows": run.info["data"]["pseudo_labelled_rows"],
                 "prior_mode": st.get("prior_mode"), "target_prior": st.get("target_prior"),
                 "seconds": run.info["training"]["seconds"]}


def _train(config: RunConfig, out: Path, source: Run | None, resuming: bool, *, data_dir,
           quiet: bool, started: float, devices: int | None = None,
           memory: MemoryData | None = None, base_name: str | None = None,
           record: dict | None = None) -> Run:
    from . import import_keras
    from .distribute import place

    keras = import_keras()  # TensorFlow's start-up: only once the arguments are checked

    if resuming:
        saved = RunConfig.load(out / CONFIG_FILE)
        if saved != config:
            _say("resuming with the configuration saved in the run (command-line settings "
                 "that differ are ignored)", quiet)
        config = saved
    placement = place(devices, config.training.batch_size)
    with placement.scope():  # models built or loaded here live on every device
        return _train_placed(config, out, source, resuming, data_dir=data_dir, quiet=quiet,
                             started=started, keras=keras, placement=placement,
                             memory=memory, base_name=base_name, record=record)


def _train_placed(config: RunConfig, out: Path, source: Run | None, resuming: bool, *,
                  data_dir, quiet: bool, started: float, keras, placement,
                  memory: MemoryData | None = None, base_name: str | None = None,
                  record: dict | None = None) -> Run:
    from .model import build_model
    from .trainer import Trainer, TrainingData
    from .transfer import (
        calibrated_prior,
        plan_self_training,
        prior_offset,
        shift_output,
        training_prior,
        transfer_weights,
    )
    from .vectors import embedding_from_vectors, load_vectors

    # -- data ------------------------------------------------------------------------------
    split, train_rows, valid_rows = training_rows(config, data_dir, memory)
    source_name = config.data.train
    if source is not None:
        labels = LabelSet(tuple(source.labels))
        target = LabelSet.from_labels(split.labels, source=source_name)
        same = set(target.names) == set(labels.names)
        head = config.transfer.head
        if head == "reuse" and not same:
            raise TlcError(
                f"the target's labels ({', '.join(target.names)}) differ from the source run's "
                f"({', '.join(labels.names)}), so its head cannot be reused",
                path=source_name, hint="use --set transfer.head=new (or auto) to train a new head")
        reuse_head = same and head != "new"
        if not reuse_head:
            labels = target
    else:
        labels = LabelSet.from_labels(split.labels, source=source_name)
        reuse_head = False
    y_all = labels.encode(split.labels, source=source_name)
    if len(np.unique(y_all[train_rows])) < 2 and len(train_rows):
        raise DataError("the training rows hold fewer than 2 classes", path=source_name,
                        hint="a classifier needs examples of at least two labels")

    # -- tokenizer + grids -------------------------------------------------------------------
    if resuming:
        tokenizer = Tokenizer.load(out / TOKENIZER_DIR)
    else:
        # The vocabulary may learn from the text of every training row, labelled within the
        # budget or not (no label is read), but not from the validation rows.
        text_rows = np.setdiff1d(np.arange(len(split.texts)), valid_rows)
        tokenizer = prepare_tokenizer(config, source, [split.texts[i] for i in text_rows],
                                      data_dir, quiet)
        # What the run really used: a reused tokenizer brings its own vocabulary settings.
        config = config.replace(tokenizer=tokenizer.config.to_dict())
        config.save(out / CONFIG_FILE)
        tokenizer.save(out / TOKENIZER_DIR)
    grid = config.tokenizer
    _say(f"encoding {len(train_rows) + len(valid_rows):,} documents into "
         f"{grid.max_sentences} x {grid.max_tokens} grids", quiet)
    train_x = tokenizer.encode_grid([split.texts[i] for i in train_rows])
    valid_x = tokenizer.encode_grid([split.texts[i] for i in valid_rows])
    train_y, valid_y = y_all[train_rows], y_all[valid_rows]
    train_w = np.ones(len(train_rows), dtype=np.float32)

    # -- self-training: the source labels unlabelled target text --------------------------
    st = config.self_training
    n_pseudo = 0
    plan = source_valid = grids = None
    given = memory.unlabelled if memory is not None else []
    if st.unlabelled or given:
        if not reuse_head:
            raise TlcError("self-training needs the source to predict the target's labels, "
                           "but the label sets differ", hint="leave out --unlabelled")
        texts = load_texts(st.unlabelled, config, data_dir) + given
        _say(f"self-training: the source run labels {len(texts):,} unlabelled documents", quiet)
        grids = tokenizer.encode_grid(texts)
        # The teacher is the source network on this run's grid (the grid may differ from
        # the source's; the weights do not depend on it).
        teacher = build_model(config.model, vocab_size=tokenizer.vocab_size,
                              sentences=grid.max_sentences, tokens=grid.max_tokens,
                              n_classes=len(labels), seed=config.training.seed)
        transfer_weights(teacher, source.model, reuse_head=True)
        proba = placement.predict(teacher, grids)
        # the source as is on the labelled validation rows: what self-training must beat
        source_valid = placement.predict(teacher, valid_x) if len(valid_y) else None
        del teacher
        prior_of_source, known_by = calibrated_prior(source)
        plan = plan_self_training(proba, st.prior, st.fraction, prior_of_source,
                                  np.bincount(train_y, minlength=len(labels)),
                                  list(labels.names))
        plan.record["source_prior_from"] = known_by
        _say(_describe_plan(plan.record), quiet)
        rows, pseudo = plan.rows, plan.labels
        n_pseudo = len(rows)
        train_x = np.concatenate([train_x, grids[rows]])
        train_y = np.concatenate([train_y, pseudo])
        train_w = np.concatenate([train_w, np.full(len(rows), st.weight, dtype=np.float32)])
    if len(train_y) == 0:
        raise DataError("nothing to train on: the label budget is 0 and no unlabelled text was "
                        "given", path=source_name,
                        hint="evaluate the source run directly (`tlc evaluate SOURCE DATA`), "
                        "or pass --unlabelled NAME:SPLIT to self-train on pseudo-labels")

    # -- model ---------------------------------------------------------------------------
    trainer = Trainer(config.training, config.transfer if source else None, len(labels), out,
                      progress_bar=not quiet, placement=placement)
    if resuming:
        model, progress = trainer.load_checkpoint()
        _say(f"resuming after epoch {progress.epochs_done}", quiet)
    else:
        seed_everything(keras, config.training.seed)
        model = build_model(config.model, vocab_size=tokenizer.vocab_size,
                            sentences=grid.max_sentences, tokens=grid.max_tokens,
                            n_classes=len(labels), seed=config.training.seed)
        progress = None
        if source is not None:
            copied = transfer_weights(model, source.model, reuse_head=reuse_head)
            _say(f"from {source.path}: {', '.join(copied)}", quiet)
        elif config.transfer.init_vectors:
            emb = model.get_layer("embedding")
            pieces = tokenizer.pieces
            wanted = {p[1:] for p in pieces if p.startswith("\u2581")}
            wanted |= {w.lower() for w in wanted}
            vectors, _dim = load_vectors(config.transfer.init_vectors, wanted)
            matrix, hits = embedding_from_vectors(pieces, vectors, emb.get_weights()[0])
            emb.set_weights([matrix])
            _say(f"{hits:,} of {len(pieces):,} pieces start from "
                 f"{Path(config.transfer.init_vectors).name}", quiet)
    _say(f"training on {len(train_y):,} documents ({n_pseudo:,} pseudo-labelled), "
         f"validating on {len(valid_y):,}", quiet)
    _say(placement.describe(), quiet)
    progress = trainer.fit(model, TrainingData(train_x, train_y, train_w),
                           TrainingData(valid_x, valid_y) if len(valid_y) else None, progress)

    # -- calibration: the class prior the outputs answer to ------------------------------
    calibration = {"prior": [float(p) for p in training_prior(
        train_y, train_w, config.training.balance, len(labels))],
        "by": f"training rows, training.balance={config.training.balance}"}
    if plan is not None and plan.prior is not None:
        # Training kept its class balancing (the model learns to separate the classes, not
        # the prior); the target prior enters once, here, as an offset of the head's logits
        # that makes the model's mean posterior on the unlabelled text equal to it. (The
        # offset from the training prior alone, log(prior / calibrated), assumes a model
        # calibrated on that text, which one trained on its surest rows is not.)
        offset, steps = prior_offset(placement.predict(model, grids), plan.prior)
        shift_output(model, offset)
        plan.record["output_offset"] = [round(float(v), 6) for v in offset]
        plan.record["offset_iterations"] = steps
        calibration = {"prior": [float(p) for p in plan.prior],
                       "by": f"self_training.prior={st.prior}"}
    if source_valid is not None:
        plan.record["keep_source_if_worse"] = st.keep_source_if_worse
        calibration = _keep_the_better(model, source, valid_x, valid_y, source_valid,
                                       calibration, plan.record, placement, quiet,
                                       keep=st.keep_source_if_worse)

    # -- validation report + the finished run ------------------------------------------------
    from .metrics import classification_report

    validation = None
    if len(valid_y):
        proba = placement.predict(model, valid_x)
        validation = classification_report(valid_y, proba, list(labels.names))
    model.save(out / MODEL_FILE)
    data_info = {"train": source_name, "train_rows": int(len(train_rows)),
                 "valid_rows": int(len(valid_rows)), "pseudo_labelled_rows": n_pseudo}
    if memory is not None:
        data_info.update(memory.record())
        write_held_out(out, split.texts, split.labels, train_rows, given)
    init_info = None
    if source is not None:
        init_info = {"run": str(source.path), "tokenizer_sha256": source.tokenizer.sha256,
                     "head": "reused" if reuse_head else "new"}
        if base_name is not None:
            init_info["base"] = base_name
    info = {
        "format": RUN_FORMAT,
        "tlc_version": __version__,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "labels": list(labels.names),
        "data": data_info,
        "init": init_info,
        "tokenizer_sha256": tokenizer.sha256,
        "training": {**progress.to_dict(), "seconds": time.perf_counter() - started,
                     "peak_memory_mb": peak_memory_mb()},
        "distribution": placement.to_dict(),
        "validation": validation,
        "calibration": calibration,
        "self_training": plan.record if plan is not None else None,
        **(record or {}),
    }
    write_json(out / RUN_FILE, info)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    run = load_run(out)
    if placement.distribution is None:
        run._model = model  # (a model spread over devices is loaded again, on one, when used)
    return run


def _describe_plan(record: dict) -> str:
    def pct(shares: dict) -> str:
        return ", ".join(f"{name} {100 * v:.1f}%" for name, v in shares.items())

    counts = ", ".join(f"{name} {n:,}" for name, n in record["pseudo_labels"].items())
    if record["prior_mode"] == "balanced":
        how = "equal counts per class (self_training.prior=balanced)"
    elif record["prior_mode"] == "labels":
        how = f"the labelled rows' class shares: {pct(record['target_prior'])}"
    elif record["prior_mode"] == "given":
        how = f"the class shares given (self_training.prior): {pct(record['target_prior'])}"
    else:
        known = record["labelled_rows_in_estimate"]
        how = (f"target prior estimated by EM: {pct(record['target_prior'])} (source "
               f"calibrated to {pct(record['source_prior'])}; {record['em_iterations']} "
               f"iterations{'' if record['em_converged'] else ', not converged'}"
               + (f"; {known:,} labelled rows joined the estimate" if known else "") + ")")
    return f"self-training: {how}; pseudo-labels: {counts}"


def _keep_the_better(model, source: Run, valid_x, valid_y, source_valid, calibration,
                     record: dict, placement, quiet: bool, *, keep: bool) -> dict:
    """Self-training must not end below the source as is: on the labelled validation rows,
    the self-trained model against the source; with ``keep``, a lower score restores the
    source's weights (and its calibration). Returns the calibration that holds."""
    from .transfer import calibrated_prior, transfer_weights

    student = float((placement.predict(model, valid_x).argmax(1) == valid_y).mean())
    before = float((source_valid.argmax(1) == valid_y).mean())
    record["valid_accuracy"] = {"source": before, "self_trained": student,
                                "rows": int(len(valid_y))}
    record["kept"] = "self-trained"
    if student < before:
        if not keep:
            _say(f"self-training: {100 * student:.2f}% on the {len(valid_y):,} validation "
                 f"rows, below the source's {100 * before:.2f}% "
                 "(self_training.keep_source_if_worse=false: kept)", quiet)
            return calibration
        transfer_weights(model, source.model, reuse_head=True)
        record["kept"] = "source"
        prior, by = calibrated_prior(source)
        _say(f"self-training: {100 * student:.2f}% on the {len(valid_y):,} validation rows, "
             f"below the source as is ({100 * before:.2f}%): the run keeps the source's "
             "weights", quiet)
        return {"prior": [float(p) for p in prior], "by": f"the source run ({by})"}
    return calibration
