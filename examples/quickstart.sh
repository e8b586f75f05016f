#!/usr/bin/env bash
# tlc's quick start: fine-tune the bundled base `reviews-en` on 1,000 labelled movie reviews,
# check it on 1,000 held-out ones, export it to one int8 ONNX file (tokenizer inside, checked
# against the trained model before it is written) and score a file with it.
#
#     bash examples/quickstart.sh          # from the repository root, after the install
#
# Offline and with no data folder: everything it reads ships in this repository
# (examples/movie-reviews/, a sample of IMDB; see its README.md). About 2 minutes on
# 2 CPU cores (benchmarks/results/quickstart.json). Rerunning replaces the previous results.
# TLC=... and PYTHON=... pick other executables; OUT=... another results folder.
set -euo pipefail
cd "$(dirname "$0")/.."
# The README's venv if there is one, else the tlc on PATH (with the python beside it).
if [ -z "${TLC:-}" ] && [ -x .venv/bin/tlc ]; then TLC=.venv/bin/tlc; fi
TLC=${TLC:-tlc}
if ! command -v "$TLC" >/dev/null 2>&1; then
  echo "error: no tlc to run ($TLC)" >&2
  echo '  fix: install it first: python3 -m venv .venv && .venv/bin/pip install ".[train,dev]"' >&2
  exit 2
fi
PYTHON=${PYTHON:-$(dirname "$(command -v "$TLC")")/python}
DATA=examples/movie-reviews
OUT=${OUT:-runs/quickstart}
mkdir -p "$OUT"

echo "== 1/4 fine-tune the bundled base on $DATA/train.csv.gz (1,000 labelled reviews)"
"$TLC" train --data "$DATA" --out "$OUT/run" --force

echo "== 2/4 evaluate the trained model on $DATA/test.csv.gz (1,000 held-out reviews)"
"$TLC" evaluate "$OUT/run" "$DATA" --out "$OUT/evaluation.json"

echo "== 3/4 export one int8 ONNX file, validated against the trained model"
"$TLC" export "$OUT/run" --quantize --out "$OUT/model.onnx" --force

echo "== 4/4 score a file with it (file in, file out; the scores are new columns)"
"$TLC" predict "$OUT/model.onnx" "$DATA/test.csv.gz" --out "$OUT/scored.csv.gz" --force

echo "== done in ${SECONDS} s"
"$PYTHON" - "$OUT" <<'PY'
import csv, gzip, json, sys
from pathlib import Path

out = Path(sys.argv[1])
with gzip.open(out / "scored.csv.gz", "rt", encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))
right = sum(r["label"] == r["pred_label"] for r in rows)
results = Path("benchmarks/results/quickstart.json")   # (benchmarks/quickstart.py writes it)
expected = (f"{100 * json.loads(results.read_text())['int8_accuracy']:.2f}%" if results.is_file()
            else "not measured yet")
print(f"  the run (trained model, settings, log)  {out / 'run'}")
print(f"  its evaluation report                   {out / 'evaluation.json'}")
print(f"  the model file (score it with tlc predict, tlc.runtime or any onnxruntime binding)"
      f"  {out / 'model.onnx'}")
print(f"  the scored reviews                      {out / 'scored.csv.gz'}")
print(f"  accuracy of the int8 file on the {len(rows):,} held-out reviews: "
      f"{100 * right / len(rows):.2f}% (expected: {expected}, {results})")
PY
