"""Transfer by default (tlc/train/start.py): `tlc train` and `TextClassifier` start from the
bundled base with the recipe for the label count, and recipes that call for it self-train
the base first (RUN/stage-self). The bundled base is a tiny packed run under the name
reviews-en (tlc.bases.BASES_DIR monkeypatched), trained on the Amazon fixtures with TINY.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pytest
from bench_loader import load_benchmark
from tiny_model import TINY, train_tiny_run
from typer.testing import CliRunner

import tlc.bases
from tlc import TextClassifier
from tlc.bases.pack import pack_run
from tlc.cli import app
from tlc.train.recipes import RECIPES, recipe_for
from tlc.train.run import STAGE_DIR, foreign_entries, load_run, run_state

ROOT = Path(__file__).resolve().parent.parent
IMDB = ROOT / "tests" / "fixtures" / "imdb"          # train, test and unsup splits
EPOCH = ["--set", "training.epochs=1"]
runner = CliRunner()


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bases")
    run = train_tiny_run(tmp_path_factory.mktemp("source") / "amazon")
    pack_run(load_run(run), folder / "reviews-en", name="reviews-en")
    return folder


@pytest.fixture
def bundled(packed, monkeypatch) -> Path:
    monkeypatch.setattr(tlc.bases, "BASES_DIR", packed)
    return packed / "reviews-en"


def train(*args) -> object:
    return runner.invoke(app, ["train", *map(str, args)])


def info(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


# -- the recipes ----------------------------------------------------------------------------


def test_recipe_by_label_count_at_the_boundaries():
    # boundaries at the geometric means of the seed table's budgets 100 / 1,250 / 25,000
    assert RECIPES["few"].up_to == 353 and RECIPES["some"].up_to == 5590
    assert 353 ** 2 <= 100 * 1250 < 354 ** 2 and 5590 ** 2 <= 1250 * 25000 < 5591 ** 2
    got = {n: recipe_for(n).name for n in (0, 1, 353, 354, 5590, 5591, 25000, 10 ** 7)}
    assert got == {0: "zero", 1: "few", 353: "few", 354: "some", 5590: "some",
                   5591: "many", 25000: "many", 10 ** 7: "many"}
    assert [r.self_train for r in RECIPES.values()] == ["only", "first", "first", ""]
    assert RECIPES["some"].settings == [
        "transfer.freeze=[]", "training.learning_rate=0.001", "training.min_rows_per_epoch=2000",
        "training.batch_size=32", "training.epochs=15", "training.patience=4",
        "data.valid_fraction=0.1"]
    assert RECIPES["many"].settings == [
        "transfer.freeze=[]", "training.learning_rate=0.001", "data.valid_fraction=0.1",
        "training.epochs=8", "training.patience=2"]


def test_the_seed_tables_argument_lists_are_unchanged():
    """Its finished runs are reused only when made by the same arguments."""
    table = load_benchmark("seed_table", module_name="seed_table_args", neighbours=True)
    s = "--set"
    small = [s, "training.min_rows_per_epoch=2000", s, "training.batch_size=32",
             s, "training.epochs=15", s, "training.patience=4"]
    assert table.SELF_TRAIN == [s, "self_training.fraction=0.6", s, "training.epochs=2",
                                s, "transfer.freeze=[]", s, "training.learning_rate=0.0005",
                                s, "self_training.prior=balanced"]
    assert table.BUDGET == {100: [*small, s, "data.valid_fraction=0.2"],
                            1250: [*small, s, "data.valid_fraction=0.1"],
                            25000: [s, "data.valid_fraction=0.1", s, "training.epochs=8",
                                    s, "training.patience=2"]}
    assert table.TRANSFER_SMALL == [s, 'transfer.freeze=["embedding"]',
                                    s, "transfer.freeze_epochs=-1",
                                    s, "training.learning_rate=0.0001"]
    assert table.TRANSFER_SMALL_ALL == [s, "transfer.freeze=[]", s, "training.learning_rate=0.001"]
    assert table.TRANSFER_LARGE == [s, "transfer.freeze=[]", s, "training.learning_rate=0.0003"]
    assert table.ROUND2 == ["--unlabelled", "imdb:unsup", s, "self_training.fraction=0.5",
                            s, "self_training.prior=labels", s, "training.epochs=3",
                            s, "training.patience=0", s, "transfer.freeze=[]",
                            s, "training.learning_rate=0.0003"]
    assert table.START[1250] == {"self": table.TRANSFER_SMALL,
                                 "self+all-lr1e-3": table.TRANSFER_SMALL_ALL}
    assert table.BUDGETS == (100, 1250, 25000)


# -- the default start ----------------------------------------------------------------------


def test_default_is_the_bundled_base_with_a_first_stage_on_the_own_unsup_split(bundled,
                                                                               tmp_path):
    out = tmp_path / "run"
    done = train("--data", IMDB, "--labels", 60, "--out", out, *EPOCH)
    assert done.exit_code == 0, done.output
    assert "starting from the bundled base reviews-en; --init none trains from scratch" \
        in done.output
    assert "recipe 'few' for 60 labels: transfer.freeze=[]" in done.output
    assert "  overridden: training.epochs=1" in done.output
    assert (f"self-training first on {IMDB}:unsup, 100 unlabelled documents (the data set's "
            "own unlabelled split;") in done.output
    run = info(out)
    recipe = run["recipe"]
    assert recipe["name"] == "few" and recipe["labels"] == 60
    assert recipe["settings"] == RECIPES["few"].settings
    assert recipe["overridden"] == {"training.epochs": 1}
    config = load_run(out).config
    assert config.training.epochs == 1 and config.training.batch_size == 32   # the rest holds
    assert config.data.valid_fraction == 0.2 and config.self_training.unlabelled == []
    # stage 1: a finished run inside the run, the base self-trained with no label, its prior
    # the class shares of the labelled rows the run fine-tunes on
    stage = load_run(out / STAGE_DIR)
    assert stage.config.data.labels == 0 and stage.config.transfer.init == "reviews-en"
    assert stage.config.self_training.prior == {"0": 0.5, "1": 0.5}
    assert stage.config.training.epochs == 2          # SELF_TRAIN's, not the --set for stage 2
    assert stage.info["data"]["pseudo_labelled_rows"] > 0
    assert run["stage_self"]["run"] == STAGE_DIR and run["stage_self"]["from"] == "reviews-en"
    assert run["init"]["run"] == str(out / STAGE_DIR) and run["init"]["base"] == "reviews-en"
    assert config.transfer.init == str(out / STAGE_DIR)
    assert foreign_entries(out) == []

    # --resume after stage 2 was lost reuses the finished stage 1
    for name in ("run.json", "model.keras"):
        (out / name).unlink()
    assert run_state(out) == "unfinished"
    done = train("--data", IMDB, "--labels", 60, "--out", out, *EPOCH)
    assert done.exit_code == 2 and "--resume" in done.output
    done = train("--data", IMDB, "--labels", 60, "--out", out, *EPOCH, "--resume")
    assert done.exit_code == 0, done.output
    assert f"first stage: the finished run in {out / STAGE_DIR} is reused" in done.output
    assert info(out / STAGE_DIR) == stage.info

    # --force removes stage 1 with the rest, and trains both again
    done = train("--data", IMDB, "--labels", 60, "--out", out, *EPOCH, "--force", "-q")
    assert done.exit_code == 0, done.output
    assert info(out / STAGE_DIR)["training"]["seconds"] != stage.info["training"]["seconds"]


def test_init_none_trains_from_scratch_with_the_plain_defaults(bundled, tmp_path):
    out = tmp_path / "scratch"
    sets = [x for s in TINY for x in ("--set", s)]
    done = train("--data", IMDB, "--labels", 60, "--init", "none", "--out", out, *sets)
    assert done.exit_code == 0, done.output
    assert "bundled base" not in done.output and "recipe" not in done.output
    run = info(out)
    assert run["init"] is None and "recipe" not in run and not (out / STAGE_DIR).exists()
    assert load_run(out).config.training.batch_size == 64     # tlc's default, no recipe
    done = train("--data", IMDB, "--init", "none", "--recipe", "few", "--out", tmp_path / "x")
    assert done.exit_code == 2 and "trains from scratch" in done.output


def test_unlabelled_given_goes_to_the_first_stage(bundled, tmp_path):
    out = tmp_path / "run"
    done = train("--data", IMDB / "train.csv.gz", "--labels", 40, "--unlabelled",
                 f"{IMDB}:unsup", "--out", out, *EPOCH)
    assert done.exit_code == 0, done.output
    assert "unlabelled documents (--unlabelled;" in done.output
    assert load_run(out / STAGE_DIR).config.self_training.unlabelled == [f"{IMDB}:unsup"]
    assert info(out)["data"]["pseudo_labelled_rows"] == 0          # stage 2: labels only
    # a file with no unsup split beside it: no self-training, and the run says why
    done = train("--data", IMDB / "train.csv.gz", "--labels", 40, "--out", tmp_path / "b",
                 *EPOCH)
    assert done.exit_code == 0, done.output
    assert "no self-training: no unlabelled text (" in done.output
    assert not (tmp_path / "b" / STAGE_DIR).exists()


def test_other_labels_get_a_new_head_and_no_self_training(bundled, tmp_path):
    data = tmp_path / "topics"
    data.mkdir()
    with gzip.open(IMDB / "train.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        texts = [r["text"] for r in csv.DictReader(fh)][:150]
    with (data / "train.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i, text in enumerate(texts):
            w.writerow([text, ("film", "book", "song")[i % 3]])
    shutil.copy(IMDB / "unsup.csv.gz", data / "unsup.csv.gz")
    out = tmp_path / "run"
    done = train("--data", data, "--out", out, *EPOCH)
    assert done.exit_code == 0, done.output
    assert "recipe 'few' for 150 labels" in done.output
    assert ("no self-training: the labels (book, film, song) are not the base's (0, 1)"
            in done.output)
    run = info(out)
    assert run["init"]["head"] == "new" and run["labels"] == ["book", "film", "song"]
    assert run["recipe"]["self_training"].startswith("skipped")
    assert not (out / STAGE_DIR).exists()


def test_recipe_by_hand_or_none(bundled, tmp_path):
    done = train("--data", IMDB / "train.csv.gz", "--recipe", "many", "--out", tmp_path / "m",
                 *EPOCH, "--set", "training.learning_rate=0.002")
    assert done.exit_code == 0, done.output
    assert "recipe 'many' (--recipe many) for 200 labels" in done.output
    recipe = info(tmp_path / "m")["recipe"]
    assert recipe["chosen_by"] == "--recipe" and recipe["overridden"] == {
        "training.epochs": 1, "training.learning_rate": 0.002}
    done = train("--data", IMDB, "--recipe", "none", "--out", tmp_path / "n", *EPOCH, "-q")
    assert done.exit_code == 0, done.output
    run = info(tmp_path / "n")
    assert "recipe" not in run and run["init"]["base"] == "reviews-en"
    done = train("--data", IMDB, "--recipe", "lots", "--out", tmp_path / "x")
    assert done.exit_code == 2 and "'lots' is not a recipe" in done.output
    assert not (tmp_path / "x").exists()


def test_the_python_api_uses_the_same_start(bundled, tmp_path):
    with gzip.open(IMDB / "train.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        found = list(csv.DictReader(fh))
    with gzip.open(IMDB / "unsup.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        unsup = [r["text"] for r in csv.DictReader(fh)]
    c = TextClassifier(settings={"training.epochs": 1, "data.labels": 80}, quiet=True)
    c.fit([r["text"] for r in found], [r["label"] for r in found], unlabelled=unsup)
    run = c.run_.info
    assert run["recipe"]["name"] == "few" and run["recipe"]["labels"] == 80
    assert run["stage_self"]["unlabelled_rows"] == 100
    assert run["init"]["base"] == "reviews-en" and run["data"]["pseudo_labelled_rows"] == 0
    saved = c.save(tmp_path / "saved")
    assert (saved / STAGE_DIR / "run.json").is_file() and foreign_entries(saved) == []
    back = TextClassifier.load(saved)
    assert back.base == "reviews-en" and back.recipe == "few"
