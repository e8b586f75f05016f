"""benchmarks/throughput.py's own parts, on tiny inputs: no fastText, scikit-learn, psutil or
real data needed (the module imports them only where it trains and measures the peers)."""

from __future__ import annotations

import csv
import sys

import pytest
from bench_loader import load_benchmark


@pytest.fixture(scope="module")
def bench():
    # registered: forked workers find _score_slice by this name
    yield load_benchmark("throughput", register=True)
    sys.modules.pop("throughput", None)


def test_fasttext_normalisation_matches_its_shell_script(bench):
    text = 'Great film!<br /><br />I "loved" it; 9.5/10 (really).\nTruly: don\'t miss'
    assert bench.fasttext_text(text) == (
        "great film ! i loved it 9 . 5/10 ( really ) . truly don ' t miss")


def test_big_csv_is_whole_parseable_and_reused(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "BENCH", tmp_path)
    texts = ['plain', 'with, comma', 'with "quotes"', 'two\nlines']
    path, rows = bench.big_csv(texts, 5000)
    assert path.stat().st_size >= 5000
    with path.open(encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == rows
    assert [r["id"] for r in records[:5]] == ["0", "1", "2", "3", "4"]
    assert [r["text"] for r in records[:5]] == [*texts, texts[0]]
    stamp = path.stat().st_mtime_ns
    assert bench.big_csv(texts, 5000) == (path, rows)
    assert path.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob("*.part"))


def test_run_measured_reports_the_childs_peak_memory(bench, tmp_path):
    hold = "b = bytearray(96 * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; " \
           "time.sleep(0.3)"
    result = bench.run_measured([sys.executable, "-c", hold], tmp_path / "log", every=0.05)
    assert result["returncode"] == 0
    assert result["peak_rss_mb"] >= 96
    failed = bench.run_measured([sys.executable, "-c", "raise SystemExit(3)"],
                                tmp_path / "log2")
    assert failed["returncode"] == 3


def test_run_measured_does_not_count_this_processs_memory(bench, tmp_path):
    # A child forked straight from a big process inherits its high-water RSS in ru_maxrss.
    ballast = bytearray(300 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    result = bench.run_measured([sys.executable, "-c", "pass"], tmp_path / "log")
    del ballast
    assert result["returncode"] == 0
    assert 0 < result["peak_rss_mb"] < 100


def test_worker_pool_keeps_order_and_passes_go_round_robin(bench):
    texts = [f"review {i}" for i in range(1000)]
    calls = []

    def upper(ts):
        calls.append(("upper", len(ts)))
        return [t.upper() for t in ts]

    def last(ts):
        calls.append(("last", len(ts)))
        return [t[-1] for t in ts]

    with bench.worker_pool({"upper": upper}, texts, 2) as pool:
        results = bench.passes({"pooled": (bench.pooled(pool, "upper", 2), texts),
                                "upper": (upper, texts), "last": (last, texts)}, repeats=2)
    bench._WORKER.clear()
    times, predicted = results["pooled"]
    assert predicted == [t.upper() for t in texts] and len(times) == 2
    assert results["last"][1][:3] == ["0", "1", "2"]
    # In this process: warm-ups on 512 texts, then the full passes alternate.
    assert calls == [("upper", 512), ("last", 512), ("upper", 1000), ("last", 1000),
                     ("upper", 1000), ("last", 1000)]


def test_report_ratios_summary_and_table(bench):
    def fake(system, mode, rps, data="imdb:test", **extra):
        return {"system": system, "mode": mode, "model_bytes": 2_000_000, "accuracy": 0.9,
                "reviews_per_second": rps, "data": data, **extra}

    rows = [fake("tlc int8", "in-process, 2 threads, batch 256", 1000.0),
            fake("tlc float32", "in-process, 2 threads, batch 256", 500.0),
            fake("fastText .ftz (quantised, bigrams)", "2 worker processes", 8000.0),
            fake("fastText .ftz (quantised, bigrams)", "in-process, 1 thread", 5000.0,
                 predict_alone_reviews_per_second=12000.0),
            fake("TF-IDF + LR (scikit-learn)", "2 worker processes", 3000.0),
            fake("tlc int8", "in-process, 2 threads, batch 256", 2500.0, "amazon:test"),
            fake("fastText .ftz (quantised, bigrams)", "2 worker processes", 10000.0,
                 "amazon:test")]
    bench.add_ratios(rows)
    assert [r["ratio_vs_tlc_int8"] for r in rows] == [1.0, 0.5, 8.0, 5.0, 3.0, 1.0, 4.0]
    text = bench.summary(rows)
    assert "misses the 5,000" in text and "8.0× as fast" in text and "12,000" in text
    assert "0.12× its rate, which misses the 0.5× bar" in text
    assert "2,500 reviews/s, 2.50× its IMDB rate (meets the 2× bar)" in text
    memory = {"model": "m.onnx", "peak_rss_ratio_large_vs_small": 1.02,
              "runs": [{"input_bytes": 10**8, "rows": 70000, "seconds": 10.0,
                        "rows_per_second": 7000.0, "peak_rss_mb": 300.0},
                       {"input_bytes": 10**9, "rows": 700000, "seconds": 100.0,
                        "rows_per_second": 7000.0, "peak_rss_mb": 306.0}]}
    memory["summary"] = bench.memory_summary(memory)
    assert "100 MB CSV: 7,000 rows/s (meets the 4,000 rows/s bar)" in memory["summary"]
    result = {"rows": rows, "summary": text,
              "settings": {"reviews": 25000, "repeats": 3,
                           "test_reviews": {"imdb:test": 25000, "amazon:test": 11378}},
              "machine": {"cores": 2, "cpu": "test"}, "memory": memory}
    table = bench.markdown(result)
    assert "| imdb:test | tlc int8 | in-process, 2 threads, batch 256 | 2.00 MB | 90.00% " \
        "| 1,000 | 1.00 |" in table
    assert "amazon:test (11,378 reviews)" in table
    assert "| 100 MB | 70,000 | 10 | 7,000 | 300 MB |" in table
