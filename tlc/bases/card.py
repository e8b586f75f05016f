"""A base's model card: ``card.json`` (the facts, for programs and tests) and ``CARD.md``
(the same facts for people, rendered from card.json, so the two cannot disagree).

The facts come from three places: the catalog's prose (:mod:`.catalog`: where the data came
from, on what terms), the run's own records (run.json, config.json), and what ``tlc base
build`` measured (the data file's collections and the test-set figures).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from .. import __version__
from ..train.run import CARD_FILE, CARD_TEXT, TOKENIZER_DIR, WEIGHTS_FILE, Run, write_json
from .catalog import BaseRecipe

CARD_FORMAT = 1


def data_facts(recipe: BaseRecipe, data_dir) -> dict[str, Any]:
    """What the training file holds: its sha256, rows per label and per collection (the
    prefix of the category column), each with the catalog's description."""
    from ..data.dataset import open_dataset
    from ..data.readers import read_records

    ds = open_dataset(recipe.data, data_dir)
    path = ds.path("train")
    labels: Counter = Counter()
    prefixes: Counter = Counter()
    for record in read_records(path, ds.fmt):
        if record.error is not None:
            continue
        labels[record.fields.get("label", "")] += 1
        category = record.fields.get(recipe.category_column)
        if category is not None:
            prefixes[category.split(":", 1)[0]] += 1
    rows = sum(labels.values())
    collections = []
    for prefix, n in prefixes.most_common():
        known = recipe.collections.get(prefix)
        collections.append({
            "prefix": prefix, "rows": n, "share": n / rows if rows else 0.0,
            "what": known.what if known else "(not described in tlc's catalog)",
            "reference": known.reference if known else None,
            "published": known.published if known else None})
    return {"file": f"{recipe.data}/{path.name}", "sha256": _sha256(path), "rows": rows,
            "labels": dict(sorted(labels.items())), "collections": collections}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_bytes(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Bytes of every file under ``folder`` by relative path (``skip``: names left out)."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


def card_facts(recipe: BaseRecipe, *, source: Run, base: Run, data: dict[str, Any],
               tests: dict[str, Any], how: str) -> dict[str, Any]:
    """card.json of ``base`` (packed from ``source``): ``tests`` is what the build measured
    per NAME:SPLIT, ``data`` :func:`data_facts`, ``how`` how the source run came to be."""
    config = base.config
    settings = config.to_dict()
    validation = source.info.get("validation") or {}
    files = folder_bytes(base.path, skip=(CARD_FILE, CARD_TEXT))
    tokenizer_bytes = sum(n for k, n in files.items() if k.startswith(f"{TOKENIZER_DIR}/"))
    packed = base.info.get("packed") or {}
    return {
        "card_format": CARD_FORMAT,
        "name": recipe.name,
        "summary": recipe.summary,
        "tlc_version": __version__,
        "trained_with": {"tlc_version": source.info.get("tlc_version"),
                         "keras_version": source.info.get("keras_version"),
                         "backend": source.info.get("backend")},
        "labels": {label: recipe.label_meaning.get(label, label) for label in base.labels},
        "trained_on": {
            "data": recipe.data,
            "description": recipe.data_description,
            **data,
            "train_rows": source.info["data"]["train_rows"],
            "valid_rows": source.info["data"]["valid_rows"],
            "tokenizer_text": list(config.data.tokenizer_text),
            "vectors": Path(config.transfer.init_vectors).name if config.transfer.init_vectors
            else None,
            "other_sources": recipe.other_sources,
        },
        "terms": recipe.terms,
        "network": {
            "model": settings["model"],
            "grid": {"sentences": config.tokenizer.max_sentences,
                     "tokens": config.tokenizer.max_tokens},
            "vocab_size": base.tokenizer.vocab_size,
            "parameters": packed.get("parameters"),
            "weights": f"{WEIGHTS_FILE}, {packed.get('dtype')}",
            "training": settings["training"],
        },
        "figures": {
            "validation": {"rows": validation.get("n"),
                           "balanced_accuracy": validation.get("balanced_accuracy"),
                           "accuracy": validation.get("accuracy"),
                           "of": "the float32 source at its best epoch, on its validation "
                                 "split: a stratified share of the training file"},
            "tests": tests,
        },
        "size": {"weights_bytes": files.get(WEIGHTS_FILE, 0),
                 "tokenizer_bytes": tokenizer_bytes,
                 "total_bytes": sum(files.values()),
                 "of": "every file of the base except card.json and CARD.md"},
        "rebuild": f"tlc base build {recipe.name} --data-dir DATA_DIR "
                   f"--out tlc/bases/{recipe.name} --force",
        "source_command": recipe.train_command(),
        "built": {"how": how, "source_run": packed.get("from_run"),
                  "packed": packed.get("packed")},
    }


def write_card(folder: Path, card: dict[str, Any]) -> None:
    write_json(folder / CARD_FILE, card)
    (folder / CARD_TEXT).write_text(render_card(card), encoding="utf-8")


def read_card(folder: Path) -> dict[str, Any]:
    return json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _right(figures: dict[str, Any]) -> int | None:
    """Documents labelled right: the confusion matrix's diagonal (accuracies to two
    decimals can hide a difference of a few documents)."""
    matrix = figures.get("confusion_matrix")
    return sum(matrix[i][i] for i in range(len(matrix))) if matrix else None


def render_card(card: dict[str, Any]) -> str:
    """CARD.md: every fact of card.json, in prose and tables."""
    on, net, fig, size = card["trained_on"], card["network"], card["figures"], card["size"]
    name = card["name"]
    lines = [
        f"# Base `{name}`", "",
        f"{card['summary']}.", "",
        f"Built with tlc {card['tlc_version']} (the source run was trained with tlc "
        f"{card['trained_with']['tlc_version']}, Keras {card['trained_with']['keras_version']},"
        f" {card['trained_with']['backend']}). Use it as a transfer's start:", "",
        f"    tlc train --data MY_DATA --init {name} --out runs/mine",
        f"    TextClassifier(base=\"{name}\").fit(texts, labels)", "",
        "Labels: " + "; ".join(f"`{k}` = {v}" for k, v in card["labels"].items())
        + ". A transfer to other labels trains a new head; with the same labels it starts "
        "from this one.", "",
        "## Trained on", "",
        f"{on['description']}", "",
        f"File `{on['file']}` (sha256 `{on['sha256']}`): {on['rows']:,} reviews ("
        + ", ".join(f"label `{k}`: {n:,}" for k, n in on["labels"].items())
        + f"), of which {on['train_rows']:,} trained the network and {on['valid_rows']:,} "
        "were its validation split.", "",
        "| collection | rows | share | what | reference |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for c in on["collections"]:
        lines.append(f"| `{c['prefix']}:` | {c['rows']:,} | {100 * c['share']:.1f}% | "
                     f"{c['what']} | {c['reference'] or '(none published)'} |")
    lines += [""] + [f"{text}" for text in on["other_sources"]] + [""]
    lines += ["## Terms of the data", ""] + [f"- {t}" for t in card["terms"]] + [""]
    model = net["model"]
    lines += [
        "## Network", "",
        f"Denil-style document CNN: {net['vocab_size']:,} sentencepiece pieces embedded in "
        f"{model['embedding_dim']} dimensions, a {net['grid']['sentences']} x "
        f"{net['grid']['tokens']} grid (sentences x tokens), {model['word_filters']} word "
        f"filters (width {model['word_kernel']}, k-max {model['word_k']}), "
        f"{model['sentence_filters']} sentence filters (width {model['sentence_kernel']}, "
        f"k-max {model['sentence_k']}), {model['hidden_units']} hidden units, and the wide "
        f"part ({model['wide_buckets']:,} hashed piece-pair buckets, scale "
        f"{model['wide_scale']:g}). {net['parameters']:,} weights, stored as "
        f"{net['weights']}.", "",
        "Training: " + ", ".join(f"{k} {v}" for k, v in net["training"].items()) + ".", "",
        "## Figures", "",
        f"Validation ({fig['validation']['of']}; {fig['validation']['rows']:,} rows): "
        f"balanced accuracy {_pct(fig['validation']['balanced_accuracy'])}, accuracy "
        f"{_pct(fig['validation']['accuracy'])}.", "",
        "Test sets, as is (no transfer), measured by `tlc base build`:", "",
        "| test set | rows | accuracy, this base (float16) | float32 source | "
        "right, float16 / float32 | labels agree (first rows) | max abs prob. diff |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for spec, t in fig["tests"].items():
        agree = t["agreement"]
        right = [_right(t[k]) for k in ("float16", "float32")]
        lines.append(f"| `{spec}` | {t['rows']:,} | {_pct(t['float16']['accuracy'])} | "
                     f"{_pct(t['float32']['accuracy'])} | "
                     + " / ".join("-" if r is None else f"{r:,}" for r in right) + " | "
                     f"{_pct(agree['labels_agree'])} of {agree['rows']:,} | "
                     f"{agree['max_abs_diff']:.2e} |")
    lines += [
        "", "## Size", "",
        f"{size['total_bytes']:,} bytes ({size['of']}): weights {size['weights_bytes']:,}, "
        f"tokenizer {size['tokenizer_bytes']:,}.", "",
        "## Rebuilding it", "",
        "From the data folder (trains the source with the recipe in tlc/train/recipes.py, "
        "evaluates it, packs it, and writes this card):", "",
        f"    {card['rebuild']}", "",
        "which trains as", "",
        f"    {card['source_command']}", "",
        f"This copy was {card['built']['how']}: source run "
        f"`{card['built']['source_run']['name']}`, whose run.json has sha256 "
        f"`{card['built']['source_run']['run_json_sha256']}`; packed {card['built']['packed']}.",
        "",
    ]
    return "\n".join(lines)
