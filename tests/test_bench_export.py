"""benchmarks/export.py's table, on hand-made rows (the benchmark itself needs the real runs)."""

from __future__ import annotations

from bench_loader import load_benchmark


def _bench():
    return load_benchmark("export", module_name="export_bench")


def _row(model, quantization, validation, size):
    return {"run": "r", "model": model, "bytes": size, "smaller_than_float32": 4000 / size,
            "accuracy": 89.5, "label_agreement_with_float32": 99.6, "docs_per_second": 1500.0,
            "speed_vs_float32": 1.0, "export_validation": validation,
            "quantization": quantization}


def test_table_names_the_split_the_guard_chose_and_what_it_refused():
    bench = _bench()
    small = {"weights": [{"kind": "embedding", "int8_rows": 700, "int7_rows": 1300,
                          "int6_rows": 2800, "int5_rows": 5000, "int4_rows": 3000,
                          "int3_rows": 3200}, {"kind": "conv"}],
             "refused_by_guard": [{"split": "3.6x (rows at 3 to 8 bits)",
                                   "label_agreement": 0.9948}]}
    fallback = {"weights": [{"kind": "embedding", "int8_rows": 16000, "int5_rows": 0,
                             "int4_rows": 0}],
                "refused_by_guard": [{"int8_rows": 1500, "int5_rows": 8000,
                                      "label_agreement": 0.9946}]}
    check = {"label_agreement": 0.9976, "documents": 2500}
    table = _bench().markdown([
        _row("float32", {"mode": "float32"}, {"max_abs_diff": 1e-6, "label_agreement": 1.0,
                                               "documents": 2500}, 4000),
        _row("--quantize", small, check, 1130),
        _row("--quantize", fallback, check, 1410)]).splitlines()
    assert len(table) == 5 and table[0].count("|") == table[1].count("|") == 11
    assert "| float32 | float32 | 4,000 | 1.00x |" in table[2]
    assert "| 700 / 1,300 / 2,800 / 5,000 / 3,000 / 3,200 | 1,130 | 3.54x |" in table[3]
    assert "99.76% agree on 2,500; refused 3.6x (rows at 3 to 8 bits) (99.48%)" in table[3]
    assert "| 16,000 / 0 / 0 / 0 / 0 / 0 |" in table[4]
    assert "refused 1,500 + 8,000 (99.46%)" in table[4]      # a file from before --ratio
    assert bench.split(None) == "float32"
