"""The text export's graph over the real tokens against the fixed-grid graph it replaces, on
the full IMDB and Amazon test sets: the same probabilities, within 1e-5.

    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/parity.py [RUN ...]

For each run (default: the seed table's 25,000-label transfer model and its Amazon source
model, both 24 x 48 grids) both graphs are built from the same Keras weights, raw text in:
``packed_text_classifier`` (what ``tlc export`` writes now, :mod:`tlc.export.packed`) and
``text_classifier(network_to_onnx(...))`` (the fixed (N, sentences, tokens) grid and tf2onnx's
network, what ``tlc export`` wrote before). Each is also quantised with every embedding row
at 8 bits (the same codes for both, since they are coded from the same weights), so the
graphs are compared under quantised weights too. Every file scores the 25,000 IMDB and the
11,378 Amazon test reviews through ``tlc.runtime.Classifier`` (2 threads, batch 32, texts
grouped by length); the script reports the largest |probability difference|, how many
documents differ by more than 1e-5, how many are bit-identical, and label agreement, and
exits with status 1 if any document differs by more than 1e-5.

Writes ``benchmarks/results/parity.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's tlc, not whichever one is installed
    sys.path.insert(0, str(ROOT))
SEED_RUNS = ROOT / "runs" / "seed_table"
DEFAULT_RUNS = ("transfer-25000-s0", "amazon")
TOLERANCE = 1e-5
SETS = (("imdb", "test"), ("amazon", "test"))


def graphs(run) -> dict[str, bytes]:
    """float32 and every-row-8-bit files of both graphs for ``run``."""
    import tlc.export  # noqa: F401  (import order: extensions before TensorFlow)
    from tlc import metadata as meta
    from tlc.export.compact import compact
    from tlc.export.compose import packed_text_classifier, text_classifier
    from tlc.export.network import network_to_onnx
    from tlc.export.quantize import quantize_weights

    grid = run.tokenizer.config
    built = {
        "packed": compact(packed_text_classifier(run.model, run.config.model, run.tokenizer,
                                                 run.labels)),
        "fixed grid": compact(text_classifier(network_to_onnx(
            run.model, grid.max_sentences, grid.max_tokens), run.tokenizer, run.labels)),
    }
    out = {}
    for name, model in built.items():
        for kind, m in (("float32", model), ("int8 (every row 8 bits)",
                                             compact(quantize_weights(model)[0]))):
            meta.set_metadata(m, {meta.FORMAT: meta.METADATA_FORMAT, meta.LABELS: run.labels})
            out[f"{name}, {kind}"] = m.SerializeToString()
    return out


def score(files: dict[str, bytes], texts: list[str]) -> dict[str, tuple[np.ndarray, float]]:
    from tlc.runtime import Classifier

    out = {}
    for name, data in files.items():
        with Classifier(data, threads=2) as clf:
            start = time.perf_counter()
            proba = clf.predict_proba(texts)
            out[name] = (proba, time.perf_counter() - start)
    return out


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    diff = np.abs(a - b).max(axis=1)
    return {"max_abs_diff": float(diff.max()), "beyond_1e-5": int((diff > TOLERANCE).sum()),
            "bit_identical_share": round(float((diff == 0).mean()), 5),
            "label_agreement": float((a.argmax(1) == b.argmax(1)).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = ", ".join(str(SEED_RUNS / r) for r in DEFAULT_RUNS)
    parser.add_argument("runs", nargs="*", help=f"run folders (default: {default})")
    parser.add_argument("--data-dir", default=None, help="default: $TLC_DATA_DIR")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "parity"))
    args = parser.parse_args()
    from tlc.data import open_dataset
    from tlc.train.run import load_run

    runs = [Path(r) for r in args.runs] or [SEED_RUNS / r for r in DEFAULT_RUNS]
    data = {f"{name}:{split}": open_dataset(name, args.data_dir).load(split)
            for name, split in SETS}
    rows, failed = [], False
    for path in runs:
        run = load_run(path, purpose="export")
        files = graphs(run)
        for source, examples in data.items():
            texts = list(examples.texts)
            truth = np.array([run.labels.index(y) if y in run.labels else -1
                              for y in examples.labels])
            scored = score(files, texts)
            for kind in ("float32", "int8 (every row 8 bits)"):
                (new, new_s), (old, old_s) = (scored[f"packed, {kind}"],
                                              scored[f"fixed grid, {kind}"])
                row = {"run": str(path.relative_to(ROOT) if path.is_relative_to(ROOT)
                                  else path), "data": source, "documents": len(texts),
                       "weights": kind, **compare(new, old),
                       "accuracy_packed": round(100 * float((new.argmax(1) == truth).mean()), 3),
                       "accuracy_fixed_grid": round(100 * float((old.argmax(1) == truth).mean()),
                                                    3),
                       "seconds_packed": round(new_s, 1), "seconds_fixed_grid": round(old_s, 1)}
                failed |= row["beyond_1e-5"] > 0
                rows.append(row)
                print(f"{row['run']:<36} {source:<12} {kind:<24} max |dp| "
                      f"{row['max_abs_diff']:.2e}, {row['beyond_1e-5']} beyond 1e-5, "
                      f"{100 * row['bit_identical_share']:.2f}% bit-identical, "
                      f"accuracy {row['accuracy_packed']:.2f}% / {row['accuracy_fixed_grid']:.2f}%",
                      flush=True)
    result = {"benchmark": "parity", "tolerance": TOLERANCE,
              "command": "TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/parity.py",
              "threads": 2, "rows": rows, "passed": not failed}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = ["Packed graph (what `tlc export` writes) vs the fixed-grid graph, same weights, raw "
             "text in; max |probability difference| per document.", "",
             "| run | data | weights | documents | max abs diff | beyond 1e-5 | bit-identical "
             "| labels agree | accuracy packed / fixed grid | seconds packed / fixed grid |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['run']} | {r['data']} | {r['weights']} | {r['documents']:,} | "
              f"{r['max_abs_diff']:.2e} | {r['beyond_1e-5']} | "
              f"{100 * r['bit_identical_share']:.2f}% | {100 * r['label_agreement']:.2f}% | "
              f"{r['accuracy_packed']:.2f}% / {r['accuracy_fixed_grid']:.2f}% | "
              f"{r['seconds_packed']} / {r['seconds_fixed_grid']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"-> {out.with_suffix('.json')}, {out.with_suffix('.md')}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
