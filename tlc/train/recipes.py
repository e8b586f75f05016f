"""The project's training recipes, defined once: the seed table (``benchmarks/seed_table.py``)
trains its source run with them, and ``tlc base build`` trains the bundled bases with them,
so the shipped base and the table's source cannot drift apart.

Each recipe is the ``tlc train`` arguments it adds, as the command line takes them (the
seed table passes them to ``tlc train`` as they are and records them in command.json);
:func:`assignments` turns them into the ``section.key=value`` list that
:func:`~tlc.train.pipeline.assemble_config` takes, for in-process training.
"""

from __future__ import annotations

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


def assignments(args: list[str]) -> list[str]:
    """The ``section.key=value`` settings of a recipe's ``--set`` arguments, in order."""
    if len(args) % 2 or any(flag != "--set" for flag in args[::2]):
        raise TlcError(f"a recipe holds only --set pairs, got {args!r}",
                       hint="give every other option (--data, --init-vectors) separately")
    return list(args[1::2])
