"""The ``tlc`` command line.

Heavy imports (sentencepiece, later TensorFlow) happen inside the commands that need them,
so ``tlc --help`` and the scoring commands stay fast and work with ``pip install tlc`` alone.
Every user-fixable problem is a :class:`~tlc.errors.TlcError`, printed without a traceback
and with exit status 2.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tlc import __version__
from tlc.errors import DataError, TlcError

app = typer.Typer(
    help="tlc: small, fast text classifiers from few labels, by transfer learning.\n\n"
    "Data sets are found by name under --data-dir, else $TLC_DATA_DIR, else "
    "~/.local/share/tlc/data; any folder with train/test files (text and label columns) "
    "or a single CSV/TSV/JSONL/fastText file can be given by path instead.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Fetch public data sets and inspect any data set.",
                       no_args_is_help=True)
tokenizer_app = typer.Typer(help="Train and try the sentencepiece tokenizer and document grid.",
                            no_args_is_help=True)
base_app = typer.Typer(help="Build the bases bundled with tlc (`tlc train --init NAME`).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(tokenizer_app, name="tokenizer")
app.add_typer(base_app, name="base")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder holding data sets by name (default: "
                 "$TLC_DATA_DIR, else ~/.local/share/tlc/data)."),
]
TextColumn = Annotated[str, typer.Option("--text-column", help="Column holding the text.")]
LabelColumn = Annotated[str, typer.Option("--label-column", help="Column holding the label.")]
Format = Annotated[
    str | None,
    typer.Option("--format", help="Format of a single input file whose name does not say: "
                 "csv, tsv, jsonl, fasttext, text (default: from the file name)."),
]
OnBadRows = Annotated[
    str,
    typer.Option("--on-bad-rows", help="'error' stops at the first bad row (empty text, "
                 "invalid UTF-8, malformed row); 'skip' leaves such rows out and counts them."),
]


def _friendly(fn):
    """Turn TlcError into one clear message and exit status 2; Ctrl-C into status 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TlcError as e:
            typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tlc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    pass


def _progress(desc: str):
    from tqdm import tqdm

    return tqdm(desc=desc, unit="rows", unit_scale=True, file=sys.stderr,
                dynamic_ncols=True, leave=False, disable=None)


# ------------------------------------------------------------------------------ data


@data_app.command("list")
@_friendly
def data_list(data_dir: DataDir = None) -> None:
    """List the public data sets tlc can fetch, and whether each is in the data folder."""
    from tlc.data.dataset import resolve_data_dir
    from tlc.data.registry import REGISTRY

    root = resolve_data_dir(data_dir)
    typer.echo(f"data folder: {root}")
    for name, entry in REGISTRY.items():
        present = all((root / entry.folder / f).exists() for f in entry.outputs[:1])
        state = "present" if present else "not fetched"
        typer.echo(f"  {name:<16} {state:<12} {entry.description.splitlines()[0]}")
        typer.echo(f"  {'':<16} {'':<12} licence: {entry.licence}")
    if root.is_dir():
        known = {e.folder for e in REGISTRY.values()}
        local = sorted(d.name for d in root.iterdir()
                       if d.is_dir() and not d.name.startswith(".") and d.name not in known)
        if local:
            typer.echo(f"other data sets in the data folder: {', '.join(local)}")


@data_app.command("fetch")
@_friendly
def data_fetch(
    name: Annotated[str, typer.Argument(help="imdb, amazon_polarity or glove.6B "
                                        "(see `tlc data list`).")],
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Fetch again even if present (replaces the folder only when it holds "
        "just the data set's files).")] = False,
    keep_downloads: Annotated[bool, typer.Option(
        "--keep-downloads", help="Keep the downloaded archive after converting it.")] = False,
    dims: Annotated[list[int] | None, typer.Option(
        "--dim", help="glove.6B only: vector sizes to extract (50, 100, 200, 300); "
        "repeatable (default: all four)")] = None,
) -> None:
    """Download a public data set (resuming broken downloads), verify its published
    checksum, and convert it to the canonical train/test files under the data folder."""
    from tlc.data.dataset import resolve_data_dir
    from tlc.data.fetch import fetch

    options = {"dims": tuple(dims)} if dims else {}
    fetch(name, resolve_data_dir(data_dir), force=force,
                   keep_downloads=keep_downloads, **options)


def _label_cell(labels: dict[str, int], rows: int) -> str:
    if not labels:
        return "-"
    return "  ".join(f"{k}: {v:,} ({100 * v / rows:.1f}%)" for k, v in labels.items())


def _length_cell(s: dict[str, float]) -> str:
    if not s:
        return "-"
    return f"{s['min']:,} / {s['median']:,.0f} / {s['mean']:,.0f} / {s['max']:,}"


