"""How a run starts: the bundled base by default, and the recipe for its label count.

``tlc train`` and :class:`tlc.TextClassifier` both come here (one implementation), then go to
:func:`~tlc.train.pipeline.train`:

- **the start**: with no ``--init`` (and none of ``--init-vectors`` / ``--tokenizer``, which
  mean a from-scratch run) a run transfers from the bundled base :data:`DEFAULT_BASE`;
  ``--init none`` (``base=None``) trains from scratch with tlc's plain defaults;
- **the recipe** (:data:`~tlc.train.recipes.RECIPES`): a run that starts from a bundled base
  gets the settings the seed table found best for the number of labelled rows it trains on
  (its budget, or the data's labelled rows), applied before the user's ``--config`` and
  ``--set`` (which override it); ``--recipe NAME`` picks one by hand (for any transfer),
  ``--recipe none`` turns it off. A run folder of the user's as ``--init`` is their own
  experiment: its settings stay theirs unless ``--recipe`` says otherwise (the seed table's
  runs are such, and keep their meaning);
- **self-training first**, for recipes that call for it: when unlabelled target text is at
  hand (``--unlabelled``, ``fit(unlabelled=...)``, or the data set's own ``unsup`` split) and
  the labels are the base's, a first stage self-trains the base on it with no label
  (:data:`~tlc.train.recipes.SELF_TRAIN`, into ``RUN/stage-self``), and the run fine-tunes
  that stage's model on the labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import TlcError
from .config import RunConfig
from .memory import MemoryData
from .pipeline import Stage, assemble_config, choose_rows, load_texts
from .recipes import SELF_TRAIN, Recipe, assignments, recipe_for, recipe_named

DEFAULT_BASE = "reviews-en"
SCRATCH = "none"          # --init none: no base
AUTO = "auto"             # --recipe auto: by the label count (the default)
# The user's settings of these sections apply to the first stage too (what the text is, its
# grid, the network's sizes, how self-training picks its rows); training.* and transfer.*
# are the stage's own (SELF_TRAIN) and the fine-tuning's.
STAGE_SECTIONS = ("data", "tokenizer", "model", "self_training")
STAGE_OWN = ("data.labels", "data.valid_fraction", "self_training.unlabelled")  # (no label)


@dataclass
class Start:
    """What :func:`~tlc.train.pipeline.train` is called with."""

    config: RunConfig
    memory: MemoryData | None = None
    stage: Stage | None = None
    record: dict = field(default_factory=dict)   # run.json's "recipe"


def cli_init(init: str | None, *, scratch: bool) -> tuple[str | None, str | None]:
    """(the --init to use, a message): ``none`` is no base; nothing given starts from the
    bundled base unless ``scratch`` (--init-vectors or --tokenizer was given)."""
    if init == SCRATCH:
        return None, None
    if init is not None or scratch:
        return init, None
    return default_base("--init none"), (f"starting from the bundled base {DEFAULT_BASE}; "
                                         "--init none trains from scratch")


def default_base(scratch: str) -> str:
    """:data:`DEFAULT_BASE`, checked to be installed (``scratch``: how to do without it)."""
    from ..bases import bundled_bases

    if DEFAULT_BASE not in bundled_bases():
        raise TlcError(f"this tlc has no bundled base {DEFAULT_BASE} to start from",
                       hint=f"reinstall tlc, pass a source run to start from, or {scratch} "
                       "to train from scratch")
    return DEFAULT_BASE


def plan(*, direct: list[str], sets: list[str], init: str | None, recipe: str | None = AUTO,
         config_file: str | Path | None = None, init_vectors=None, data_dir=None,
         memory: MemoryData | None = None, init_option: str = "--init",
         recipe_option: str = "--recipe ", say=lambda message: None) -> Start:
    """The configuration (and first stage) of a run: ``direct``, the options' settings
    (data.train, data.labels, --seed, ...), then the recipe's, then ``sets`` (--set); a
    ``config_file`` is read first, and its keys override the recipe too."""
    def build(extra: list[str], user: list[str] = sets) -> RunConfig:
        return assemble_config(direct + extra + user, config_file=config_file, init=init,
                               init_vectors=init_vectors, data_dir=data_dir,
                               init_option=init_option)

    plain = build([])
    chosen = _which(recipe, init, recipe_option, say)
    if chosen is None:
        return Start(plain, memory)
    labels = _labels(plain, data_dir, memory)
    budget = plain.data.labels
    count = len(labels) if budget is None else min(budget, len(labels))
    r = recipe_for(count) if chosen == AUTO else recipe_named(chosen, option=recipe_option)
    given = _file_keys(config_file)
    kept = [a for a in r.settings if _key(a) not in given]
    config = build(kept)
    overridden = {_key(a): _value(config, _key(a)) for a in r.settings
                  if _value(config, _key(a)) != json.loads(a.partition("=")[2])}
    by = "for" if chosen == AUTO else f"({recipe_option}{r.name}) for"
    say(f"recipe '{r.name}' {by} {count:,} labels: {', '.join(r.settings)}"
        + {"first": "; self-training first", "only": "; self-training"}.get(r.self_train, "")
        + f" ({recipe_option}NAME|none to change it; --set overrides a setting)")
    if overridden:
        say("  overridden: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in overridden.items()))
    record = {"name": r.name, "labels": count, "chosen_by": "label count" if chosen == AUTO
              else recipe_option.strip(" ="), "settings": r.settings, "self_train": r.self_train,
              "measured": r.measured, "overridden": overridden}
    start = Start(config, memory, record={"recipe": record})
    if r.self_train:
        _self_training(start, r, labels, sets, build, data_dir, say, recipe_option)
    return start


def _which(recipe: str | None, init: str | None, option: str, say) -> str | None:
    """AUTO, a recipe's name, or None (no recipe) for this start."""
    if recipe is None or recipe == SCRATCH:
        return None
    if init is None:
        if recipe != AUTO:
            raise TlcError(f"{option}{recipe} sets how a transfer trains, and this run "
                           "trains from scratch",
                           hint=f"give a base to start from, or leave {option.strip(' =')} out (a "
                           "from-scratch run keeps tlc's defaults)")
        return None
    if recipe != AUTO:
        recipe_named(recipe, option=option)   # a wrong name is told before any reading
        return recipe
    from ..bases import resolve_base

    if resolve_base(init)[1] is None:
        say(f"no recipe: the run starts from a run folder of yours, so its settings are "
            f"yours ({option}NAME applies one)")
        return None
    return AUTO


