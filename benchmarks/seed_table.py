"""The seed table on the real data: source pretraining, transfer and from-scratch runs, the
peers on the same label subsets, every tlc cell as the int8 file users get.

    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/seed_table.py
    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/seed_table.py --smoke  # minutes

Every tlc run is a plain ``tlc train`` / ``tlc evaluate`` / ``tlc export --quantize`` command
(printed as it starts, logged in ``RUNS/seed_table.log``), so any cell can be reproduced
alone. Finished runs under ``--runs`` are reused when made by the same arguments, and so are
evaluations, int8 files and peer results: an interrupted table continues where it stopped
(``--fresh`` retrains). Writes ``benchmarks/results/seed_table.json``, ``seed_table.md`` and
``learning_curve.png`` and prints the table.

Runs (tlc cells are scored on the full IMDB test set, 25,000 reviews, the source also on the
``amazon`` test set, 11,378):
  amazon                 source: amazon train, balanced by undersampling, GloVe 50d init
  imdb-0-self            the source self-trained on its own confident predictions for the 50k
                         unlabelled IMDB reviews (no IMDB label): the 0-label cell
  transfer-N-from-X-sS   N IMDB labels (seed S of the label subset), starting from X: the
                         self-trained model (``self``) or the source (``source``)
  ...-r2-GRID            a second round of self-training: the fine-tuned run labels the 50k
                         unlabelled reviews, the half it is surest of joins its N labels
  scratch-N-sS           N IMDB labels, GloVe 50d init, no source (the source's tokenizer)
Peers (``benchmarks/peers.py``): TF-IDF + LR and fastText on each transfer run's own training
rows (tlc's budget code, same seeds), at 0 labels on the source's ``amazon`` rows.

How choices are made (``SELECTION`` below, also in the JSON): where the table chooses between
alternatives (``START`` per budget, then ``ROUND2``; each peer's grid) it trains every
candidate on every seed and keeps the one with the best validation balanced accuracy, mean
over the seeds' own validation rows (the runs' validation splits, drawn from each seed's
label budget, so no label outside the budget is used; ties go to the first candidate listed,
the simpler). Only the chosen candidate of each cell is scored on a test set.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's tlc, not whichever one is installed
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

# ---------------------------------------------------------------------------- the recipe
# The network (MODEL), the grid (GRID) and the source's settings (SOURCE) are the package's
# own recipe (tlc/train/recipes.py), which `tlc base build reviews-en` trains too: the
# bundled base is this table's source. The settings by label budget (BUDGET), the ways a
# transfer trains (TRANSFER_*), self-training (SELF_TRAIN, ROUND2) live there too: `tlc train`
# starts from the bundled base with the recipe this table chose for its label count.
from tlc.train.recipes import (  # noqa: E402  (after sys.path)
    BUDGET,
    GLOVE,
    GRID,
    MODEL,
    ROUND2,
    SELF_TRAIN,
    SOURCE,
    TRANSFER_LARGE,
    TRANSFER_SMALL,
    TRANSFER_SMALL_ALL,
)

BUDGETS = tuple(BUDGET)
SEEDS = (0, 1, 2)
SEEDS_FULL = (0,)  # 25,000 labels is all of IMDB train: one subset, one run
SCRATCH: list[str] = [*MODEL]

# ---------------------------------------------------------------------------- the choices
# Stage 1, where a transfer starts: candidates per budget, first listed = the recipe's default
# (it wins ties). "self": the self-trained 0-label model; "source": the Amazon model as is;
# "START+VARIANT": that start with other settings. At 25,000 labels the wide part may want a
# larger learning rate (one run, seed 0: validation 91.28% at 1e-3 vs 90.60% at 3e-4, test
# 89.71% vs 90.14%; benchmarks/results/model_search.json), so both are candidates.
# At 100 and 1,250 labels the wide network may want everything trainable at 1e-3
# (TRANSFER_SMALL_ALL; model_search.json).
# Starts the first table on this network ranked last on validation (seed 0, 1,250 labels:
# the source frozen at 1e-4, 84.83%; the self-trained model at 25,000 labels, which the old
# network's table never chose) are left out so that the table fits in its three hours.
START = {
    100: {"self": TRANSFER_SMALL, "self+all-lr1e-3": TRANSFER_SMALL_ALL},
    1250: {"self": TRANSFER_SMALL, "self+all-lr1e-3": TRANSFER_SMALL_ALL},
    25000: {"source": TRANSFER_LARGE,
            "source+lr1e-3": [*TRANSFER_LARGE, "--set", "training.learning_rate=0.001"]},
}
# Stage 2, a second round of self-training on stage 1's winner, with the fine-tuned model as
# the teacher: none, or a round on one of these grids (the filters do not depend on the grid,
# so a round may read a larger one). Not a candidate at 25,000 labels: one round there costs
# about 15 minutes of this machine's 2 cores, more than the rest of that budget's runs.
# (ROUND2, the round's settings, is in tlc/train/recipes.py.)
# The 32x64 grid (a round reading longer reviews) was a second candidate; it costs 6 runs,
# about 20 minutes, and is left out for the same three hours.
ROUND2_GRIDS = {
    "24x48": ["--set", "tokenizer.max_sentences=24", "--set", "tokenizer.max_tokens=48"],
}
ROUND2_BUDGETS = (100, 1250)
SELECTION = (
    "Every choice is made on validation data from the training side only. Where the table "
    "chooses between alternatives (where a transfer starts, START; whether a second round of "
    "self-training and on which grid, ROUND2; each peer's setting), every candidate is "
    "trained on every seed and the one with the best validation balanced accuracy, averaged "
    "over the seeds, wins; ties go to the first candidate listed (the simpler). The "
    "validation rows are each run's own validation split, drawn from that seed's label "
    "budget (20% of 100, 10% of 1,250 and of 25,000): a larger split drawn from IMDB train "
    "outside the subset would use labels the budget does not have, and cross-validation of "
    "the tlc runs would cost k times the training. Averaging over the 3 seeds pools 3 x 20 = "
    "60 rows at 100 labels (one row is 1.7 points), 375 at 1,250 (0.27) and 2,500 at 25,000 "
    "(0.04): at 100 labels the choice is coarse, and the table says so. The candidates' "
    "scores are also their own early-stopping scores (each run keeps its best epoch on the "
    "same rows), so they are optimistic, alike for every candidate. The 0-label cell has no "
    "choice: no IMDB label exists to choose with, so the recipe's self-trained model is the "
    "cell (the source as is is shown as a reference, not a candidate). Only the chosen "
    "candidate of each cell is scored on a test set."
)

# ---------------------------------------------------------------------------- the bar
# int8 file, IMDB test set, mean over the label subsets; the source on the amazon test set.
BAR = {0: 85.5, 100: 86.0, 1250: 88.0, 25000: 91.3, "amazon": 93.5}
GOAL = {0: 87.0, 100: 87.5, 1250: 90.0, 25000: 92.0, "amazon": 94.0}
TALK = {("scratch", 1250): 70.4, ("scratch", 25000): 83.7, ("transfer", 1250): 86.3,
        ("transfer", 25000): 87.3, ("source", "amazon"): 93.3}  # the talk's, for reference

# ---------------------------------------------------------------------------- --smoke
# Tiny copies of the data sets (tlc's stratified subsets of the real files), tiny budgets, one
# epoch, two seeds: the whole code path in minutes. Never writes benchmarks/results.
SMOKE_ROWS = {("imdb", "train"): 600, ("imdb", "test"): 400, ("imdb", "unsup"): 300,
              ("amazon", "train"): 800, ("amazon", "test"): 300}
SMOKE_GLOVE_LINES = 20_000
SMOKE_LABELS = {100: 40, 1250: 100, 25000: 600}
SMOKE_SEEDS = (0, 1)
SMOKE_SET = ["--set", "training.epochs=1", "--set", "training.min_rows_per_epoch=0"]
SMOKE_SOURCE = ["--set", "tokenizer.vocab_size=1000"]


def env() -> dict[str, str]:
    """The subprocesses import this checkout's tlc too."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), e.get("PYTHONPATH")) if p)
    return e


