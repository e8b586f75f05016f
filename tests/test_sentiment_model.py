"""The bundled model `sentiment-en`: loaded by name, `tlc predict INPUT` with no model, the
name resolver's rules, its card against benchmarks/results/bundled.json, and that it works
with TensorFlow and Keras unimportable (`pip install tlc` alone)."""

from __future__ import annotations

import csv
import fnmatch
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tlc.cli import app
from tlc.errors import TlcError
from tlc.models import DEFAULT_MODEL, MODELS_DIR, bundled_models, model_card, resolve_model
from tlc.runtime import Classifier

ROOT = Path(__file__).resolve().parent.parent
NAME = "sentiment-en"
FILE = MODELS_DIR / NAME / "model.onnx"
MAX_BYTES = 1_600_000
REVIEWS = ["A wonderful film: moving, funny and beautifully acted. I loved every minute.",
           "Awful. Boring, badly written, and a complete waste of two hours.",
           "The best purchase I have made this year, works perfectly.",
           "It broke after one day and support never answered. Terrible."]
runner = CliRunner()


@pytest.fixture(scope="module")
def clf():
    with Classifier.load(NAME, threads=1) as c:
        yield c


def test_the_default_is_bundled_small_and_loads_by_name(clf):
    assert DEFAULT_MODEL == NAME and NAME in bundled_models()
    assert FILE.stat().st_size <= MAX_BYTES
    assert clf.path == FILE and clf.labels == ("0", "1")
    labels, proba = clf.score(REVIEWS)
    assert labels == ["1", "0", "1", "0"]
    assert proba.shape == (4, 2)
    assert clf.sha256 == model_card(NAME)["size"]["sha256"]


def test_an_existing_path_wins_over_a_name(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME).write_bytes(Path(model).read_bytes())   # the tiny test model
    assert resolve_model(NAME) == Path(NAME)
    assert Classifier.load(NAME).sha256 == Classifier.load(model).sha256


def test_unknown_names_and_missing_paths_list_the_bundled_models(tmp_path):
    with pytest.raises(TlcError, match=r"neither a file nor a bundled model's name .*"
                       r"sentiment-en") as e:
        Classifier.load("sentiment-xx")
    assert "bundled names" in e.value.hint
    with pytest.raises(TlcError, match="model file not found .*sentiment-en"):
        Classifier.load(tmp_path / "missing.onnx")
    r = runner.invoke(app, ["inspect", "nosuch"])
    assert r.exit_code != 0 and "sentiment-en" in r.output


def test_commands_take_the_name(tmp_path):
    r = runner.invoke(app, ["inspect", NAME])
    assert r.exit_code == 0, r.output
    assert f"{FILE} ({FILE.stat().st_size:,} bytes)" in r.output and "labels:        0, 1" \
        in r.output
    # the shipped file has no sentence-score outputs: explain resolves it, then says so
    r = runner.invoke(app, ["explain", NAME, "A fine film."])
    assert r.exit_code != 0 and "no sentence-score outputs" in r.output


def _write_reviews(path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "text"])
        w.writerows([i, t] for i, t in enumerate(REVIEWS))
    return path


def test_predict_without_a_model_scores_with_sentiment_en_and_says_so(tmp_path):
    src = _write_reviews(tmp_path / "reviews.csv")
    outs = {}
    for how, args in {"none": [], "name": [NAME], "file": [str(FILE)]}.items():
        outs[how] = tmp_path / f"{how}.csv"
        r = runner.invoke(app, ["predict", *args, str(src), "--out", str(outs[how])])
        assert r.exit_code == 0, r.output
        notice = "scoring with the bundled model sentiment-en (IMDB "
        assert (notice in r.stderr) == (how == "none"), r.stderr
    assert outs["none"].read_bytes() == outs["name"].read_bytes() == outs["file"].read_bytes()
    rows = list(csv.DictReader(outs["none"].open(encoding="utf-8")))
    assert [r["label"] for r in rows] == ["1", "0", "1", "0"]
    figures = model_card(NAME)["figures"]["tests"]
    imdb, amazon = (100 * figures[k]["accuracy"] for k in ("imdb:test", "amazon:test"))
    r = runner.invoke(app, ["predict", str(src), "--out", str(tmp_path / "again.csv")])
    assert (f"(IMDB {imdb:.2f}%, amazon {amazon:.2f}%); give a model file to use your own"
            in r.stderr)
    r = runner.invoke(app, ["predict", str(src), "-q", "--force", "--out", str(outs["none"])])
    assert r.exit_code == 0 and "bundled" not in r.stderr


