"""benchmarks/seed_table.py's own parts on tiny inputs, no training: the validation-only
choice, the peers' rows (tlc's budget code, nothing outside the budget) and the learning
curve. The peers and the plot need the ``bench`` extra and are skipped without it."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from bench_loader import benchmarks_on_path, load_benchmark


def _load(name: str):
    return load_benchmark(name, register=True)


@pytest.fixture(scope="module")
def table():
    with benchmarks_on_path():  # seed_table imports its neighbours, here and in its tests
        yield _load("seed_table")


def _run(folder: Path, balanced: float | None, rows: int = 20, config: dict | None = None):
    folder.mkdir(parents=True)
    info = {"data": {"train_rows": 80, "valid_rows": rows},
            "training": {"best_epoch": 1, "epochs_done": 3},
            "validation": None if balanced is None else {"balanced_accuracy": balanced,
                                                         "accuracy": balanced}}
    (folder / "run.json").write_text(json.dumps(info))
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_choice_is_the_best_mean_validation_and_ties_go_to_the_first(table, tmp_path):
    a = [_run(tmp_path / f"a{s}", v) for s, v in enumerate((0.80, 0.90))]
    b = [_run(tmp_path / f"b{s}", v) for s, v in enumerate((0.86, 0.86))]
    c = [_run(tmp_path / f"c{s}", v) for s, v in enumerate((0.95, 0.70))]
    chosen, record = table.choose("start", {"a": a, "b": b, "c": c})
    assert chosen == "b"   # 86.0 beats 85.0 and 82.5
    assert record["pooled_valid_rows"] == 40 and record["one_row_points"] == 2.5
    assert [x["valid_mean"] for x in record["candidates"]] == pytest.approx([85, 86, 82.5])
    chosen, _ = table.choose("tie", {"c": c, "a": [*a[:1], _run(tmp_path / "a9", 0.85)]})
    assert chosen == "c"   # 82.5 each: the first listed wins


def test_a_refused_seed_leaves_the_cell_without_a_mean(table):
    assert table.spread([88.0, None])["mean"] is None
    assert table.spread([88.0, 90.0])["mean"] == 89.0


def test_peers_train_on_the_runs_rows_only(table, tmp_path):
    pytest.importorskip("sklearn")
    peers = sys.modules["peers"] if "peers" in sys.modules else _load("peers")
    from tlc.data.budget import stratified_subset
    from tlc.train.config import RunConfig

    data = tmp_path / "train.csv"
    words = {"1": "good great fine lovely", "0": "bad awful poor dull"}
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in range(200):
            y = str(i % 2)
            w.writerow([f"row{i} {words[y]} film {'plot' if i % 3 else 'cast'}", y])
    config = RunConfig().replace(data={"train": str(data), "labels": 40,
                                       "valid_fraction": 0.25}, training={"seed": 3})
    run = _run(tmp_path / "run", 0.9, rows=10, config=config.to_dict())
    info = json.loads((run / "run.json").read_text())
    info["data"]["train_rows"] = 30
    (run / "run.json").write_text(json.dumps(info))
    rows = peers.rows_of(run, str(tmp_path))
    labels = [str(i % 2) for i in range(200)]
    budget = {f"row{i}" for i in stratified_subset(labels, count=40, seed=3)}
    seen = {t.split()[0] for t in rows.train[0] + rows.valid[0]}
    assert seen == budget and len(rows.train[0]) == 30 and len(rows.valid[0]) == 10
    assert not {t.split()[0] for t in rows.train[0]} & {t.split()[0] for t in rows.valid[0]}
    test = ([f"{words[str(i % 2)]} film" for i in range(20)], [str(i % 2) for i in range(20)])
    cell = peers.peer_cell("TF-IDF + LR", 40, [run], str(tmp_path), tmp_path / "peers",
                           {"imdb:test": test})
    assert cell["mean"] == 100.0 and cell["selection"]["valid_recheck_equal"]
    assert len(cell["selection"]["candidates"]) == len(peers.TFIDF_GRID)
    again = peers.peer_cell("TF-IDF + LR", 40, [run], str(tmp_path), tmp_path / "peers",
                            {"imdb:test": test})
    assert again == cell   # reused from the cache


def test_learning_curve_draws_every_line(table, tmp_path):
    pytest.importorskip("matplotlib")
    curve = _load("learning_curve")

    def point(kind, labels, mean, int8=True):
        s = {"mean": mean, "min": mean - 1, "max": mean + 1}
        return {"kind": kind, "labels": labels, "seeds": 3, "keras": s,
                "int8": s if int8 else {"mean": None}}

    result = {"cells": [point("source", 0, 93), point("transfer", 0, 84),
                        *(point("transfer", n, 84 + k) for k, n in enumerate((100, 1250))),
                        point("transfer", 25000, 89, int8=False),
                        *(point("scratch", n, 70 + 8 * k)
                          for k, n in enumerate((100, 1250, 25000)))],
              "peers": [{"system": s, "labels": n, "mean": 80, "min": 79, "max": 81}
                        for s in ("TF-IDF + LR", "fastText") for n in (0, 100, 1250, 25000)],
              "bar": {"0": 85.5, "100": 86.0}, "goal": {"0": 87.0}}
    lines = curve.series(result)
    assert set(lines) == set(curve.STYLE)
    assert [p["labels"] for p in lines["tlc transfer"]] == [0, 100, 1250, 25000]
    assert lines["tlc transfer"][-1]["int8"] is False
    path = curve.plot(result, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