def _labels(config: RunConfig, data_dir, memory: MemoryData | None) -> list[str]:
    """The labels of every labelled row the run may draw its budget from."""
    if memory is not None:
        return memory.labels
    from ..data.dataset import open_dataset, parse_source
    from .pipeline import SKIP_OPTION, _no_file

    d = config.data
    _no_file(d.train)
    name, split = parse_source(d.train)
    examples = open_dataset(name, data_dir, d.format).load(
        split or "train", text_column=d.text_column, label_column=d.label_column,
        on_bad_rows=d.on_bad_rows, skip_option=SKIP_OPTION)
    return list(examples.labels or [])


def _self_training(start: Start, r: Recipe, labels: list[str], sets: list[str], build,
                   data_dir, say, option: str) -> None:
    """Plan the recipe's self-training into ``start``: a first stage ("first") or the run's
    own unlabelled text ("only"), when the labels are the base's and text is at hand."""
    from ..bases import load_base

    config = start.config
    base, _ = load_base(config.transfer.init)
    if set(labels) != set(base.labels):
        say(f"no self-training: the labels ({', '.join(sorted(set(labels)))}) are not the "
            f"base's ({', '.join(base.labels)}), so the base cannot label text for them; the "
            "run trains a new head")
        start.record["recipe"]["self_training"] = "skipped: other labels than the base's"
        return
    specs, why = _unlabelled(config, start.memory, data_dir)
    if not specs and not (start.memory and start.memory.unlabelled):
        say(f"no self-training: no unlabelled text ({why})")
        start.record["recipe"]["self_training"] = f"skipped: no unlabelled text ({why})"
        return
    rows = (len(start.memory.unlabelled) if start.memory and start.memory.unlabelled
            else sum(1 for _ in load_texts(specs, config, data_dir)))
    where = ", ".join(specs) if specs else "the unlabelled texts given"
    say(f"self-training{' first' if r.self_train == 'first' else ''} on {where}, {rows:,} "
        f"unlabelled documents ({why}; --set self_training.KEY=VALUE changes it, "
        f"{option}none skips it)")
    start.record["recipe"]["self_training"] = {"unlabelled": specs or "given in memory",
                                               "rows": rows, "why": why}
    if r.self_train == "only":
        start.config = config.replace(self_training={"unlabelled": specs}) if specs else config
        return
    # Stage 1 trains on no label; its prior is the class shares of the labelled rows the
    # run fine-tunes on (an estimate from the target itself). The seed table's 0-label cell,
    # which has no label, assumes `balanced` instead (SELF_TRAIN).
    train_rows, _ = choose_rows(labels, config.replace(data={"valid_fraction": 0.0})
                                if start.memory is not None and start.memory.validation
                                else config, config.data.train)
    chosen = [labels[i] for i in train_rows]
    counts = {name: chosen.count(name) for name in base.labels}
    prior = []
    if all(counts.values()):
        shares = {k: round(n / len(chosen), 6) for k, n in counts.items()}
        prior = [f"self_training.prior={json.dumps(shares)}"]
    else:   # a class without a labelled row has no share to give: SELF_TRAIN's assumption
        say("  (the labelled rows lack a class, so the first stage assumes balanced classes)")
    mine = [a for a in sets if _key(a).partition(".")[0] in STAGE_SECTIONS
            and _key(a) not in STAGE_OWN]
    stage = build([*assignments(SELF_TRAIN), *prior, "data.labels=0",
                   f"self_training.unlabelled={json.dumps(specs)}"], user=mine)
    start.stage = Stage(stage, start.memory)
    start.config = config.replace(self_training={"unlabelled": []})
    if start.memory is not None:
        start.memory = replace(start.memory, unlabelled=[])


