"""Export benchmark on the real models: size, accuracy, agreement and speed, float32 vs int8.

    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/export.py

For each run (default: the seed table's transfer runs at 25,000 and 1,250 labels, from
``benchmarks/seed_table.py``) it calls ``tlc export`` twice, float32 and ``--quantize`` (the
default, guarded int8), then the smaller mixed-precision embeddings: ``--int8-rows 1500
--int5-rows 8000`` (the >= 3.5x setting) on every run, and ``--int8-rows N`` (4-bit tail) for
a few N on the first, the size/agreement trade-off. Those are exported with the guard relaxed
and the table says whether the default guard (99.5% agreement, 0.3 points) passed on the
export's held-out text. Every file is then scored on the full IMDB test set, raw text in and
label out: accuracy, label agreement with the float32 file, and documents/second (batch 256,
onnxruntime with 2 intra-op threads, one session per file; the files timed in alternation,
best of three passes over all 25,000 reviews), also as a ratio to the float32 file.

Writes ``benchmarks/results/export.json`` and ``.md`` and prints the table. The float32 and
int8 files of the first run stay in ``runs/bench/`` (``model-float32.onnx``,
``model-int8.onnx``) for ``benchmarks/throughput.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED_RUNS = ROOT / "runs" / "seed_table"
BENCH = ROOT / "runs" / "bench"
BATCH, THREADS = 256, 2
PASSES = 3
SMALL = (1500, 8000)                      # --int8-rows, --int5-rows: the >= 3.5x setting
TRADE_OFF_ROWS = (8000, 4000)             # --int8-rows with a 4-bit tail, first run only
RELAXED = ["--min-agreement", "0", "--max-accuracy-drop", "100"]


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
    parser.add_argument("--runs", nargs="+", default=[str(SEED_RUNS / "transfer-25000-s0"),
                                                      str(SEED_RUNS / "transfer-1250-s0")])
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
        n8, n5 = SMALL
        variants = [("float32", "float32", []), ("int8", "int8", ["--quantize"]),
                    (f"int8, {n8:,} rows 8-bit + {n5:,} 5-bit + 4-bit tail",
                     f"int8-rows{n8}-int5-{n5}", ["--quantize", "--int8-rows", str(n8),
                                                  "--int5-rows", str(n5), *RELAXED])]
        if r == 0:
            variants += [(f"int8, {n:,} rows 8-bit + 4-bit tail", f"int8-rows{n}",
                          ["--quantize", "--int8-rows", str(n), *RELAXED])
                         for n in TRADE_OFF_ROWS]
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
            guard = (v.get("label_agreement", 0) >= 0.995 and v.get("accuracy_drop", 99) <= 0.3
                     if name != "float32" else v.get("max_abs_diff", 1) <= 1e-4)
            rows.append({
                "run": run.name, "model": name, "file": str(out.relative_to(ROOT)),
                "bytes": out.stat().st_size, "smaller_than_float32": float_bytes /
                out.stat().st_size, "test_documents": len(texts),
                "accuracy": 100 * float((p.argmax(1) == y).mean()),
                "label_agreement_with_float32": 100 * float(
                    (p.argmax(1) == probs["float32"].argmax(1)).mean()),
                "max_abs_diff_vs_float32": float(np.abs(p - probs["float32"]).max()),
                "docs_per_second": len(texts) / min(timings[name]),
                "speed_vs_float32": min(timings["float32"]) / min(timings[name]),
                "timed_passes_seconds": timings[name],
                "export_validation": v, "default_guard_passes": bool(guard),
                "quantization": info["quantization"]})
    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "onnxruntime": onnxruntime.__version__},
        "settings": {"batch": BATCH, "intra_op_threads": THREADS, "data": "imdb:test",
                     "timing": f"best of {PASSES} full passes, the files in alternation"},
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
    lines = ["| run | model | bytes | smaller | IMDB test acc. | agrees with float32 | "
             "docs/s | speed vs float32 | export guard |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        v = r["export_validation"] or {}
        guard = ("pass" if r["default_guard_passes"] else "fail") + (
            f" ({100 * v['label_agreement']:.2f}% agree on {v['documents']:,} held-out)"
            if v else "")
        lines.append(f"| {r['run']} | {r['model']} | {r['bytes']:,} | "
                     f"{r['smaller_than_float32']:.2f}x | {r['accuracy']:.2f}% | "
                     f"{r['label_agreement_with_float32']:.2f}% | "
                     f"{r['docs_per_second']:,.0f} | {r['speed_vs_float32']:.2f}x | {guard} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
