"""``tlc train`` / ``tlc evaluate`` end to end on the tiny fixtures, with a tiny network.

Every training here takes a few seconds: a 400-piece vocabulary, 3 x 8 grids, 8-unit layers,
2-3 epochs. The source run is trained once per module and only read by the tests.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tlc.cli import app
from tlc.errors import TlcError
from tlc.train.config import RunConfig
from tlc.train.evaluate import evaluate, predict_proba
from tlc.train.pipeline import train
from tlc.train.run import load_run, run_state
from tlc.train.trainer import Trainer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AMAZON = FIXTURES / "amazon"
IMDB = FIXTURES / "imdb"

TINY = [
    "tokenizer.vocab_size=400", "tokenizer.max_sentences=3", "tokenizer.max_tokens=8",
    "model.embedding_dim=8", "model.word_filters=8", "model.sentence_filters=8",
    "model.hidden_units=8", "training.epochs=2", "training.batch_size=32",
    "training.min_rows_per_epoch=0",
]

runner = CliRunner()


def tiny(data: Path | str, *sets: str) -> RunConfig:
    return RunConfig().override([*TINY, f"data.train={json.dumps(str(data))}", *sets])


def init(run: Path) -> str:
    return f"transfer.init={json.dumps(str(run))}"


def read_csv_gz(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def amazon_texts(n: int) -> list[str]:
    return [row["text"] for row in read_csv_gz(AMAZON / "train.csv.gz")[:n]]


def weights(run_path: Path, layer: str) -> list[np.ndarray]:
    return load_run(run_path).model.get_layer(layer).get_weights()


def equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("source") / "amazon"
    train(tiny(AMAZON), out, quiet=True)
    return out


# ------------------------------------------------------------------------ the source run


def test_source_run_folder(source_run):
    names = sorted(p.name for p in source_run.iterdir())
    assert names == [".tlc-run", "config.json", "model.keras", "run.json",  # no checkpoint/
                     "tokenizer"]
    info = json.loads((source_run / "run.json").read_text())
    assert info["format"] == 1 and info["labels"] == ["0", "1"] and info["init"] is None
    assert info["training"]["epochs_done"] == 2 and len(info["training"]["history"]) == 2
    assert info["data"]["train_rows"] + info["data"]["valid_rows"] == 200
    assert info["validation"]["n"] == info["data"]["valid_rows"] > 0

    run = load_run(source_run)
    assert run.labels == ["0", "1"]
    assert run.config.tokenizer.max_sentences == 3 and run.config.model.embedding_dim == 8
    assert run.tokenizer.vocab_size == 400 and run.tokenizer.sha256 == info["tokenizer_sha256"]
    model = run.model                                  # loads with safe_mode=True
    assert model.get_layer("embedding").get_weights()[0].shape == (400, 8)
    proba = predict_proba(run, ["Great boots, my son loves them.", "Broke after a day."])
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_evaluate_matches_argmax_by_hand(source_run):
    run = load_run(source_run)
    report = evaluate(run, str(AMAZON))
    assert {"n", "accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "labels", "per_class",
            "confusion_matrix", "run", "data", "split", "file", "skipped_rows",
            "docs_per_second"} <= set(report)
    assert report["split"] == "test" and report["n"] == 100 and report["skipped_rows"] == 0
    rows = read_csv_gz(AMAZON / "test.csv.gz")
    y = np.array([run.labels.index(r["label"]) for r in rows])
    proba = predict_proba(run, [r["text"] for r in rows])
    assert report["accuracy"] == pytest.approx(float((proba.argmax(axis=1) == y).mean()))
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == 100 and matrix.sum(axis=1).tolist() == [50, 50]
    assert np.trace(matrix) == round(report["accuracy"] * 100)


# ------------------------------------------------------------------------------ transfer


@pytest.mark.parametrize("freeze_epochs", [-1, 0])
def test_transfer_shares_tokenizer_and_honours_freezing(source_run, tmp_path, freeze_epochs):
    out = tmp_path / "imdb"
    run = train(tiny(IMDB, init(source_run), "data.labels=40", 'transfer.freeze=["embedding"]',
                     f"transfer.freeze_epochs={freeze_epochs}"), out, quiet=True)
    source = load_run(source_run)
    info = json.loads((out / "run.json").read_text())
    assert run.tokenizer.sha256 == source.tokenizer.sha256 == info["tokenizer_sha256"]
    assert info["init"] == {"run": str(source_run), "tokenizer_sha256": source.tokenizer.sha256,
                            "head": "reused"}                # same labels: head reused
    assert info["data"]["train_rows"] + info["data"]["valid_rows"] == 40
    history = info["training"]["history"]
    assert len(history) == 2

    src_emb, tgt_emb = weights(source_run, "embedding"), weights(out, "embedding")
    if freeze_epochs == -1:
        assert [h["frozen"] for h in history] == [["embedding"], ["embedding"]]
        assert equal(tgt_emb, src_emb)                       # bit for bit
    else:
        assert [h["frozen"] for h in history] == [[], []]
        assert not equal(tgt_emb, src_emb)
    assert not equal(weights(out, "word_conv"), weights(source_run, "word_conv"))


def abc_data(tmp_path: Path) -> Path:
    texts = amazon_texts(45)
    return write_csv(tmp_path / "abc.csv", [(t, "abc"[i % 3]) for i, t in enumerate(texts)])


def test_other_labels_get_a_new_head_and_reuse_is_refused(source_run, tmp_path):
    data = abc_data(tmp_path)
    out = tmp_path / "abc"
    with pytest.raises(TlcError, match="cannot be reused"):
        train(tiny(data, init(source_run), "transfer.head=\"reuse\""), out, quiet=True)

    # --out already holds a finished run: refused without force, replaced with it.
    shutil.copytree(source_run, out, dirs_exist_ok=True)
    with pytest.raises(TlcError, match="finished run") as info:
        train(tiny(data, init(source_run)), out, quiet=True)
    assert "--force" in str(info.value)
    assert json.loads((out / "run.json").read_text())["labels"] == ["0", "1"]  # untouched

    run = train(tiny(data, init(source_run), "training.epochs=1"), out, force=True, quiet=True)
    assert run.labels == ["a", "b", "c"] and run.info["init"]["head"] == "new"
    model = load_run(out).model
    assert model.output_shape == (None, 3)
    assert equal(model.get_layer("embedding").get_weights(), weights(source_run, "embedding"))


# -------------------------------------------------------------------------------- errors


def test_budget_and_class_errors(tmp_path):
    with pytest.raises(TlcError, match="budget of 500 labels") as info:
        train(tiny(AMAZON, "data.labels=500"), tmp_path / "a", quiet=True)
    assert "200" in str(info.value)

    one = write_csv(tmp_path / "one.csv", [(t, "pos") for t in amazon_texts(30)])
    with pytest.raises(TlcError, match="2 classes"):
        train(tiny(one), tmp_path / "b", quiet=True)
    assert not (tmp_path / "b" / "run.json").exists()


def test_bad_transfer_sources(source_run, tmp_path):
    with pytest.raises(TlcError, match="run folder not found"):
        train(tiny(IMDB, init(tmp_path / "nowhere")), tmp_path / "a", quiet=True)

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(source_run / "config.json", unfinished / "config.json")
    shutil.copytree(source_run / "tokenizer", unfinished / "tokenizer")
    with pytest.raises(TlcError, match="not finished") as info:
        train(tiny(IMDB, init(unfinished)), tmp_path / "b", quiet=True)
    # stopped before its first checkpoint: nothing to resume, so --resume is not suggested
    assert "--resume" not in str(info.value) and info.value.path == str(unfinished)
    (unfinished / "checkpoint").mkdir()
    (unfinished / "checkpoint" / "progress.json").write_text("{}")
    with pytest.raises(TlcError, match="not finished") as info:
        train(tiny(IMDB, init(unfinished)), tmp_path / "b", quiet=True)
    assert "--resume" in str(info.value)

    future = tmp_path / "future"
    shutil.copytree(source_run, future)
    meta = json.loads((future / "run.json").read_text())
    (future / "run.json").write_text(json.dumps({**meta, "format": 999}))
    with pytest.raises(TlcError, match="format 999"):
        load_run(future)
    with pytest.raises(TlcError, match="format"):
        train(tiny(IMDB, init(future)), tmp_path / "c", quiet=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


# -------------------------------------------------------------------------------- resume


def test_interrupted_run_resumes(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = tiny(AMAZON, "training.epochs=3", "training.patience=5", "data.labels=120")
    original = Trainer._save_checkpoint
    seen: list[int] = []

    def interrupt_in_epoch_2(self, model, progress, improved):
        seen.append(progress.epochs_done)
        if progress.epochs_done == 2:
            raise KeyboardInterrupt  # Ctrl-C before epoch 2's checkpoint reaches the disk
        original(self, model, progress, improved)

    monkeypatch.setattr(Trainer, "_save_checkpoint", interrupt_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(config, out, quiet=True)
    progress = json.loads((out / "checkpoint" / "progress.json").read_text())
    assert progress["epochs_done"] == 1 and len(progress["history"]) == 1
    assert not (out / "run.json").exists() and (out / "checkpoint" / "last.keras").is_file()

    with pytest.raises(TlcError, match="unfinished run") as info:
        train(config, out, quiet=True)
    assert "--resume" in str(info.value)

    def count(self, model, progress, improved):
        seen.append(progress.epochs_done)
        original(self, model, progress, improved)

    monkeypatch.setattr(Trainer, "_save_checkpoint", count)
    run = train(config, out, resume=True, quiet=True)
    assert seen == [1, 2, 2, 3]                  # resumed at epoch 2, did not start over
    summary = json.loads((out / "run.json").read_text())["training"]
    assert summary["epochs_done"] == 3 and run.info["training"]["epochs_done"] == 3
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert summary["history"][0] == progress["history"][0]
    assert not (out / "checkpoint").exists()
    load_run(out).model  # noqa: B018  (loads)

    with pytest.raises(TlcError, match="nothing to resume"):
        train(config, tmp_path / "fresh", resume=True, quiet=True)


# ----------------------------------------------------------------------------------- CLI


def test_cli_train_and_evaluate(tmp_path):
    out = tmp_path / "cli-run"
    args = ["train", "--data", str(AMAZON), "--init", "none", "--out", str(out), "--labels",
            "100", "-q"]
    for setting in TINY:
        args += ["--set", setting]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert f"run -> {out}" in r.output and "2 epochs" in r.output
    assert json.loads((out / "run.json").read_text())["data"]["train_rows"] == 90

    report_path = tmp_path / "reports" / "amazon.json"
    r = runner.invoke(app, ["evaluate", str(out), str(AMAZON), "--out", str(report_path)])
    assert r.exit_code == 0, r.output
    report = json.loads(report_path.read_text())
    assert report["n"] == 100 and report["split"] == "test"
    assert "true \\ predicted" in r.output and f"report -> {report_path}" in r.output
    assert f"accuracy {100 * report['accuracy']:.2f}%" in r.output
    assert not (out / "eval").exists()

    r = runner.invoke(app, args)                       # a finished run is already there
    assert r.exit_code == 2 and "error:" in r.output and "--force" in r.output


def test_cli_errors(tmp_path):
    r = runner.invoke(app, ["train", "--data", "nope", "--data-dir", str(tmp_path),
                            "--out", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "nope" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["train", "--data", str(AMAZON), "--out", str(tmp_path / "r2"),
                            "--set", "training.epoch=3"])
    assert r.exit_code == 2 and "error:" in r.output and "epochs" in r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "missing-run"), str(AMAZON)])
    assert r.exit_code == 2 and "run folder not found" in r.output


# -- errors that once escaped as tracebacks or left half-written runs ------------------


@pytest.mark.parametrize("payload", [[], "x", None])
def test_run_json_that_is_not_an_object(source_run, tmp_path, payload):
    broken = tmp_path / "broken"
    shutil.copytree(source_run, broken)
    (broken / "run.json").write_text(json.dumps(payload))
    with pytest.raises(TlcError, match="run"):
        load_run(broken)


def test_missing_model_file_is_a_tlc_error(source_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(source_run, broken)
    (broken / "model.keras").unlink()
    run = load_run(broken)
    with pytest.raises(TlcError, match="model.keras"):
        run.model  # noqa: B018


def test_settings_errors_leave_no_unfinished_run(source_run, tmp_path):
    out = tmp_path / "zero"
    with pytest.raises(TlcError, match="nothing to train on"):
        train(tiny(IMDB, init(source_run), "data.labels=0"), out, quiet=True)
    assert run_state(out) in ("missing", "empty")


def test_cli_init_vectors_by_fetched_name(tmp_path):
    """`--init-vectors glove.6B.8d` finds DATA_DIR/glove/glove.6B.8d.txt.gz and sets the
    embedding size to the file's; an unfetched name says how to fetch it."""
    import gzip

    from tlc.train import import_keras

    keras = import_keras()

    data_dir = tmp_path / "data"
    (data_dir / "glove").mkdir(parents=True)
    vectors = {"the": [0.5] * 8, "movie": [-0.25] * 8}
    with gzip.open(data_dir / "glove" / "glove.6B.8d.txt.gz", "wt", encoding="utf-8") as fh:
        for word, vec in vectors.items():
            fh.write(word + " " + " ".join(map(str, vec)) + "\n")
    out = tmp_path / "glove-run"
    args = ["train", "--data", str(IMDB), "--out", str(out), "--data-dir", str(data_dir),
            "--init-vectors", "glove.6B.8d", "-q"]
    for setting in TINY:
        if not setting.startswith("model.embedding_dim"):
            args += ["--set", setting]
    args += ["--set", "training.epochs=1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["embedding_dim"] == 8
    assert config["transfer"]["init_vectors"].endswith("glove.6B.8d.txt.gz")
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert model.get_layer("embedding").get_weights()[0].shape[1] == 8

    r = runner.invoke(app, ["train", "--data", str(IMDB), "--out", str(tmp_path / "x"),
                            "--data-dir", str(data_dir), "--init-vectors", "glove.6B.300d"])
    assert r.exit_code == 2 and "tlc data fetch glove.6B" in r.output
