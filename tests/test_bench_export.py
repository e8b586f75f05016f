"""benchmarks/export.py's table, on hand-made rows (the benchmark itself needs the real runs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("export_bench",
                                                  ROOT / "benchmarks" / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(model, quantization, validation, size):
    return {"run": "r", "model": model, "bytes": size, "smaller_than_float32": 4000 / size,
            "accuracy": 89.5, "label_agreement_with_float32": 99.6, "docs_per_second": 1500.0,
            "speed_vs_float32": 1.0, "export_validation": validation,
            "quantization": quantization}


def test_table_names_the_split_the_guard_chose_and_what_it_refused():
    bench = _bench()
    small = {"weights": [{"kind": "embedding", "int8_rows": 1500, "int5_rows": 8000,
                          "int4_rows": 6500}, {"kind": "conv"}]}
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
    assert "| 1,500 / 8,000 / 6,500 | 1,130 | 3.54x |" in table[3]
    assert "99.76% agree on 2,500" in table[3] and "refused" not in table[3]
    assert "| 16,000 / 0 / 0 |" in table[4] and "refused 1,500 + 8,000 (99.46%)" in table[4]
    assert bench.split(None) == "float32"
