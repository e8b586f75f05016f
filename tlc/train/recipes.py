"""The project's training recipes, defined once: the seed table (``benchmarks/seed_table.py``)
trains its source run and its transfers with them, ``tlc base build`` trains the bundled bases
with them, and ``tlc train`` / ``TextClassifier`` start from a bundled base with the recipe the
table found best for the run's label count (:data:`RECIPES`, :func:`recipe_for`), so the
shipped defaults and the table's runs cannot drift apart.

Each recipe is the ``tlc train`` arguments it adds, as the command line takes them (the
seed table passes them to ``tlc train`` as they are and records them in command.json);
:func:`assignments` turns them into the ``section.key=value`` list that
:func:`~tlc.train.pipeline.assemble_config` takes, for in-process training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import TlcError

# The network: every run that builds one (the source, the seed table's scratch runs) gets
# these settings, and transfers inherit the source's. Chosen on validation (amazon's 10,241
# validation rows, then IMDB's 2,500 at 25,000 labels; the runs are in docs/model.md): max
# pooling over 64 word filters (for the speed issue; k = 2 over 128 was the old network) and
# the wide part, 2^17 hashed piece pairs, scale 300, half its pieces dropped while training.
MODEL: list[str] = ["--set", "model.word_k=1", "--set", "model.word_filters=64",
                    "--set", "model.wide_buckets=131072", "--set", "model.wide_scale=300",
                    "--set", "model.wide_dropout=0.5"]
GRID = ["--set", "tokenizer.max_sentences=24", "--set", "tokenizer.max_tokens=48"]
# The source: the `amazon` reviews (--data), balanced by undersampling, 5 epochs, the
# tokenizer also reading the 50k unlabelled IMDB reviews, embeddings from GLOVE (--init-vectors).
SOURCE = [*MODEL, *GRID, "--set", "training.balance=undersample", "--set", "training.epochs=5",
          "--set", "data.tokenizer_text=[\"imdb:unsup\"]"]
SOURCE_DATA = "amazon"
# The word vectors the source starts from, relative to the data folder.
GLOVE = "glove/glove.6B.50d.txt.gz"

# ---------------------------------------------------------------------------- by label budget
# The seed table's settings (its transfer and scratch runs pass these lists to `tlc train` as
# they are: a change here retrains its cells).
#
# Self-training the source on the target's unlabelled text, no label: the table's 0-label
# cell, and the first stage of a small-budget transfer. Its class prior is an assumption,
# not an estimate: IMDB is built balanced (Maas et al. 2011), and EM's estimate from the
# Amazon model, which leans negative on movie reviews (a domain shift, not a label shift),
# was 67.6% negative and the cell fell to 78.24% (docs/self-training.md). With labels (ROUND2,
# and `tlc train`'s own first stage) their own shares are the prior.
SELF_TRAIN = ["--set", "self_training.fraction=0.6", "--set", "training.epochs=2",
              "--set", "transfer.freeze=[]", "--set", "training.learning_rate=0.0005",
              "--set", "self_training.prior=balanced"]
# Settings by label budget. Small budgets repeat their rows to 2,000 per epoch (enough steps
# between validation checks), with up to 15 epochs and patience 4; 25k labels get up to 8
# epochs and stop after 2 without improvement.
SMALL = ["--set", "training.min_rows_per_epoch=2000", "--set", "training.batch_size=32",
         "--set", "training.epochs=15", "--set", "training.patience=4"]
BUDGET = {
    100: [*SMALL, "--set", "data.valid_fraction=0.2"],
    1250: [*SMALL, "--set", "data.valid_fraction=0.1"],
    25000: ["--set", "data.valid_fraction=0.1", "--set", "training.epochs=8",
            "--set", "training.patience=2"],
}
# How a transfer trains: the embedding frozen at a small learning rate (the old small-budget
# recipe), everything trainable at 1e-3 (the wide network's; seed 0 at 1,250 labels:
# validation 88.03% vs 85.64% frozen at 1e-4, test 86.73% vs 84.73%;
# benchmarks/results/model_search.json), and 25k labels training everything at 3e-4.
TRANSFER_SMALL = ["--set", "transfer.freeze=[\"embedding\"]", "--set", "transfer.freeze_epochs=-1",
                  "--set", "training.learning_rate=0.0001"]
TRANSFER_SMALL_ALL = ["--set", "transfer.freeze=[]", "--set", "training.learning_rate=0.001"]
TRANSFER_LARGE = ["--set", "transfer.freeze=[]", "--set", "training.learning_rate=0.0003"]
# The same at 1e-3: the wide part may want a larger step (seed 0 at 25,000 labels: validation
# 91.28% vs 90.60% at 3e-4); the seed table chose it on validation (its "source+lr1e-3").
# These are TRANSFER_SMALL_ALL's settings (everything trainable at 1e-3), named for the budget.
TRANSFER_LARGE_FAST = TRANSFER_SMALL_ALL
# A second round of self-training, with the fine-tuned model as the teacher and the labels'
# own shares as the prior.
ROUND2 = ["--unlabelled", "imdb:unsup", "--set", "self_training.fraction=0.5",
          "--set", "self_training.prior=labels",
          "--set", "training.epochs=3", "--set", "training.patience=0",
          "--set", "transfer.freeze=[]", "--set", "training.learning_rate=0.0003"]


# ---------------------------------------------------------------------------- the defaults
@dataclass(frozen=True)
class Recipe:
    """What a transfer from a bundled base trains with, for one range of label counts:
    its settings (``--set`` pairs) and how it self-trains on the target's unlabelled text:
    ``"first"``: a first stage self-trains the base (:data:`SELF_TRAIN`, no label), and the
    run fine-tunes that stage's model on the labels with ``args``; ``"only"``: the run itself
    is the self-training (no label to fine-tune on); ``""``: none."""

    name: str
    up_to: int | None          # the largest label count it is the default for (None: any)
    args: list[str]
    self_train: str
    measured: str              # where the seed table measured it, for the record

    @property
    def settings(self) -> list[str]:
        return assignments(self.args)


def _between(low: int, high: int) -> int:
    """The boundary between two measured budgets: their geometric mean (budgets are
    compared by ratio, and a label count is as far, in ratio, from either), rounded down."""
    return math.isqrt(low * high)


# The seed table's validation-chosen winners on IMDB from the Amazon source (its START and
# ROUND2 choices; see benchmarks/results/seed_table.json): at 100 and 1,250 labels the start
# self-trained on the unlabelled reviews, then everything trainable at 1e-3 ("self+all-
# lr1e-3"; a second round was not chosen at either: at 1,250 it lowered every seed's
# validation accuracy and was undone); at 25,000 the source as is, everything at 1e-3
# ("source+lr1e-3", 91.28% on validation vs 90.60% at 3e-4). Each is the default for the
# label counts nearer (in ratio) to its budget than to a neighbour's: "few" up to
# sqrt(100 x 1,250) = 353, "some" up to sqrt(1,250 x 25,000) = 5,590, "many" above. 0 labels
# is the table's 0-label cell: stage 1 alone.
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("zero", 0, list(SELF_TRAIN), "only", "seed table, 0 labels: the self-trained source"),
    Recipe("few", _between(100, 1250), [*TRANSFER_SMALL_ALL, *BUDGET[100]], "first",
           "seed table, 100 labels: self+all-lr1e-3"),
    Recipe("some", _between(1250, 25000), [*TRANSFER_SMALL_ALL, *BUDGET[1250]], "first",
           "seed table, 1,250 labels: self+all-lr1e-3"),
    Recipe("many", None, [*TRANSFER_LARGE_FAST, *BUDGET[25000]], "",
           "seed table, 25,000 labels: source+lr1e-3"),
)}


def recipe_for(labels: int) -> Recipe:
    """The default recipe for a run that trains on ``labels`` labelled rows (its budget,
    validation rows included, as the seed table's budgets count them)."""
    for recipe in RECIPES.values():
        if recipe.up_to is None or labels <= recipe.up_to:
            return recipe
    raise AssertionError("the last recipe takes any label count")


def recipe_named(name: str, *, option: str = "--recipe ") -> Recipe:
    if name not in RECIPES:
        raise TlcError(f"{option}{name!r} is not a recipe (recipes: {', '.join(RECIPES)})",
                       hint=f"use one of {', '.join(RECIPES)}, 'auto' (by the label count) "
                       "or 'none' (tlc's plain defaults)")
    return RECIPES[name]


def assignments(args: list[str]) -> list[str]:
    """The ``section.key=value`` settings of a recipe's ``--set`` arguments, in order."""
    if len(args) % 2 or any(flag != "--set" for flag in args[::2]):
        raise TlcError(f"a recipe holds only --set pairs, got {args!r}",
                       hint="give every other option (--data, --init-vectors) separately")
    return list(args[1::2])
