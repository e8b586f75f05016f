"""The runs that chose the seed table's network (``docs/model.md``), collected into one file.

    python benchmarks/model_search.py --runs RUNS_DIR

Reads the finished run folders named in ``RUNS`` below (each trained by the ``tlc train``
command that ``docs/model.md`` lists, evaluated with ``tlc evaluate RUN amazon:test`` or
``imdb:test``) and writes ``benchmarks/results/model_search.json`` and ``.md``: each run's
model settings, the validation score the choice was made on (balanced accuracy on the run's
own validation split) and, for the record, its test accuracy. Nothing is trained here: the
runs take about 10 minutes each on 2 cores, and a missing one is reported, not faked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (run folder, what it is, test set it was evaluated on)
RUNS = [
    ("amazon-k1f64", "source: k=1, 64 word filters", "amazon_test"),
    ("amazon-k1f64-w", "source: + wide part, scale 1", "amazon_test"),
    ("amazon-k1f64-w300", "source: + wide part, scale 300", "amazon_test"),
    ("amazon-k1f64-w300d5", "source: + wide part, scale 300, dropout 0.5", "amazon_test"),
    ("t25k-k1f64", "25,000 IMDB labels from amazon-k1f64", "imdb_test"),
    ("t25k-k1f64-w", "25,000 IMDB labels from amazon-k1f64-w", "imdb_test"),
    ("t25k-k1f64-w300", "25,000 IMDB labels from amazon-k1f64-w300", "imdb_test"),
    ("t25k-k1f64-w300d5", "25,000 IMDB labels from amazon-k1f64-w300d5", "imdb_test"),
    ("imdb-0-self-w", "0 IMDB labels: amazon-k1f64-w300d5 self-trained, prior em", "imdb_test"),
    ("t1250-w-s0", "1,250 IMDB labels (seed 0) from imdb-0-self-w", "imdb_test"),
    ("t100-w-s0", "100 IMDB labels (seed 0) from imdb-0-self-w", "imdb_test"),
    ("amazon-k1f64-w300d5", "the chosen source as is on IMDB (0 labels)", "imdb_test"),
    ("imdb-0-self-bal", "0 IMDB labels: amazon-k1f64-w300d5 self-trained, prior balanced",
     "imdb_test"),
    ("t1250-bal-s0", "1,250 IMDB labels (seed 0) from imdb-0-self-bal", "imdb_test"),
    ("t100-bal-s0", "100 IMDB labels (seed 0) from imdb-0-self-bal", "imdb_test"),
    ("t1250-src-s0", "1,250 IMDB labels (seed 0) from the source, embedding frozen, 1e-4",
     "imdb_test"),
    ("t1250-bal-lr1e3-s0", "1,250 IMDB labels (seed 0) from imdb-0-self-bal, all trainable, "
     "1e-3", "imdb_test"),
    ("t100-bal-lr1e3-s0", "100 IMDB labels (seed 0) from imdb-0-self-bal, all trainable, 1e-3",
     "imdb_test"),
    ("t25k-w-lr1e3", "25,000 IMDB labels from amazon-k1f64-w300d5, learning rate 1e-3",
     "imdb_test"),
    ("t25k-w-newhead", "25,000 IMDB labels from amazon-k1f64-w300d5, a new head (wide part "
     "from zero)", "imdb_test"),
]
MODEL_KEYS = ("word_k", "word_filters", "wide_buckets", "wide_scale", "wide_dropout")


def collect(runs: Path) -> list[dict]:
    rows = []
    for name, what, test in RUNS:
        folder = runs / name
        row = {"run": name, "what": what, "test_set": test.replace("_", ":")}
        try:
            info = json.loads((folder / "run.json").read_text())
            config = json.loads((folder / "config.json").read_text())
            report = json.loads((folder / "eval" / f"{test}.json").read_text())
        except FileNotFoundError as missing:
            row["missing"] = str(missing.filename)
            rows.append(row)
            continue
        valid = info.get("validation") or {}
        row.update({
            "model": {k: config["model"].get(k) for k in MODEL_KEYS},
            "validation_rows": valid.get("n"),
            "validation_balanced_accuracy": (None if valid.get("balanced_accuracy") is None
                                             else 100 * valid["balanced_accuracy"]),
            "best_epoch": info["training"].get("best_epoch"),
            "epochs": info["training"].get("epochs_done"),
            "self_training": info.get("self_training"),
            "test_accuracy": 100 * report["accuracy"],
            "test_roc_auc": report.get("roc_auc"),
        })
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| run | what | validation (balanced, rows) | best epoch | test set | test accuracy |",
             "|---|---|---:|---:|---|---:|"]
    for r in rows:
        if "missing" in r:
            lines.append(f"| {r['run']} | {r['what']} | missing: {r['missing']} | | | |")
            continue
        v = r["validation_balanced_accuracy"]
        valid = "none" if v is None else f"{v:.2f} ({r['validation_rows']:,})"
        lines.append(f"| {r['run']} | {r['what']} | {valid} | {r['best_epoch']} of "
                     f"{r['epochs']} | {r['test_set']} | {r['test_accuracy']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", required=True, help="the folder holding the run folders")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "model_search"))
    args = parser.parse_args()
    rows = collect(Path(args.runs))
    if all("missing" in r for r in rows):
        sys.exit(f"none of the runs is under {args.runs}")
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({
        "benchmark": "model_search", "runs_dir": str(args.runs),
        "command": "python benchmarks/model_search.py --runs RUNS_DIR",
        "selection": "validation balanced accuracy of each run's own validation split; "
                     "test accuracy recorded, not used", "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
