"""Score text with one file from ``tlc export``: :class:`Classifier`.

The file holds the whole pipeline (clean-up, sentencepiece, the sentence split, the network,
the label names), so scoring is one onnxruntime call per chunk of texts. The graph's work
follows the longest text of a run (:mod:`tlc.export.packed`), so a batch is sorted by length
before it is cut into chunks. The in-graph tokenizer works through a chunk on one core, so a
small thread pool runs chunks at once (onnxruntime releases the GIL while it runs); each run
is single-threaded, so ``threads`` runs use ``threads`` cores and never oversubscribe them.
Outputs come back in input order. Speed on the real models: ``benchmarks/throughput.py``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlc import metadata as meta
from tlc.errors import TlcError
from tlc.metadata import read_metadata
from tlc.models import resolve_model
from tlc.session import model_sha256, open_session, read_model
from tlc.text import model_text

EXPLAIN_OUTPUTS = ("probabilities", "sentence_scores", "sentence_spans", "sentence_total")

DEFAULT_BATCH_SIZE = 32
CHUNK_CHARS = 1000
"""Characters per text a chunk of ``batch_size`` texts is sized for (an IMDB review is about
1,300): shorter texts share a chunk, up to ``CHUNK_GROWTH`` times as many. On 6,000 Amazon test
reviews (about 400 characters each), runs of 32 texts scored 8,061 reviews/s and runs of 256
11,237 (IMDB: 4,569 and 4,902; 2 threads, while another job ran)."""
CHUNK_GROWTH = 8
"""Texts per onnxruntime run. The network's intermediate tensors grow with the batch and
onnxruntime's memory arena keeps the largest it has seen. Measured with the IMDB int8 model
on 2,000 test reviews sorted by length, documents per CPU-second of one single-threaded
session (the machine was shared, so within one run only): batch 16 1,669, 32 1,882, 64
1,932, 128 2,005, 256 2,049; 2 threads on 4,096 reviews peaked at 286 MB with batch 32 and
370 MB with 128. (The fixed-grid graph before it peaked at 1.35 GB with batch 256.)"""

DEFAULT_TRUNCATE_CHARS = 100_000
"""Texts are cut to this many characters before scoring. The model reads only the first
``max_sentences x max_tokens`` tokens of a document (2,048 tokens, about 10,000 characters of
English, for a 32 x 64 grid), so a longer text scores exactly as its beginning does, and
cutting it keeps time and memory flat for a 10 MB "document"."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under taskset or a container's
    cpuset), else every core of the machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class Classifier:
    """A text classifier loaded from a file written by ``tlc export``.

    >>> clf = Classifier.load("model.onnx")
    >>> clf.labels
    ('0', '1')
    >>> clf.predict(["A wonderful film.", "Two hours I will never get back."])
    ['1', '0']
    >>> clf.predict_proba(["A wonderful film."])      # columns in the order of clf.labels
    array([[0.03, 0.97]], dtype=float32)

    ``threads`` (default: every core) is how many chunks of a batch run at once;
    ``batch_size`` (default 32) is how many texts of ordinary length one onnxruntime run gets
    (short texts go up to 8 times as many to a run, see :data:`CHUNK_CHARS`);
    ``truncate_chars`` (default 100,000) cuts longer texts first (None: never cut).
    The model's metadata is available as attributes (``labels``, ``version``, ``config``,
    ``evaluation``, ``quantization``, ``validation``, ``tokenizer_sha256``,
    ``format_version``) and all of it as the ``metadata`` dict. A Classifier may be shared
    between threads.
    """

    def __init__(self, model: bytes, *, source: str | os.PathLike[str] | None = None,
                 threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 truncate_chars: int | None = DEFAULT_TRUNCATE_CHARS) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if truncate_chars is not None and truncate_chars < 1:
            raise ValueError(f"truncate_chars must be at least 1 or None, got {truncate_chars}")
        self.path: Path | None = Path(source) if source is not None else None
        where = os.fspath(source) if source is not None else None
        self.sha256: str = model_sha256(model)
        self.threads: int = threads or available_cores()
        self.batch_size: int = batch_size
        self.truncate_chars: int | None = truncate_chars
        self._session = open_session(model, intra_threads=1, source=where)
        self.metadata: dict[str, Any] = read_metadata(
            self._session.get_modelmeta().custom_metadata_map)
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != ["text"] or inputs[0].type != "tensor(string)":
            found = ", ".join(f"{i.name}: {i.type}" for i in inputs)
            if self.metadata.get("tlc.input") == "ids" or [i.name for i in inputs] == ["ids"]:
                raise TlcError(
                    "this model takes token ids (it was exported with --ids-input), not text",
                    path=where, hint="export the run again without --ids-input to score raw "
                    "text; the ids variant is for apps that tokenise on their own")
            raise TlcError(f"the model does not take text (its inputs: {found})", path=where,
                           hint="give a file written by `tlc export` without --ids-input")
        labels = self.metadata.get(meta.LABELS)
        outputs = {o.name: o for o in self._session.get_outputs()}
        if "probabilities" not in outputs or not any(k.startswith("tlc.")
                                                     for k in self.metadata):
            raise TlcError("no tlc metadata or `probabilities` output: not a file "
                           "written by `tlc export`", path=where,
                           hint="export the run with `tlc export RUN --out model.onnx`")
        problem = meta.labels_problem(labels)
        if problem:
            raise TlcError(f"the model's {meta.LABELS} metadata is damaged: {problem}",
                           path=where, hint="export the run again with `tlc export`")
        width = outputs["probabilities"].shape[-1] if outputs["probabilities"].shape else None
        if isinstance(width, int) and width != len(labels):
            raise TlcError(f"the model has {width} probability columns but {len(labels)} "
                           f"labels in its {meta.LABELS} metadata", path=where,
                           hint="export the run again with `tlc export`")
        self.labels: tuple[str, ...] = tuple(labels)
        self.version: str | None = self.metadata.get(meta.VERSION)
        self.format_version: str | None = self.metadata.get(meta.FORMAT)
        self.config: dict | None = meta.entry(self.metadata, meta.CONFIG)
        self.evaluation: dict | None = meta.entry(self.metadata, meta.EVALUATION)
        self.quantization: dict | None = meta.entry(self.metadata, meta.QUANTIZATION)
        self.validation: dict | None = meta.entry(self.metadata, meta.VALIDATION)
        self.tokenizer_sha256: str | None = self.metadata.get("tlc.tokenizer_sha256")
        self.explains: bool = all(name in outputs for name in EXPLAIN_OUTPUTS)
        """Whether the file has the sentence-score outputs of ``tlc export --explain``."""
        self._names = np.array(self.labels, dtype=object)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, threads: int | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE,
             truncate_chars: int | None = DEFAULT_TRUNCATE_CHARS) -> Classifier:
        """Load a file written by ``tlc export`` (raw-text input; not ``--ids-input``), or a
        model bundled with tlc by its name: ``Classifier.load("sentiment-en")`` (see
        :mod:`tlc.models`; an existing path of the same name wins)."""
        path = resolve_model(path)
        return cls(read_model(path), source=path, threads=threads, batch_size=batch_size,
                   truncate_chars=truncate_chars)

    # ------------------------------------------------------------------ scoring

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label of each text, in input order."""
        return self.score(texts)[0]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, float32 of shape (len(texts), len(labels)); column j is
        ``labels[j]``. Rows sum to 1."""
        return self.score(texts)[1]

    def score(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Labels and probabilities together (one pass)."""
        texts = self._texts(texts)
        if not texts:
            return [], np.zeros((0, len(self.labels)), dtype=np.float32)
        # Texts of similar length go into the same chunk: the graph's work follows the longest
        # text of a run (see tlc.export.packed), so a short review never waits on a long one.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = self._chunks([texts[i] for i in order])
        if len(chunks) == 1 or self.threads == 1:
            parts = [self._run(c) for c in chunks]
        else:
            parts = list(self._executor().map(self._run, chunks))  # map keeps chunk order
        by_length = parts[0] if len(parts) == 1 else np.concatenate(parts)
        proba = np.empty_like(by_length)
        proba[order] = by_length                                   # back in input order
        labels = self._names[proba.argmax(axis=1)].tolist()
        return labels, proba

    def explain(self, texts: Sequence[str]) -> list[Explanation]:
        """Which sentences decided each text's label (a file from ``tlc export --explain``):
        one :class:`Explanation` per text, in input order, with its label, probabilities and
        sentences, each with its span in the text and its score, ``p(label | text) -
        p(label | text without the sentence)``. Sentences past the model's grid are not
        read, so they have no score (:attr:`Explanation.unscored`)."""
        if not self.explains:
            raise TlcError("this model file has no sentence-score outputs", path=self.path,
                           hint="export the run again with `tlc export RUN --explain`")
        texts = self._texts(texts)
        if not texts:
            return []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = self._chunks([texts[i] for i in order])
        if len(chunks) == 1 or self.threads == 1:
            parts = [self._run_explain(c) for c in chunks]
        else:
            parts = list(self._executor().map(self._run_explain, chunks))
        flat = [e for part in parts for e in part]
        out: list[Explanation | None] = [None] * len(texts)
        for i, e in zip(order, flat, strict=True):
            out[i] = e
        return out  # type: ignore[return-value]

    def _run_explain(self, chunk: list[str]) -> list[Explanation]:
        texts = [model_text(t) for t in chunk]
        feed = np.array(texts * 2 if len(texts) == 1 else texts, dtype=object)
        proba, scores, spans, total = self._session.run(list(EXPLAIN_OUTPUTS), {"text": feed})
        out = []
        for i, text in enumerate(chunk):
            best = int(proba[i].argmax())
            sentences = []
            for j in range(min(int(total[i]), spans.shape[1])):    # the sentences it read
                start, end = (int(v) for v in spans[i, j])
                sentences.append(Sentence(
                    start, end, text[start:end] if start >= 0 else None,
                    float(scores[i, j, best]),
                    dict(zip(self.labels, scores[i, j].astype(float).tolist(), strict=True))))
            out.append(Explanation(
                text, self.labels[best],
                dict(zip(self.labels, proba[i].astype(float).tolist(), strict=True)),
                sentences, int(total[i]) - len(sentences)))
        return out

    def _texts(self, texts: Sequence[str]) -> list[str]:
        """The texts as a list, checked, each cut to ``truncate_chars``."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a list of strings; for one text pass [text]")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
        if self.truncate_chars is not None:
            limit = self.truncate_chars
            texts = [t if len(t) <= limit else t[:limit] for t in texts]
        return texts

    def _chunks(self, texts: list[str]) -> list[list[str]]:
        """Consecutive runs of ``texts`` (sorted by length) for one onnxruntime run each.

        As many chunks as threads when the batch is small (at least 16 texts each, below
        which the per-run overhead shows); otherwise ``batch_size`` texts, or more of them
        while they are short: a chunk grows past ``batch_size`` texts while it holds at most
        ``batch_size * CHUNK_CHARS`` characters, up to ``CHUNK_GROWTH`` times as many texts
        (and never past an equal share per thread), so the fixed work of a run is spread
        over more short texts."""
        n = len(texts)
        size = min(self.batch_size, max(16, -(-n // self.threads)))
        if size < self.batch_size:
            return [texts[i : i + size] for i in range(0, n, size)]
        most = min(self.batch_size * CHUNK_GROWTH, max(self.batch_size, -(-n // self.threads)))
        budget = self.batch_size * CHUNK_CHARS
        chunks, start, chars = [], 0, 0
        for i, text in enumerate(texts):
            held = i - start
            if held >= self.batch_size and (held >= most or chars + len(text) > budget):
                chunks.append(texts[start:i])
                start, chars = i, 0
            chars += len(text)
        chunks.append(texts[start:])
        return chunks

    def _run(self, chunk: list[str]) -> np.ndarray:
        texts = [model_text(t) for t in chunk]
        if len(texts) == 1:
            # onnxruntime multiplies a 1-row matrix by another path than a 2-row one, and the
            # probabilities differ in the last bit (1.2e-7 on 90 of 600 IMDB reviews): a text
            # alone runs beside a copy of itself, so its scores never depend on how a batch
            # was cut (tlc predict's last chunk, a Spark partition's, a single predict call).
            texts = texts * 2
        feed = np.array(texts, dtype=object)
        proba = self._session.run(["probabilities"], {"text": feed})[0]
        if proba.shape != (len(texts), len(self.labels)):
            # A hand-made or damaged file: never hand back rows that belong to no text.
            raise TlcError(
                f"the model returned probabilities of shape {tuple(proba.shape)} for "
                f"{len(texts)} texts and {len(self.labels)} labels", path=self.path,
                hint="export the run again with `tlc export`; this file does not behave as "
                "one written by it")
        return proba[: len(chunk)]

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tlc-score")
            return self._pool

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the worker threads (the Classifier still works afterwards; it restarts them)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"{str(self.path)!r}, " if self.path is not None else ""
        return (f"Classifier({where}labels={list(self.labels)}, threads={self.threads}, "
                f"batch_size={self.batch_size})")


@dataclass(frozen=True)
class Sentence:
    """One sentence the model read: ``text[start:end]`` (code point offsets into the text
    as given; ``start`` and ``end`` are -1 and ``text`` None where the file could not place
    it, see :mod:`tlc.export.explain`), its ``score`` for the predicted label and its
    ``scores`` for every label: how much the probability drops when the sentence is
    removed (negative: the text leans further that way without it)."""

    start: int
    end: int
    text: str | None
    score: float
    scores: dict[str, float]


@dataclass(frozen=True)
class Explanation:
    """:meth:`Classifier.explain`'s answer for one text. ``unscored``: sentences past the
    model's grid (read by no one, so without a score); they follow the last scored one."""

    text: str
    label: str
    probabilities: dict[str, float]
    sentences: list[Sentence]
    unscored: int

    def decisive(self, k: int = 1) -> list[Sentence]:
        """The ``k`` sentences whose removal lowers the label's probability most, most
        decisive first (only those with a positive score)."""
        ranked = sorted((s for s in self.sentences if s.score > 0 and s.text is not None),
                        key=lambda s: -s.score)
        return ranked[:k]

    def summary(self, k: int = 3) -> str:
        """The :meth:`decisive` ``k`` sentences, in text order, joined by " … "."""
        chosen = sorted(self.decisive(k), key=lambda s: s.start)
        return " … ".join(" ".join(s.text.split()) for s in chosen)
