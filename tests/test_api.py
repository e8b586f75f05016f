"""``tlc.TextClassifier`` on lists read from the tiny fixtures, with the tiny network.

The fit of the module fixture is shared by the read-only tests; tests that train their own
(transfer, named bases, the doc's example, clean-up) say why.
"""

from __future__ import annotations

import csv
import gc
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_model import AMAZON, TINY, rows, train_tiny_run
from typer.testing import CliRunner

import tlc.bases
from tlc import TextClassifier
from tlc.cli import app
from tlc.errors import DataError, NotFittedError, TlcError
from tlc.train.evaluate import evaluate
from tlc.train.run import HELD_OUT_FILE, foreign_entries, load_run, remove_run

ROOT = Path(__file__).resolve().parent.parent
IMDB = ROOT / "tests" / "fixtures" / "imdb"
SETTINGS = {key: json.loads(value) for key, value in (s.split("=", 1) for s in TINY)}
runner = CliRunner()


TEXTS, LABELS = rows(AMAZON / "train.csv.gz")
TEST_TEXTS, TEST_LABELS = rows(AMAZON / "test.csv.gz")


def tiny(**kwargs) -> TextClassifier:
    """From scratch unless a base is given (the default base, reviews-en, is for the tests of
    tests/test_recipes.py and the doc's example)."""
    return TextClassifier(**{"base": None, **kwargs}, settings=dict(SETTINGS), quiet=True)


@pytest.fixture(scope="module")
def clf() -> TextClassifier:
    return tiny().fit(TEXTS, LABELS)


@pytest.fixture(scope="module")
def saved(clf, tmp_path_factory) -> Path:
    return clf.save(tmp_path_factory.mktemp("saved") / "run")


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    """A run trained by the file path (`tlc train --data`), to transfer from."""
    return train_tiny_run(tmp_path_factory.mktemp("source") / "amazon")


# -- construction, lightness ---------------------------------------------------------------


