"""The bundled model's figures: score ``sentiment-en`` (or ``--name``) on the full IMDB test
set (25,000 reviews) and the ``amazon`` test set (11,378) through ``tlc.runtime`` (the file
as installed, loaded by name), write ``benchmarks/results/bundled.json`` and ``.md``, and
rewrite the model's card from them: ``card.json``'s ``figures`` and ``size`` and the whole of
``CARD.md`` (rendered from card.json, so the two cannot disagree).

    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/bundled.py

The card's other facts (what it was trained on, its terms, how it was made) are written once
when the model is added and kept as they are. Needs only the core install plus the data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, not an installed tlc

from tlc import __version__  # noqa: E402
from tlc.data.dataset import open_dataset  # noqa: E402
from tlc.data.examples import row_text  # noqa: E402
from tlc.data.readers import read_records  # noqa: E402
from tlc.models import CARD_FILE, MODELS_DIR, resolve_model  # noqa: E402
from tlc.runtime import Classifier  # noqa: E402
from tlc.train.metrics import classification_report  # noqa: E402

TESTS = {"imdb:test": "IMDB", "amazon:test": "amazon"}
"""Test set -> the short name notices use (`tlc predict` with no model)."""
RESULTS = ROOT / "benchmarks" / "results"


def test_rows(spec: str, data_dir: str | None) -> tuple[list[str], list[str]]:
    """Texts and labels of NAME:SPLIT; a bad row stops the benchmark (a test set has none)."""
    name, split = spec.split(":")
    path = open_dataset(name, data_dir).path(split)
    texts, labels = [], []
    for record in read_records(path):
        text, problem = row_text(record, "text")
        if problem is not None:
            raise SystemExit(f"{path}: a bad row ({problem}); the figures need every row")
        texts.append(text)
        labels.append(record.fields["label"])
    return texts, labels


def report(truth: list[str], proba, names: tuple[str, ...]) -> dict:
    """Accuracy, balanced accuracy, macro F1 and the confusion matrix (rows: truth), as
    `tlc evaluate` computes them (:func:`tlc.train.metrics.classification_report`, plain
    numpy), with the rows and how many were right."""
    index = {n: i for i, n in enumerate(names)}
    r = classification_report(np.array([index[t] for t in truth]), proba, names)
    matrix = r["confusion_matrix"]
    return {"rows": r["n"], "right": sum(matrix[i][i] for i in range(len(names))),
            "accuracy": r["accuracy"], "balanced_accuracy": r["balanced_accuracy"],
            "macro_f1": r["macro_f1"], "confusion_matrix": matrix}


def measure(name: str, data_dir: str | None) -> dict:
    path = resolve_model(name)
    clf = Classifier.load(name)
    tests = {}
    for spec, short in TESTS.items():
        texts, truth = test_rows(spec, data_dir)
        start = time.perf_counter()
        _, proba = clf.score(texts)
        seconds = time.perf_counter() - start
        tests[spec] = {"short": short, **report(truth, proba, clf.labels),
                       "seconds": round(seconds, 2), "docs_per_second": round(len(texts) / seconds)}
        print(f"{spec}: {100 * tests[spec]['accuracy']:.2f}% of {len(texts):,} "
              f"({tests[spec]['docs_per_second']:,} docs/s)", file=sys.stderr)
    clf.close()
    data = path.read_bytes()
    return {
        "benchmark": "bundled", "model": name, "file": f"tlc/models/{name}/{path.name}",
        "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "labels": list(clf.labels), "tlc_version": __version__,
        "command": "TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/bundled.py",
        "machine": {"python": platform.python_version(), "cores": clf.threads,
                    "platform": platform.platform()},
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "tests": tests,
    }


def results_md(result: dict) -> str:
    lines = [f"# Bundled model `{result['model']}`", "",
             f"{result['file']}: {result['bytes']:,} bytes, sha256 `{result['sha256']}`, "
             f"tlc {result['tlc_version']}; measured {result['measured']} through "
             f"tlc.runtime.Classifier ({result['machine']['cores']} threads, on a shared "
             "machine: the speeds are indicative).", "",
             "| test set | rows | right | accuracy | balanced accuracy | macro F1 | docs/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for spec, t in result["tests"].items():
        lines.append(f"| `{spec}` | {t['rows']:,} | {t['right']:,} | {100 * t['accuracy']:.2f}% "
                     f"| {100 * t['balanced_accuracy']:.2f}% | {100 * t['macro_f1']:.2f}% | "
                     f"{t['docs_per_second']:,} |")
    return "\n".join(lines) + "\n"


def update_card(folder: Path, result: dict) -> dict:
    """card.json with this run's figures and size; CARD.md rendered from it."""
    card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    card["tlc_version"] = result["tlc_version"]
    card["figures"] = {
        "from": "benchmarks/results/bundled.json", "measured": result["measured"],
        "tests": {spec: {k: t[k] for k in ("short", "rows", "right", "accuracy",
                                           "balanced_accuracy", "macro_f1",
                                           "confusion_matrix")}
                  for spec, t in result["tests"].items()}}
    card["size"] = {"file": "model.onnx", "bytes": result["bytes"], "sha256": result["sha256"]}
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (folder / "CARD.md").write_text(render_card(card), encoding="utf-8")
    return card


