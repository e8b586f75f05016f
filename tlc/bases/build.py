"""``tlc base build NAME``: train a base's source run by its recipe (or take a finished one,
``--from-run``), pack it (:mod:`.pack`), measure the packed base on the recipe's test sets,
and write its card (:mod:`.card`), all from the data folder.

The base is assembled in a hidden folder beside ``--out`` and moved into place only when
its card is written: an interrupted build leaves the old base as it was.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, TlcError
from ..ownership import listing
from ..train.run import (
    CARD_FILE,
    CHECKPOINT_DIR,
    EVAL_DIR,
    RUN_FILE,
    WEIGHTS_FILE,
    Run,
    foreign_entries,
    load_run,
    remove_run,
    run_state,
    write_json,
)
from .card import card_facts, data_facts, write_card
from .catalog import BaseRecipe, recipe_of
from .pack import pack_run

# Rows of each test set on which the float16 base's probabilities are compared with the
# float32 source's, row by row (the accuracies use every row).
AGREEMENT_ROWS = 2000


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def recipe_config(recipe: BaseRecipe, data_dir):
    """The configuration `tlc train` gives the recipe's source run in this data folder."""
    from ..train.pipeline import assemble_config
    from ..train.vectors import vectors_file

    vectors = vectors_file(Path(data_dir) / recipe.vectors, data_dir)
    return assemble_config(recipe.settings(), init_vectors=vectors, data_dir=data_dir)


def recipe_differences(run: Run, expected) -> list[str]:
    """Where a run's settings differ from the recipe's (the word vectors by file name: the
    data folder may sit elsewhere on the machine that trained it)."""
    mine, want = run.config.to_dict(), expected.to_dict()
    for config in (mine, want):
        vectors = config["transfer"].get("init_vectors")
        config["transfer"]["init_vectors"] = Path(vectors).name if vectors else vectors
    found = []
    for section, values in want.items():
        for key, value in values.items():
            have = mine.get(section, {}).get(key)
            if have != value:
                found.append(f"{section}.{key} is {json.dumps(have)}, the recipe's "
                             f"{json.dumps(value)}")
    return found


def check_out(out: Path, *, force: bool) -> None:
    """--out may be new, empty, or (with --force) a base tlc built; nothing else is replaced."""
    if not out.exists():
        return
    if not out.is_dir():
        raise TlcError("--out is a file, not a folder", path=out,
                       hint="give --out a new folder, or a base folder to rebuild")
    if not any(out.iterdir()):
        return
    is_base = run_state(out) == "complete" and (out / CARD_FILE).is_file() \
        and (out / WEIGHTS_FILE).is_file()
    if not is_base:
        raise TlcError("--out holds something that is not a base tlc built, so it is not "
                       "replaced", path=out, hint="choose a new or empty folder for --out")
    if not force:
        raise TlcError("a base is already here", path=out,
                       hint="pass --force to build it again (the old one is replaced when "
                       "the new one is complete), or choose another --out")
    foreign = foreign_entries(out)
    if foreign:
        raise TlcError(f"--force refused: besides the base, this folder holds "
                       f"{listing(foreign)}, which tlc did not write (nothing was deleted)",
                       path=out, hint="move those out of the folder, or choose another --out")


def source_run(recipe: BaseRecipe, data_dir, *, from_run: Path | None, work: Path,
               say: Callable[[str], None]) -> tuple[Run, str]:
    """The finished source run and how it came to be: ``from_run`` checked against the
    recipe, else the recipe trained into ``work`` (a finished run there made by the recipe
    is reused, an interrupted one resumed)."""
    expected = recipe_config(recipe, data_dir)
    if from_run is not None:
        run = load_run(from_run, purpose="pack into a base", option="--from-run")
        how = "packed from an existing run that the recipe trained (--from-run)"
    elif run_state(work) == "complete":
        run = load_run(work, purpose="pack into a base", option="--work")
        how = "trained by the recipe (tlc base build)"
        say(f"{work}: a finished run is there; it is used if the recipe made it")
    else:
        from ..train.pipeline import train

        resume = (work / CHECKPOINT_DIR / "progress.json").is_file()
        say(f"training the source run of {recipe.name}" + (" (resuming)" if resume else "")
            + f": {recipe.train_command(str(data_dir), str(work))}")
        return train(expected, work, data_dir=data_dir, resume=resume), \
            "trained by the recipe (tlc base build)"
    differences = recipe_differences(run, expected)
    if differences:
        raise TlcError(f"the run was not trained by the {recipe.name} recipe: "
                       + "; ".join(differences), path=run.path,
                       hint=f"give --from-run a run trained as `{recipe.train_command()}`, or "
                       "leave --from-run out to train one")
    return run, how