@data_app.command("info")
@_friendly
def data_info(
    dataset: Annotated[str | None, typer.Argument(
        help="Data set name (under the data folder) or path; NAME:SPLIT for one split. "
        "Without it: list the data sets in the data folder.")] = None,
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    fmt: Format = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
) -> None:
    """Rows, label balance, text lengths and bad rows of each split of a data set."""
    from tlc.data.dataset import open_dataset, parse_source, resolve_data_dir
    from tlc.data.stats import split_stats

    if dataset is None:
        root = resolve_data_dir(data_dir)
        typer.echo(f"data folder: {root}")
        if not root.is_dir():
            typer.echo("  (does not exist yet: `tlc data fetch imdb` creates it)")
            return
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                ds = open_dataset(d)
                typer.echo(f"  {d.name:<16} splits: {', '.join(ds.splits)}")
            except DataError:
                files = ", ".join(sorted(p.name for p in d.iterdir())[:4])
                typer.echo(f"  {d.name:<16} (no split files; holds {files})")
        return

    name, only = parse_source(dataset)
    ds = open_dataset(name, data_dir, fmt)
    results = []
    for split in [only] if only else ds.splits:
        with _progress(f"reading {ds.name}:{split}") as bar:
            results.append(split_stats(ds, split, text_column=text_column,
                                       label_column=label_column, progress=bar))
    if as_json:
        typer.echo(json.dumps({"dataset": ds.name, "root": str(ds.root),
                               "splits": [r.to_dict() for r in results]}, indent=2))
        return
    typer.echo(f"{ds.name}  ({ds.root})")
    typer.echo(f"  {'split':<6} {'rows':>9}  {'chars min / median / mean / max':<34}"
               f"{'words median':>12}  labels")
    for r in results:
        words = f"{r.words['median']:,.0f}" if r.words else "-"
        typer.echo(f"  {r.split:<6} {r.rows:>9,}  {_length_cell(r.chars):<34}{words:>12}  "
                   f"{_label_cell(r.labels, r.rows)}")
    for r in results:
        if r.bad_rows:
            total = sum(r.bad_rows.values())
            reasons = ", ".join(f"{n:,} {k}" for k, n in r.bad_rows.items())
            typer.secho(f"  {r.split}: {total:,} bad rows ({reasons}), e.g.", fg="yellow")
            for example in r.bad_examples:
                typer.echo(f"    {example}")
        if r.split not in ("unsup",) and r.rows and len(r.labels) == 1:
            typer.secho(f"  {r.split}: only one class ({next(iter(r.labels))}); a classifier "
                        "needs at least 2", fg="yellow")


def _open_out(path: Path, compress: bool):
    if compress:
        return gzip.open(path, "wt", encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")


@data_app.command("subset")
@_friendly
def data_subset(
    dataset: Annotated[str, typer.Argument(help="Data set name or path (its train split is "
                                           "used; NAME:SPLIT for another).")],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write (.csv or .csv.gz).")],
    labels: Annotated[int | None, typer.Option("--labels", help="Number of labelled rows.")]
    = None,
    fraction: Annotated[float | None, typer.Option(
        "--fraction", help="Fraction of labelled rows, e.g. 0.05.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Which subset: same seed, same rows, "
                                      "on every machine.")] = 0,
    valid_fraction: Annotated[float, typer.Option(
        "--valid-fraction", help="Share of the subset held out for validation (column "
        "'role'); 0 for none.")] = 0.1,
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    fmt: Format = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it is a label "
                                        "budget (never another file).")] = False,
) -> None:
    """Write a label budget: a stratified, seeded subset of a training split, with the
    validation rows marked. Training uses exactly this selection for the same settings."""
    from tlc.data.budget import stratified_subset, validation_split
    from tlc.data.dataset import open_dataset, parse_source
    from tlc.data.examples import iter_examples
    from tlc.data.io import csv_text
    from tlc.data.readers import read_records
    from tlc.ownership import check_replace, first_line

    if out.exists():  # --force replaces only a label budget (header row,role,...), never more
        header = first_line(out)
        check_replace(out, force=force, error=DataError, made="a label budget written by tlc "
                      "data subset", seems="its header does not start with row,role",
                      ours=out.stat().st_size == 0 or (header or "").startswith("row,role,"))
    if not out.parent.is_dir():
        raise DataError("folder does not exist", path=out.parent, hint="create it first")
    name, split = parse_source(dataset)
    if split == "test":
        raise DataError("label budgets are drawn from training data only, never from test",
                        hint=f"use {name} or {name}:train")
    ds = open_dataset(name, data_dir, fmt)
    path = ds.path(split or "train")
    records = list(read_records(path, ds.fmt))
    # Validate every row first (clear error on the first bad one), then select.
    pairs = list(iter_examples(records, text_column=text_column, label_column=label_column))
    all_labels = [lab for _, lab in pairs]
    if labels is None and fraction is None:
        chosen = list(range(len(pairs)))
    else:
        chosen = stratified_subset(all_labels, count=labels, fraction=fraction, seed=seed,
                                   source=str(path)).tolist()
    roles = ["train"] * len(chosen)
    if valid_fraction > 0:
        _, valid = validation_split([all_labels[i] for i in chosen], fraction=valid_fraction,
                                    seed=seed, source=str(path))
        for v in valid:
            roles[v] = "valid"
    columns = ["row", "role", *records[0].fields]
    tmp = out.with_name(out.name + ".tmp")
    with _open_out(tmp, out.suffix == ".gz") as f:
        f.write(csv_text([columns]))
        for i, role in zip(chosen, roles, strict=False):
            f.write(csv_text([[i, role, *records[i].fields.values()]]))
    os.replace(tmp, out)
    n_valid = roles.count("valid")
    typer.echo(f"wrote {len(chosen):,} rows ({len(chosen) - n_valid:,} train, {n_valid:,} "
               f"valid) of {len(pairs):,} from {path} to {out}")


# ------------------------------------------------------------------------------ tokenizer


