"""The seed table's peers: TF-IDF + logistic regression and fastText, trained on exactly the
rows of the table's tlc runs (``benchmarks/seed_table.py`` drives this module).

Rows: a peer reads the config.json of the tlc run it stands beside and asks tlc's own
``choose_rows`` for that run's training and validation rows (same label budget, seed and
validation split), and checks the counts against the run's run.json. A peer sees the text and
labels of those training rows only: labelled rows outside the budget are never read, not even
as text (the TF-IDF vocabulary and the fastText input file are built from the training rows).
At 0 IMDB labels the peers stand beside the source run: the ``amazon`` training rows less its
validation split, balanced by undersampling once (the source draws a fresh balanced sample
each epoch), applied to IMDB as they are.

Choice: every setting in ``TFIDF_GRID`` / ``FASTTEXT_GRID`` is trained on each seed's
training rows and scored on that seed's validation rows (balanced accuracy, as tlc's early
stopping); the setting with the best mean over seeds wins (ties: the first listed). Only the
winner is then scored on a test set: it is trained again (both peers are deterministic here:
fastText on one thread with a fixed seed) and its validation score re-checked against the
first fit's. Results are cached under ``work`` by a key of the settings and the row indices,
so a re-run of the table reuses them.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from throughput import _quiet_fasttext, fasttext_text

# TF-IDF + LR: word 1-2 grams, sublinear tf, n-grams in at least 2 training documents (the
# settings benchmarks/throughput.py chose on validation); C is chosen here, per budget.
TFIDF = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2}
TFIDF_GRID = tuple({"C": c} for c in (1.0, 4.0, 16.0, 64.0))
LOGREG = {"max_iter": 1000}
# fastText: word bigrams, throughput.py's dim / lr, one thread and a fixed seed (so a fit is
# reproducible); the number of epochs is chosen here, per budget (few rows want more).
FASTTEXT = {"wordNgrams": 2, "dim": 50, "lr": 0.5, "minCount": 1, "loss": "softmax",
            "thread": 1, "seed": 0}
FASTTEXT_GRID = tuple({"epoch": e} for e in (5, 15, 40))
SYSTEMS = ("TF-IDF + LR", "fastText")
CACHE_FORMAT = 1


@dataclass
class Rows:
    """One tlc run's training and validation rows, as a peer gets them."""

    run: str
    train: tuple[list[str], list[str]]
    valid: tuple[list[str], list[str]]
    digest: str


def rows_of(run: Path, data_dir: str, *, balance_seed: int = 0) -> Rows:
    """The training and validation rows of tlc run ``run``, by tlc's own budget code."""
    from tlc.train.config import RunConfig
    from tlc.train.pipeline import choose_rows, load_training_split

    config = RunConfig.load(run / "config.json")
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    split = load_training_split(config, data_dir)
    train, valid = choose_rows(split.labels, config, config.data.train)
    got = (len(train), len(valid))
    want = (info["data"]["train_rows"], info["data"]["valid_rows"])
    if got != want:
        raise RuntimeError(f"{run}: tlc's budget code gives {got} training/validation rows, "
                           f"the run says it used {want}")
    if config.training.balance == "undersample":  # as the source does, once
        rng = np.random.default_rng(balance_seed)
        y = np.array([split.labels[i] for i in train])
        per_class = min(int((y == c).sum()) for c in np.unique(y))
        train = np.sort(np.concatenate([rng.choice(train[y == c], per_class, replace=False)
                                        for c in np.unique(y)]))
    digest = hashlib.sha256(np.asarray(train, "<i8").tobytes() + b"|"
                            + np.asarray(valid, "<i8").tobytes()).hexdigest()[:16]

    def pick(rows) -> tuple[list[str], list[str]]:
        return [split.texts[i] for i in rows], [split.labels[i] for i in rows]

    return Rows(str(run), pick(train), pick(valid), digest)


def balanced_accuracy(predicted: Sequence[str], labels: Sequence[str]) -> float:
    recalls = []
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        recalls.append(sum(predicted[i] == c for i in idx) / len(idx))
    return statistics.fmean(recalls)


def accuracy(predicted: Sequence[str], labels: Sequence[str]) -> float:
    return sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)


class TfidfLR:
    """The vectorizer is fit once on the training rows; each C is one logistic regression."""

    name = "TF-IDF + LR"
    grid = TFIDF_GRID

    def __init__(self, train: tuple[list[str], list[str]], work: Path) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(**TFIDF)
        self.x = self.vectorizer.fit_transform(train[0])
        self.y = train[1]

    def fit(self, params: dict):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(**LOGREG, **params).fit(self.x, self.y)
        return lambda texts: model.predict(self.vectorizer.transform(texts)).tolist()


