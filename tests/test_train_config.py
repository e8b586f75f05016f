"""The run configuration: JSON round trips, --set overrides, and clear errors."""

from __future__ import annotations

import json

import pytest

from tlc.errors import TlcError
from tlc.train.config import RunConfig


def test_defaults_round_trip_through_dict():
    config = RunConfig()
    data = config.to_dict()
    assert list(data) == ["data", "tokenizer", "model", "training", "transfer", "self_training"]
    assert json.loads(json.dumps(data)) == data           # plain JSON values only
    assert RunConfig.from_dict(data) == config
    assert RunConfig.from_dict({}) == config               # missing sections take defaults


def test_changed_config_round_trips_through_a_file(tmp_path):
    config = RunConfig().override([
        "data.train=imdb:train", "data.labels=250", "tokenizer.max_sentences=5",
        "model.embedding_dim=12", "training.learning_rate=0.003",
        'transfer.freeze=["embedding", "word_conv"]', "self_training.unlabelled=[\"imdb:unsup\"]",
    ])
    assert RunConfig.from_dict(config.to_dict()) == config
    path = tmp_path / "config.json"
    config.save(path)
    loaded = RunConfig.load(path)
    assert loaded == config and loaded != RunConfig()
    assert loaded.transfer.freeze == ["embedding", "word_conv"]
    # A file that wraps the settings in {"config": ...} loads too.
    (tmp_path / "wrapped.json").write_text(json.dumps({"config": config.to_dict()}))
    assert RunConfig.load(tmp_path / "wrapped.json") == config


def test_override_value_types():
    c = RunConfig().override([
        "training.epochs=3",
        "training.learning_rate=0.0005",
        "transfer.freeze=[\"embedding\", \"sentence_conv\"]",
        "data.labels=null",
        "data.train=amazon",
        "training.balance=undersample",
        "model.document_mean=false",
        "data.format=\"csv\"",
        " transfer.freeze_epochs =-1",
    ])
    assert c.training.epochs == 3 and isinstance(c.training.epochs, int)
    assert c.training.learning_rate == pytest.approx(0.0005)
    assert c.transfer.freeze == ["embedding", "sentence_conv"]
    assert c.data.labels is None
    assert c.data.train == "amazon"                       # not JSON: taken as a string
    assert c.training.balance == "undersample"
    assert c.model.document_mean is False
    assert c.data.format == "csv"
    assert c.transfer.freeze_epochs == -1
    # Later assignments win, null resets an optional value, and the original is untouched.
    c2 = c.override(["data.labels=40", "training.epochs=5", "data.labels=null"])
    assert (c2.data.labels, c2.training.epochs) == (None, 5)
    assert RunConfig().training.epochs == 15
    assert c.override(["data.labels=40"]).data.labels == 40
    # Plain strings with '=' or ':' inside survive.
    assert RunConfig().override(["data.train=a=b:c"]).data.train == "a=b:c"


def error_of(assignment: str) -> TlcError:
    with pytest.raises(TlcError) as info:
        RunConfig().override([assignment])
    return info.value


def test_override_errors_name_the_valid_keys():
    err = error_of("trainin.epochs=3")
    assert "trainin" in err.message
    assert "training" in err.hint and "self_training" in err.hint

    err = error_of("training.epoch=3")
    assert "training.epoch" in err.message
    assert "epochs" in err.hint and "batch_size" in err.hint and "balance" in err.hint

    for bad in ("training.epochs", "epochs=3", "training.epochs 3"):
        err = error_of(bad)
        assert "section.key=value" in err.hint, bad


@pytest.mark.parametrize("assignment, needle", [
    ("training.epochs=0", "training.epochs"),
    ("training.batch_size=-4", "training.batch_size"),
    ("training.learning_rate=0", "learning_rate"),
    ("training.balance=x", "training.balance"),
    ("training.patience=-1", "patience"),
    ("data.valid_fraction=1.5", "data.valid_fraction"),
    ("data.valid_fraction=1", "data.valid_fraction"),
    ("data.labels=-1", "data.labels"),
    ("data.on_bad_rows=ignore", "on_bad_rows"),
    ("transfer.head=keep", "transfer.head"),
    ("transfer.freeze_epochs=-2", "freeze_epochs"),
    ("self_training.fraction=0", "self_training.fraction"),
    ("self_training.weight=0", "self_training.weight"),
    ("model.word_k=0", "model.word_k"),
    ("model.dropout=1.0", "model.dropout"),
    ("tokenizer.vocab_size=0", "vocab_size"),
    ("training.epochs=\"3\"", "training"),              # a JSON string where a number goes
])
def test_invalid_values_are_tlc_errors(assignment, needle):
    assert needle in str(error_of(assignment))


def test_unknown_keys_in_a_file_name_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"training": {"epochs": 2, "epoch": 3}}))
    with pytest.raises(TlcError) as info:
        RunConfig.load(path)
    assert info.value.path == str(path) and "epoch" in info.value.message
    assert "epochs" in info.value.hint
    path.write_text(json.dumps({"optimizer": {}}))
    with pytest.raises(TlcError, match="optimizer"):
        RunConfig.load(path)
    path.write_text("{not json")
    with pytest.raises(TlcError, match="not valid JSON"):
        RunConfig.load(path)
    with pytest.raises(TlcError, match="not found"):
        RunConfig.load(tmp_path / "missing.json")


def test_replace_changes_only_the_named_fields():
    c = RunConfig().replace(training={"epochs": 2}, model={"embedding_dim": 8})
    assert c.training.epochs == 2 and c.model.embedding_dim == 8
    assert c.training.batch_size == RunConfig().training.batch_size


# -- errors that once escaped as tracebacks or left half-written runs ------------------


@pytest.mark.parametrize("assignment", ["model.word_k=abc", "model.dropout=abc"])
def test_non_numeric_model_sizes_are_tlc_errors(assignment):
    with pytest.raises(TlcError):
        RunConfig().override([assignment])


@pytest.mark.parametrize("assignment", ["training.epochs=2.5", "training.batch_size=8.5",
                                        "model.embedding_dim=2.5", "data.labels=2.5"])
def test_fractional_integer_settings_are_rejected(assignment):
    with pytest.raises(TlcError):
        RunConfig().override([assignment])


def test_freeze_given_as_a_plain_string():
    try:
        config = RunConfig().override(["transfer.freeze=embedding"])
    except TlcError:
        return  # refusing it clearly is fine too
    assert config.transfer.freeze == ["embedding"]
