"""The document CNN of Denil et al. (2014), sized by a :class:`ModelConfig`.

ids (N, S, T) -> embedding (N, S, T, d)
  -> word convolution inside every sentence, filters shared across sentences
     (a Conv2D with a 1 x k kernel is exactly that, and exports to one ONNX Conv)
  -> k-max pooling over each sentence's positions -> sentence vectors (N, S, k1 * f1)
  -> convolution across sentences -> k-max pooling over sentences (+ optional masked mean)
  -> dense hidden layer -> class scores
  (+ optional wide part: the mean of learned class scores of the document's pieces and
  hashed neighbouring piece pairs, :class:`~.layers.HashedNgrams`) -> softmax.

Layer names are stable: transfer copies weights by name (see :mod:`.transfer`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import TlcError
from .checks import check_int, check_number

# Layers a target model can take over from a source model, in data-flow order; the head
# ("hidden", "output") moves too when the label sets match.
BODY_LAYERS = ("embedding", "word_conv", "sentence_conv")
HEAD_LAYERS = ("hidden", "output", "wide")   # the wide part scores classes: a head
WIDE_HASH = 48271
"""Multiplier of the wide part's pair hash ``(a * WIDE_HASH + b) mod buckets`` (odd and
large, so pairs sharing a first piece spread over the table); the exported graph uses it too."""


@dataclass(frozen=True)
class ModelConfig:
    """Every size of the network. Grid size (sentences x tokens) comes from the tokenizer."""

    embedding_dim: int = 64
    word_filters: int = 128
    word_kernel: int = 3
    word_k: int = 2
    sentence_filters: int = 128
    sentence_kernel: int = 3
    sentence_k: int = 2
    document_mean: bool = True
    hidden_units: int = 64
    dropout: float = 0.5
    embedding_dropout: float = 0.1
    # Rows of the wide part's hashed piece pairs (0 = no wide part, the plain CNN).
    wide_buckets: int = 0
    # What the wide part's mean is multiplied by (see layers.HashedNgrams: its rows learn at
    # Adam's pace only when scaled up).
    wide_scale: float = 300.0
    # Share of the wide part's pieces and pairs left out of each training document's mean.
    wide_dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "word_filters", "word_kernel", "word_k",
                     "sentence_filters", "sentence_kernel", "sentence_k"):
            check_int("model", name, getattr(self, name), 1)
        check_int("model", "hidden_units", self.hidden_units, 0)  # 0 = no hidden layer
        check_int("model", "wide_buckets", self.wide_buckets, 0)
        check_number("model", "wide_scale", self.wide_scale, 1e-6, 1e6)
        if not isinstance(self.document_mean, bool):
            raise TlcError(f"model.document_mean must be true or false, "
                           f"got {self.document_mean!r}")
        for name in ("dropout", "embedding_dropout", "wide_dropout"):
            check_number("model", name, getattr(self, name), 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TlcError(f"unknown model setting(s): {', '.join(unknown)}",
                           hint=f"known settings: {', '.join(sorted(known))}")
        return cls(**data)


def check_grid(config: ModelConfig, sentences: int, tokens: int) -> None:
    """k-max pooling needs at least k positions to choose from."""
    if tokens < config.word_k:
        raise TlcError(f"model.word_k={config.word_k} is larger than the {tokens} tokens a "
                       "sentence holds", hint="lower model.word_k or raise tokenizer.max_tokens")
    if sentences < config.sentence_k:
        raise TlcError(f"model.sentence_k={config.sentence_k} is larger than the {sentences} "
                       "sentences a document holds",
                       hint="lower model.sentence_k or raise tokenizer.max_sentences")


# Rates that only act while training: a transfer may change them, since no weight depends on
# them. Every other model setting shapes the weights, so a transfer keeps the source's.
REGULARISATION = ("dropout", "embedding_dropout", "wide_dropout")


def inherit_model(mine: ModelConfig, source: ModelConfig) -> ModelConfig:
    """The model settings of a transfer from ``source``: the source's, except the
    :data:`REGULARISATION` rates where ``mine`` sets them away from the defaults. A
    weight-shaping setting that differs from both the default and the source's is an error,
    not something to drop silently."""
    defaults, wanted, theirs = ModelConfig().to_dict(), mine.to_dict(), source.to_dict()
    out = dict(theirs)
    for key, value in wanted.items():
        if value == defaults[key] or value == theirs[key]:
            continue
        if key not in REGULARISATION:
            raise TlcError(f"model.{key}={value!r} differs from the source run's "
                           f"{theirs[key]!r}, and a transfer keeps the source's network",
                           hint=f"drop model.{key} (of the model settings only "
                           f"{' and '.join('model.' + k for k in REGULARISATION)} can change "
                           "in a transfer)")
        out[key] = value
    return ModelConfig.from_dict(out)


def build_model(config: ModelConfig, *, vocab_size: int, sentences: int, tokens: int,
                n_classes: int, seed: int = 0):
    """A fresh, uncompiled Keras model: int32 ids (N, S, T) in, class probabilities out."""
    from . import import_keras
    from .layers import HashedNgrams, KMaxPooling, MaskedMean, PaddingMask

    keras = import_keras()

    check_grid(config, sentences, tokens)
    if n_classes < 2:
        raise TlcError(f"a classifier needs at least 2 classes, got {n_classes}")
    init = keras.initializers.GlorotUniform
    ids = keras.Input((sentences, tokens), dtype="int32", name="ids")
    x = keras.layers.Embedding(vocab_size, config.embedding_dim, name="embedding",
                               embeddings_initializer=keras.initializers.RandomUniform(
                                   -0.05, 0.05, seed=seed))(ids)
    x = PaddingMask(name="token_mask")([ids, x])
    if config.embedding_dropout:
        # Word dropout: one mask value per token (shared by its embedding axis), so whole
        # words vanish and the filters cannot lean on any single one.
        x = keras.layers.Dropout(config.embedding_dropout, noise_shape=(None, sentences, tokens, 1),
                                 seed=seed + 1, name="embedding_dropout")(x)
    x = keras.layers.Conv2D(config.word_filters, (1, config.word_kernel), padding="same",
                            activation="relu", kernel_initializer=init(seed + 2),
                            name="word_conv")(x)
    x = KMaxPooling(config.word_k, axis=2, name="word_kmax")(x)          # (N, S, k1, f1)
    x = keras.layers.Reshape((sentences, config.word_k * config.word_filters),
                             name="sentence_vectors")(x)
    x = PaddingMask(name="sentence_mask")([ids, x])
    x = keras.layers.Conv1D(config.sentence_filters, config.sentence_kernel, padding="same",
                            activation="relu", kernel_initializer=init(seed + 3),
                            name="sentence_conv")(x)
    doc = keras.layers.Flatten(name="document_kmax_flat")(
        KMaxPooling(config.sentence_k, axis=1, name="document_kmax")(x))
    if config.document_mean:
        doc = keras.layers.Concatenate(name="document_vector")(
            [doc, MaskedMean(name="document_mean")([ids, x])])
    if config.dropout:
        doc = keras.layers.Dropout(config.dropout, seed=seed + 4, name="dropout")(doc)
    if config.hidden_units:
        doc = keras.layers.Dense(config.hidden_units, activation="relu",
                                 kernel_initializer=init(seed + 5), name="hidden")(doc)
    if not config.wide_buckets:
        out = keras.layers.Dense(n_classes, activation="softmax",
                                 kernel_initializer=init(seed + 6), name="output")(doc)
        return keras.Model(ids, out, name="tlc_document_cnn")
    scores = keras.layers.Dense(n_classes, kernel_initializer=init(seed + 6), name="output")(doc)
    wide = HashedNgrams(vocab_size, config.wide_buckets, n_classes, config.wide_scale,
                        config.wide_dropout, seed=seed + 7, name="wide")(ids)
    out = keras.layers.Activation("softmax", name="probabilities")(
        keras.layers.Add(name="class_scores")([scores, wide]))
    return keras.Model(ids, out, name="tlc_document_cnn")
