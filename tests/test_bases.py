"""Packed bases (tlc/bases/pack.py), `tlc base build` (tlc/bases/build.py) and the bundled
base `reviews-en`.

A tiny run (tests/tiny_model.py) is packed and must load, predict like its float32 run and
start transfers; `tlc base build` runs end to end on the fixtures with a tiny recipe put into
the catalog. The bundled base is checked as shipped: its size, its card, and (with the real
data) its accuracy on the first amazon test rows against the figure its card states.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_model import AMAZON, TINY, rows, train_tiny_run
from typer.testing import CliRunner

import tlc
import tlc.bases
from tlc.bases import bundled_bases
from tlc.bases.catalog import CATALOG, BaseRecipe
from tlc.bases.pack import pack_run, to_float16
from tlc.cli import app
from tlc.errors import TlcError
from tlc.train.run import foreign_entries, load_run

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BUNDLED = ROOT / "tlc" / "bases" / "reviews-en"
MAX_BYTES = 5 * 1024 * 1024
runner = CliRunner()


TEST_TEXTS, TEST_LABELS = rows(AMAZON / "test.csv.gz")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("source") / "amazon")


@pytest.fixture(scope="module")
def packed(tiny_run, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bases") / "tiny-en"
    pack_run(load_run(tiny_run), folder, name="tiny-en")
    return folder


# -- the packed format ----------------------------------------------------------------------


def test_a_packed_base_is_a_finished_run_folder_without_model_keras(tiny_run, packed):
    names = sorted(p.name for p in packed.iterdir())
    assert names == [".tlc-run", "config.json", "run.json", "tokenizer", "weights.npz"]
    assert foreign_entries(packed) == []          # every entry is one tlc writes
    base, run = load_run(packed), load_run(tiny_run)
    assert base.labels == run.labels
    # the settings as trained, the word vectors by file name (no path of the training machine)
    vectors = run.config.transfer.init_vectors
    assert base.config.transfer.init_vectors == (Path(vectors).name if vectors else vectors)
    assert base.config.replace(transfer={"init_vectors": None}) == \
        run.config.replace(transfer={"init_vectors": None})
    assert base.tokenizer.sha256 == run.tokenizer.sha256
    record = base.info["packed"]
    assert record["name"] == "tiny-en" and record["dtype"] == "float16"
    assert record["from_run"]["run_json_sha256"] == hashlib.sha256(
        (tiny_run / "run.json").read_bytes()).hexdigest()
    with np.load(packed / "weights.npz") as stored:
        keys = set(stored.files)
        assert {stored[k].dtype for k in keys} == {np.dtype(np.float16)}
        assert record["parameters"] == sum(stored[k].size for k in keys)
    # the head is kept: a transfer with the same labels reuses it
    assert keys == {w.path for w in run.model.weights}
    assert {"output/kernel", "hidden/kernel"} <= keys


def test_the_packed_network_predicts_like_the_float32_run(tiny_run, packed):
    base, run = load_run(packed), load_run(tiny_run)
    grids = run.tokenizer.encode_grid(TEST_TEXTS)
    exact = run.model.predict(grids, verbose=0)
    small = base.model.predict(grids, verbose=0)
    assert small.dtype == np.float32
    # float16 keeps about 3 significant digits of each weight
    assert np.abs(exact - small).max() < 2e-3
    decided = np.abs(exact[:, 1] - exact[:, 0]) > 4e-3
    assert decided.sum() > 0
    assert (exact.argmax(1) == small.argmax(1))[decided].all()
    with np.load(packed / "weights.npz") as stored:   # float32 casts of what is stored
        assert np.array_equal(base.model.get_layer("embedding").get_weights()[0],
                              stored["embedding/embeddings"].astype(np.float32))


def test_packed_weights_take_a_fraction_of_model_keras(tiny_run, packed):
    # model.keras keeps the optimiser's two moments too, at float32
    assert (packed / "weights.npz").stat().st_size * 4 < (tiny_run / "model.keras").stat().st_size


def test_a_damaged_packed_base_is_one_clear_message(packed, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(packed, broken)
    with np.load(broken / "weights.npz") as stored:
        kept = {k: stored[k] for k in stored.files if k != "output/bias"}
    np.savez_compressed(broken / "weights.npz", **kept)
    with pytest.raises(TlcError, match="missing output/bias") as err:
        load_run(broken).model  # noqa: B018
    assert "tlc base build" in err.value.hint
    (broken / "weights.npz").write_bytes(b"not a zip file")
    with pytest.raises(TlcError, match="cannot read the packed weights"):
        load_run(broken).model  # noqa: B018
    (broken / "weights.npz").unlink()
    with pytest.raises(TlcError, match="model file is missing"):
        load_run(broken).model  # noqa: B018


def test_a_weight_beyond_float16_is_refused():
    with pytest.raises(TlcError, match="beyond float16"):
        to_float16({"wide/table": np.array([1.0, 7e4], np.float32)})


# -- transfer from a packed base ------------------------------------------------------------


@pytest.fixture
def bases(packed, monkeypatch) -> Path:
    monkeypatch.setattr(tlc.bases, "BASES_DIR", packed.parent)
    return packed.parent


def test_transfer_from_a_packed_base_by_name(bases, tmp_path):
    assert bundled_bases() == ["tiny-en"]
    out = tmp_path / "cli-run"
    imdb = str(FIXTURES / "imdb" / "train.csv.gz")
    done = runner.invoke(app, ["train", "--data", imdb, "--init", "tiny-en", "--set",
                               "training.epochs=1", "--out", str(out), "--quiet"])
    assert done.exit_code == 0, done.output
    init = json.loads((out / "run.json").read_text())["init"]
    assert init["base"] == "tiny-en" and init["run"] == str(bases / "tiny-en")
    assert init["head"] == "reused"   # same labels: the packed head starts the run
    assert init["tokenizer_sha256"] == load_run(bases / "tiny-en").tokenizer.sha256

    c = tlc.TextClassifier(base="tiny-en", settings={"training.epochs": 1}, quiet=True)
    c.fit(*rows(FIXTURES / "imdb" / "train.csv.gz"))
    assert c.run_.info["init"]["base"] == "tiny-en"
    assert c.predict_proba(TEST_TEXTS[:3]).shape == (3, 2)


def test_transfer_copies_the_float32_casts_of_the_packed_weights(packed):
    from tlc.train.model import build_model
    from tlc.train.transfer import transfer_weights

    base = load_run(packed)
    grid = base.config.tokenizer
    target = build_model(base.config.model, vocab_size=base.tokenizer.vocab_size,
                         sentences=grid.max_sentences, tokens=grid.max_tokens, n_classes=2,
                         seed=7)
    copied = transfer_weights(target, base.model, reuse_head=True)
    assert copied == ["embedding", "word_conv", "sentence_conv", "hidden", "output"]
    with np.load(packed / "weights.npz") as stored:
        for w in target.weights:
            assert np.array_equal(w.numpy(), stored[w.path].astype(np.float32)), w.path


# -- tlc base build, end to end on the fixtures ---------------------------------------------


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """The fixtures as a data folder, with 8-wide word vectors (the tiny network's width)."""
    folder = tmp_path / "data"
    for name in ("amazon", "imdb"):
        shutil.copytree(FIXTURES / name, folder / name)
    (folder / "glove").mkdir()
    rng = np.random.default_rng(0)
    with gzip.open(folder / "glove" / "tiny.txt.gz", "wt", encoding="utf-8") as fh:
        for word in ("the", "good", "bad", "great", "poor", "love"):
            fh.write(word + " " + " ".join(f"{v:.4f}" for v in rng.normal(0, 0.1, 8)) + "\n")
    return folder


@pytest.fixture
def tiny_recipe(monkeypatch) -> BaseRecipe:
    real = CATALOG["reviews-en"]
    recipe = BaseRecipe(
        name="tiny-en", summary="A tiny review base for the tests", data="amazon",
        vectors="glove/tiny.txt.gz", args=[x for s in TINY for x in ("--set", s)],
        tests=("amazon:test", "imdb:test"), label_meaning=real.label_meaning,
        data_description="the fixtures' 200 Amazon reviews", collections=real.collections,
        other_sources=["No other text."], terms=["The fixtures' terms."])
    monkeypatch.setitem(CATALOG, "tiny-en", recipe)
    return recipe


def test_base_build_trains_packs_measures_and_writes_the_card(tiny_recipe, data_dir, tmp_path):
    from tlc.train.evaluate import evaluate

    out, work = tmp_path / "bases" / "tiny-en", tmp_path / "work"
    args = ["base", "build", "tiny-en", "--data-dir", str(data_dir), "--out", str(out),
            "--work", str(work)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "training the source run of tiny-en" in done.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".tlc-run", "CARD.md", "card.json", "config.json", "run.json", "tokenizer",
        "weights.npz"]
    assert [p.name for p in out.parent.iterdir()] == ["tiny-en"]  # no staging folder left
    base, source = load_run(out), load_run(work)
    # the source was trained by the recipe, nothing else
    assert source.config.data.train == "amazon" and source.config.model.embedding_dim == 8
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == "tiny-en" and card["tlc_version"] == tlc.__version__
    on = card["trained_on"]
    train_file = data_dir / "amazon" / "train.csv.gz"
    assert on["sha256"] == hashlib.sha256(train_file.read_bytes()).hexdigest()
    labels = rows(train_file)[1]
    assert on["rows"] == len(labels) == sum(c["rows"] for c in on["collections"])
    assert on["labels"] == {k: labels.count(k) for k in sorted(set(labels))}
    assert on["train_rows"] + on["valid_rows"] == len(labels)
    # the figures are the measured ones: the packed base and the float32 source, scored again
    for spec in tiny_recipe.tests:
        figures = card["figures"]["tests"][spec]
        assert figures["float16"]["accuracy"] == evaluate(base, spec, data_dir=data_dir)[
            "accuracy"]
        assert figures["float32"]["accuracy"] == evaluate(source, spec, data_dir=data_dir)[
            "accuracy"]
        assert figures["agreement"]["rows"] == figures["rows"] == 100
        assert figures["agreement"]["max_abs_diff"] < 2e-3
    assert card["figures"]["validation"]["balanced_accuracy"] == \
        source.info["validation"]["balanced_accuracy"]
    assert card["size"]["total_bytes"] == sum(
        p.stat().st_size for p in out.rglob("*") if p.is_file()
        and p.name not in ("card.json", "CARD.md"))
    text = (out / "CARD.md").read_text()
    for fact in (f"tlc {tlc.__version__}", "the fixtures' 200 Amazon reviews",
                 "The fixtures' terms.", card["rebuild"], "amazon:test", "imdb:test",
                 f"{100 * card['figures']['tests']['imdb:test']['float16']['accuracy']:.2f}%"):
        assert fact in text, fact
    assert all(s in card["source_command"] for s in TINY)

    # a second build replaces the base only with --force, and reuses the finished source
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "a base is already here" in again.output
    again = runner.invoke(app, [*args, "--force"])
    assert again.exit_code == 0, again.output
    assert "a finished run is there" in again.output
    assert "training the source run" not in again.output


def test_base_build_refuses_a_run_of_another_recipe(tiny_recipe, data_dir, tiny_run,
                                                     tmp_path):
    out = tmp_path / "never"
    done = runner.invoke(app, ["base", "build", "tiny-en", "--from-run", str(tiny_run),
                               "--data-dir", str(data_dir), "--out", str(out)])
    assert done.exit_code == 2
    assert "was not trained by the tiny-en recipe" in done.output
    assert 'data.train is "' in done.output and "the recipe's \"amazon\"" in done.output
    assert not out.exists()


def test_base_build_refuses_unknown_names_and_foreign_folders(data_dir, tmp_path):
    done = runner.invoke(app, ["base", "build", "nope", "--data-dir", str(data_dir), "--out",
                               str(tmp_path / "x")])
    assert done.exit_code == 2 and "reviews-en" in done.output
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    done = runner.invoke(app, ["base", "build", "reviews-en", "--data-dir", str(data_dir),
                               "--out", str(mine), "--force"])
    assert done.exit_code == 2 and "not a base tlc built" in done.output
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


# -- the bundled base -----------------------------------------------------------------------


def test_reviews_en_is_bundled_small_and_loads():
    assert "reviews-en" in bundled_bases()
    size = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert size <= MAX_BYTES, f"{size:,} bytes"
    assert foreign_entries(BUNDLED) == []
    base = load_run(BUNDLED)
    assert base.labels == ["0", "1"] and not (BUNDLED / "model.keras").exists()
    assert base.info["packed"]["name"] == "reviews-en"
    proba = base.model.predict(base.tokenizer.encode_grid(
        ["Broke after two days, a waste of money.", "Works perfectly, love it!"]), verbose=0)
    assert list(proba.argmax(1)) == [0, 1]


def test_reviews_en_card_names_the_data_its_terms_and_the_tlc_version():
    card = json.loads((BUNDLED / "card.json").read_text())
    text = (BUNDLED / "CARD.md").read_text()
    assert card["tlc_version"] == tlc.__version__, "rebuild the base with this tlc"
    assert f"tlc {card['tlc_version']}" in text
    on = card["trained_on"]
    assert on["data"] == "amazon" and on["tokenizer_text"] == ["imdb:unsup"]
    assert on["vectors"] == "glove.6B.50d.txt.gz"
    assert on["train_rows"] + on["valid_rows"] == on["rows"]
    prefixes = {c["prefix"]: c for c in on["collections"]}
    assert prefixes["scrape2023"]["published"] is False
    assert "NOT Zhang et al." in text and "not a published data set" in text
    assert "PDDL" in text and "Maas" in text
    for spec in ("amazon:test", "imdb:test"):
        assert f"{100 * card['figures']['tests'][spec]['float16']['accuracy']:.2f}%" in text
    assert card["size"]["total_bytes"] <= MAX_BYTES
    assert "tlc base build reviews-en" in card["rebuild"]


@pytest.mark.realdata
def test_reviews_en_scores_the_amazon_test_rows_as_its_card_says(real_data_dir):
    from tlc.data import open_dataset
    from tlc.train.evaluate import evaluate_rows

    card = json.loads((BUNDLED / "card.json").read_text())
    stated = card["figures"]["tests"]["amazon:test"]["float16"]["accuracy"]
    test = open_dataset("amazon", real_data_dir).load("test")
    report = evaluate_rows(load_run(BUNDLED), test.texts[:2000], test.labels[:2000],
                           data="amazon:test")
    # (the first 2,000 rows are a sample of the whole set's figure, so a margin)
    assert report["accuracy"] >= stated - 0.03
