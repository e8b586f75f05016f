"""Shared fixtures.

Tests marked ``realdata`` need the real data sets (IMDB, Amazon, GloVe) in the folder named
by TLC_DATA_DIR, or ``../shared/data`` beside the repository. They skip when the data is
absent, except when TLC_REQUIRE_DATA=1 (set by .ci/run), where absence is a failure.
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _real_data_dir() -> Path | None:
    for candidate in (os.environ.get("TLC_DATA_DIR"), ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "imdb" / "train.csv.gz").is_file():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    found = _real_data_dir()
    if found is None:
        if os.environ.get("TLC_REQUIRE_DATA") == "1":
            pytest.fail("TLC_REQUIRE_DATA=1 but no real data under TLC_DATA_DIR or "
                        "../shared/data")
        pytest.skip("real data sets not found (set TLC_DATA_DIR to the folder holding "
                    "imdb/, amazon/, glove/)")
    return found


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _isolated_data_dir(monkeypatch, tmp_path_factory):
    # No test may read or write the user's real ~/.local/share/tlc by accident.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """(text-input, ids-input) ONNX files of a tiny run, exported once per test session."""
    from tiny_model import tiny_models

    return tiny_models(tmp_path_factory.mktemp("tiny-runtime-models"))


@pytest.fixture(scope="session")
def model(models) -> Path:
    """The tiny text-input model file."""
    return models[0]


@pytest.fixture(scope="session")
def texts() -> list[str]:
    """The texts of the IMDB and Amazon test fixtures."""
    out = []
    for name in ("imdb/test", "amazon/test"):
        with gzip.open(FIXTURES / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as f:
            out += [row["text"] for row in csv.DictReader(f)]
    return out


@pytest.fixture(scope="session")
def tokenizer(texts):
    """A 400-piece tokenizer with a 4 x 10 grid, trained on :func:`texts` (the export tests)."""
    from tlc.tokenizer import Tokenizer, TokenizerConfig

    return Tokenizer.train(texts, TokenizerConfig(vocab_size=400, max_sentences=4,
                                                  max_tokens=10), progress=False)
