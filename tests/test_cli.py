"""The CLI: help, data info/list/subset, clear errors without tracebacks."""

from __future__ import annotations

import csv
import gzip
import json

from typer.testing import CliRunner

from tlc.cli import app

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, list(args), env=env)


def test_help_and_version():
    r = run("--help")
    assert r.exit_code == 0 and "data" in r.output and "tokenizer" in r.output
    assert run("--version").output.startswith("tlc ")
    assert "TLC_DATA_DIR" in run("data", "info", "--help").output


def test_data_info_on_fixture(fixtures):
    r = run("data", "info", str(fixtures / "imdb"))
    assert r.exit_code == 0, r.output
    assert "train" in r.output and "200" in r.output and "0: 100 (50.0%)" in r.output
    r = run("data", "info", str(fixtures / "imdb"), "--json")
    info = json.loads(r.output)
    train = info["splits"][0]
    assert train["rows"] == 200 and train["labels"] == {"0": 100, "1": 100}
    assert train["chars"]["min"] <= train["chars"]["median"] <= train["chars"]["max"]


def test_data_info_by_name_and_split(fixtures):
    r = run("data", "info", "imdb:unsup", "--data-dir", str(fixtures), "--json")
    assert r.exit_code == 0, r.output
    splits = json.loads(r.output)["splits"]
    assert [s["split"] for s in splits] == ["unsup"] and splits[0]["rows"] == 100


def test_data_info_reports_bad_rows_and_one_class(tmp_path):
    (tmp_path / "train.csv").write_bytes(b"text,label\ngood,1\n,1\n\xff,1\n")
    r = run("data", "info", str(tmp_path))
    assert r.exit_code == 0
    assert "2 bad rows" in r.output and "train.csv:3: empty text" in r.output
    assert "only one class" in r.output


def test_errors_are_one_clear_message(tmp_path):
    r = run("data", "info", "nope", "--data-dir", str(tmp_path))
    assert r.exit_code == 2
    assert "error: no data set 'nope'" in r.output and "fix:" in r.output
    assert "Traceback" not in r.output


def test_data_list_shows_registry(tmp_path):
    r = run("data", "list", "--data-dir", str(tmp_path))
    assert r.exit_code == 0
    for name in ("imdb", "amazon_polarity", "glove.6B"):
        assert name in r.output


def test_data_subset_is_stratified_and_reproducible(fixtures, tmp_path):
    out1, out2 = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    for out in (out1, out2):
        r = run("data", "subset", str(fixtures / "imdb"), "--labels", "20", "--seed", "3",
                "--out", str(out))
        assert r.exit_code == 0, r.output
    assert gzip.decompress(out1.read_bytes()) == gzip.decompress(out2.read_bytes())
    with gzip.open(out1, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20
    assert sum(r["label"] == "1" for r in rows) == 10
    assert sum(r["role"] == "valid" for r in rows) == 2
    assert list(rows[0])[:3] == ["row", "role", "text"]
    r = run("data", "subset", str(fixtures / "imdb"), "--labels", "20", "--out", str(out1))
    assert r.exit_code == 2 and "--force" in r.output
    r = run("data", "subset", f"{fixtures / 'imdb'}:test", "--labels", "20",
            "--out", str(tmp_path / "c.csv"))
    assert r.exit_code == 2 and "never from test" in r.output
    r = run("data", "subset", str(fixtures / "imdb"), "--labels", "999",
            "--out", str(tmp_path / "d.csv"))
    assert r.exit_code == 2 and "larger than the 200" in r.output


def test_tokenizer_train_and_encode(fixtures, tmp_path):
    out = tmp_path / "tok"
    args = ["tokenizer", "train", "--data", str(fixtures / "imdb"), "--data",
            f"{fixtures / 'amazon'}:train", "--vocab-size", "600", "--max-sentences", "4",
            "--max-tokens", "8", "--out", str(out)]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert (out / "tokenizer.model").is_file() and "600 pieces" in r.output
    meta = json.loads((out / "tokenizer.json").read_text())
    assert meta["config"]["max_sentences"] == 4 and meta["config"]["vocab_size"] == 600
    r = run(*args)
    assert r.exit_code == 2 and "--force" in r.output
    r = run("tokenizer", "encode", str(out), "Great film!<br /><br />I LOVED it. 3.5 stars")
    assert r.exit_code == 0, r.output
    # <br /> and "it." end sentences; the dot inside "3.5" does not.
    assert "sentence  3:" in r.output and "sentence  4:" not in r.output
    r = run("tokenizer", "encode", str(out), "")
    assert "(empty: all padding)" in r.output


def test_tokenizer_train_bad_input_names_the_row(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\nfine,1\n ,0\n")
    r = run("tokenizer", "train", "--data", str(tmp_path), "--out", str(tmp_path / "t"))
    assert r.exit_code == 2
    assert "train.csv:3: empty text" in r.output and "--on-bad-rows skip" in r.output


def test_format_option_for_files_named_oddly(tmp_path):
    f = tmp_path / "export.dat"
    f.write_text("text\tlabel\nnice\tpos\nbad\tneg\n")
    r = run("data", "info", str(f))
    assert r.exit_code == 2 and "unknown format" in r.output and "--format" in r.output
    r = run("data", "info", str(f), "--format", "tsv", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["splits"][0]["labels"] == {"neg": 1, "pos": 1}
    r = run("data", "info", str(tmp_path), "--format", "tsv")
    assert r.exit_code == 2 and "applies to a single file" in r.output
