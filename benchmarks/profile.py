"""Where a tlc file spends its time: onnxruntime's own profiler over real test reviews.

    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/profile.py [MODEL ...]

Each file (default: ``runs/bench/model-int8.onnx``, the file ``benchmarks/throughput.py``
times; the results hold it and ``runs/bench/old-int8.onnx``, the same run exported by the
fixed-grid graph before it) scores a seeded sample of IMDB and of Amazon test reviews,
sorted by length and cut into runs of 32 as ``tlc.runtime.Classifier`` does, in one
single-threaded session with
``SessionOptions.enable_profiling``. The kernel times of the nodes are summed by what they do
(the tokenizer, the word convolution, k-max pooling...) and by op type, as shares of the
session's run time, with documents per CPU-second of the profiled session.

Writes ``benchmarks/results/profile.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's tlc, not whichever one is installed
    sys.path.insert(0, str(ROOT))
BENCH = ROOT / "runs" / "bench"

# op type -> what it is part of, in the text graph tlc export writes
PARTS = {"SentencepieceTokenizer": "tokenizer (sentencepiece)",
         "StringRegexReplace": "tokenizer (clean-up regexes)",
         "FusedConv": "word convolution (+ ReLU)", "TopK": "k-max pooling (TopK)",
         "ReduceMax": "max pooling (ReduceMax, k = 1)", "ReduceSum": "sums (wide part, mean)",
         "Conv": "sentence convolution", "ReorderInput": "sentence convolution",
         "ReorderOutput": "sentence convolution", "MatMul": "dense layers",
         "Gemm": "dense layers", "Gather": "gathers (embedding, wide part, rows, sentence split)",
         "Transpose": "transposes"}


def profile(path: Path, texts: list[str], batch: int) -> dict:
    import onnxruntime as ort

    from tlc.session import extensions_library

    options = ort.SessionOptions()
    options.register_custom_ops_library(extensions_library())
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = True
    options.profile_file_prefix = str(BENCH / "ort_profile")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ordered = sorted(texts, key=len)
    batches = [np.array(ordered[i:i + batch], dtype=object)
               for i in range(0, len(ordered), batch)]
    cpu = time.thread_time()
    for b in batches:
        session.run(["probabilities"], {"text": b})
    cpu = time.thread_time() - cpu
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    by_op, total = collections.Counter(), 0
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            total += e["dur"]
    by_part = collections.Counter()
    for op, us in by_op.items():
        by_part[PARTS.get(op, "other ops")] += us
    by_part["between nodes (run overhead)"] = total - sum(by_op.values())
    return {"documents": len(texts), "batch": batch,
            "documents_per_cpu_second_profiled": round(len(texts) / cpu, 1),
            "run_seconds": round(total / 1e6, 3),
            "share_by_part": {k: round(v / total, 4) for k, v in by_part.most_common()},
            "share_by_op": {k: round(v / total, 4) for k, v in by_op.most_common(15)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=[str(BENCH / "model-int8.onnx")])
    parser.add_argument("--data-dir", default=None, help="default: $TLC_DATA_DIR")
    parser.add_argument("--sample", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "profile"))
    args = parser.parse_args()
    from tlc.data import open_dataset

    sets = {}
    for name in ("imdb", "amazon"):
        ex = open_dataset(name, args.data_dir).load("test")
        pick = random.Random(0).sample(range(len(ex.texts)), min(args.sample, len(ex.texts)))
        sets[f"{name}:test"] = [ex.texts[i] for i in sorted(pick)]
    rows = []
    for model in args.models:
        for data, texts in sets.items():
            result = {"model": os.path.relpath(model, ROOT), "data": data,
                      **profile(Path(model), texts, args.batch)}
            rows.append(result)
            print(f"{result['model']} {data}: "
                  f"{result['documents_per_cpu_second_profiled']:,.0f} docs per CPU-second; "
                  + ", ".join(f"{k} {100 * v:.1f}%" for k, v in result["share_by_part"].items()),
                  flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(
        {"benchmark": "profile", "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
         "command": "TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/profile.py",
         "rows": rows}, indent=2) + "\n", encoding="utf-8")
    parts = list(dict.fromkeys(k for r in rows for k in r["share_by_part"]))
    lines = ["Share of onnxruntime's run time (its profiler; one single-threaded session, "
             f"runs of {args.batch} texts sorted by length).", "",
             "| part | " + " | ".join(f"{Path(r['model']).name}, {r['data']}" for r in rows)
             + " |",
             "|---|" + "---:|" * len(rows)]
    lines += [f"| {p} | " + " | ".join(f"{100 * r['share_by_part'].get(p, 0):.1f}%"
                                       for r in rows) + " |" for p in parts]
    lines += ["| documents per CPU-second (profiled) | " + " | ".join(
        f"{r['documents_per_cpu_second_profiled']:,.0f}" for r in rows) + " |"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"-> {out.with_suffix('.json')}, {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