def test_one_argument_is_always_the_input(model, tmp_path):
    # a lone model file means the input was forgotten: never score the model's bytes
    for lone in (str(model), NAME):
        r = runner.invoke(app, ["predict", lone])
        assert r.exit_code != 0 and "looks like a model" in r.output, r.output
        assert "tlc predict" in r.output and "INPUT" in r.output
    r = runner.invoke(app, ["predict"])
    assert r.exit_code != 0 and "no file to score" in r.output
    # two positionals stay MODEL INPUT, with any model
    src = _write_reviews(tmp_path / "r.csv")
    r = runner.invoke(app, ["predict", str(model), str(src), "-o", str(tmp_path / "t.csv")])
    assert r.exit_code == 0 and "bundled" not in r.stderr
    tiny = Classifier.load(model).predict(REVIEWS)
    rows = list(csv.DictReader((tmp_path / "t.csv").open(encoding="utf-8")))
    assert [r["label"] for r in rows] == tiny


# TensorFlow, Keras and the other training packages made unimportable, as when only
# `pip install tlc` is there: load the bundled model by name and run `tlc predict FILE`.
_BLOCKED = r"""
import importlib.abc, json, sys
HEAVY = ("tensorflow", "keras", "tf_keras", "tf2onnx", "sentencepiece", "onnx")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ImportError(f"{name} is blocked: not in `pip install tlc`")
sys.meta_path.insert(0, Block())
from tlc.runtime import Classifier
labels = Classifier.load("sentiment-en").predict(["Loved it.", "Hated it, dull."])
from tlc.cli import app
try:
    app(["predict", sys.argv[1], "--out", sys.argv[2]])
except SystemExit as e:
    code = e.code
print(json.dumps({"labels": labels, "code": code}))
"""


def test_bundled_model_works_with_tensorflow_and_keras_blocked(tmp_path):
    src = _write_reviews(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    r = subprocess.run([sys.executable, "-c", _BLOCKED, str(src), str(out)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report == {"labels": ["1", "0"], "code": 0}
    assert "scoring with the bundled model sentiment-en" in r.stderr
    assert [row["label"] for row in csv.DictReader(out.open(encoding="utf-8"))] == \
        ["1", "0", "1", "0"]


def test_card_figures_come_from_the_results_file():
    result = json.loads((ROOT / "benchmarks" / "results" / "bundled.json").read_text())
    card = model_card(NAME)
    assert result["sha256"] == card["size"]["sha256"] and result["bytes"] == FILE.stat().st_size
    assert set(result["tests"]) == {"imdb:test", "amazon:test"}
    text = (MODELS_DIR / NAME / "CARD.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for spec, rows in (("imdb:test", 25_000), ("amazon:test", 11_378)):
        measured, carded = result["tests"][spec], card["figures"]["tests"][spec]
        assert measured["rows"] == carded["rows"] == rows
        assert measured["accuracy"] == carded["accuracy"]
        shown = f"{100 * measured['accuracy']:.2f}%"
        assert f"| `{spec}` | {rows:,} | {measured['right']:,} | {shown} |" in text
        assert f"{shown} of {rows:,}" in readme


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_package_data_ships_the_model_folder():
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = data["package-data"]["tlc.models"]
    for name in ("model.onnx", "card.json", "CARD.md"):
        assert (MODELS_DIR / NAME / name).is_file()
        assert any(fnmatch.fnmatch(f"{NAME}/{name}", g) for g in globs)


@pytest.mark.realdata
def test_first_imdb_test_reviews_score_near_the_card(real_data_dir, clf):
    # The test file is sorted by label (its first 12,500 rows are positive), so "the first
    # 2,000" are the first 1,000 of each label: both classes, as in the card's figure.
    texts, truth, per_label = [], [], {"0": 0, "1": 0}
    with gzip.open(real_data_dir / "imdb" / "test.csv.gz", "rt", encoding="utf-8",
                   newline="") as f:
        for row in csv.DictReader(f):
            if per_label[row["label"]] < 1000:
                per_label[row["label"]] += 1
                texts.append(row["text"])
                truth.append(row["label"])
            if len(texts) == 2000:
                break
    predicted = clf.predict(texts)
    accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    carded = model_card(NAME)["figures"]["tests"]["imdb:test"]["accuracy"]
    assert set(truth) == {"0", "1"}
    assert accuracy >= carded - 0.03, (accuracy, carded)