def test_import_tlc_does_not_import_tensorflow():
    code = ("import sys, tlc\nfrom tlc import TextClassifier\n"
            "TextClassifier(settings={'training.epochs': 1})\n"
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_constructor_stores_params_and_set_params_checks_names():
    c = TextClassifier("some-base", settings={"training.epochs": 3}, seed=4)
    assert c.get_params() == {"base": "some-base", "recipe": "auto",
                              "settings": {"training.epochs": 3}, "seed": 4, "quiet": False}
    assert c.set_params(seed=5) is c and c.seed == 5
    with pytest.raises(TlcError, match="no parameter 'epochs'") as err:
        c.set_params(epochs=3)
    assert "settings=" in err.value.hint
    assert not hasattr(c, "run_") and not hasattr(c, "classes_")
    assert repr(c) == ("TextClassifier(base='some-base', settings={'training.epochs': 3}, "
                       "seed=5)")
    # the defaults: the bundled base with the recipe for the label count
    assert TextClassifier().get_params()["base"] == "reviews-en"
    assert repr(TextClassifier(base=None)) == "TextClassifier(base=None)"


@pytest.mark.parametrize("call", [
    lambda c: c.predict(["good"]), lambda c: c.predict_proba(["good"]),
    lambda c: c.evaluate(["good"], ["1"]), lambda c: c.save("never-written"),
    lambda c: c.export("never.onnx"),
])
def test_unfitted_use_is_a_clear_tlc_error(call, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFittedError, match="not fitted yet") as err:
        call(TextClassifier())
    assert isinstance(err.value, TlcError) and "fit(texts, labels)" in err.value.hint
    assert list(tmp_path.iterdir()) == []


# -- fit, predict, evaluate ----------------------------------------------------------------


def test_fit_returns_self_and_sets_learned_state(clf):
    assert isinstance(clf, TextClassifier)
    assert list(clf.classes_) == ["0", "1"] == clf.run_.labels
    assert clf.validation_ == clf.run_.info["validation"] and clf.validation_["n"] == 20
    data = clf.run_.info["data"]
    assert data["train"] == "<memory: 200 rows>" == clf.run_.config.data.train
    assert (data["train_rows"], data["valid_rows"]) == (180, 20)
    digest = hashlib.sha256()
    for text, label in zip(TEXTS, LABELS, strict=True):
        digest.update(json.dumps([text, label], ensure_ascii=False).encode() + b"\n")
    assert data["sha256"] == digest.hexdigest()
    assert json.loads((clf.run_.path / "config.json").read_text())["data"]["train"] == \
        "<memory: 200 rows>"
    assert clf.run_.path.name == "run" and clf.run_.path.parent.name.startswith("tlc-fit-")


def test_fit_again_replaces_the_run_and_the_object_cleans_up(tmp_path):
    # Its own small fits: the module's classifier must outlive this test.
    c = tiny()
    assert c.fit(TEXTS[:120], LABELS[:120]) is c
    first = c.run_.path.parent
    c.fit(TEXTS[:100], LABELS[:100])
    second = c.run_.path.parent
    assert not first.exists() and second.exists() and c.run_.info["data"]["train"] == \
        "<memory: 100 rows>"
    del c
    gc.collect()
    assert not second.exists()


def test_predict_proba_shape_and_class_order(clf):
    proba = clf.predict_proba(TEST_TEXTS[:7])
    assert proba.shape == (7, 2) and proba.dtype == np.float32
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    # columns follow classes_, as the run's own Keras model orders them
    grids = clf.run_.tokenizer.encode_grid(TEST_TEXTS[:7])
    assert np.allclose(proba, clf.run_.model.predict(grids, verbose=0), atol=1e-6)
    predicted = clf.predict(TEST_TEXTS[:7])
    assert predicted.shape == (7,) and list(predicted) == \
        [clf.classes_[i] for i in proba.argmax(1)]
    assert clf.predict_proba([]).shape == (0, 2)
    with pytest.raises(TlcError, match=r"texts\[1\] is an int \(3\), not a string"):
        clf.predict(["fine", 3])


def test_evaluate_is_the_report_of_tlc_evaluate_on_the_same_rows(clf):
    mine = clf.evaluate(TEST_TEXTS, TEST_LABELS)
    theirs = evaluate(clf.run_, str(AMAZON / "test.csv.gz"))
    for key in ("n", "accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "labels",
                "per_class", "confusion_matrix"):
        assert mine[key] == theirs[key], key
    assert mine["data"] == "<memory: 100 rows>" and mine["run"] == theirs["run"]
    assert clf.score(TEST_TEXTS, TEST_LABELS) == mine["accuracy"]
    with pytest.raises(DataError, match="'x' are not among the run's classes"):
        clf.evaluate(["a text"], ["x"])


# -- save, load, export ----------------------------------------------------------------------


def test_save_writes_a_run_folder_the_cli_and_load_read(clf, saved, tmp_path):
    assert (saved / "run.json").is_file() and (saved / HELD_OUT_FILE).is_file()
    assert foreign_entries(saved) == []            # only entries tlc owns, so --force works
    report = tmp_path / "report.json"
    done = runner.invoke(app, ["evaluate", str(saved), str(AMAZON / "test.csv.gz"),
                               "--out", str(report)])
    assert done.exit_code == 0, done.output
    assert json.loads(report.read_text())["accuracy"] == clf.score(TEST_TEXTS, TEST_LABELS)
    back = TextClassifier.load(saved)
    assert np.array_equal(back.predict_proba(TEST_TEXTS), clf.predict_proba(TEST_TEXTS))
    assert list(back.classes_) == list(clf.classes_) and back.validation_ == clf.validation_
    assert back.get_params()["settings"] == SETTINGS and back.base is None
    assert back.save(saved) == saved               # saving where it lives: nothing to do


def test_save_never_overwrites_silently(clf, saved, tmp_path):
    target = tmp_path / "again"
    clf.save(target)
    with pytest.raises(TlcError, match="a run is already here") as err:
        clf.save(target)
    assert "force=True" in err.value.hint
    assert clf.save(target, force=True) == target and (target / "run.json").is_file()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(TlcError, match="notes.txt"):
        clf.save(target, force=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("x")
    with pytest.raises(TlcError, match="holds no tlc run"):
        clf.save(other)
    assert [p.name for p in other.iterdir()] == ["data.csv"]


def test_remove_run_takes_the_held_out_file_too(saved, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    remove_run(copy)
    assert list(copy.iterdir()) == []


def test_export_is_scored_like_predict_proba(clf, tmp_path):
    from tlc.runtime import Classifier

    report = clf.export(tmp_path / "model.onnx")
    first = report["validation"]["texts"][0]
    assert first == {"data": "<memory: 200 rows> (held-out rows)", "documents": 20,
                     "labelled": True}
    scorer = Classifier.load(tmp_path / "model.onnx")
    assert scorer.labels == tuple(clf.classes_)
    assert np.abs(scorer.predict_proba(TEST_TEXTS) - clf.predict_proba(TEST_TEXTS)).max() < 1e-4
    with pytest.raises(TlcError, match="exists"):
        clf.export(tmp_path / "model.onnx")


def test_the_cli_exports_a_saved_run(saved, tmp_path):
    done = runner.invoke(app, ["export", str(saved), "--out", str(tmp_path / "cli.onnx")])
    assert done.exit_code == 0, done.output
    assert "<memory: 200 rows> (held-out rows)" in done.output


def test_export_of_a_memory_run_without_its_held_out_text(saved, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(saved, damaged)
    (damaged / HELD_OUT_FILE).unlink()
    with pytest.raises(TlcError, match="trained on texts given in memory") as err:
        TextClassifier.load(damaged).export(tmp_path / "m.onnx")
    assert "--validation-data" in err.value.hint and not (tmp_path / "m.onnx").exists()


def test_a_memory_runs_config_cannot_train_from_the_command_line(saved, tmp_path):
    done = runner.invoke(app, ["train", "--config", str(saved / "config.json"),
                               "--out", str(tmp_path / "x")])
    assert done.exit_code == 2 and "given in memory" in done.output
    assert not (tmp_path / "x").exists()


def test_stored_sample_covers_the_export_guard():
    from tlc.export.exporter import VALIDATION_SAMPLE
    from tlc.train.memory import STORED_SAMPLE

    assert STORED_SAMPLE >= VALIDATION_SAMPLE


# -- transfer, self-training, given validation ----------------------------------------------


def test_transfer_from_a_run_folder_with_unlabelled_text_and_validation(source_run):
    texts, labels = rows(IMDB / "train.csv.gz")
    unsup = _texts(IMDB / "unsup.csv.gz")
    valid = rows(IMDB / "test.csv.gz")
    c = TextClassifier(base=source_run, settings={"training.epochs": 1}, quiet=True)
    c.fit(texts, labels, unlabelled=unsup, validation=valid)
    info = c.run_.info
    source = load_run(source_run)
    assert info["init"] == {"run": str(source_run), "tokenizer_sha256": source.tokenizer.sha256,
                            "head": "reused"}
    assert c.run_.tokenizer.sha256 == source.tokenizer.sha256
    assert c.run_.config.transfer.init == str(source_run)
    # the given validation rows replace the split: every training row trains
    assert (info["data"]["train_rows"], info["data"]["valid_rows"]) == (200, 100)
    assert c.validation_["n"] == 100 and info["data"]["validation_given_rows"] == 100
    assert info["data"]["pseudo_labelled_rows"] > 0
    assert info["data"]["unlabelled_rows"] == 100 and "unlabelled_sha256" in info["data"]
    with gzip.open(c.run_.path / HELD_OUT_FILE, "rt", encoding="utf-8") as fh:
        stored = json.load(fh)
    assert stored["held_out"] == {"texts": valid[0], "labels": valid[1]}
    assert stored["unlabelled"] == unsup and stored["training"] == texts


def _texts(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return [r["text"] for r in csv.DictReader(fh)]


def test_unlabelled_text_needs_a_base():
    with pytest.raises(TlcError, match="self-training needs a source run"):
        tiny().fit(TEXTS, LABELS, unlabelled=TEST_TEXTS)


# -- named bases ------------------------------------------------------------------------------


@pytest.fixture
def bases(source_run, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "bases"
    folder.mkdir()
    shutil.copytree(source_run, folder / "tiny-en")
    (folder / "not-a-run").mkdir()
    monkeypatch.setattr(tlc.bases, "BASES_DIR", folder)
    return folder


def test_resolver(bases, tmp_path, monkeypatch):
    from tlc.bases import bundled_bases, resolve_base

    assert bundled_bases() == ["tiny-en"]
    assert resolve_base("tiny-en") == (bases / "tiny-en", "tiny-en")
    with pytest.raises(TlcError, match="'reviews-xx' is neither a folder nor") as err:
        resolve_base("reviews-xx", option="--init")
    assert "tiny-en" in err.value.message and "run folder" in err.value.hint
    assert str(err.value).startswith("--init 'reviews-xx'")
    # a path is never taken for a name: its own "not found" comes from the run loader
    assert resolve_base("runs/missing") == (Path("runs/missing"), None)
    assert resolve_base("./tiny-en") == (Path("./tiny-en"), None)
    # an existing folder wins over a base of the same name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-en").mkdir()
    assert resolve_base("tiny-en") == (Path("tiny-en"), None)


def test_no_bundled_bases_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(tlc.bases, "BASES_DIR", tmp_path / "none")
    with pytest.raises(TlcError, match="this tlc has no bundled bases"):
        tiny(base="reviews-en").fit(TEXTS, LABELS)


def test_named_base_from_python_and_from_the_cli(bases, tmp_path):
    c = TextClassifier(base="tiny-en", settings={"training.epochs": 1}, quiet=True)
    c.fit(*rows(IMDB / "train.csv.gz"))
    init = c.run_.info["init"]
    assert init["base"] == "tiny-en" and init["run"] == str(bases / "tiny-en")
    assert c.run_.config.transfer.init == "tiny-en"
    out = tmp_path / "cli-run"
    done = runner.invoke(app, ["train", "--data", str(IMDB / "train.csv.gz"), "--init",
                               "tiny-en", "--set", "training.epochs=1", "--out", str(out),
                               "--quiet"])
    assert done.exit_code == 0, done.output
    assert json.loads((out / "run.json").read_text())["init"]["base"] == "tiny-en"
    done = runner.invoke(app, ["train", "--data", str(IMDB / "train.csv.gz"), "--init",
                               "nope", "--out", str(tmp_path / "never")])
    assert done.exit_code == 2 and "tiny-en" in done.output
    assert not (tmp_path / "never").exists()


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("texts", "labels", "message", "fix"), [
    (["a", "b", "c"], ["0", "1"], "texts has 3 items but labels has 2", "one label per text"),
    (["a good one", "a bad one"], ["1", "1"], r"one class only \('1'\)", "other class"),
    ([], [], "no texts to train on: texts is empty", "list of texts"),
    (["fine", "also fine", 5], ["0", "1", "0"], r"texts\[2\] is an int \(5\), not a string",
     r"str\(t\)"),
    (["fine", "   ", "ok"], ["0", "1", "0"], r"texts\[1\] is empty", "data.on_bad_rows"),
    (["fine", "ok"], [0, 1], r"labels\[0\] is an int \(0\), not a string", r"str\(y\)"),
    ("one text", ["0"], "texts is a single str", "list"),
    (["fine", "ok"], None, "labels must be a list", "list"),
])
def test_bad_input_names_the_item_and_the_fix(texts, labels, message, fix):
    with pytest.raises(DataError, match=message) as err:
        tiny().fit(texts, labels)
    assert err.value.hint and re.search(fix, err.value.hint), err.value.hint


def test_bad_validation_and_skipping_bad_items():
    with pytest.raises(DataError, match="validation must be a pair"):
        tiny().fit(TEXTS, LABELS, validation=TEST_TEXTS)
    with pytest.raises(DataError, match=r"validation labels 'x' are not among"):
        tiny().fit(TEXTS, LABELS, validation=(["a text"], ["x"]))
    with pytest.raises(DataError, match=r"validation texts\[0\] is empty"):
        tiny().fit(TEXTS, LABELS, validation=([""], ["0"]))
    from tlc.train.memory import memory_data

    data = memory_data(["good", "", 7, "bad"], ["1", "0", "1", "0"], on_bad_rows="skip")
    assert (data.texts, data.labels) == (["good", "bad"], ["1", "0"])
    assert data.skipped == {"empty text": 1, "not a string": 1}
    assert data.describe() == "<memory: 2 rows>" and data.record()["skipped_rows"] == \
        {"empty text": 1, "not a string": 1}


@pytest.mark.parametrize(("settings", "message"), [
    ({"data.train": "imdb"}, "settings may not hold 'data.train'"),
    ({"transfer.init": "runs/x"}, "settings may not hold 'transfer.init'"),
    ({"epochs": 3}, "settings key 'epochs' is not section.key"),
    ({"training.epoch": 3}, "unknown setting 'training.epoch'"),
    ({"training.seed": 1, "x.y": 1}, "unknown configuration section"),
    ([("training.epochs", 3)], "settings must be a dict"),
])
def test_bad_settings(settings, message):
    with pytest.raises(TlcError, match=message):
        TextClassifier(settings=settings).fit(TEXTS, LABELS)


def test_settings_values_from_numpy_and_paths(tmp_path):
    c = TextClassifier(base=None, settings={"training.epochs": np.int64(2),
                                            "transfer.tokenizer": tmp_path / "missing"})
    config = c._config()
    assert config.training.epochs == 2 and config.transfer.tokenizer == str(tmp_path /
                                                                           "missing")


def test_scratch_only_settings_with_a_base_are_refused(tmp_path):
    with pytest.raises(TlcError, match="for a run trained from scratch") as err:
        TextClassifier(settings={"transfer.tokenizer": tmp_path}).fit(TEXTS, LABELS)
    assert "(the default)" in err.value.message and "base=None" in err.value.hint


def test_seed_given_twice_must_agree():
    with pytest.raises(TlcError, match="disagree"):
        TextClassifier(settings={"training.seed": 1}, seed=2).fit(TEXTS, LABELS)


# -- the documented example -------------------------------------------------------------------


def test_the_python_api_doc_example_runs_as_written(source_run, tmp_path, monkeypatch):
    # the example starts from the default base: here the tiny source, bundled by that name
    (tmp_path / "bases").mkdir()
    shutil.copytree(source_run, tmp_path / "bases" / "reviews-en")
    monkeypatch.setattr(tlc.bases, "BASES_DIR", tmp_path / "bases")
    doc = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    names = {"texts": TEXTS, "labels": LABELS, "test_texts": TEST_TEXTS,
             "test_labels": TEST_LABELS, "settings": dict(SETTINGS)}
    exec(compile(block, "docs/python-api.md", "exec"), names)
    assert names["proba"].shape == (100, 2) and len(names["predicted"]) == 100
    assert 0 <= names["report"]["accuracy"] <= 1
    assert (tmp_path / "my-run" / "run.json").is_file() and (tmp_path / "model.onnx").is_file()
    assert np.array_equal(names["same"].predict_proba(TEST_TEXTS[:5]),
                          names["clf"].predict_proba(TEST_TEXTS[:5]))
    assert names["scorer"].quantization["mode"] != "float32"