class FastText:
    """The training rows go to one input file, in a seeded shuffled order (fastText reads its
    file in order, and the data sets are sorted by label)."""

    name = "fastText"
    grid = FASTTEXT_GRID

    def __init__(self, train: tuple[list[str], list[str]], work: Path) -> None:
        self.fasttext = _quiet_fasttext()
        texts, labels = train
        order = list(range(len(texts)))
        random.Random(0).shuffle(order)
        self.file = work / "fasttext.train.txt"
        with self.file.open("w", encoding="utf-8") as fh:
            for i in order:
                fh.write(f"__label__{labels[i]} {fasttext_text(texts[i])}\n")

    def fit(self, params: dict):
        model = self.fasttext.train_supervised(str(self.file), verbose=0, **FASTTEXT, **params)

        def predict(texts: list[str]) -> list[str]:
            out, _ = model.predict([fasttext_text(t) for t in texts])
            return [label[0][len("__label__"):] for label in out]
        return predict


PEERS = {TfidfLR.name: TfidfLR, FastText.name: FastText}


def settings() -> dict:
    return {"TF-IDF + LR": {"tfidf": {**TFIDF, "ngram_range": list(TFIDF["ngram_range"])},
                            "logistic_regression": LOGREG, "grid": list(TFIDF_GRID)},
            "fastText": {"fixed": FASTTEXT, "grid": list(FASTTEXT_GRID)}}


def peer_cell(system: str, labels: int, runs: list[Path], data_dir: str | None, work: Path,
              tests: dict[str, tuple[list[str], list[str]]], main: str = "imdb:test") -> dict:
    """One peer at one budget: every setting of its grid on each run's rows, the winner by
    mean validation score, and the winner alone on ``tests`` (the cell's accuracy is its
    score on ``tests[main]``). Cached in ``work``."""
    peer = PEERS[system]
    rows = [rows_of(r, data_dir) for r in runs]
    key = {"format": CACHE_FORMAT, "system": system, "settings": settings()[system],
           "rows": [r.digest for r in rows], "tests": {k: len(v[0]) for k, v in tests.items()}}
    work.mkdir(parents=True, exist_ok=True)
    slug = system.split()[0].lower().replace("-", "")
    cache = work / f"{slug}-{labels}.json"
    if cache.is_file():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("key") == json.loads(json.dumps(key)):
            print(f"  {system} at {labels:,} labels: reused", flush=True)
            return cached["cell"]
    started = time.perf_counter()
    valid: list[list[float]] = [[] for _ in peer.grid]
    for r in rows:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            model = peer(r.train, Path(tmp))
            for k, params in enumerate(peer.grid):
                predict = model.fit(params)
                valid[k].append(balanced_accuracy(predict(r.valid[0]), r.valid[1]))
    means = [statistics.fmean(v) for v in valid]
    best = max(range(len(means)), key=lambda k: (means[k], -k))  # ties: the first listed
    chosen = peer.grid[best]
    scores: dict[str, list[float]] = {name: [] for name in tests}
    recheck = []
    for r in rows:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            predict = peer(r.train, Path(tmp)).fit(chosen)
            recheck.append(balanced_accuracy(predict(r.valid[0]), r.valid[1]))
            for name, (texts, test_labels) in tests.items():
                scores[name].append(100 * accuracy(predict(texts), test_labels))
    imdb = scores[main]
    pooled = sum(len(r.valid[0]) for r in rows)
    cell = {
        "system": system, "labels": labels, "seeds": len(rows),
        "runs_rows_from": [r.run for r in rows],
        "train_rows": [len(r.train[0]) for r in rows],
        "valid_rows": [len(r.valid[0]) for r in rows],
        "selection": {
            "metric": "validation balanced accuracy, mean over the seeds' validation rows",
            "pooled_valid_rows": pooled,
            "candidates": [{"params": p, "valid": [100 * v for v in vs],
                            "valid_mean": 100 * m}
                           for p, vs, m in zip(peer.grid, valid, means, strict=True)],
            "chosen": chosen,
            "valid_recheck_equal": recheck == valid[best],
        },
        "accuracy": imdb, "mean": statistics.fmean(imdb),
        "std": statistics.stdev(imdb) if len(imdb) > 1 else 0.0,
        "min": min(imdb), "max": max(imdb),
        "other_tests": {name: {"accuracy": s, "mean": statistics.fmean(s)}
                        for name, s in scores.items() if name != main},
        "seconds": time.perf_counter() - started,
    }
    cache.write_text(json.dumps({"key": key, "cell": cell}, indent=2) + "\n", encoding="utf-8")
    print(f"  {system:<12} {labels:>6,} labels: {cell['mean']:.2f}% (chosen {chosen} on "
          f"{pooled:,} validation rows)", flush=True)
    return cell