def _unlabelled(config: RunConfig, memory: MemoryData | None, data_dir
                ) -> tuple[list[str], str]:
    """(the unlabelled text specs, where they come from, or why there are none)."""
    if config.self_training.unlabelled:
        return list(config.self_training.unlabelled), "--unlabelled"
    if memory is not None:
        return [], ("fit(..., unlabelled=texts)" if memory.unlabelled
                    else "none given: fit(..., unlabelled=texts) gives some")
    from ..data.dataset import open_dataset, parse_source

    name, _ = parse_source(config.data.train)
    try:
        ds = open_dataset(name, data_dir, config.data.format)
    except TlcError:
        ds = None
    if ds is not None and "unsup" in ds.files:
        return [f"{name}:unsup"], "the data set's own unlabelled split"
    return [], f"{name} has no unsup split; --unlabelled NAME:SPLIT gives some"


def _key(assignment: str) -> str:
    return assignment.partition("=")[0].strip()


def _value(config: RunConfig, key: str):
    section, _, name = key.partition(".")
    return config.to_dict()[section][name]


def _file_keys(config_file: str | Path | None) -> set[str]:
    """The section.key settings a --config file holds (they override the recipe)."""
    if config_file is None:
        return set()
    try:
        data = json.loads(Path(config_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()      # (assemble_config has reported it already)
    data = data.get("config", data) if isinstance(data, dict) else {}
    return {f"{s}.{k}" for s, values in data.items() if isinstance(values, dict)
            for k in values}