@tokenizer_app.command("train")
@_friendly
def tokenizer_train(
    data: Annotated[list[str], typer.Option(
        "--data", help="Text to learn the vocabulary from: a data set name or path, "
        "NAME:SPLIT for one split (e.g. imdb:unsup). Repeatable. Test splits are never used "
        "unless named.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write tokenizer.model and "
                                      "tokenizer.json to.")],
    vocab_size: Annotated[int, typer.Option(
        "--vocab-size", help="Number of sentencepiece pieces (the embedding table's rows).")]
    = 16000,
    max_sentences: Annotated[int, typer.Option("--max-sentences",
                                               help="Sentences per document in the grid.")] = 16,
    max_tokens: Annotated[int, typer.Option("--max-tokens",
                                            help="Tokens per sentence in the grid.")] = 40,
    seed: Annotated[int, typer.Option("--seed", help="Same text and seed, same tokenizer.")]
    = 0,
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    fmt: Format = None,
    on_bad_rows: OnBadRows = "error",
    force: Annotated[bool, typer.Option("--force", help="Replace a tokenizer tlc wrote in "
                                        "--out (never another tool's files).")] = False,
) -> None:
    """Train a sentencepiece tokenizer (unigram, NFKC + case folding) on one or more text
    sources, and save it with its document-grid settings."""
    from collections import Counter

    from tlc.tokenizer import Tokenizer, TokenizerConfig
    from tlc.tokenizer.spm import check_save_dir

    check_save_dir(out, force=force)
    config = TokenizerConfig(vocab_size=vocab_size, max_sentences=max_sentences,
                             max_tokens=max_tokens, seed=seed)
    skipped: Counter = Counter()
    from tlc.data.dataset import iter_texts

    texts = iter_texts(data, data_dir, text_column=text_column, fmt=fmt,
                       on_bad_rows=on_bad_rows, skipped=skipped)
    tok = Tokenizer.train(texts, config)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(out)
    if skipped:
        typer.echo(f"skipped {sum(skipped.values()):,} rows: "
                   + ", ".join(f"{n:,} {k}" for k, n in skipped.items()), err=True)
    typer.echo(f"tokenizer: {tok.vocab_size:,} pieces, sha256 {tok.sha256[:16]}…, "
               f"grid {config.max_sentences} sentences x {config.max_tokens} tokens -> {out}")


@tokenizer_app.command("encode")
@_friendly
def tokenizer_encode(
    tokenizer_dir: Annotated[Path, typer.Argument(help="Folder written by `tlc tokenizer "
                                                  "train`.")],
    texts: Annotated[list[str], typer.Argument(help="Text(s) to encode.")],
    ids: Annotated[bool, typer.Option("--ids", help="Show ids instead of pieces.")] = False,
) -> None:
    """Show how texts are cleaned, tokenised and laid out as the sentences x tokens grid."""
    from tlc.tokenizer import Tokenizer, clean

    tok = Tokenizer.load(tokenizer_dir)
    grids = tok.encode_grid(texts)
    pieces = tok.pieces
    for text, grid in zip(texts, grids, strict=False):
        typer.echo(f"text:    {text!r}")
        typer.echo(f"cleaned: {clean(text)!r}")
        used = [row for row in grid if row.any()]
        for s, row in enumerate(used):
            toks = [int(t) for t in row if t]
            shown = " ".join(str(t) for t in toks) if ids else " ".join(pieces[t] for t in toks)
            typer.echo(f"  sentence {s + 1:>2}: {shown}")
        if not used:
            typer.echo("  (empty: all padding)")


# ------------------------------------------------------------------------------ train


