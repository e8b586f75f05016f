"""Sentencepiece tokenizer: training, save/load, encoding to ids and to the document grid.

ONNX mapping: the serialized model proto (:attr:`Tokenizer.model_proto`) is the ``model``
attribute of onnxruntime-extensions' ``SentencepieceTokenizer`` op. The normaliser
(``nmt_nfkc_cf``: NFKC + case folding) is stored in that proto as a precompiled charsmap, so
the op normalises exactly like :meth:`Tokenizer.encode`. The op's flat token output plus
per-document offsets feed the grid steps of :mod:`tlc.tokenizer.grid`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlc.errors import TlcError
from tlc.text import model_text
from tlc.tokenizer.clean import clean
from tlc.tokenizer.graph import GraphEncoder
from tlc.tokenizer.grid import grid_from_flat, starts_word_table, terminal_table

MODEL_FILE = "tokenizer.model"
META_FILE = "tokenizer.json"
FORMAT_VERSION = 1
PAD_ID = 0
UNK_ID = 1
# Sentencepiece silently skips training "sentences" longer than this many bytes (its default).
MAX_SENTENCE_BYTES = 4192
# Only feeds the vocabulary learner: it need not match the id-level splitter in grid.py.
_ROUGH_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Encode/grid this many documents at a time, to bound the memory of the id lists.
_ENCODE_CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 16000
    model_type: str = "unigram"
    character_coverage: float = 0.9995
    byte_fallback: bool = True
    max_sentences: int = 16
    max_tokens: int = 40
    input_sentence_size: int = 2_000_000
    seed: int = 0
    # Part of the config, never "all cores": sentencepiece's EM sums per-thread partial counts,
    # so the learned model depends on the thread count (1 and 2 threads give different bytes).
    num_threads: int = 2

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> TlcError:
            return TlcError(f"tokenizer {name} must be {want}, not {getattr(self, name)!r}")

        if self.model_type not in ("unigram", "bpe"):
            raise bad("model_type", "'unigram' or 'bpe'")
        positive = ("vocab_size", "max_sentences", "max_tokens", "input_sentence_size")
        for name in (*positive, "num_threads", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(name, "a non-negative integer")
            if value == 0 and name != "seed":
                raise bad(name, "a positive integer")
        if not isinstance(self.byte_fallback, bool):
            raise bad("byte_fallback", "true or false")
        coverage = self.character_coverage
        if isinstance(coverage, bool) or not isinstance(coverage, (int, float)):
            raise bad("character_coverage", "a number in (0, 1]")
        if not 0.0 < coverage <= 1.0:
            raise bad("character_coverage", "a number in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], path: str | os.PathLike[str] | None = None
    ) -> TokenizerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TlcError(
                f"unknown tokenizer config key(s): {', '.join(unknown)}",
                path=path,
                hint=f"known keys: {', '.join(sorted(known))}",
            )
        try:
            return cls(**data)
        except TlcError as err:
            raise TlcError(err.message, path=path, hint=err.hint) from None


class Tokenizer:
    """A trained sentencepiece model (its proto bytes) plus the config that made it."""

    def __init__(self, model_proto: bytes, config: TokenizerConfig) -> None:
        import sentencepiece  # train extra: scoring uses the ONNX graph, not this class

        self._proto = bytes(model_proto)
        self._config = config
        self._sp = sentencepiece.SentencePieceProcessor(model_proto=self._proto)
        self._pieces = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]
        # Read-only: the export bakes these into the graph as Gather constants.
        self._terminal = terminal_table(self._pieces)
        self._starts_word = starts_word_table(self._pieces)
        self._terminal.flags.writeable = False
        self._starts_word.flags.writeable = False
        self._encoder: GraphEncoder | None = None

    # Pickle as bytes + config (for multiprocessing); the processor is rebuilt on load.
    def __getstate__(self) -> dict[str, Any]:
        return {"model_proto": self._proto, "config": self._config.to_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model_proto"], TokenizerConfig.from_dict(state["config"]))

    @property
    def config(self) -> TokenizerConfig:
        return self._config

    @property
    def model_proto(self) -> bytes:
        return self._proto

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._proto).hexdigest()

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def pieces(self) -> list[str]:
        return list(self._pieces)

    @property
    def terminal(self) -> np.ndarray:
        """bool (vocab,): :func:`~tlc.tokenizer.grid.terminal_table` of :attr:`pieces`."""
        return self._terminal

    @property
    def starts_word(self) -> np.ndarray:
        """bool (vocab,): :func:`~tlc.tokenizer.grid.starts_word_table` of :attr:`pieces`."""
        return self._starts_word

    @property
    def scores(self) -> np.ndarray:
        """float32 (vocab,): each piece's score (a unigram model's log-probability): how
        common the piece is, with no data needed. Export uses it to rank embedding rows."""
        return np.array([self._sp.get_score(i) for i in range(self.vocab_size)], np.float32)

    @property
    def is_byte(self) -> np.ndarray:
        """bool (vocab,): byte-fallback pieces (``<0x41>``), scored 0 but rare."""
        return np.array([self._sp.is_byte(i) for i in range(self.vocab_size)], bool)

    @classmethod
    def train(
        cls, texts: Iterable[str], config: TokenizerConfig, progress: bool = True
    ) -> Tokenizer:
        """Learn a vocabulary from raw documents (cleaned here), streaming them once."""
        import sentencepiece
        from tqdm.auto import tqdm

        # disable=None: bars on a terminal, none in logs and pipes.
        docs = tqdm(texts, desc="tokenizer: reading", unit=" docs", file=sys.stderr,
                    disable=None if progress else True)
        writer = io.BytesIO()
        sentences = _TrainingSentences(docs)
        # Reservoir sampling and sentence shuffling draw from this global generator.
        sentencepiece.set_random_generator_seed(config.seed)
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=writer,
                vocab_size=config.vocab_size,
                model_type=config.model_type,
                character_coverage=config.character_coverage,
                byte_fallback=config.byte_fallback,
                input_sentence_size=config.input_sentence_size,
                num_threads=config.num_threads,
                normalization_rule_name="nmt_nfkc_cf",
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=-1,
                eos_id=-1,
                split_by_unicode_script=True,
                split_by_number=True,
                shuffle_input_sentence=True,
                train_extremely_large_corpus=False,
                max_sentence_length=MAX_SENTENCE_BYTES,
                # A vocabulary of exactly vocab_size or an error: the embedding size and saved
                # configs must say what the model really has (no silent shrinking).
                hard_vocab_limit=True,
                minloglevel=2,
            )
        except RuntimeError as err:
            if sentences.error is not None:  # the caller's own error (e.g. a DataError), intact
                raise sentences.error from None
            raise _training_error(err, config) from None
        finally:
            docs.close()
        return cls(writer.getvalue(), config)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        from tlc import __version__

        (directory / MODEL_FILE).write_bytes(self._proto)
        meta = {
            "format": FORMAT_VERSION,
            "tlc_version": __version__,
            "sha256": self.sha256,
            "vocab_size": self.vocab_size,
            "config": self._config.to_dict(),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Tokenizer:
        directory = Path(directory)
        model_path, meta_path = directory / MODEL_FILE, directory / META_FILE
        for path in (meta_path, model_path):
            if not path.is_file():
                raise TlcError(
                    "tokenizer file is missing",
                    path=path,
                    hint=f"point at a directory written by Tokenizer.save ({MODEL_FILE} and "
                    f"{META_FILE}), or train the tokenizer again",
                )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TlcError(f"tokenizer metadata is not valid JSON: {err}", path=meta_path) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
            raise TlcError("tokenizer metadata has no 'config' object", path=meta_path)
        proto = model_path.read_bytes()
        digest = hashlib.sha256(proto).hexdigest()
        if digest != meta.get("sha256"):
            raise TlcError(
                f"{MODEL_FILE} does not match its metadata (sha256 {digest[:12]}..., "
                f"expected {str(meta.get('sha256'))[:12]}...)",
                path=model_path,
                hint="the model or its json was changed or mixed up with another tokenizer; "
                "copy both files together from the same training run",
            )
        config = TokenizerConfig.from_dict(meta["config"], path=meta_path)
        try:
            return cls(proto, config)
        except RuntimeError as err:
            raise TlcError(f"not a sentencepiece model: {err}", path=model_path) from None

    def _graph_encoder(self) -> GraphEncoder:
        # Built on first use: training the vocabulary needs no onnxruntime session.
        if self._encoder is None:
            self._encoder = GraphEncoder(self._proto, threads=self._config.num_threads)
        return self._encoder

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All documents' ids concatenated, and each document's length.

        Runs the ONNX encoder graph (clean-up + sentencepiece op) that the export embeds, so
        these are exactly the ids the exported model computes (see :mod:`.graph`)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of documents, not a single string")
        return self._graph_encoder()(list(texts))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids per document (never 0, which is padding); see :meth:`encode_flat`."""
        flat, lengths = self.encode_flat(texts)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return [flat[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def encode_grid(self, texts: Sequence[str]) -> np.ndarray:
        """int32 (N, max_sentences, max_tokens) grid of ids, 0 = padding."""
        if isinstance(texts, str):
            raise TypeError("encode_grid takes a sequence of documents, not a single string")
        cfg = self._config
        grids = [
            grid_from_flat(*self.encode_flat(texts[start : start + _ENCODE_CHUNK]),
                           self._terminal, self._starts_word, cfg.max_sentences, cfg.max_tokens)
            for start in range(0, len(texts), _ENCODE_CHUNK)
        ]
        if not grids:
            return np.zeros((0, cfg.max_sentences, cfg.max_tokens), dtype=np.int32)
        return np.concatenate(grids) if len(grids) > 1 else grids[0]


class _TrainingSentences:
    """Cleaned documents cut into rough sentences that fit sentencepiece's length limit.

    Sentencepiece turns an exception raised while it reads into a bare RuntimeError, so the
    original one is kept here for :meth:`Tokenizer.train` to re-raise.
    """

    def __init__(self, docs: Iterable[str]) -> None:
        self.docs = docs
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            for doc in self.docs:
                for sentence in _ROUGH_SENTENCE_END.split(clean(model_text(doc))):
                    sentence = sentence.strip()
                    # Run-ons without punctuation for 4 kB are dropped, as sentencepiece would.
                    if sentence and len(sentence.encode("utf-8")) <= MAX_SENTENCE_BYTES:
                        yield sentence
        except BaseException as err:
            self.error = err
            raise


def _training_error(err: RuntimeError, config: TokenizerConfig) -> TlcError:
    message = str(err)
    too_high = re.search(r"Vocabulary size too high \((\d+)\).*<= (\d+)", message)
    if too_high:
        return TlcError(
            f"the training text supports at most {too_high.group(2)} tokenizer pieces, "
            f"vocab_size is {config.vocab_size}",
            hint=f"lower vocab_size to {too_high.group(2)} or less, or train on more text",
        )
    too_low = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message)
    if too_low:
        return TlcError(
            f"vocab_size {config.vocab_size} cannot hold the {too_low.group(2)} required pieces "
            "(characters, plus 256 bytes with byte_fallback)",
            hint=f"raise vocab_size to {too_low.group(2)} or more, or lower character_coverage",
        )
    if "sentences_.empty()" in message:
        return TlcError(
            "no text to train the tokenizer on", hint="check the text column of the input data"
        )
    return TlcError(f"sentencepiece training failed: {message}")


def check_save_dir(directory: str | os.PathLike[str], *, force: bool) -> None:
    """Refuse, before any training, a folder :meth:`Tokenizer.save` must not write into.

    Only ``tokenizer.model`` and ``tokenizer.json`` are ever written, so other entries of the
    folder are never at risk and need no --force. Those two are replaced only with --force and
    only when they are a tlc tokenizer (its tokenizer.json: format, sha256, config): another
    tool's ``tokenizer.json`` or ``tokenizer.model`` (both common names) is never
    overwritten."""
    from tlc.ownership import json_object, listing

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise TlcError("--out is a file, not a folder", path=directory,
                       hint="give --out a folder (it is created)")
    present = [p for p in (directory / MODEL_FILE, directory / META_FILE)
               if p.exists() or p.is_symlink()]
    if not present:
        return
    meta = json_object(directory / META_FILE)
    ours = (meta is not None and {"format", "sha256", "config"} <= set(meta)
            and all(p.is_file() for p in present))
    if not ours:
        names = listing(p.name for p in present)
        raise TlcError(f"{names} here {'is' if len(present) == 1 else 'are'} not a tokenizer "
                       f"written by tlc (no tlc {META_FILE} describes it), so tlc tokenizer "
                       "train does not overwrite it, with or without --force", path=directory,
                       hint="choose another --out")
    if not force:
        raise TlcError("a tokenizer already exists here", path=directory,
                       hint="pass --force to replace it, or choose another --out")