def run(cmd: list[str], log: Path, check: bool = True) -> tuple[int, str]:
    shown = " ".join(shlex.quote(c) for c in cmd)
    print(f"$ {shown}", flush=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {shown}\n")
        fh.flush()
        start = fh.tell()
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env())
    if done.returncode and check:
        sys.exit(f"failed ({done.returncode}): {shown}\n  see {log}")
    with log.open("rb") as fh:  # what the command printed, for a refusal's message
        fh.seek(start)
        output = fh.read().decode("utf-8", "replace")
    return done.returncode, output


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Table:
    def __init__(self, runs: Path, data_dir: str, fresh: bool, smoke: bool) -> None:
        self.runs, self.data_dir, self.fresh, self.smoke = runs, data_dir, fresh, smoke
        self.tlc = [sys.executable, "-m", "tlc.cli"]
        self.log = runs / "seed_table.log"
        self.trained: list[Path] = []  # every run the table used, candidates included
        runs.mkdir(parents=True, exist_ok=True)
        self._tests: dict[str, tuple[list[str], list[str]]] = {}

    def train(self, name: str, args: list[str]) -> Path:
        """Train unless a finished run made by exactly these arguments, from the same
        ``--init`` / ``--tokenizer`` runs, is there: command.json holds the arguments and the
        sha256 of each such run's run.json, so a retrained source retrains what starts from
        it (a command.json of the arguments alone, as the table wrote before, is adopted)."""
        if self.smoke:
            args = [*args, *SMOKE_SET]
        out = self.runs / name
        made_by = out / "command.json"
        inputs = {a: sha256(Path(b) / "run.json") for a, b in zip(args, args[1:], strict=False)
                  if a in ("--init", "--tokenizer")}
        made = {"args": args, "inputs": inputs}
        same = False
        if made_by.is_file():
            before = json.loads(made_by.read_text())
            same = before == args if isinstance(before, list) else before == made
        self.trained.append(out)
        if (out / "run.json").is_file() and same and not self.fresh:
            print(f"  {name}: finished run reused", flush=True)
            made_by.write_text(json.dumps(made) + "\n")
            return out
        resume = (["--resume"] if same and (out / "checkpoint" / "progress.json").is_file()
                  else ["--force"])
        self.run_tlc(["train", *args, "--out", str(out), *resume])
        made_by.write_text(json.dumps(made) + "\n")
        return out

    def evaluate(self, out: Path, data: str) -> dict:
        """``tlc evaluate`` of the Keras model (kept beside the int8 file's score)."""
        report = out / "eval" / f"{data.replace(':', '_')}.json"
        if (not report.is_file() or self.fresh
                or report.stat().st_mtime < (out / "run.json").stat().st_mtime):
            self.run_tlc(["evaluate", str(out), data, "--out", str(report)])
        return json.loads(report.read_text(encoding="utf-8"))

    def run_tlc(self, args: list[str], check: bool = True) -> tuple[int, str]:
        return run([*self.tlc, *args, "--data-dir", self.data_dir], self.log, check)

    def test_set(self, data: str) -> tuple[list[str], list[str]]:
        if data not in self._tests:
            from tlc.data import open_dataset
            from tlc.data.dataset import parse_source

            name, split = parse_source(data)
            ex = open_dataset(name, self.data_dir).load(split)
            self._tests[data] = (ex.texts, ex.labels)
        return self._tests[data]

    def int8(self, out: Path, tests: tuple[str, ...]) -> dict:
        """``tlc export RUN --quantize`` and that file scored with ``tlc.runtime`` on
        ``tests``; a refusal by the export's guard is recorded, not fatal. Reused while the
        run's run.json is unchanged."""
        folder = self.runs / "int8"
        folder.mkdir(exist_ok=True)
        onnx, record = folder / f"{out.name}.onnx", folder / f"{out.name}.json"
        made_from = sha256(out / "run.json")
        info: dict = {}
        if record.is_file() and not self.fresh:
            info = json.loads(record.read_text(encoding="utf-8"))
            if info.get("run_json_sha256") != made_from:
                info = {}
        if not info:
            started = time.perf_counter()
            rc, output = self.run_tlc(["export", str(out), "--quantize", "--out", str(onnx),
                                       "--force"], check=False)
            info = {"run_json_sha256": made_from, "file": str(onnx),
                    "export_seconds": time.perf_counter() - started, "scores": {}}
            if rc:
                tail = [line for line in output.strip().splitlines() if line.strip()][-6:]
                info["refused"] = " / ".join(tail)
                print(f"  {out.name}: int8 export refused: {info['refused']}", flush=True)
            else:
                info["bytes"] = onnx.stat().st_size
        if "refused" not in info and any(t not in info["scores"] for t in tests):
            from tlc.runtime import Classifier
            from tlc.train.metrics import classification_report

            with Classifier.load(onnx) as clf:
                info["quantization"] = clf.quantization
                info["export_validation"] = clf.validation
                for data in tests:
                    if data in info["scores"]:
                        continue
                    texts, labels = self.test_set(data)
                    started = time.perf_counter()
                    proba = clf.predict_proba(texts)
                    y = [clf.labels.index(label) for label in labels]
                    report = classification_report(y, proba, list(clf.labels))
                    report["seconds"] = time.perf_counter() - started
                    info["scores"][data] = {k: report[k] for k in (
                        "accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "seconds")
                        if k in report}
        record.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return info


# ---------------------------------------------------------------------------- choosing


def validation(run_dir: Path) -> dict:
    """What run.json records about the run's validation split (its best epoch's weights)."""
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    v = info.get("validation") or {}
    t = info["training"]
    return {"run": run_dir.name, "rows": info["data"]["valid_rows"],
            "balanced_accuracy": 100 * v["balanced_accuracy"] if v else None,
            "accuracy": 100 * v["accuracy"] if v else None,
            "best_epoch": t["best_epoch"], "epochs_done": t["epochs_done"]}


def choose(stage: str, candidates: dict[str, list[Path]]) -> tuple[str, dict]:
    """The candidate with the best mean validation balanced accuracy over its seeds' runs
    (ties: the first listed)."""
    scored = []
    for name, runs in candidates.items():
        vals = [validation(r) for r in runs]
        mean = statistics.fmean(v["balanced_accuracy"] for v in vals)
        scored.append({"name": name, "valid_mean": mean, "runs": vals})
    best = max(range(len(scored)), key=lambda k: (scored[k]["valid_mean"], -k))
    rows = sum(v["rows"] for v in scored[best]["runs"])
    record = {"stage": stage, "metric": "validation balanced accuracy (%), mean over seeds",
              "pooled_valid_rows": rows, "one_row_points": 100 / rows if rows else None,
              "candidates": scored, "chosen": scored[best]["name"]}
    shown = ", ".join(f"{c['name']} {c['valid_mean']:.2f}" for c in scored)
    print(f"  choice, {stage}: {shown} -> {record['chosen']} ({rows:,} validation rows)",
          flush=True)
    return record["chosen"], record


# ---------------------------------------------------------------------------- cells


def spread(values: list[float | None]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals or len(vals) < len(values):
        return {"values": values, "mean": None, "std": None, "min": None, "max": None}
    return {"values": vals, "mean": statistics.fmean(vals),
            "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "min": min(vals), "max": max(vals)}


def cell(t: Table, name: str, kind: str, labels: int, budget: int | str, runs: list[Path],
         test: str = "imdb:test", selection: list[dict] | None = None,
         note: str | None = None) -> dict:
    keras = [t.evaluate(o, test) for o in runs]
    int8 = [t.int8(o, (test,)) for o in runs]
    infos = [json.loads((p / "run.json").read_text()) for p in runs]
    speeds = [i["training"]["docs_per_second"] for i in infos if i["training"]["docs_per_second"]]
    int8_acc = [100 * i["scores"][test]["accuracy"] if "scores" in i and test in i["scores"]
                else None for i in int8]
    mean8 = spread(int8_acc)["mean"]
    bar, goal = BAR.get(budget), GOAL.get(budget)
    graded = kind in ("transfer", "source")
    return {
        "name": name, "kind": kind, "labels": labels, "budget": budget, "test": test,
        "seeds": len(runs),
        "int8": {**spread(int8_acc),
                 "refused": {r.name: i["refused"] for r, i in zip(runs, int8, strict=True)
                             if "refused" in i},
                 "bytes": [i.get("bytes") for i in int8],
                 "macro_f1": [100 * i["scores"][test]["macro_f1"] for i in int8
                              if test in i.get("scores", {})],
                 "export_seconds": sum(i["export_seconds"] for i in int8),
                 "files": [i["file"] for i in int8]},
        "keras": {**spread([100 * r["accuracy"] for r in keras]),
                  "macro_f1": statistics.fmean(100 * r["macro_f1"] for r in keras),
                  "roc_auc": statistics.fmean(r["roc_auc"] for r in keras)},
        "bar": bar if graded else None, "goal": goal if graded else None,
        "vs_bar": mean8 - bar if graded and mean8 is not None and bar else None,
        "vs_goal": mean8 - goal if graded and mean8 is not None and goal else None,
        "talk": TALK.get((kind, labels)),
        "validation": [validation(r) for r in runs],
        "selection": selection or [], "note": note,
        "train_docs_per_second": statistics.fmean(speeds) if speeds else None,
        "peak_memory_mb": max(i["training"]["peak_memory_mb"] for i in infos),
        "train_seconds": sum(i["training"]["seconds"] for i in infos),
        "runs": [str(p) for p in runs],
    }


def fmt_acc(s: dict, seeds: int) -> str:
    if s["mean"] is None:
        return "refused" if not any(v is not None for v in s["values"]) else "partly refused"
    return f"{s['mean']:.2f}" + (f" ± {s['std']:.2f}" if seeds > 1 else "")


def signed(v: float | None) -> str:
    return "" if v is None else f"{v:+.2f}"


def markdown(result: dict) -> str:
    cells, peers = result["cells"], result["peers"]
    lines = [
        *(["**SMOKE RUN** (tiny copies of the data, tiny budgets, 1 epoch): not results.", ""]
          if result["smoke"] else []),
        "IMDB test set (25,000 reviews) unless marked, accuracy %; mean ± std over 3 label "
        "subsets where the budget is a sample. \"int8\" is the `tlc export --quantize` file "
        "scored with `tlc.runtime`; \"Keras\" the run itself. Bar and goal apply to transfer "
        "and the source (int8).",
        "",
        "| experiment | IMDB labels | int8 | Keras | bar | vs bar | goal | vs goal | "
        "chosen on validation | train docs/s | peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for c in cells:
        chosen = "; ".join(f"{s['stage']}: {s['chosen']}" for s in c["selection"])
        test = "" if c["test"] == "imdb:test" else f" ({c['test']})"
        lines.append(
            f"| {c['name']}{test} | {c['labels']:,} | {fmt_acc(c['int8'], c['seeds'])} | "
            f"{fmt_acc(c['keras'], c['seeds'])} | {c['bar'] or ''} | {signed(c['vs_bar'])} | "
            f"{c['goal'] or ''} | {signed(c['vs_goal'])} | {chosen} | "
            f"{c['train_docs_per_second'] or 0:,.0f} | {c['peak_memory_mb']:,.0f} |")
    lines += ["", "Peers on the same label subsets (0 labels: trained on `amazon`, the "
              "source's rows), chosen on the same validation rows:", "",
              "| peer | IMDB labels | accuracy | chosen on validation | amazon test |",
              "|---|---:|---:|---|---:|"]
    for p in peers:
        amazon = p["other_tests"].get("amazon:test")
        lines.append(f"| {p['system']} | {p['labels']:,} | "
                     f"{p['mean']:.2f}" + (f" ± {p['std']:.2f}" if p["seeds"] > 1 else "")
                     + f" | {p['selection']['chosen']} | "
                     + (f"{amazon['mean']:.2f}" if amazon else "") + " |")
    lines += ["", "Choices (validation balanced accuracy %, mean over the seeds' own "
              "validation rows; only the chosen candidate was scored on a test set):", "",
              "| IMDB labels | stage | candidates (validation) | chosen | validation rows |",
              "|---:|---|---|---|---:|"]
    for c in cells:
        for s in c["selection"]:
            cands = ", ".join(f"{x['name']} {x['valid_mean']:.2f}" for x in s["candidates"])
            lines.append(f"| {c['labels']:,} | {s['stage']} | {cands} | {s['chosen']} | "
                         f"{s['pooled_valid_rows']:,} |")
    for p in peers:
        s = p["selection"]
        cands = ", ".join(f"{x['params']} {x['valid_mean']:.2f}" for x in s["candidates"])
        lines.append(f"| {p['labels']:,} | {p['system']} | {cands} | {s['chosen']} | "
                     f"{s['pooled_valid_rows']:,} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- smoke data


def smoke_data(real: Path, folder: Path) -> Path:
    """Small copies of the data sets under ``folder`` (tlc's stratified subsets, seed 0)."""
    from tlc.data import open_dataset
    from tlc.data.budget import stratified_subset

    for (name, split), n in SMOKE_ROWS.items():
        path = folder / name / f"{split}.csv"
        if path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        ex = open_dataset(name, real).load(split)
        rows = (stratified_subset(ex.labels, count=n, seed=0, purpose="smoke")
                if ex.labels is not None else range(n))
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"] if ex.labels is not None else ["text"])
            for i in rows:
                w.writerow([ex.texts[i], ex.labels[i]] if ex.labels is not None
                           else [ex.texts[i]])
        tmp.replace(path)
    glove = folder / GLOVE
    if not glove.is_file():
        glove.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(real / GLOVE, "rt", encoding="utf-8") as src, \
                gzip.open(glove.with_suffix(".tmp"), "wt", encoding="utf-8") as dst:
            for k, line in enumerate(src):
                if k == SMOKE_GLOVE_LINES:
                    break
                dst.write(line)
        glove.with_suffix(".tmp").replace(glove)
    return folder


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("TLC_DATA_DIR"),
                        help="folder holding imdb/, amazon/, glove/ (default: $TLC_DATA_DIR)")
    parser.add_argument("--runs", default=None, help="where the runs go (finished ones are "
                        "reused; default runs/seed_table, with --smoke runs/seed_table-smoke)")
    parser.add_argument("--fresh", action="store_true", help="retrain every run")
    parser.add_argument("--out", default=None, help="output path without suffix (.json and "
                        ".md are written, learning_curve.png beside them; default "
                        "benchmarks/results/seed_table, with --smoke in the runs folder)")
    parser.add_argument("--smoke", action="store_true", help="tiny data, budgets and epochs "
                        "and two seeds: the whole code path in minutes (never writes "
                        "benchmarks/results)")
    args = parser.parse_args()
    if not args.data_dir:
        sys.exit("set TLC_DATA_DIR or pass --data-dir (the folder holding imdb/ and amazon/)")
    real = Path(args.data_dir).resolve()  # same runs whichever way it is named
    runs_dir = Path(args.runs or ROOT / "runs" / ("seed_table-smoke" if args.smoke
                                                  else "seed_table")).resolve()
    out = Path(args.out or (runs_dir / "results" / "seed_table" if args.smoke
                            else RESULTS / "seed_table")).resolve()
    if args.smoke and out.is_relative_to(RESULTS):
        sys.exit("--smoke never writes benchmarks/results: give another --out")
    data_dir = smoke_data(real, runs_dir / "data") if args.smoke else real
    labels_of = SMOKE_LABELS if args.smoke else {b: b for b in BUDGETS}
    seeds_small = SMOKE_SEEDS if args.smoke else SEEDS
    glove = str(data_dir / GLOVE)
    t = Table(runs_dir, str(data_dir), args.fresh, args.smoke)
    started = time.perf_counter()

    source = t.train("amazon", ["--data", "amazon", "--init-vectors", glove, *SOURCE,
                                *(SMOKE_SOURCE if args.smoke else [])])
    adapted = t.train("imdb-0-self", ["--data", "imdb", "--labels", "0", "--init", str(source),
                                      "--unlabelled", "imdb:unsup", *SELF_TRAIN])
    starts = {"self": adapted, "source": source}
    cells = [
        cell(t, "Amazon model (source)", "source", 0, "amazon", [source], test="amazon:test"),
        cell(t, "Amazon model as is (reference)", "reference", 0, 0, [source],
             note="the source applied to IMDB unchanged; not a candidate for any cell"),
        cell(t, "Amazon → IMDB, self-trained (transfer)", "transfer", 0, 0, [adapted],
             note="no IMDB labels, so no choice: the recipe's self-trained model"),
    ]
    chosen_runs: dict[int, list[Path]] = {}
    for budget in BUDGETS:
        labels = labels_of[budget]
        seeds = seeds_small if budget != BUDGETS[-1] else SEEDS_FULL
        common = ["--data", "imdb", "--labels", str(labels)]
        first = {
            name: [t.train(f"transfer-{labels}-from-{name}-s{s}",
                           [*common, "--seed", str(s), "--init",
                            str(starts[name.split("+")[0]]), *how, *BUDGET[budget]])
                   for s in seeds]
            for name, how in START[budget].items()}
        win, rec = choose(f"start ({' / '.join(first)})", first)
        selection = [rec]
        runs = first[win]
        if budget in ROUND2_BUDGETS:
            second = {"none": runs}
            for grid, sets in ROUND2_GRIDS.items():
                second[f"round 2 at {grid}"] = [
                    t.train(f"{r.name}-r2-{grid}",
                            [*common, "--seed", str(s), "--init", str(r), *BUDGET[budget],
                             *ROUND2, *sets]) for s, r in zip(seeds, runs, strict=True)]
            win2, rec2 = choose("second round of self-training", second)
            selection.append(rec2)
            runs = second[win2]
        chosen_runs[budget] = runs
        cells.append(cell(t, "Amazon → IMDB transfer", "transfer", labels, budget, runs,
                          selection=selection))
        print(f"  transfer {labels:>6,} labels: int8 {fmt_acc(cells[-1]['int8'], len(seeds))}",
              flush=True)
    for budget in BUDGETS:
        labels = labels_of[budget]
        seeds = seeds_small if budget != BUDGETS[-1] else SEEDS_FULL
        runs = [t.train(f"scratch-{labels}-s{s}",
                        ["--data", "imdb", "--labels", str(labels), "--seed", str(s),
                         "--init-vectors", glove, "--tokenizer", str(source), *GRID, *SCRATCH,
                         *BUDGET[budget]]) for s in seeds]
        cells.append(cell(t, "IMDB from scratch (GloVe 50d)", "scratch", labels, budget, runs))

    import peers as peer_module

    peers_started = time.perf_counter()
    tests = {"imdb:test": t.test_set("imdb:test")}
    peer_cells = []
    for system in peer_module.SYSTEMS:
        peer_cells.append(peer_module.peer_cell(
            system, 0, [source], str(data_dir), runs_dir / "peers",
            {**tests, "amazon:test": t.test_set("amazon:test")}))
        for budget in BUDGETS:
            # the rows of the stage-1 runs of the recipe's default start: every candidate of
            # a budget and seed has the same rows, so any would do
            rows_from = [runs_dir / f"transfer-{labels_of[budget]}-from-{next(iter(START[budget]))}"
                         f"-s{s}" for s in (seeds_small if budget != BUDGETS[-1]
                                            else SEEDS_FULL)]
            peer_cells.append(peer_module.peer_cell(
                system, labels_of[budget], rows_from, str(data_dir), runs_dir / "peers",
                tests))
    peers_seconds = time.perf_counter() - peers_started

    source_info = json.loads((source / "run.json").read_text())
    used = list(dict.fromkeys(t.trained))
    train_seconds = {p.name: json.loads((p / "run.json").read_text())["training"]["seconds"]
                     for p in used}
    result = {
        "benchmark": "seed_table",
        "smoke": args.smoke,
        "command": "TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/seed_table.py"
                   + (" --smoke" if args.smoke else ""),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "selection_policy": SELECTION,
        "bar": {str(k): v for k, v in BAR.items()},
        "goal": {str(k): v for k, v in GOAL.items()},
        "budget_of": {str(v): k for k, v in labels_of.items()},
        "source": {"run": str(source),
                   "train_docs_per_second": source_info["training"]["docs_per_second"],
                   "peak_memory_mb": source_info["training"]["peak_memory_mb"],
                   "train_seconds": source_info["training"]["seconds"],
                   "config": json.loads((source / "config.json").read_text())},
        "settings": {"model": MODEL, "grid": GRID, "source": SOURCE, "self_training": SELF_TRAIN,
                     "transfer_small": TRANSFER_SMALL, "transfer_large": TRANSFER_LARGE,
                     "scratch": SCRATCH, "budget": BUDGET, "start": START, "round2": ROUND2,
                     "round2_grids": ROUND2_GRIDS, "round2_budgets": ROUND2_BUDGETS,
                     "seeds": SEEDS, "seeds_full": SEEDS_FULL, "labels": labels_of,
                     "smoke": SMOKE_SET if args.smoke else None,
                     "peers": peer_module.settings()},
        "cells": cells,
        "peers": peer_cells,
        # Every run the table used, candidates included, trained by this invocation or reused.
        "train_seconds_total": sum(train_seconds.values()),
        "train_seconds_by_run": train_seconds,
        "export_seconds_total": sum(c["int8"]["export_seconds"] for c in cells),
        "peer_seconds_total": sum(p["seconds"] for p in peer_cells),
        "peer_seconds_this_invocation": peers_seconds,
        "wall_seconds_this_invocation": time.perf_counter() - started,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = markdown(result)
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    from learning_curve import plot

    png = plot(result, out.with_name("learning_curve.png"))
    print(table)
    print(f"-> {out.with_suffix('.json')}, {out.with_suffix('.md')}, {png}")


if __name__ == "__main__":
    main()