@app.command("train")
@_friendly
def train_cmd(
    data: Annotated[str | None, typer.Option(
        "--data", help="Labelled training data: a data set name (its train split), NAME:SPLIT, "
        "a folder or a file.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder to create.")] = Path("run"),
    labels: Annotated[int | None, typer.Option(
        "--labels", help="Label budget: train on at most this many labelled rows, a stratified "
        "seeded subset (validation comes out of it). 0 = only pseudo-labels (--unlabelled). "
        "Default: all.")] = None,
    # (a str, not a Path: Path would make "./name" into "name", a bundled base's name)
    init: Annotated[str | None, typer.Option(
        "--init", help="Finished source run to transfer from (a run folder, or the name of a "
        "base bundled with tlc): its tokenizer, embeddings and convolutions (and head, when "
        "the labels match) start this run. Default: the bundled base reviews-en (unless "
        "--init-vectors or --tokenizer is given); 'none' trains from scratch.")] = None,
    recipe: Annotated[str, typer.Option(
        "--recipe", help="Settings for a transfer: 'auto' (default: for a bundled base, the "
        "seed table's best for the run's label count: zero, few, some, many), a recipe's "
        "name (any start), or 'none'. --config and --set override it.")] = "auto",
    init_vectors: Annotated[Path | None, typer.Option(
        "--init-vectors", help="GloVe/word2vec text file seeding the embeddings of whole-word "
        "pieces (runs without --init; sets model.embedding_dim to the file's dimension), or a "
        "fetched GloVe file by name, e.g. glove.6B.50d.")]
    = None,
    unlabelled: Annotated[list[str] | None, typer.Option(
        "--unlabelled", help="Unlabelled target text (NAME:SPLIT, e.g. imdb:unsup) that the "
        "--init run labels for self-training. Repeatable.")] = None,
    tokenizer: Annotated[Path | None, typer.Option(
        "--tokenizer", help="Reuse this tokenizer (a run or `tlc tokenizer train` folder) "
        "instead of training one.")] = None,
    config_file: Annotated[Path | None, typer.Option(
        "--config", help="JSON file of settings (a run's config.json works); options and "
        "--set override it.")] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="Override any setting: section.key=value, e.g. training.epochs=3, "
        "tokenizer.max_sentences=24, transfer.freeze='[]'. Repeatable. See config.json of a "
        "run for every key.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the label budget, "
                                             "validation split and training.")] = None,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Delete the run in --out (only the "
                                        "files tlc wrote; refused when the folder holds "
                                        "anything else) and train again.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in "
                                         "--out from its last finished epoch.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    devices: Annotated[int | None, typer.Option(
        "--devices", min=1, help="Train on this many local accelerators (JAX backend: "
        "KERAS_BACKEND=jax; default: all of them) through keras.distribution.DataParallel; "
        "training.batch_size is the global batch and must divide by it.")] = None,
) -> None:
    """Train a document CNN: transfer from the bundled base reviews-en (the default, with
    the recipe for the label count), from a source run (--init RUN), or from scratch (--init
    none), with a validation split, early stopping and checkpoints.

    Examples:\n
      tlc train --data imdb --labels 1250 --out runs/imdb-1250\n
      tlc train --data amazon --init none --out runs/amazon\n
      tlc train --data imdb --labels 1250 --init runs/amazon --out runs/imdb-1250
    """
    from tlc.train.pipeline import train
    from tlc.train.start import cli_init, plan

    def say(message: str) -> None:
        if not quiet:
            typer.echo(message, err=True)

    init, note = cli_init(init, scratch=init_vectors is not None or tokenizer is not None)
    if note:
        say(note)
    direct: list[str] = []
    if data is not None:
        direct.append(f"data.train={json.dumps(data)}")
    if labels is not None:
        direct.append(f"data.labels={labels}")
    if tokenizer is not None:
        direct.append(f"transfer.tokenizer={json.dumps(str(tokenizer))}")
    if unlabelled:
        direct.append(f"self_training.unlabelled={json.dumps(unlabelled)}")
    if seed is not None:
        direct.append(f"training.seed={seed}")
    start = plan(direct=direct, sets=list(sets or []), init=init, recipe=recipe,
                 config_file=config_file, init_vectors=init_vectors, data_dir=data_dir,
                 say=say)
    run = train(start.config, out, data_dir=data_dir, force=force, resume=resume, quiet=quiet,
                devices=devices, stage=start.stage, record=start.record)
    summary = run.info["training"]
    epochs = summary["epochs_done"]
    line = (f"run -> {run.path}: {epochs} epoch{'s' * (epochs != 1)} "
            f"(best {summary['best_epoch']}), "
            f"{summary['docs_per_second'] or 0:,.0f} docs/s, peak memory "
            f"{summary['peak_memory_mb']:,.0f} MB")
    if run.info.get("validation"):
        v = run.info["validation"]
        line += (f", validation accuracy {100 * v['accuracy']:.2f}% "
                 f"(balanced {100 * v['balanced_accuracy']:.2f}%)")
    typer.echo(line)


@app.command("evaluate")
@_friendly
def evaluate_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Finished run folder (from `tlc train`).")],
    data: Annotated[str, typer.Argument(help="Labelled data: a data set name (its test split), "
                                        "NAME:SPLIT, a folder or a file.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="JSON report path (default: RUN/eval/DATA-SPLIT.json).")] = None,
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    fmt: Format = None,
    on_bad_rows: OnBadRows = "error",
) -> None:
    """Accuracy, macro-F1, per-class precision/recall, confusion matrix and (two classes)
    ROC-AUC of a run on labelled data: a table on screen, JSON on disk."""
    from tlc.train.evaluate import check_report_out, default_report_path, evaluate
    from tlc.train.metrics import format_report
    from tlc.train.run import load_run, write_json

    run = load_run(run_dir, purpose="evaluate")
    if out is not None:
        check_report_out(out)
    report = evaluate(run, data, data_dir=data_dir, text_column=text_column,
                      label_column=label_column, fmt=fmt, on_bad_rows=on_bad_rows)
    path = out or default_report_path(run, data, report["split"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)
    typer.echo(format_report(report, title=f"{run.path} on {data} ({report['split']})"))
    typer.echo(f"report -> {path}")


# ------------------------------------------------------------------------------ base


@base_app.command("build")
@_friendly
def base_build(
    name: Annotated[str, typer.Argument(help="The base to build, e.g. reviews-en.")],
    out: Annotated[Path, typer.Option(
        "--out", help="Folder to write the base to (tlc/bases/NAME to bundle it with tlc).")],
    from_run: Annotated[Path | None, typer.Option(
        "--from-run", help="Pack this finished run (trained by the base's recipe) instead of "
        "training one.")] = None,
    work: Annotated[Path | None, typer.Option(
        "--work", help="Run folder the source is trained in (default: runs/base-NAME); a "
        "finished run there made by the recipe is reused, an interrupted one resumed.")]
    = None,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a base tlc built in --out "
                                        "(never another folder).")] = False,
) -> None:
    """Build a base from the data folder: train its source run by the base's recipe (the
    seed table's, tlc/train/recipes.py), pack the tokenizer and network (float16 weights,
    head included), score the packed base on the recipe's test sets beside the float32
    source, and write its model card (card.json, CARD.md).

    Examples:\n
      tlc base build reviews-en --data-dir ../shared/data --out tlc/bases/reviews-en\n
      tlc base build reviews-en --from-run runs/seed_table/amazon --out tlc/bases/reviews-en
    """
    from tlc.bases.build import build_base

    card = build_base(name, out=out, data_dir=data_dir, from_run=from_run, work=work,
                      force=force, say=lambda m: typer.echo(m, err=True))
    typer.echo(f"base {card['name']} -> {out} ({card['size']['total_bytes']:,} bytes + card)")


