"""The document CNN: custom layers by hand, model shapes and masking, saving, transfer."""

from __future__ import annotations

import numpy as np
import pytest

from tlc.errors import TlcError
from tlc.train import import_keras
from tlc.train.layers import HashedNgrams, KMaxPooling, MaskedMean, PaddingMask
from tlc.train.model import WIDE_HASH, ModelConfig, build_model, check_grid
from tlc.train.transfer import pseudo_labels, transfer_weights

keras = import_keras()  # the tlc way: onnxruntime-extensions before TensorFlow

TINY = ModelConfig(embedding_dim=4, word_filters=6, sentence_filters=5, hidden_units=4,
                   dropout=0.0, embedding_dropout=0.0)
GRID = {"sentences": 3, "tokens": 6}
VOCAB = 50


def np_(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def kmax_reference(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    """k largest along ``axis`` in their original order, the slow obvious way."""
    moved = np.moveaxis(x, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    out = np.stack([row[np.sort(np.argsort(-row)[:k])] for row in flat])
    return np.moveaxis(out.reshape(*moved.shape[:-1], k), -1, axis)


def grids() -> np.ndarray:
    """Three documents on a 3 x 6 grid with padding: partial sentences, an empty sentence
    slot, and one all-padding document."""
    ids = np.zeros((3, 3, 6), dtype="int32")
    ids[0, 0, :4] = [5, 9, 12, 3]
    ids[0, 1, :2] = [7, 7]                      # sentence 3 is padding
    ids[1, 0, :] = [11, 2, 30, 31, 8, 4]
    ids[1, 2, :3] = [40, 41, 42]                # sentence 2 (the middle) is padding
    return ids                                  # document 3: all padding


# ---------------------------------------------------------------------------- KMaxPooling


def test_kmax_keeps_the_k_largest_in_original_order():
    x = np.array([[3.0, 1.0, 5.0, 2.0, 4.0]], dtype="float32")
    out = np_(KMaxPooling(3, axis=1)(x))
    np.testing.assert_array_equal(out, [[3.0, 5.0, 4.0]])  # not sorted [5, 4, 3]
    np.testing.assert_array_equal(np_(KMaxPooling(1, axis=-1)(x)), [[5.0]])


def test_kmax_along_axis_1_of_4d_input():
    x = np.zeros((1, 5, 2, 1), dtype="float32")
    x[0, :, 0, 0] = [3, 1, 5, 2, 4]
    x[0, :, 1, 0] = [9, 8, -1, 7, 0]
    out = np_(KMaxPooling(3, axis=1)(x))
    assert out.shape == (1, 3, 2, 1)
    np.testing.assert_array_equal(out[0, :, 0, 0], [3, 5, 4])
    np.testing.assert_array_equal(out[0, :, 1, 0], [9, 8, 7])


def test_kmax_along_axis_2_of_4d_input_matches_reference():
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 5 * 4).reshape(2, 3, 5, 4).astype("float32")  # no ties
    x[0, 1, :, 2] = [3, 1, 5, 2, 4]
    out = np_(KMaxPooling(2, axis=2)(x))
    assert out.shape == (2, 3, 2, 4)
    np.testing.assert_array_equal(out[0, 1, :, 2], [5, 4])
    np.testing.assert_array_equal(out, kmax_reference(x, 2, axis=2))
    np.testing.assert_array_equal(np_(KMaxPooling(3, axis=1)(x)), kmax_reference(x, 3, axis=1))
    np.testing.assert_array_equal(np_(KMaxPooling(2, axis=3)(x)), kmax_reference(x, 2, axis=3))


def test_kmax_output_shape_and_config():
    layer = KMaxPooling(2, axis=2)
    assert layer.compute_output_shape((None, 3, 6, 8)) == (None, 3, 2, 8)
    assert KMaxPooling(4, axis=1).compute_output_shape((7, 9, 5)) == (7, 4, 5)
    again = KMaxPooling.from_config(layer.get_config())
    assert (again.k, again.axis) == (2, 2)
    with pytest.raises(ValueError):
        KMaxPooling(0)


# ------------------------------------------------------------------- PaddingMask, MaskedMean


def test_padding_mask_on_tokens():
    ids = grids()
    x = np.ones((*ids.shape, 4), dtype="float32")
    out = np_(PaddingMask()([ids, x]))
    assert out.shape == x.shape
    np.testing.assert_array_equal(out, np.repeat((ids != 0)[..., None], 4, -1).astype("float32"))
    assert out[0, 0, :4].min() == 1.0 and out[0, 0, 4:].max() == 0.0


def test_padding_mask_on_sentences():
    ids = grids()                                       # (N, S, T): one axis more than x
    x = np.arange(3 * 3 * 5, dtype="float32").reshape(3, 3, 5) + 1.0
    out = np_(PaddingMask()([ids, x]))
    present = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 0]], dtype="float32")
    np.testing.assert_array_equal(out, x * present[..., None])