def render_card(card: dict) -> str:
    """CARD.md: every fact of card.json, in prose and tables."""
    name, src, on, net, tr = (card["name"], card["source"], card["trained_on"],
                              card["network"], card["training"])
    labels = "; ".join(f"`{k}` = {v}" for k, v in card["labels"].items())
    m = net["model"]
    lines = [
        f"# Model `{name}`", "",
        f"{card['summary']}.", "",
        f"Bundled with tlc {card['tlc_version']} (trained with tlc "
        f"{card['trained_with']['tlc_version']}, Keras {card['trained_with']['keras_version']}, "
        f"{card['trained_with']['backend']}); `pip install tlc` alone scores with it:", "",
        f"    tlc predict reviews.csv                 # no model given: {name}",
        f"    tlc predict {name} reviews.csv",
        f"    Classifier.load(\"{name}\").predict([\"A wonderful film.\"])", "",
        f"Labels: {labels}. {card['labels_note']}", "",
        "## Trained on", "",
        f"Start: {src['what']} (run `{src['run']}`, run.json sha256 `{src['run_json_sha256']}`). "
        f"The source was trained on {_lower(src['trained_on']['description'])} File "
        f"`{src['trained_on']['file']}`: {src['trained_on']['rows']:,} reviews, of which "
        f"{src['trained_on']['train_rows']:,} trained it; base `reviews-en`'s card lists its "
        "collections and their references.", "",
        f"Then it trained on {_lower(on['description'])} {on['train_rows']:,} trained the "
        f"network and {on['valid_rows']:,} were its validation split.", "",
        *[f"{s}" for s in src["trained_on"].get("other_sources", [])], "",
        "## Terms of the data", "",
        *[f"- {t}" for t in card["terms"]], "",
        "## Network", "",
        f"Denil-style document CNN: {net['vocab_size']:,} sentencepiece pieces embedded in "
        f"{m['embedding_dim']} dimensions, a {net['grid']['sentences']} x "
        f"{net['grid']['tokens']} grid (sentences x tokens), {m['word_filters']} word filters "
        f"(width {m['word_kernel']}, k-max {m['word_k']}), {m['sentence_filters']} sentence "
        f"filters (width {m['sentence_kernel']}, k-max {m['sentence_k']}), {m['hidden_units']} "
        f"hidden units, and the wide part ({m['wide_buckets']:,} hashed piece-pair buckets, "
        f"scale {m['wide_scale']}).", "",
        f"Transfer: from {tr['start']}; trainable: {tr['trainable']}; "
        + ", ".join(f"{k} {v}" for k, v in tr["settings"].items())
        + f"; best epoch {tr['best_epoch']} of {tr['epochs_done']}. Recipe: {tr['recipe']}.", "",
        f"Export: {card['export']['how']}; {card['export']['check']}.", "",
        "## Figures", "",
        f"Validation ({card['validation']['of']}; {card['validation']['rows']:,} rows): "
        f"accuracy {100 * card['validation']['accuracy']:.2f}%.", "",
    ]
    fig = card.get("figures")
    if fig:
        lines += [f"Test sets, the file as shipped (int8), scored through tlc.runtime by "
                  f"benchmarks/bundled.py ({fig['from']}, {fig['measured']}):", "",
                  "| test set | rows | right | accuracy | balanced accuracy | macro F1 |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for spec, t in fig["tests"].items():
            lines.append(f"| `{spec}` | {t['rows']:,} | {t['right']:,} | "
                         f"{100 * t['accuracy']:.2f}% | {100 * t['balanced_accuracy']:.2f}% | "
                         f"{100 * t['macro_f1']:.2f}% |")
        lines += ["", "The Amazon figure is out of the final training's domain: the network "
                  "last trained on movie reviews (its source trained on the `amazon` training "
                  "file, whose test file this is).", ""]
    else:
        lines += ["(not measured yet: run benchmarks/bundled.py)", ""]
    if card.get("size"):
        lines += ["## Size", "", f"{card['size']['file']}: {card['size']['bytes']:,} bytes, "
                  f"sha256 `{card['size']['sha256']}`.", ""]
    made = card["made"]
    lines += ["## How it was made", "",
              f"Run {made['run']}, run.json sha256 `{made['run_json_sha256']}`; file "
              f"{made['file']} (the seed table's IMDB test accuracy for it: "
              f"{100 * made['seed_table_imdb_test']:.2f}%).", ""]
    return "\n".join(lines)


def _lower(sentence: str) -> str:
    """A card sentence continued mid-sentence: "The 25,000 ..." -> "the 25,000 ..."."""
    return sentence[:1].lower() + sentence[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="sentiment-en", help="the bundled model to measure")
    parser.add_argument("--data-dir", default=os.environ.get("TLC_DATA_DIR"))
    parser.add_argument("--no-card", action="store_true", help="leave the card as it is")
    args = parser.parse_args()
    result = measure(args.name, args.data_dir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bundled.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "bundled.md").write_text(results_md(result), encoding="utf-8")
    if not args.no_card:
        update_card(MODELS_DIR / args.name, result)
    print(f"wrote {RESULTS / 'bundled.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