# ------------------------------------------------------------------------------ export


@app.command("export")
@_friendly
def export_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Finished run folder (from `tlc train`).")],
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write (its folder must "
                                      "exist).")] = Path("model.onnx"),
    quantize: Annotated[bool, typer.Option(
        "--quantize", help="Store the weights at 8 bits (one scale per output channel or "
        "embedding row), the rarer embedding rows at 3 to 7: same speed, since onnxruntime "
        "rebuilds float32 weights once at load. Guarded: labels must agree with the Keras "
        "model on --min-agreement of the validation text and accuracy may drop by at most "
        "--max-accuracy-drop points. Tries a file 3.6x smaller than float32 (each embedding "
        "row's width chosen by how often the tokenizer uses it and how much rounding moves "
        "it), then 3.2x, then every row at 8 bits (about 2.8x), and writes the first the "
        "guard accepts.")] = False,
    ratio: Annotated[float | None, typer.Option(
        "--ratio", help="With --quantize: aim for a file this many times smaller than "
        "float32 instead of trying the steps above (e.g. --ratio 4).")] = None,
    int8_rows: Annotated[int | None, typer.Option(
        "--int8-rows", help="With --quantize: use this split instead of trying: this many "
        "of the most frequent embedding rows at 8 bits, the rest at 4 (or 5, see "
        "--int5-rows); the vocabulary size keeps every row at 8 bits.")]
    = None,
    int5_rows: Annotated[int, typer.Option(
        "--int5-rows", help="With --int8-rows: store this many of the next most frequent "
        "rows at 5 bits instead of 4 (e.g. --int8-rows 2000 --int5-rows 8000).")] = 0,
    min_agreement: Annotated[float, typer.Option(
        "--min-agreement", help="Quantised export: least share of labels equal to the "
        "Keras model's.")] = 0.995,
    max_accuracy_drop: Annotated[float, typer.Option(
        "--max-accuracy-drop", help="Quantised export: most accuracy points it may lose.")]
    = 0.3,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset, 17 to 21.")] = 17,
    ids_input: Annotated[bool, typer.Option(
        "--ids-input", help="Export the network alone, taking the int32 token grid "
        "(N, sentences, tokens) as input, for apps that tokenise on their own.")] = False,
    validation_data: Annotated[str | None, typer.Option(
        "--validation-data", help="Text to compare the ONNX and Keras models on (NAME:SPLIT "
        "or a file; default: the run's held-out rows, which are labelled).")] = None,
    sample: Annotated[int, typer.Option("--sample", help="Documents to compare on.")] = 5000,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Add the sentence-score outputs (`sentence_scores`, "
        "`sentence_spans`, `sentence_total`) that `tlc explain` and `tlc predict --explain` "
        "read: how much each sentence moves the probabilities (occlusion), and where it is "
        "in the input. Costs scoring time only when those outputs are asked for (see "
        "docs/explain.md).")] = False,
    no_validate: Annotated[bool, typer.Option(
        "--no-validate", help="Skip the comparison with the Keras model (not recommended).")]
    = False,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it is a model tlc "
                                        "export wrote (never another file).")] = False,
) -> None:
    """Export a run to one ONNX file: raw text in (`text: string[N]`), class probabilities
    (`probabilities: float[N, C]`) and label names (`label: string[N]`) out, with the
    tokenizer and document grid inside. Before the file is renamed into place it is run
    against the Keras model on held-out text: float32 must match within 1e-4, --quantize
    within the agreement and accuracy limits; the comparison is printed and stored in the
    file's metadata (`tlc inspect`)."""
    import tlc.export  # noqa: F401  (import order: extensions before TensorFlow)
    from tlc.export.exporter import export

    report = export(run_dir, out, opset=opset, ids_input=ids_input, quantize=quantize,
                    int8_rows=int8_rows, int5_rows=int5_rows, ratio=ratio,
                    min_agreement=min_agreement,
                    max_accuracy_drop=max_accuracy_drop, validate=not no_validate,
                    validation_data=validation_data, sample=sample, data_dir=data_dir,
                    explain=explain, force=force, say=lambda m: typer.echo(m, err=True))
    q = report.get("quantization")
    # One figure for the file: its size on disk. The quantisation steps above report the
    # graph before metadata, which the ratio compares; both are named so they cannot clash.
    size = (f"{report['bytes']:,} bytes on disk (graph {q['bytes']:,} bytes + metadata; "
            f"{q['float32_file_bytes'] / q['bytes']:.2f}x smaller than float32)"
            if q else f"{report['bytes']:,} bytes")
    typer.echo(f"model -> {report['out']}: {size}, input {report['input']}, "
               f"opset {report['opset']}")


