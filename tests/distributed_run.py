"""Driven by tests/test_distribute.py in a fresh interpreter (KERAS_BACKEND=jax, XLA_FLAGS
making 2 CPU devices): a tiny run on 2 devices, interrupted in epoch 2 and resumed, and the
same run on 1 device; prints what the test compares as one JSON line."""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

from tiny_model import TINY

from tlc.errors import TlcError
from tlc.train.config import RunConfig
from tlc.train.evaluate import evaluate
from tlc.train.pipeline import train
from tlc.train.trainer import Trainer

out = Path(sys.argv[1])


def synthetic(folder: Path, seed: int = 0) -> Path:
    """A learnable two-class set (the 200-review fixtures are too few for a CNN from scratch
    to beat chance): a few words lean each way, most are neutral, 10% of labels flipped."""
    rng = random.Random(seed)
    neutral = [f"w{i}" for i in range(60)]
    good, bad = ["fine", "great", "love", "solid", "works"], ["awful", "broke", "hate", "poor",
                                                              "junk"]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 400), ("test", 200)):
        rows = [["text", "label"]]
        for _ in range(n):
            label = rng.random() < 0.5
            lean = good if label else bad
            sentences = []
            for _ in range(rng.randint(1, 3)):
                words = [rng.choice(neutral) for _ in range(rng.randint(4, 7))]
                if rng.random() < 0.7:
                    words.insert(rng.randrange(len(words)), rng.choice(lean))
                sentences.append(" ".join(words) + ".")
            rows.append([" ".join(sentences), str(int(label ^ (rng.random() < 0.1)))])
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
    return folder


data = synthetic(out / "data")
config = RunConfig().override([*TINY, f"data.train={json.dumps(str(data))}",
                               "tokenizer.vocab_size=320",
                               "training.epochs=3", "training.patience=5",
                               "training.min_rows_per_epoch=1500", "training.learning_rate=0.003",
                               "training.batch_size=32"])
result: dict = {}

original = Trainer._save_checkpoint


def interrupt_in_epoch_2(self, model, progress, improved):
    if progress.epochs_done == 2:
        raise KeyboardInterrupt  # Ctrl-C before epoch 2's checkpoint reaches the disk
    original(self, model, progress, improved)


Trainer._save_checkpoint = interrupt_in_epoch_2
try:
    train(config, out / "two", quiet=True, devices=2)
except KeyboardInterrupt:
    result["interrupted_after"] = json.loads(
        (out / "two" / "checkpoint" / "progress.json").read_text())["epochs_done"]
Trainer._save_checkpoint = original
two = train(config, out / "two", quiet=True, resume=True, devices=2)
one = train(config, out / "one", quiet=True, devices=1)
for name, run in (("two", two), ("one", one)):
    report = evaluate(run, str(data / "test.csv"))
    info = json.loads((run.path / "run.json").read_text())
    result[name] = {"accuracy": report["accuracy"], "n": report["n"],
                    "distribution": info["distribution"],
                    "epochs": [h["epoch"] for h in info["training"]["history"]],
                    "loss": [h["loss"] for h in info["training"]["history"]]}
try:
    train(config, out / "three", quiet=True, devices=3)
except TlcError as err:
    result["three"] = str(err)
try:
    train(config.override(["training.batch_size=33"]), out / "odd", quiet=True, devices=2)
except TlcError as err:
    result["odd"] = str(err)
import jax  # noqa: E402

result["jax_devices"] = len(jax.devices())
print("RESULT " + json.dumps(result))
