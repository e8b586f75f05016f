"""Rebuild this folder's sample of IMDB movie reviews from the full data set, byte for byte.

    TLC_DATA_DIR=../shared/data python examples/movie-reviews/make.py [--check]

The sample is a small tlc data set (one file per split, read by ``--data
examples/movie-reviews``) that the quick start fine-tunes on, offline, in a few minutes:
``train`` is drawn from IMDB's training split and ``test`` from its test split, each
stratified by label with tlc's seeded, keyed-hash draw
(:func:`tlc.data.budget.stratified_subset`), so the same rows come out on every machine.
``--check`` rebuilds in memory and fails if a shipped file differs (a test runs it).
"""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

from tlc.data.budget import stratified_subset
from tlc.data.dataset import open_dataset
from tlc.data.io import csv_text
from tlc.data.readers import read_records

HERE = Path(__file__).resolve().parent
# split of this sample: (IMDB split it is drawn from, rows, whether it keeps the label)
SAMPLE = {"train": ("train", 1000, True), "test": ("test", 1000, True)}
SEED = 2026
COLUMNS = ("id", "text", "label")


def build(data_dir: str | None = None) -> dict[str, bytes]:
    """The sample's files, name -> gzip bytes (no name or time in the header, so the same
    rows give the same bytes)."""
    imdb = open_dataset("imdb", data_dir)
    out = {}
    for split, (source, rows, labelled) in SAMPLE.items():
        records = list(read_records(imdb.path(source)))
        labels = [r.fields.get("label", "") for r in records]
        chosen = stratified_subset(labels, count=rows, seed=SEED, purpose=f"sample-{split}")
        columns = COLUMNS if labelled else COLUMNS[:2]
        lines = [csv_text([columns])]
        for i in chosen:
            fields = records[i].fields
            # the id names the review in IMDB's own files (aclImdb/<split>/<pos|neg|unsup>/...)
            row = [fields["file"], fields["text"]] + ([fields["label"]] if labelled else [])
            lines.append(csv_text([row]))
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as f:
            f.write("".join(lines).encode("utf-8"))
        out[f"{split}.csv.gz"] = buffer.getvalue()
    return out


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        stale = [n for n, data in files.items()
                 if not (HERE / n).is_file() or (HERE / n).read_bytes() != data]
        if stale:
            print(f"differs from a rebuild: {', '.join(stale)} (run make.py to rewrite)",
                  file=sys.stderr)
            return 1
        print(f"{', '.join(files)}: identical to a rebuild from IMDB")
        return 0
    for name, data in files.items():
        (HERE / name).write_bytes(data)
        print(f"wrote {HERE / name} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