@app.command("inspect")
@_friendly
def inspect_cmd(
    model: Annotated[str, typer.Argument(
        metavar="MODEL", help="An ONNX file written by `tlc export`, or a bundled model's "
        "name (sentiment-en).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON.")]
    = False,
) -> None:
    """Show what an exported model says about itself: labels, input, tlc version, tokenizer
    checksum, quantisation, validation and evaluation figures, training configuration."""
    from tlc import metadata as meta
    from tlc.metadata import read_metadata
    from tlc.models import resolve_model
    from tlc.session import open_session, read_model

    model_path = resolve_model(model)
    session = open_session(read_model(model_path), source=str(model_path))
    props = read_metadata(session.get_modelmeta().custom_metadata_map)
    if as_json:
        typer.echo(json.dumps(props, indent=2, sort_keys=True))
        return
    if not any(k.startswith("tlc.") for k in props):
        typer.echo(f"{model_path}: no tlc metadata (not written by `tlc export`)")
        return
    damaged = meta.problems(props)
    inputs = ", ".join(f"{i.name}: {i.type}{i.shape}" for i in session.get_inputs())
    outputs = ", ".join(f"{o.name}: {o.type}{o.shape}" for o in session.get_outputs())
    labels = props.get(meta.LABELS)
    typer.echo(f"{model_path} ({model_path.stat().st_size:,} bytes)")
    typer.echo(f"  inputs:        {inputs}")
    typer.echo(f"  outputs:       {outputs}")
    typer.echo(f"  labels:        {', '.join(labels) if meta.LABELS not in damaged else '?'}")
    typer.echo(f"  tlc version:   {props.get(meta.VERSION)}")
    typer.echo(f"  tokenizer:     sha256 {props.get(meta.TOKENIZER_SHA256)}")
    quantization = meta.entry(props, meta.QUANTIZATION)
    if quantization is not None or meta.QUANTIZATION not in damaged:
        typer.echo(f"  quantisation:  {_quantization_line(quantization)}")
    validation = meta.entry(props, meta.VALIDATION)
    if validation:
        typer.echo(f"  validation:    {_validation_line(validation)}")
    for name, report in (meta.entry(props, meta.EVALUATION) or {}).items():
        if isinstance(report, dict) and isinstance(report.get("accuracy"), (int, float)):
            n = report.get("n")
            typer.echo(f"  {name + ':':<14} accuracy {100 * report['accuracy']:.2f}% on "
                       f"{n if not isinstance(n, int) else f'{n:,}'} documents")
    config = meta.entry(props, meta.CONFIG) or {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    grid = config.get("tokenizer") if isinstance(config.get("tokenizer"), dict) else {}
    typer.echo(f"  trained on:    {data.get('train')} "
               f"(grid {grid.get('max_sentences')} x {grid.get('max_tokens')}; "
               "`--json` shows the whole configuration)")
    for key, problem in damaged.items():
        typer.secho(f"  damaged:       {key} is {problem}", err=True, fg="yellow")
    if meta.LABELS in damaged:
        raise TlcError(f"the model's {meta.LABELS} metadata is {damaged[meta.LABELS]}, so "
                       "it cannot score", path=model_path,
                       hint="export the run again with `tlc export`")


def _validation_line(v: dict) -> str:
    """The export-time comparison, as far as the record holds its fields."""
    try:
        line = (f"{v['documents']:,} documents of {v.get('data')}, max |onnx - keras| "
                f"{v['max_abs_diff']:.2e}, labels agree {100 * v['label_agreement']:.2f}%")
        if "decided_documents" in v:
            line += f" (of the {v['decided_documents']:,} not near a tie)"
        if "accuracy_drop" in v:
            line += (f"\n                 accuracy keras {v['keras_accuracy']:.2f}% -> onnx "
                     f"{v['onnx_accuracy']:.2f}%")
        elif "accuracy_check" in v:
            line += f"\n                 accuracy check {v['accuracy_check']}"
        for part in v.get("texts") or ():
            line += f"\n                 {part['documents']:,} from {part['data']}"
        if isinstance(v.get("explain"), dict):
            e = v["explain"]
            line += (f"\n                 sentence scores vs Keras occlusion: max "
                     f"{e['max_abs_diff']:.2e} on {e['documents']:,} documents")
        return line
    except (KeyError, TypeError, ValueError):
        return f"(incomplete record) {json.dumps(v)[:200]}"


# ------------------------------------------------------------------------------ predict


@app.command("predict")
@_friendly
def predict_cmd(
    # Two optional positionals, sorted out by _predict_arguments: click fills them left to
    # right, so a lone argument lands in `first` and is the input.
    first: Annotated[str | None, typer.Argument(
        metavar="MODEL",
        help="An ONNX file written by `tlc export`, or a bundled model's name; left out, the "
        "bundled sentiment-en scores. With one argument, that argument is always INPUT.",
        show_default=False)] = None,
    second: Annotated[str | None, typer.Argument(
        metavar="INPUT",
        help="File to score: CSV, TSV, JSONL, fastText or plain text (one document a line), "
        "gzip/bz2/xz too; '-' reads standard input (then pass --format); or a split of a "
        "data set in the data folder, NAME:SPLIT (e.g. imdb:test), whose output goes to "
        "NAME-SPLIT.scored.EXT in the current folder unless --out says otherwise.",
        show_default=False)] = None,
    out: Annotated[str | None, typer.Option(
        "--out", "-o", help="Where to write: .csv, .tsv or .jsonl, optionally .gz; '-' for "
        "standard output. Default: INPUT's name with .scored before the extension (standard "
        "output for standard input).")] = None,
    text_column: TextColumn = "text",
    fmt: Format = None,
    out_format: Annotated[str | None, typer.Option(
        "--out-format", help="csv, tsv or jsonl (default: from --out's name, else the "
        "input's format; plain text and fastText give jsonl).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted run into the same --out from the row where "
        "it stopped (same input, model and options).")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite --out if it is tlc predict output (never another file), "
        "and drop the partial output of an interrupted run.")]
    = False,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="Texts scored at once on this many cores (default: all).")]
    = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Most texts in one onnxruntime run (larger batches "
        "use more memory and are not faster).")] = 32,
    max_chars: Annotated[int, typer.Option(
        "--max-chars", min=1, help="Longer texts are not scored but written with the error "
        "'text too long' (the model reads only a document's first ~10,000 characters).")]
    = 100_000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or notes.")]
    = False,
    data_dir: DataDir = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="'process' (this process, every core) or 'spark': score on Spark "
        "(pip install \"tlc[spark]\"), same output row for row; reads a file, a folder or a "
        "glob of files, and Parquet; writes one file, or a Parquet folder (-o NAME.parquet). "
        "No --resume (Spark retries failed tasks itself).")] = "process",
    master: Annotated[str | None, typer.Option(
        "--master", help="With --engine spark: the Spark master (default: $SPARK_MASTER, "
        "else local[*]).")] = None,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Also write `decisive_sentence` (the sentence whose removal "
        "lowers the label's probability most) and `summary` (the --summary-sentences most "
        "decisive ones, in text order); needs a file from `tlc export --explain`.")] = False,
    summary_sentences: Annotated[int, typer.Option(
        "--summary-sentences", min=1, help="With --explain: sentences in `summary`.")] = 3,
) -> None:
    """Score every row of a file with an exported model, streaming, on every core.

    The output keeps every input column and the input order, and adds `label`, one
    `p_<label>` column per class and `error`. A row that cannot be scored (empty or missing
    text, invalid UTF-8, a malformed CSV row or JSON line, a text over --max-chars) is still
    written, with the reason in `error`, and counted in the summary. The output appears
    under its name only when complete; an interrupted run continues with --resume.

    With one argument, it is the input and the bundled model sentiment-en scores it (English
    review sentiment, labels 0 = negative, 1 = positive; `tlc inspect sentiment-en`).

    Examples:\n
      tlc predict reviews.csv                 # the bundled sentiment-en\n
      tlc predict model.onnx reviews.csv.gz --out scored.csv.gz\n
      tlc predict model.onnx reviews.jsonl --text-column body -o scored.jsonl\n
      cat reviews.txt | tlc predict model.onnx - --format text -o - > scored.jsonl\n
      tlc predict model.onnx imdb:test        # -> imdb-test.scored.csv.gz
    """
    from tlc.runtime import Classifier, score_file

    say = (lambda m: None) if quiet else (lambda m: typer.echo(m, err=True))
    model_path, input_path = _predict_arguments(first, second, say)
    if not (engine == "spark" and any(c in input_path for c in "*?[")):  # a glob of files
        input_path, named_out = _named_input(input_path, data_dir)
        out = out if out is not None else named_out
    if engine not in ("process", "spark"):
        raise DataError(f"unknown engine {engine!r}", hint="use --engine process or spark")
    if engine == "spark":
        from tlc.runtime.spark import predict_file

        if explain:
            raise DataError("--explain runs in this process only",
                            hint="leave out --engine spark (or --explain)")
        if resume:
            raise DataError("--engine spark cannot --resume: Spark retries a failed task "
                            "itself, and a stopped job starts over",
                            hint="run the same command again (with --force if the output "
                            "exists), or leave out --engine spark to be able to --resume")
        summary = predict_file(model_path, input_path, out, fmt=fmt, out_format=out_format,
                               text_column=text_column, max_chars=max_chars, force=force,
                               master=master, batch_size=batch_size, threads=threads or 1,
                               say=say)
        typer.echo(summary.describe(), err=True)
        return
    if master is not None:
        raise DataError("--master is for --engine spark", hint="add --engine spark")
    if input_path != "-" and (input_path.rstrip("/").endswith(".parquet") or
                              (fmt or "") == "parquet"):
        raise DataError("Parquet is read through Spark", path=input_path,
                        hint='pass --engine spark (pip install "tlc[spark]")')
    classifier = Classifier.load(model_path, threads=threads, batch_size=batch_size)
    with classifier:
        summary = score_file(classifier, input_path, out, fmt=fmt, out_format=out_format,
                             text_column=text_column, max_chars=max_chars, resume=resume,
                             force=force, progress=False if quiet else None, say=say,
                             explain=summary_sentences if explain else 0)
    typer.echo(summary.describe(), err=True)


