"""Self-training on an imbalanced target: the class prior it estimates and respects.

The fixture is synthetic (word lists), so that the effect of the prior is large, known and
quick to train on: a source of 86% positive "product" reviews and a target of 88% positive
"film" reviews that share the sentiment words. Every review holds one *weak* word (its class's
with probability 0.65) and 0 to 2 *strong* ones (its class's with probability 0.95); 40% hold
no strong word, and on those the class prior decides: a model calibrated to equal classes
follows the weak word (65% right), one calibrated to the target's 88% says positive (88%).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tlc.train.config import RunConfig
from tlc.train.evaluate import predict_proba
from tlc.train.pipeline import choose_rows, train
from tlc.train.run import load_run

TINY = [
    # a vocabulary of whole words, or nearly (the word lists hold little else)
    "tokenizer.vocab_size=50", "tokenizer.byte_fallback=false",
    "tokenizer.max_sentences=4", "tokenizer.max_tokens=8",
    "model.embedding_dim=16", "model.word_filters=16", "model.sentence_filters=8",
    "model.hidden_units=8", "model.dropout=0.1", "training.epochs=3", "training.batch_size=32",
    "training.learning_rate=0.01", "training.min_rows_per_epoch=0", "training.patience=0",
]
STRONG = {"1": ["great", "excellent", "superb", "wonderful"],
          "0": ["awful", "terrible", "horrible", "dreadful"]}
WEAK = {"1": ["fine", "nice"], "0": ["odd", "slow"]}
NOUNS = {"source": ["product", "battery", "price", "box", "charger"],
         "target": ["film", "actor", "plot", "scene", "ending"]}
FILLER = ["new", "long", "big", "here", "red"]


def reviews(n: int, positive: float, domain: str, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = "1" if rng.random() < positive else "0"
        other = "0" if label == "1" else "1"
        words = [rng.choice(WEAK[label if rng.random() < 0.65 else other])]
        for _ in range(rng.choice([0, 1, 2], p=[0.4, 0.3, 0.3])):
            words.append(rng.choice(STRONG[label if rng.random() < 0.95 else other]))
        while len(words) < 3:
            words.append(rng.choice(FILLER))
        rng.shuffle(words)
        rows.append((" ".join(f"{w} {rng.choice(NOUNS[domain])}." for w in words),
                     label))
    return rows


def write(path: Path, rows, labelled: bool = True) -> str:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"] if labelled else ["text"])
        out.writerows(rows if labelled else [(text,) for text, _ in rows])
    return str(path)


def accuracy(run_path: Path, rows) -> float:
    proba = predict_proba(load_run(run_path), [text for text, _ in rows])
    return float((proba.argmax(1) == np.array([int(label) for _, label in rows])).mean())


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    root = tmp_path_factory.mktemp("imbalanced")
    source = root / "source"
    target_train = write(root / "target.csv", reviews(200, 0.88, "target", 2))
    unlabelled = write(root / "unsup.csv", reviews(2000, 0.88, "target", 3), labelled=False)
    # balance=none: the source's outputs are calibrated to its own 86% (recorded in run.json);
    # its vocabulary also learns the target's words, as `tlc tokenizer train` on both would
    source_file = write(root / "source.csv", reviews(1500, 0.86, "source", 1))
    train(RunConfig().override([
        *TINY, f"data.train={json.dumps(source_file)}",
        f"data.tokenizer_text={json.dumps([unlabelled])}",
        "training.balance=none", "training.epochs=8"]), source, quiet=True)
    test = reviews(1500, 0.88, "target", 4)
    return root, source, target_train, unlabelled, test


def self_train(root: Path, source: Path, target: str, unlabelled: str, prior: str,
               *sets: str) -> Path:
    out = root / f"self-{prior}{len(sets)}"
    config = RunConfig().override([
        *TINY, f"data.train={json.dumps(target)}", "data.labels=0",
        f"transfer.init={json.dumps(str(source))}",
        f"self_training.unlabelled={json.dumps([unlabelled])}",
        f"self_training.prior={prior}", *sets])
    train(config, out, quiet=True)
    return out


def test_em_self_training_respects_the_target_prior(imbalanced):
    root, source, target, unlabelled, test = imbalanced
    info = json.loads((source / "run.json").read_text())
    assert info["calibration"]["prior"][1] == pytest.approx(0.86, abs=0.03)
    as_is = accuracy(source, test)

    balanced = self_train(root, source, target, unlabelled, "balanced")
    em = self_train(root, source, target, unlabelled, "em")
    b, e = accuracy(balanced, test), accuracy(em, test)
    # the fixture does what it is for: equal counts teach equal classes, which costs the
    # reviews without a strong word
    assert b < as_is - 0.03, (as_is, b, e)
    # the EM prior keeps the self-trained model at or above the source as is (1,500 test
    # reviews: one point is 15 reviews)
    assert e >= as_is - 0.01, (as_is, b, e)

    record = json.loads((em / "run.json").read_text())
    st = record["self_training"]
    assert st["prior_mode"] == "em" and st["source_prior_from"].startswith("training rows")
    assert st["target_prior"]["1"] == pytest.approx(0.88, abs=0.05)
    counts = st["pseudo_labels"]
    assert counts["1"] / (counts["0"] + counts["1"]) == pytest.approx(
        st["target_prior"]["1"], abs=0.01)
    assert record["calibration"]["by"] == "self_training.prior=em"
    assert record["calibration"]["prior"] == pytest.approx(
        [st["target_prior"]["0"], st["target_prior"]["1"]], abs=1e-5)
    # the head's offset calibrates the model to that prior on the unlabelled text
    unlabelled_texts = [row[0] for row in csv.reader(open(unlabelled, encoding="utf-8"))][1:]
    mean = predict_proba(load_run(em), unlabelled_texts).mean(axis=0)
    assert mean[1] == pytest.approx(st["target_prior"]["1"], abs=1e-3)
    old = json.loads((balanced / "run.json").read_text())["self_training"]
    assert old["pseudo_labels"]["0"] == old["pseudo_labels"]["1"] and "target_prior" not in old


def test_labels_prior_and_the_keep_source_check(imbalanced):
    root, source, target, unlabelled, test = imbalanced
    # 200 labelled target rows: 180 train (their shares are the prior), 20 validate
    run = self_train(root, source, target, unlabelled, "labels", "data.labels=200")
    st = json.loads((run / "run.json").read_text())["self_training"]
    labels = [label for _, label in csv.reader(open(target, encoding="utf-8"))][1:]
    config = load_run(run).config
    train_rows, _ = choose_rows(labels, config, target)
    shares = np.bincount([int(labels[i]) for i in train_rows], minlength=2) / len(train_rows)
    assert [st["target_prior"]["0"], st["target_prior"]["1"]] == pytest.approx(shares, abs=1e-6)
    counts = st["pseudo_labels"]
    assert counts["1"] / (counts["0"] + counts["1"]) == pytest.approx(shares[1], abs=0.01)
    assert st["valid_accuracy"]["rows"] == 20 and st["kept"] in ("self-trained", "source")
    assert st["valid_accuracy"]["self_trained"] >= st["valid_accuracy"]["source"] or \
        st["kept"] == "source"


def test_a_worse_self_trained_model_gives_way_to_the_source(imbalanced):
    root, source, target, unlabelled, test = imbalanced
    # a learning rate this high wrecks the network; the validation rows show it
    run = self_train(root, source, target, unlabelled, "em", "data.labels=200",
                     "training.learning_rate=5.0")
    record = json.loads((run / "run.json").read_text())
    st = record["self_training"]
    assert st["kept"] == "source"
    assert st["valid_accuracy"]["self_trained"] < st["valid_accuracy"]["source"]
    assert record["calibration"]["by"].startswith("the source run")
    src, out = load_run(source).model, load_run(run).model
    for a, b in zip(src.get_weights(), out.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert accuracy(run, test) == accuracy(source, test)