def _rows(spec: str, data_dir) -> tuple[list[str], list[str]]:
    from ..data.dataset import open_dataset, parse_source

    name, split = parse_source(spec)
    examples = open_dataset(name, data_dir).load(split or "test")
    if examples.labels is None:
        raise DataError(f"{spec} has no labels to score the base on",
                        path=open_dataset(name, data_dir).path(split or "test"))
    return examples.texts, examples.labels


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "confusion_matrix")
    return {k: report.get(k) for k in keep}


def _saved_report(run: Run, spec: str, rows: int) -> dict[str, Any] | None:
    """A `tlc evaluate` report of ``run`` on ``spec`` made after the run finished (as `tlc
    evaluate` and the seed table name them), or None."""
    from ..train.evaluate import default_report_path

    finished = (run.path / RUN_FILE).stat().st_mtime
    split = spec.split(":", 1)[1] if ":" in spec else "test"
    for path in (run.path / EVAL_DIR / f"{spec.replace(':', '_')}.json",
                 default_report_path(run, spec, split)):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(report, dict) and report.get("data") == spec
                and report.get("n") == rows and path.stat().st_mtime >= finished):
            return report
    return None


def measure(source: Run, base: Run, spec: str, data_dir, say) -> dict[str, Any]:
    """The packed base's figures on ``spec`` beside the float32 source's (a saved report
    of the source is reused), and their row-by-row agreement on the first rows."""
    from ..train.evaluate import default_report_path, evaluate_rows, predict_proba
    from ..train.metrics import classification_report

    texts, labels = _rows(spec, data_dir)
    index = {label: i for i, label in enumerate(base.labels)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"{spec} has labels {', '.join(map(repr, unknown[:5]))} that the base "
                        f"does not know ({', '.join(base.labels)})",
                        hint="score a base on data with its own label set")
    say(f"{spec}: scoring {len(texts):,} documents with the packed base")
    proba = predict_proba(base, texts)
    packed = classification_report(np.array([index[x] for x in labels]), proba, base.labels)
    reference = _saved_report(source, spec, len(texts))
    if reference is None:
        say(f"{spec}: scoring {len(texts):,} documents with the float32 source")
        reference = evaluate_rows(source, texts, labels, data=spec, split=spec.split(":")[-1])
        path = default_report_path(source, spec, reference["split"])
        with contextlib.suppress(OSError):  # a read-only run folder just does not keep it
            path.parent.mkdir(exist_ok=True)
            write_json(path, reference)
    else:
        say(f"{spec}: the float32 source's saved report is reused")
    n = min(AGREEMENT_ROWS, len(texts))
    exact = predict_proba(source, texts[:n])
    return {"rows": len(texts), "float16": _figures(packed), "float32": _figures(reference),
            "agreement": {"rows": n,
                          "labels_agree": float((exact.argmax(1) == proba[:n].argmax(1)).mean()),
                          "max_abs_diff": float(np.abs(exact - proba[:n]).max())}}


def build_base(name: str, *, out: Path, data_dir=None, from_run: Path | None = None,
               work: Path | None = None, force: bool = False,
               say: Callable[[str], None] = _say) -> dict[str, Any]:
    """Build the base ``name`` into ``out`` (see the module) and return its card."""
    from ..data.dataset import open_dataset, parse_source, resolve_data_dir

    recipe = recipe_of(name)
    data_dir = resolve_data_dir(data_dir)
    out = Path(out)
    check_out(out, force=force)
    for spec in (recipe.data, *recipe.tests):  # a missing data set is reported before work
        data, split = parse_source(spec)
        open_dataset(data, data_dir).path(split or "train")
    work = Path(work) if work is not None else Path("runs") / f"base-{name}"
    source, how = source_run(recipe, data_dir, from_run=from_run, work=work, say=say)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's folder is private; the base is read by everyone
    try:
        say(f"packing {source.path} (float16 weights)")
        pack_run(source, staging, name=name)
        base = load_run(staging, purpose="measure")
        tests = {spec: measure(source, base, spec, data_dir, say) for spec in recipe.tests}
        say(f"reading {recipe.data}'s training file for the card")
        card = card_facts(recipe, source=source, base=base, data=data_facts(recipe, data_dir),
                          tests=tests, how=how)
        write_card(staging, card)
        if out.exists():
            remove_run(out)   # check_out made sure it holds only what tlc wrote
            with contextlib.suppress(OSError):
                out.rmdir()
        staging.replace(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for spec, t in tests.items():
        say(f"{spec}: accuracy {100 * t['float16']['accuracy']:.2f}% (float32 source "
            f"{100 * t['float32']['accuracy']:.2f}%) on {t['rows']:,} documents")
    return card