def _predict_arguments(first: str | None, second: str | None, say) -> tuple[str, str]:
    """(model, input) from `tlc predict`'s one or two positionals. The rule has no guessing:
    two are MODEL INPUT; one is INPUT, scored by the bundled default model. A lone argument
    that can only be a model (an .onnx file, a bundled name) means the input was forgotten,
    and scoring the model file's bytes as text would help no one."""
    from tlc.models import DEFAULT_MODEL, bundled_name, figures_line

    if first is None:
        raise DataError("no file to score", hint="give it: `tlc predict [MODEL] INPUT` "
                        "(e.g. `tlc predict reviews.csv`)")
    if second is not None:
        return first, second
    if first.lower().endswith(".onnx") or bundled_name(first) is not None:
        raise DataError("one argument is the file to score, and this looks like a model",
                        path=first, hint=f"give the input too: `tlc predict {first} INPUT`")
    figures = figures_line(DEFAULT_MODEL)
    say(f"scoring with the bundled model {DEFAULT_MODEL}"
        f"{f' ({figures})' if figures else ''}; give a model file to use your own")
    return DEFAULT_MODEL, first


@app.command("explain")
@_friendly
def explain_cmd(
    model: Annotated[str, typer.Argument(
        metavar="MODEL", help="A file from `tlc export --explain` (or a bundled model's "
        "name, if it was exported so).")],
    text: Annotated[str, typer.Argument(
        help="A text to explain, or a file of texts (any format `tlc predict` reads; plain "
        "text: one text a line).")],
    html_out: Annotated[Path | None, typer.Option(
        "--html", help="Write one self-contained HTML page with the sentences highlighted.")]
    = None,
    text_column: TextColumn = "text",
    color: Annotated[str, typer.Option(
        "--color", help="auto (colour on a terminal, plain on a pipe), always or never.")]
    = "auto",
) -> None:
    """Show which sentences decided the label: each sentence's score is how much the
    label's probability drops when the sentence is removed from the text (occlusion, run
    inside the model file). On a terminal the sentences are coloured (green: for the label,
    red: against it); --html writes a page to open in a browser."""
    import sys

    from tlc.models import resolve_model
    from tlc.runtime import Classifier
    from tlc.runtime.explain_view import html_page, terminal

    model_path = resolve_model(model)

    if color not in ("auto", "always", "never"):
        raise DataError(f"unknown --color {color!r}", hint="use auto, always or never")
    texts = _explain_texts(text, text_column)
    with Classifier.load(model_path) as clf:
        explanations = clf.explain(texts)
    if html_out is not None:
        html_out.write_text(html_page(explanations, title=f"tlc explain: {model_path.name}"),
                            encoding="utf-8")
        typer.echo(f"{len(explanations):,} texts -> {html_out}", err=True)
        return
    colour = color == "always" or (color == "auto" and sys.stdout.isatty())
    # (click strips escape codes off a terminal unless told: --color always means always)
    typer.echo("\n\n".join(terminal(e, colour) for e in explanations), color=colour)


