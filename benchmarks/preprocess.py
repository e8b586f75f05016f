"""Preprocessing benchmark on the real data: speed, grid coverage, graph/Python id parity.

    TLC_DATA_DIR=../shared/data python benchmarks/preprocess.py

Trains the default tokenizer (``tlc tokenizer train --data amazon --data imdb``; reused from
``--tokenizer`` when that folder exists), then on the IMDB and Amazon test sets measures

* documents/second of ``Tokenizer.encode_grid`` (clean-up + sentencepiece op through
  onnxruntime-extensions + grid), beside the Python ``sentencepiece`` library encoding the same
  cleaned text in the same run (the peer; ratios are what to compare across machines);
* how many documents get different ids from the two (tie-breaking; why training encodes
  through the graph);
* the share of tokens each sentences x tokens grid keeps, to choose the grid size.

Writes ``benchmarks/results/preprocess.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GRIDS = [(8, 32), (12, 40), (16, 40), (16, 64), (24, 48), (32, 64)]


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="default: $TLC_DATA_DIR")
    parser.add_argument("--tokenizer", default=str(ROOT / "runs" / "tokenizer"),
                        help="tokenizer folder (trained with the default recipe if missing)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "preprocess.json"))
    args = parser.parse_args()

    import sentencepiece

    from tlc.data import open_dataset
    from tlc.tokenizer import Tokenizer, clean
    from tlc.tokenizer.grid import grid_from_flat

    tok_dir = Path(args.tokenizer)
    if not (tok_dir / "tokenizer.model").is_file():
        cmd = [sys.executable, "-m", "tlc.cli", "tokenizer", "train", "--data", "amazon",
               "--data", "imdb", "--out", str(tok_dir)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        print("training the tokenizer:", " ".join(cmd[2:]), file=sys.stderr)
        subprocess.run(cmd, check=True)
    tok = Tokenizer.load(tok_dir)
    sp = sentencepiece.SentencePieceProcessor(model_proto=tok.model_proto)
    threads = tok.config.num_threads

    results = {
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "tokenizer": {"sha256": tok.sha256, "vocab_size": tok.vocab_size,
                      "config": tok.config.to_dict()},
        "datasets": {},
    }
    for name in ("imdb", "amazon"):
        texts = open_dataset(name, args.data_dir).load("test").texts
        n = len(texts)
        tok.encode_grid(texts[:256])  # warm up the session
        t_grid = best_of(lambda texts=texts: tok.encode_grid(texts))
        cleaned = [clean(t) for t in texts]
        t_python = best_of(lambda cleaned=cleaned: sp.encode(cleaned, out_type=int,
                                                             num_threads=threads))
        flat, lengths = tok.encode_flat(texts)
        graph_ids = tok.encode(texts)
        python_ids = sp.encode(cleaned, out_type=int, num_threads=threads)
        differing = sum(a != b for a, b in zip(graph_ids, python_ids, strict=True))
        coverage = {}
        for s, t in GRIDS:
            grid = grid_from_flat(flat, lengths, tok.terminal, tok.starts_word, s, t)
            kept = int((grid != 0).sum())
            coverage[f"{s}x{t}"] = {"tokens_kept": round(kept / int(lengths.sum()), 4),
                                    "docs_complete": round(float(
                                        ((grid != 0).sum(axis=(1, 2)) == lengths).mean()), 4)}
        results["datasets"][name] = {
            "documents": n,
            "tokens_median": float(np.median(lengths)),
            "tokens_p95": float(np.percentile(lengths, 95)),
            "unk_rate": float((flat == 1).mean()),
            "encode_grid_docs_per_s": round(n / t_grid),
            "python_sentencepiece_docs_per_s": round(n / t_python),
            "encode_grid_vs_python_sentencepiece": round(t_python / t_grid, 3),
            "docs_with_different_ids_graph_vs_python": differing,
            "grid_coverage": coverage,
        }

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"tokenizer {tok.sha256[:12]}  vocab {tok.vocab_size:,}  "
          f"threads {threads}  ({results['machine']['cpu_count']} cores)")
    print(f"{'test set':<8} {'docs':>7} {'tlc docs/s':>11} {'spm docs/s':>11} {'ratio':>6} "
          f"{'ids differ':>11} {'tok median':>10}")
    for name, r in results["datasets"].items():
        print(f"{name:<8} {r['documents']:>7,} {r['encode_grid_docs_per_s']:>11,} "
              f"{r['python_sentencepiece_docs_per_s']:>11,} "
              f"{r['encode_grid_vs_python_sentencepiece']:>6.2f} "
              f"{r['docs_with_different_ids_graph_vs_python']:>11,} "
              f"{r['tokens_median']:>10,.0f}")
    print("\nshare of tokens kept by the sentences x tokens grid")
    print(f"{'test set':<8} " + " ".join(f"{s}x{t:<5}" for s, t in GRIDS))
    for name, r in results["datasets"].items():
        print(f"{name:<8} " + " ".join(f"{r['grid_coverage'][f'{s}x{t}']['tokens_kept']:<8.3f}"
                                       for s, t in GRIDS))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