def test_masked_mean_averages_only_real_sentences():
    ids = grids()
    x = np.zeros((3, 3, 2), dtype="float32")
    x[0] = [[1, 10], [3, 20], [100, 100]]              # third slot is padding
    x[1] = [[2, 2], [50, 50], [4, 6]]                  # middle slot is padding
    x[2] = [[7, 7], [8, 8], [9, 9]]                    # all padding
    out = np_(MaskedMean()([ids, x]))
    assert out.shape == (3, 2)
    assert MaskedMean().compute_output_shape(((None, 3, 6), (None, 3, 2))) == (None, 2)
    np.testing.assert_allclose(out[0], [2, 15])
    np.testing.assert_allclose(out[1], [3, 4])
    np.testing.assert_array_equal(out[2], [0, 0])      # zeros, not NaN
    assert np.isfinite(out).all()


# ------------------------------------------------------------------------------ the model


@pytest.mark.parametrize("n_classes", [2, 3])
def test_model_outputs_probabilities(n_classes):
    model = build_model(TINY, vocab_size=VOCAB, n_classes=n_classes, **GRID)
    proba = np_(model(grids()))
    assert proba.shape == (3, n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (proba > 0).all()
    assert model.input_shape == (None, 3, 6)


def test_padding_embedding_never_reaches_the_output():
    model = build_model(TINY.__class__(**{**TINY.to_dict(), "hidden_units": 0}),
                        vocab_size=VOCAB, n_classes=2, seed=3, **GRID)
    ids = grids()
    before = np_(model(ids))
    emb = model.get_layer("embedding")
    table = emb.get_weights()[0]
    rng = np.random.default_rng(1)
    changed = table.copy()
    changed[0] = rng.normal(0, 5, table.shape[1])
    emb.set_weights([changed])
    np.testing.assert_allclose(np_(model(ids)), before, rtol=1e-6, atol=1e-7)
    # ... while a real token's row does matter (the check above is not vacuous).
    changed[5] = rng.normal(0, 5, table.shape[1])
    emb.set_weights([changed])
    assert not np.allclose(np_(model(ids))[0], before[0])


def test_save_and_load_in_safe_mode(tmp_path):
    model = build_model(ModelConfig(embedding_dim=4, word_filters=4, sentence_filters=4,
                                    hidden_units=4), vocab_size=VOCAB, n_classes=3, **GRID)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    ids = grids()
    np.testing.assert_array_equal(np_(loaded.predict(ids, verbose=0)),
                                  np_(model.predict(ids, verbose=0)))
    kmax = loaded.get_layer("word_kmax")
    assert isinstance(kmax, KMaxPooling) and (kmax.k, kmax.axis) == (2, 2)


def test_model_config_validation():
    with pytest.raises(TlcError, match="word_k=7"):
        check_grid(ModelConfig(word_k=7), sentences=3, tokens=6)
    with pytest.raises(TlcError, match="sentence_k=4"):
        check_grid(ModelConfig(sentence_k=4), sentences=3, tokens=6)
    check_grid(ModelConfig(word_k=6, sentence_k=3), sentences=3, tokens=6)  # exactly fits
    with pytest.raises(TlcError, match="sentence_k"):
        build_model(ModelConfig(sentence_k=4), vocab_size=VOCAB, n_classes=2, **GRID)
    with pytest.raises(TlcError, match="2 classes"):
        build_model(TINY, vocab_size=VOCAB, n_classes=1, **GRID)
    for bad in ({"embedding_dim": -1}, {"word_filters": 0}, {"sentence_kernel": -2},
                {"hidden_units": -1}, {"dropout": 1.0}, {"embedding_dropout": -0.1}):
        with pytest.raises(TlcError, match=next(iter(bad))):
            ModelConfig(**bad)
    assert ModelConfig(hidden_units=0).hidden_units == 0
    with pytest.raises(TlcError, match="known settings"):
        ModelConfig.from_dict({"embedding_size": 8})


# ---------------------------------------------------------------------------- transfer


def weights_of(model, name):
    return model.get_layer(name).get_weights()


def same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("reuse_head", [False, True])
def test_transfer_weights_copies_body_and_maybe_head(reuse_head):
    source = build_model(TINY, vocab_size=VOCAB, n_classes=2, seed=0, **GRID)
    target = build_model(TINY, vocab_size=VOCAB, n_classes=2, seed=10, **GRID)
    head_before = {n: weights_of(target, n) for n in ("hidden", "output")}
    assert not same(weights_of(source, "word_conv"), weights_of(target, "word_conv"))
    copied = transfer_weights(target, source, reuse_head=reuse_head)
    body = ["embedding", "word_conv", "sentence_conv"]
    assert copied == body + (["hidden", "output"] if reuse_head else [])
    for name in body:
        assert same(weights_of(target, name), weights_of(source, name)), name
    for name in ("hidden", "output"):
        if reuse_head:
            assert same(weights_of(target, name), weights_of(source, name)), name
        else:
            assert same(weights_of(target, name), head_before[name]), name
            assert not same(weights_of(target, name), weights_of(source, name)), name
    if reuse_head:
        np.testing.assert_allclose(np_(target(grids())), np_(source(grids())), rtol=1e-6)


def test_transfer_weights_refuses_mismatched_models():
    source = build_model(TINY, vocab_size=VOCAB, n_classes=2, **GRID)
    wider = build_model(ModelConfig(**{**TINY.to_dict(), "embedding_dim": 8}),
                        vocab_size=VOCAB, n_classes=2, **GRID)
    with pytest.raises(TlcError, match="'embedding' has shape"):
        transfer_weights(wider, source, reuse_head=False)
    bigger_vocab = build_model(TINY, vocab_size=VOCAB + 1, n_classes=2, **GRID)
    with pytest.raises(TlcError, match="embedding"):
        transfer_weights(bigger_vocab, source, reuse_head=False)
    three = build_model(TINY, vocab_size=VOCAB, n_classes=3, **GRID)
    assert transfer_weights(three, source, reuse_head=False)[-1] == "sentence_conv"
    with pytest.raises(TlcError, match="'output'"):
        transfer_weights(three, source, reuse_head=True)
    no_hidden = build_model(ModelConfig(**{**TINY.to_dict(), "hidden_units": 0}),
                            vocab_size=VOCAB, n_classes=2, **GRID)
    with pytest.raises(TlcError, match="only one of"):
        transfer_weights(no_hidden, source, reuse_head=True)


# ------------------------------------------------------------------------- pseudo-labels

PROBA = np.array([
    [0.90, 0.10],   # 0: class 0
    [0.60, 0.40],   # 1: class 0, least sure
    [0.20, 0.80],   # 2: class 1
    [0.70, 0.30],   # 3: class 0
    [0.45, 0.55],   # 4: class 1, least sure
    [0.95, 0.05],   # 5: class 0, most sure
])


def test_pseudo_labels_equal_counts_most_confident_first():
    rows, labels = pseudo_labels(PROBA, fraction=1.0)
    # class 0 is predicted 4 times, class 1 twice: 2 of each, the surest class-0 rows.
    np.testing.assert_array_equal(rows, [0, 2, 4, 5])
    np.testing.assert_array_equal(labels, [0, 1, 1, 0])
    rows, labels = pseudo_labels(PROBA, fraction=0.5)
    np.testing.assert_array_equal(rows, [2, 5])
    np.testing.assert_array_equal(labels, [1, 0])


def test_pseudo_labels_errors():
    three = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]])
    with pytest.raises(TlcError, match="only some classes"):
        pseudo_labels(three, fraction=1.0)
    with pytest.raises(TlcError, match="too little"):
        pseudo_labels(PROBA, fraction=0.4)      # int(0.4 * 2) == 0 per class