def _explain_texts(text: str, text_column: str) -> list[str]:
    """``text`` itself, or, when it names a file, the texts of its rows."""
    path = Path(text)
    try:
        is_file = "\n" not in text and len(text) <= 4096 and path.is_file()
    except OSError:         # e.g. a text longer than a file name may be
        is_file = False
    if not is_file:
        return [text]
    from tlc.data.examples import row_text
    from tlc.data.readers import detect_format, read_records

    texts = []
    for record in read_records(path, detect_format(path)):
        value, problem = row_text(record, text_column)
        if problem is None:
            texts.append(value)
    if not texts:
        raise DataError("no text to explain in the file", path=path,
                        hint=f"check --text-column (now {text_column!r})")
    return texts


def _named_input(spec: str, data_dir: Path | None) -> tuple[str, str | None]:
    """``NAME:SPLIT`` of a data set in the data folder -> its file, and a default output in
    the current folder (the data folder may be read-only, and is no place for results). A
    path that exists is always taken as a path."""
    if spec == "-" or Path(spec).exists():
        return spec, None
    from tlc.data.dataset import open_dataset, parse_source

    if ":" not in spec:
        try:  # a data set's name alone: say how to name one of its splits
            ds = open_dataset(spec, data_dir)
        except DataError:
            raise DataError("no such file", path=spec, hint="check the path (relative paths "
                            "start at the current folder)") from None
        split = "test" if "test" in ds.splits else ds.splits[0]
        raise DataError(f"no such file, but {spec!r} is a data set in the data folder (splits: "
                        f"{', '.join(ds.splits)})", path=spec,
                        hint=f"name the split to score: {spec}:{split}")
    from tlc.data.io import strip_compression

    name, split = parse_source(spec)
    path = open_dataset(name, data_dir).path(split or "test")
    base = strip_compression(path.name)
    gz = ".gz" if path.name.endswith(".gz") else ""
    return str(path), f"{Path(name).name}-{split or 'test'}.scored{Path(base).suffix}{gz}"


def _refused_split(r) -> str:
    """A refused step as stored by tlc export (``split``; older files: row counts)."""
    return r.get("split") or f"{r['int8_rows']:,} + {r['int5_rows']:,} rows at 8 + 5 bits"


def _quantization_line(q) -> str:
    if not isinstance(q, dict) or q.get("mode") == "float32" or "weights" not in q:
        return json.dumps(q)
    try:
        return _quantization_parts(q)
    except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError):
        return f"(incomplete record) {json.dumps(q)[:200]}"


def _quantization_parts(q: dict) -> str:
    parts = []
    for w in q["weights"]:
        if w.get("kind") == "embedding":
            rows = [f"{w[f'int{n}_rows']:,} int{n}" for n in range(8, 2, -1)
                    if w.get(f"int{n}_rows")]
            parts.append(f"embedding rows {' + '.join(rows)}")
        else:
            parts.append(f"{w.get('kind')} int8")
    ratio = q["float32_file_bytes"] / q["bytes"] if q.get("bytes") else float("nan")
    refused = "".join(
        f"; the guard refused {_refused_split(r)} "
        f"({100 * r['label_agreement']:.2f}% labels agree)"
        for r in q.get("refused_by_guard", []))
    return (f"{q['mode']} ({', '.join(parts)}; {ratio:.2f}x smaller than float32; "
            f"arithmetic {q.get('arithmetic')}{refused})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
