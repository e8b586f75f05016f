"""Export benchmark on the real models: size, accuracy, agreement and speed, float32 vs int8.

    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/export.py

For each run (default: the seed table's best transfer models, at 25,000 labels and at 1,250
labels after the second round of self-training, from ``benchmarks/seed_table.py``) it calls
``tlc export`` as a user would: float32, and ``--quantize`` (guarded; it tries a file 3.6x
smaller than float32 with each embedding row at 3 to 8 bits, then 3.2x, then every row at 8
bits, and keeps the first the guard accepts). The table says how many rows got each width,
what the guard refused and its agreement on the export's held-out text. Every file is then
scored on the full IMDB test set, raw text in and label out: accuracy, label agreement with the
float32 file, and documents/second (batch 256, onnxruntime with 2
intra-op threads, one session per file; the files timed in alternation, median of five passes
over all 25,000 reviews; one pass varies by up to 16% on this 2-core machine, more than the
files differ), and the speed ratio to the float32 file, pass by pass (median).

Writes ``benchmarks/results/export.json`` and ``.md`` and prints the table. The float32 and
int8 files of the first run stay in ``runs/bench/`` (``model-float32.onnx``,
``model-int8.onnx``) for ``benchmarks/throughput.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED_RUNS = ROOT / "runs" / "seed_table"
BENCH = ROOT / "runs" / "bench"
BATCH, THREADS = 256, 2
PASSES = 5
# The seed table's best transfer models at 25,000 and at 1,250 labels.
DEFAULT_RUNS = ("transfer-25000-s0", "transfer-1250-s0-self")


def export(run: Path, out: Path, extra: list[str], data_dir: str | None) -> dict:
    """`tlc export` as a user runs it; returns the validation stored in the file."""
    cmd = [sys.executable, "-m", "tlc.cli", "export", str(run), "--out", str(out), "--force",
           *extra]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    print(done.stderr.strip() + "\n" + done.stdout.strip(), flush=True)
    from tlc.metadata import read_metadata
    from tlc.session import open_session

    props = read_metadata(open_session(out.read_bytes()).get_modelmeta().custom_metadata_map)
    return {"export_seconds": time.perf_counter() - started,
            "validation": props.get("tlc.validation"),
            "quantization": props.get("tlc.quantization")}


def score(session, texts: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    probs = [session.run(["probabilities"], {"text": texts[i:i + BATCH]})[0]
             for i in range(0, len(texts), BATCH)]
    return np.concatenate(probs), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=[str(SEED_RUNS / r) for r in DEFAULT_RUNS])
    parser.add_argument("--data-dir", default=os.environ.get("TLC_DATA_DIR"))
    parser.add_argument("--limit", type=int, default=None,
                        help="score only the first N test reviews (smoke runs; the results "
                        "then go to export.partial.json)")
    args = parser.parse_args()
    for run in args.runs:
        if not (Path(run) / "run.json").is_file():
            sys.exit(f"{run}: no finished run; make the seed table's runs first:\n"
                     "  TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/seed_table.py")

    import onnxruntime

    from tlc.data import open_dataset
    from tlc.session import open_session

    test = open_dataset("imdb", args.data_dir).load("test")
    texts = np.array(test.texts[:args.limit], dtype=object)
    BENCH.mkdir(parents=True, exist_ok=True)

    rows = []
    for r, run in enumerate(map(Path, args.runs)):
        labels = json.loads((run / "run.json").read_text())["labels"]
        y = np.array([labels.index(label) for label in test.labels[:args.limit]])
        stem = "model" if r == 0 else run.name
        variants = [("float32", "float32", []), ("--quantize", "int8", ["--quantize"])]
        files = {}
        for name, slug, extra in variants:
            out = BENCH / f"{stem}-{slug}.onnx"
            files[name] = (out, export(run, out, extra, args.data_dir))
        sessions, timings, probs = {}, {}, {}
        for name, (out, _) in files.items():
            sessions[name] = open_session(out.read_bytes(), intra_threads=THREADS)
            sessions[name].run(None, {"text": texts[:BATCH]})           # warm-up
        for _ in range(PASSES):                         # in alternation: load drifts alike
            for name in files:
                probs[name], seconds = score(sessions[name], texts)
                timings.setdefault(name, []).append(seconds)
        float_bytes = files["float32"][0].stat().st_size
        for name, (out, info) in files.items():
            p = probs[name]
            v = info["validation"] or {}
            rows.append({
                "run": run.name, "model": name, "file": str(out.relative_to(ROOT)),
                "bytes": out.stat().st_size, "smaller_than_float32": float_bytes /
                out.stat().st_size, "test_documents": len(texts),
                "accuracy": 100 * float((p.argmax(1) == y).mean()),
                "label_agreement_with_float32": 100 * float(
                    (p.argmax(1) == probs["float32"].argmax(1)).mean()),
                "max_abs_diff_vs_float32": float(np.abs(p - probs["float32"]).max()),
                "docs_per_second": len(texts) / statistics.median(timings[name]),
                # per pass (the two files timed back to back), then the median over passes
                "speed_vs_float32": statistics.median(
                    f / t for f, t in zip(timings["float32"], timings[name], strict=True)),
                "timed_passes_seconds": timings[name],
                "export_validation": v, "quantization": info["quantization"],
                "export_seconds": info["export_seconds"]})
    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "onnxruntime": onnxruntime.__version__},
        "settings": {"batch": BATCH, "intra_op_threads": THREADS, "data": "imdb:test",
                     "timing": f"median of {PASSES} full passes, the files in alternation; "
                     "speed vs float32 is the median of the per-pass ratios"},
        "rows": rows,
    }
    table = markdown(rows)
    print(table)
    name = "export.json" if args.limit is None else "export.partial.json"
    out = ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(f"-> {out}")


def markdown(rows: list[dict]) -> str:
    lines = ["| run | model | embedding rows at 8 / 7 / 6 / 5 / 4 / 3 bits | bytes | smaller | "
             "IMDB test acc. | agrees with float32 | docs/s | speed vs float32 | "
             "export guard (held-out) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        v = r["export_validation"] or {}
        guard = f"{100 * v['label_agreement']:.2f}% agree on {v['documents']:,}" if v else ""
        refused = [f"refused {refused_split(x)} "
                   f"({100 * x['label_agreement']:.2f}%)"
                   for x in (r["quantization"] or {}).get("refused_by_guard", [])]
        lines.append(f"| {r['run']} | {r['model']} | {split(r['quantization'])} | "
                     f"{r['bytes']:,} | {r['smaller_than_float32']:.2f}x | "
                     f"{r['accuracy']:.2f}% | {r['label_agreement_with_float32']:.2f}% | "
                     f"{r['docs_per_second']:,.0f} | {r['speed_vs_float32']:.2f}x | "
                     f"{'; '.join([guard, *refused])} |")
    return "\n".join(lines)


def refused_split(x: dict) -> str:
    """A step the export guard refused (``split``; files before it: row counts)."""
    return x.get("split") or f"{x['int8_rows']:,} + {x['int5_rows']:,}"


def split(quantization: dict | None) -> str:
    rows = next((w for w in (quantization or {}).get("weights", [])
                 if w.get("kind") == "embedding"), None)
    if rows is None:
        return "float32"
    return " / ".join(f"{rows.get(f'int{n}_rows', 0):,}" for n in range(8, 2, -1))


if __name__ == "__main__":
    main()