def shifted_sample(n: int, positive: float, calibrated: float, seed: int):
    """Posteriors of a calibrated model on a sample whose prior is ``positive``: 1-D
    Gaussian classes at -1 and +1 (unit variance), scored by the exact posterior under
    the prior ``calibrated`` the model was trained at."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive).astype(int)
    x = rng.normal(size=n) + np.where(y == 1, 1.0, -1.0)
    odds = np.exp(2 * x) * calibrated / (1 - calibrated)     # likelihood ratio x prior odds
    p1 = odds / (1 + odds)
    return np.stack([1 - p1, p1], axis=1), y


@pytest.mark.parametrize("calibrated", [0.5, 0.3])
def test_em_prior_recovers_a_known_shift(calibrated):
    from tlc.train.transfer import adjust_to_prior, em_prior

    proba, y = shifted_sample(40_000, 0.88, calibrated, seed=1)
    estimate = em_prior(proba, np.array([1 - calibrated, calibrated]))
    assert estimate.converged and estimate.iterations > 2
    assert estimate.prior[1] == pytest.approx(y.mean(), abs=0.01)
    # the adjusted posteriors are those of the same model calibrated to the target
    truth, _ = shifted_sample(40_000, 0.88, 0.88, seed=1)
    np.testing.assert_allclose(adjust_to_prior(proba, [1 - calibrated, calibrated],
                                               [0.12, 0.88]), truth, atol=1e-9)
    assert np.abs(estimate.adjusted - truth).max() < 0.02
    # the source as is and as adjusted: the adjustment is what wins on a shifted target
    assert ((estimate.adjusted.argmax(1) == y).mean() > (proba.argmax(1) == y).mean() + 0.01)
    # no shift: EM stays where it started
    same, _ = shifted_sample(40_000, calibrated, calibrated, seed=2)
    assert em_prior(same, np.array([1 - calibrated, calibrated])).prior[1] == pytest.approx(
        calibrated, abs=0.01)


def test_em_prior_with_labelled_counts_and_edge_cases():
    from tlc.train.transfer import em_prior

    proba, _ = shifted_sample(1000, 0.88, 0.5, seed=3)
    alone = em_prior(proba, np.array([0.5, 0.5])).prior
    # labelled rows whose class is known pull the estimate towards their shares, by their
    # number: with no unlabelled rows, the estimate is their shares exactly
    leaning = em_prior(proba, np.array([0.5, 0.5]), counts=np.array([500, 500])).prior
    assert 0.5 < leaning[1] < alone[1]
    only = em_prior(proba[:0], np.array([0.5, 0.5]), counts=np.array([30, 70]))
    np.testing.assert_allclose(only.prior, [0.3, 0.7])
    with pytest.raises(TlcError, match="no text to estimate"):
        em_prior(proba[:0], np.array([0.5, 0.5]))
    certain = np.array([[1.0, 0.0]] * 10)        # a class no row supports stays possible
    assert em_prior(certain, np.array([0.5, 0.5])).prior.min() > 0


def test_pseudo_labels_in_proportion_to_a_prior():
    proba = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.9]] * 6 + [[0.2, 0.8]] * 10)
    # 4 predicted 0, 16 predicted 1: the largest 25/75 set all classes can fill is 4 + 12
    rows, labels = pseudo_labels(proba, 1.0, np.array([0.25, 0.75]))
    assert (labels == 0).sum() == 4 and (labels == 1).sum() == 12
    assert set(rows[labels == 1]) >= set(range(4, 10))        # the surest first
    rows, labels = pseudo_labels(proba, 0.5, np.array([0.25, 0.75]))
    assert (labels == 0).sum() == 2 and (labels == 1).sum() == 6
    with pytest.raises(TlcError, match="rarest class's estimated share"):
        pseudo_labels(proba, 0.5, np.array([0.01, 0.99]))


def test_training_prior_follows_the_class_balancing():
    from tlc.train.transfer import training_prior

    y = np.array([0] * 10 + [1] * 30)
    for balance in ("weight", "undersample"):
        np.testing.assert_allclose(training_prior(y, None, balance, 2), [0.5, 0.5])
    np.testing.assert_allclose(training_prior(y, None, "none", 2), [0.25, 0.75])
    w = np.r_[np.ones(10), np.full(30, 0.5)]          # pseudo-labels at half weight
    np.testing.assert_allclose(training_prior(y, w, "weight", 2), [2 / 3, 1 / 3])
    np.testing.assert_allclose(training_prior(y, w, "none", 2), [0.4, 0.6])


def test_prior_offset_calibrates_the_mean_posterior():
    from tlc.train.transfer import adjust_to_prior, prior_offset

    proba, _ = shifted_sample(5000, 0.88, 0.5, seed=4)
    offset, steps = prior_offset(proba, np.array([0.2, 0.8]))
    z = np.log(proba) + offset
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(q.mean(0), [0.2, 0.8], atol=1e-5)
    assert steps > 1 and offset.sum() == pytest.approx(0.0, abs=1e-9)
    # an offset is a prior adjustment: the same as adjust_to_prior with exp(offset)'s ratio
    ratio = np.exp(offset)
    np.testing.assert_allclose(q, adjust_to_prior(proba, [1, 1], ratio / ratio.sum()),
                               atol=1e-9)
    saturated = np.clip(np.round(proba), 1e-6, 1 - 1e-6)   # an overconfident model
    offset, _ = prior_offset(saturated, np.array([0.2, 0.8]))
    z = np.log(saturated) + offset
    assert (np.exp(z[:, 1]) / np.exp(z).sum(1)).mean() == pytest.approx(0.8, abs=1e-3)


def test_calibrated_prior_of_old_and_new_runs():
    from types import SimpleNamespace

    from tlc.train.config import RunConfig
    from tlc.train.transfer import calibrated_prior

    def run(balance, info):
        config = RunConfig().override([f"training.balance={balance}"])
        return SimpleNamespace(labels=["0", "1"], info=info, config=config)

    recorded = {"calibration": {"prior": [0.2, 0.8], "by": "self_training.prior=em"}}
    prior, by = calibrated_prior(run("weight", recorded))
    np.testing.assert_allclose(prior, [0.2, 0.8])
    assert by == "self_training.prior=em"
    prior, by = calibrated_prior(run("undersample", {}))          # made before the record
    np.testing.assert_allclose(prior, [0.5, 0.5])
    assert by == "training.balance=undersample"
    validation = {"validation": {"per_class": [{"support": 14}, {"support": 86}]}}
    prior, by = calibrated_prior(run("none", validation))
    np.testing.assert_allclose(prior, [0.14, 0.86])
    assert "validation rows" in by
    prior, by = calibrated_prior(run("none", {"validation": None}))
    np.testing.assert_allclose(prior, [0.5, 0.5])
    assert "assumed uniform" in by


# -- which rows an epoch trains on --------------------------------------------------------


def test_epoch_rows_balance_repeat_cap_and_determinism():
    from tlc.train.config import TrainingConfig
    from tlc.train.trainer import class_weights, epoch_rows

    y = np.array([0] * 2 + [1] * 8)
    # weight: every row once, in a seeded order that depends on (seed, epoch) only
    plain = TrainingConfig(min_rows_per_epoch=0)
    rows = epoch_rows(y, plain, 0, 2)
    assert sorted(rows.tolist()) == list(range(10))
    assert rows.tolist() == epoch_rows(y, plain, 0, 2).tolist()
    assert rows.tolist() != epoch_rows(y, plain, 1, 2).tolist()
    # N / (C * count): 10 / (2 * 2) = 2.5 for the minority, 10 / (2 * 8) = 0.625
    assert class_weights(y, 2).tolist() == [2.5, 0.625]
    # undersample: both minority rows plus 2 of the 8 majority rows
    under = epoch_rows(y, TrainingConfig(balance="undersample", min_rows_per_epoch=0), 0, 2)
    assert len(under) == 4 and np.bincount(y[under]).tolist() == [2, 2]
    # a tiny budget is repeated up to min_rows_per_epoch, each pass a full permutation
    rep = epoch_rows(y, TrainingConfig(min_rows_per_epoch=25), 0, 2)
    assert len(rep) == 30 and np.bincount(rep).tolist() == [3] * 10
    # a big one is cut to max_rows_per_epoch
    assert len(epoch_rows(y, TrainingConfig(max_rows_per_epoch=4, min_rows_per_epoch=0),
                          0, 2)) == 4
    # the default repeats a tiny budget to 2,000 rows an epoch
    assert len(epoch_rows(y, TrainingConfig(), 0, 2)) == 2000


def test_a_transfer_keeps_the_source_network_but_may_change_dropout():
    from tlc.train.model import ModelConfig, inherit_model

    source = ModelConfig(embedding_dim=50, word_filters=64, dropout=0.5)
    # defaults and the source's own values take the source's; dropout rates may change
    assert inherit_model(ModelConfig(), source) == source
    assert inherit_model(ModelConfig(word_filters=64), source) == source
    changed = inherit_model(ModelConfig(dropout=0.3, embedding_dropout=0.25), source)
    assert (changed.dropout, changed.embedding_dropout) == (0.3, 0.25)
    assert changed.embedding_dim == 50 and changed.word_filters == 64
    with pytest.raises(TlcError, match="model.word_filters=32 differs from the source") as info:
        inherit_model(ModelConfig(word_filters=32), source)
    assert "model.dropout and model.embedding_dropout" in info.value.hint


# ------------------------------------------------------------------------------ wide part


def wide_reference(ids: np.ndarray, table: np.ndarray, vocab: int, buckets: int) -> np.ndarray:
    """HashedNgrams in plain Python: each piece's row and each in-sentence neighbour pair's
    hashed row, averaged per document."""
    out = np.zeros((len(ids), table.shape[1]))
    for n, doc in enumerate(ids):
        rows = []
        for sentence in doc:
            real = [int(i) for i in sentence if i]
            rows += [table[i] for i in real]
            rows += [table[vocab + (a * WIDE_HASH + b) % buckets]
                     for a, b in zip(sentence[:-1], sentence[1:], strict=True) if a and b]
        out[n] = np.mean(rows, axis=0) if rows else 0.0
    return out


def test_wide_part_is_the_mean_of_piece_and_pair_rows():
    layer = HashedNgrams(VOCAB, 13, 3)
    ids = grids()
    layer.build(ids.shape)
    table = np.random.default_rng(0).standard_normal((VOCAB + 13, 3)).astype(np.float32)
    layer.set_weights([table])
    np.testing.assert_allclose(np_(layer(ids)), wide_reference(ids, table, VOCAB, 13),
                               rtol=1e-5, atol=1e-6)
    assert layer.get_config()["buckets"] == 13


def test_an_untrained_wide_part_changes_nothing_and_a_trained_one_does(tmp_path):
    plain = build_model(TINY, vocab_size=VOCAB, n_classes=2, seed=4, **GRID)
    wide = build_model(ModelConfig(**{**TINY.to_dict(), "wide_buckets": 50}),
                       vocab_size=VOCAB, n_classes=2, seed=4, **GRID)
    ids = grids()
    np.testing.assert_allclose(np_(wide(ids)), np_(plain(ids)), rtol=1e-6)
    layer = wide.get_layer("wide")
    layer.set_weights([np.random.default_rng(1).standard_normal(
        layer.get_weights()[0].shape).astype(np.float32)])
    assert not np.allclose(np_(wide(ids)), np_(plain(ids)))
    wide.save(tmp_path / "w.keras")
    loaded = keras.saving.load_model(tmp_path / "w.keras", safe_mode=True)
    np.testing.assert_array_equal(np_(loaded(ids)), np_(wide(ids)))
