"""The data layer on the real data sets (IMDB, Amazon, GloVe) in TLC_DATA_DIR.

Skipped when the data is absent; .ci/run sets TLC_REQUIRE_DATA=1 so that they run there.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tlc.cli import app
from tlc.data import open_dataset, stratified_subset, validation_split

pytestmark = pytest.mark.realdata


def info(name, data_dir):
    r = CliRunner().invoke(app, ["data", "info", name, "--data-dir", str(data_dir), "--json"])
    assert r.exit_code == 0, r.output
    return {s["split"]: s for s in json.loads(r.output)["splits"]}


def test_imdb_info_real_counts(real_data_dir):
    s = info("imdb", real_data_dir)
    assert {k: v["rows"] for k, v in s.items()} == {"train": 25000, "test": 25000,
                                                   "unsup": 50000}
    assert s["train"]["labels"] == {"0": 12500, "1": 12500}
    assert s["test"]["labels"] == {"0": 12500, "1": 12500}
    assert all(not v["bad_rows"] for v in s.values())
    # Published in the data set's README: train 52 / 979 / 13,704 characters.
    assert (s["train"]["chars"]["min"], s["train"]["chars"]["median"],
            s["train"]["chars"]["max"]) == (52, 979, 13704)


def test_amazon_info_real_counts(real_data_dir):
    s = info("amazon", real_data_dir)
    assert s["train"]["rows"] == 102406 and s["test"]["rows"] == 11378
    assert s["train"]["labels"] == {"0": 14243, "1": 88163}
    assert s["test"]["labels"] == {"0": 5689, "1": 5689}
    assert all(not v["bad_rows"] for v in s.values())


def test_imdb_budgets_on_real_train(real_data_dir):
    train = open_dataset("imdb", real_data_dir).load("train")
    for count in (100, 1250):
        idx = stratified_subset(train.labels, count=count, seed=0)
        picked = [train.labels[i] for i in idx]
        assert len(idx) == count and picked.count("1") == count // 2
    a = stratified_subset(train.labels, count=1250, seed=2)
    assert a.tolist() == stratified_subset(train.labels, count=1250, seed=2).tolist()
    t, v = validation_split([train.labels[i] for i in a], fraction=0.1, seed=2)
    assert len(v) == 125 and len(t) == 1125


def test_amazon_budget_keeps_the_imbalance(real_data_dir):
    train = open_dataset("amazon", real_data_dir).load("train")
    idx = stratified_subset(train.labels, fraction=0.05, seed=0)
    picked = [train.labels[i] for i in idx]
    assert len(idx) == 5120
    assert abs(picked.count("0") / len(idx) - 14243 / 102406) < 0.001


def test_tokenizer_and_grid_on_real_reviews(real_data_dir, tmp_path):
    from itertools import islice

    import numpy as np

    from tlc.tokenizer import Tokenizer, TokenizerConfig

    amazon = open_dataset("amazon", real_data_dir).load("train").texts
    unsup = open_dataset("imdb", real_data_dir).load("unsup").texts
    texts = list(islice((t for pair in zip(amazon, unsup, strict=False) for t in pair),
                        8000))
    tok = Tokenizer.train(texts, TokenizerConfig(vocab_size=4000), progress=False)
    test = open_dataset("imdb", real_data_dir).load("test").texts[::10]  # 2,500 reviews
    flat, lengths = tok.encode_flat(test)
    assert (flat == 1).mean() < 0.001  # byte fallback: (almost) nothing is <unk>
    assert flat.min() >= 1  # 0 is padding only
    grid = tok.encode_grid(test)
    assert grid.shape == (2500, 16, 40) and grid.dtype == np.int32
    sentences = (grid != 0).any(axis=2).sum(axis=1)
    assert 6 <= np.median(sentences) <= 14  # IMDB reviews: about 10 sentences
    assert (grid != 0).sum() / lengths.sum() > 0.6  # the 16 x 40 grid keeps most tokens
    with_breaks = [t for t in test if "<br /><br />" in t][:200]
    breaks = tok.encode_grid(with_breaks)
    assert ((breaks != 0).any(axis=2).sum(axis=1) >= 2).all()


def test_exported_text_to_grid_graph_gives_training_ids_on_every_test_review(real_data_dir):
    """The ids the exported graph builds (clean-up, sentencepiece op, grid nodes) equal the ids
    the training pipeline builds, for all 25,000 IMDB and 11,378 Amazon test reviews."""
    from itertools import islice

    import numpy as np

    from tlc.session import open_session
    from tlc.tokenizer import Tokenizer, TokenizerConfig
    from tlc.tokenizer.grid_graph import text_to_grid_model

    amazon = open_dataset("amazon", real_data_dir).load("train").texts
    unsup = open_dataset("imdb", real_data_dir).load("unsup").texts
    texts = list(islice((t for pair in zip(amazon, unsup, strict=False) for t in pair), 8000))
    config = TokenizerConfig(vocab_size=4000, max_sentences=24, max_tokens=48)
    tok = Tokenizer.train(texts, config, progress=False)
    session = open_session(text_to_grid_model(tok).SerializeToString(), intra_threads=2)
    for name, size in (("imdb", 25000), ("amazon", 11378)):
        test = open_dataset(name, real_data_dir).load("test").texts
        assert len(test) == size
        for start in range(0, size, 1000):
            chunk = test[start:start + 1000]
            (got,) = session.run(None, {"text": np.array(chunk, dtype=object)})
            np.testing.assert_array_equal(got, tok.encode_grid(chunk),
                                          err_msg=f"{name} test rows {start}..")
