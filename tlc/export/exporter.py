"""``tlc export``: a finished run -> one validated ONNX file, written atomically.

Order: build the graph (raw text in: the tokenizer's nodes, then the network over the texts'
real tokens, :mod:`.packed`; ``--ids-input``: tf2onnx's conversion of the network on the
fixed grid), quantise (with ``--quantize``), run the graph with onnxruntime against
the Keras model on held-out text, stamp metadata (the comparison included), write to a temporary
file beside the target and rename it into place. A failure at any step leaves no file under the
final name.

The comparison is the guard: a float32 file must give the Keras probabilities within 1e-4 (on
all but 0.1% of the documents: k-max pooling's ties, see ``FLOAT_OUTLIERS``); a quantised one
must agree on 99.5% of the labels of the documents not near a tie (``TIE_MARGIN``) and lose
at most 0.3 points of accuracy on labelled ones, or what chance leaves on few rows
(``ACCURACY_Z``). The documents need no labels: held-out rows first, then other text
(:func:`held_out`), so a run on a small file is checked on enough of them (docs/self-training.md).
``--quantize`` alone tries the splits of ``QUANTIZE_STEPS`` in turn, smallest file first,
and writes the first one the guard accepts; ``--ratio`` or ``--int8-rows`` pins one.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .. import metadata as meta
from ..errors import TlcError
from ..ownership import check_replace
from ..session import open_session
from ..text import model_text
from .compact import compact
from .compose import TEXT, packed_text_classifier
from .network import IDS, network_to_onnx

FLOAT_TOLERANCE = 1e-4       # float32 export vs Keras: |probability difference| per document
# ...for all but this share of the documents. k-max pooling makes the network discontinuous:
# where two positions tie (relu zeros, repeated n-grams), a last-bit difference between
# onnxruntime's and TensorFlow's convolutions can pick the other one and reorder the pooled
# values. Measured: 1 held-out review in 5,000 moved by 3.3e-4 (a 32 x 64-grid model; the
# other 4,999 within 1e-5). A conversion bug moves most documents, so it still fails.
FLOAT_OUTLIERS = 0.001
MIN_AGREEMENT = 0.995         # quantised export vs Keras: share of equal labels
MAX_ACCURACY_DROP = 0.3       # quantised export vs Keras: accuracy points lost
VALIDATION_SAMPLE = 5000      # documents compared; fewer make the 99.5% check noisy
# The accuracy drop is (b - c) / n over n labelled rows, where b rows only the Keras model
# gets right and c only the quantised one. If quantisation cost nothing, each of the m = b + c
# discordant rows would fall either way with even odds (McNemar), so b - c has standard
# deviation sqrt(m): a drop within ACCURACY_Z * 100 * sqrt(m) / n points is noise (one-sided
# 95%), and the limit is the larger of that and --max-accuracy-drop. On 5,000 rows that pass
# the 99.5% agreement (m <= 25) it is at most 0.16 points: the 0.3 limit holds as before; on
# 100 rows, one discordant row (1 point) is noise.
ACCURACY_Z = 1.645
# A document whose two likeliest classes the float model puts within this much probability
# of each other (0.45 to 0.55 for two classes) is a near tie: a label change there is no
# change of what the model decides, and a model trained on few labels holds many of them
# (a 1,000-label IMDB model: 0.8% of 5,000 documents change label with every weight at 8
# bits). Agreement counts the other documents; a broken file moves them too.
TIE_MARGIN = 0.1
# Fewer labelled rows than this and the accuracy check is skipped (and said): one row is more
# than a point, and agreement, which needs no labels, is measured on more text instead.
MIN_LABELLED = 100


@dataclass(frozen=True)
class Split:
    """How a quantised file stores the embedding: a size target ``ratio`` (file this many
    times smaller than float32; each row's width from 3 to 8 bits by rate-distortion, see
    :func:`.quantize.allocate_bits`), or ``int8_rows`` at 8 bits, the next ``int5_rows`` at
    5 and the rest at 4 (``int8_rows`` None: every row at 8 bits)."""

    int8_rows: int | None = None
    int5_rows: int = 0
    ratio: float | None = None

    @property
    def name(self) -> str:
        if self.ratio is not None:
            return f"int8 (embedding rows at 3 to 8 bits, for a file {self.ratio:g}x smaller)"
        if self.int8_rows is None:
            return "int8 (every embedding row at 8 bits)"
        five = f" + {self.int5_rows:,} at 5 bits" if self.int5_rows else ""
        return f"int8 ({self.int8_rows:,} embedding rows at 8 bits{five}, the rest at 4)"

    @property
    def short(self) -> str:
        if self.ratio is not None:
            return f"{self.ratio:g}x (rows at 3 to 8 bits)"
        if self.int8_rows is None:
            return "every row at 8 bits"
        return f"{self.int8_rows:,} + {self.int5_rows:,} rows at 8 + 5 bits"


# What ``--quantize`` tries, in order; the first the guard accepts is written. 3.6x leaves
# room above the export issue's 3.5x bar for the metadata; a model whose guard refuses it
# gets 3.2x, then every row at 8 bits (2.8x on the 16k-piece seed-table models). The guard
# alone decides, on held-out text, never on a test set.
QUANTIZE_STEPS: tuple[Split, ...] = (Split(ratio=3.6), Split(ratio=3.2), Split())
NODE_OVERHEAD = 2192   # bytes the rebuilding nodes of a per-row allocation take (estimate)


@dataclass
class Sample:
    """Text to validate an export on; ``labels`` (indices into the run's labels, -1 for a
    text without one) when any are known; ``parts``: where the texts came from, in order."""

    texts: list[str]
    labels: np.ndarray | None
    source: str
    parts: list[dict[str, Any]] | None = None

    @property
    def labelled(self) -> int:
        return 0 if self.labels is None else int((self.labels >= 0).sum())


def held_out(run, data_dir, limit: int, seed: int = 0) -> Sample:
    """Text the run never trained on, with its labels: the training split minus the run's
    training rows (its validation rows and, under a label budget, every row outside it);
    then, while fewer than ``limit``, text for the agreement check alone
    (:func:`agreement_text`): 99.5% agreement on 100 documents is one document.

    A run trained on texts given in memory has no data file to read them from: it kept a
    sample of them in its folder (:mod:`tlc.train.memory`), read here instead."""
    from ..train.memory import read_held_out
    from ..train.pipeline import choose_rows, load_training_split

    stored = read_held_out(run)
    if stored is None:
        split = load_training_split(run.config, data_dir)
        train_rows, _ = choose_rows(split.labels, run.config, run.config.data.train)
        all_texts, all_labels = split.texts, split.labels
        rows = np.setdiff1d(np.arange(len(split.texts)), train_rows)
        training, unlabelled = [split.texts[i] for i in train_rows], []
    else:
        all_texts, all_labels = stored.texts, stored.labels
        rows = np.arange(len(stored.texts))
        training, unlabelled = stored.training, stored.unlabelled
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(rows, size=min(limit, len(rows)), replace=False))
    texts = [all_texts[i] for i in pick]
    labels = _label_indices(run, [all_labels[i] for i in pick])
    parts = [{"data": f"{run.config.data.train} (held-out rows)", "documents": len(texts),
              "labelled": True}] if len(texts) else []
    if len(texts) < limit:
        extra, extra_parts = agreement_text(run, data_dir, training, limit - len(texts), seed,
                                            held=texts, unlabelled=unlabelled)
        texts += extra
        labels = np.concatenate([labels, np.full(len(extra), -1, np.int64)])
        parts += extra_parts
    if not texts:
        raise TlcError("the run has no text to validate the export on",
                       hint="pass --validation-data NAME:SPLIT (e.g. imdb:unsup)")
    return Sample(texts, labels if (labels >= 0).any() else None,
                  " + ".join(p["data"] for p in parts), parts)


def agreement_text(run, data_dir, training_texts: list[str], limit: int, seed: int = 0,
                   held: list[str] = (), unlabelled: list[str] = ()
                   ) -> tuple[list[str], list[dict[str, Any]]]:
    """Up to ``limit`` texts without labels for the agreement check, in this order: the
    unlabelled text the run's configuration names (self_training.unlabelled,
    data.tokenizer_text), ``unlabelled`` (what a run trained from memory self-trained on),
    the run's own training text, and, while still fewer, passages of
    three sentences of them and of ``held`` (the held-out texts). Training text
    is fine here: the check compares two versions of the same model, not the model with the
    truth. Returns (texts, where they came from)."""
    from ..train.pipeline import load_texts

    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    rng = np.random.default_rng(seed)

    def take(found: list[str], what: str) -> None:
        room = limit - len(texts)
        if room <= 0 or not found:
            return
        if len(found) > room:
            found = [found[i] for i in np.sort(rng.choice(len(found), room, replace=False))]
        texts.extend(found)
        parts.append({"data": what, "documents": len(found), "labelled": False})

    config = run.config
    for spec in [*config.self_training.unlabelled, *config.data.tokenizer_text]:
        if limit - len(texts) <= 0:
            break
        try:
            take(load_texts([spec], config, data_dir), f"{spec} (unlabelled)")
        except TlcError:   # moved or deleted since training: the other text still serves
            continue
    take(list(unlabelled), "unlabelled text given in memory")
    take(list(training_texts), f"{config.data.train} (training rows)")
    if len(texts) < limit:
        take(passages([*held, *texts], seed), "passages of 3 sentences of the texts above")
    return texts, parts


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*<br\s*/?>\s*")


def passages(texts: list[str], seed: int = 0, length: int = 3) -> list[str]:
    """Every run of ``length`` consecutive sentences (split at ., ! or ? before a space,
    and at <br />) of texts longer than that, shuffled by ``seed``: shorter documents with
    the words, and the model's uncertainty, of the originals."""
    found = []
    for text in texts:
        sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
        found += [" ".join(sentences[i:i + length])
                  for i in range(len(sentences) - length + 1)] if len(sentences) > length else []
    order = np.random.default_rng(seed).permutation(len(found))
    return [found[i] for i in order]


def sample_from(spec: str, run, data_dir, limit: int) -> Sample:
    """The first ``limit`` rows of NAME[:SPLIT] or a file, with labels if it has them."""
    from ..data.dataset import open_dataset, parse_source
    from ..errors import DataError

    name, split = parse_source(spec)
    ds = open_dataset(name, data_dir)
    split = split or ds.splits[0]
    try:
        examples = ds.load(split, on_bad_rows="skip")
    except DataError:     # no label column: fine for a float32 check
        examples = ds.load(split, label_column=None, on_bad_rows="skip")
    texts = list(examples.texts[:limit])
    labels = None
    if examples.labels is not None and set(examples.labels[:limit]) <= set(run.labels):
        labels = _label_indices(run, examples.labels[:limit])
    return Sample(texts, labels, f"{name}:{split}")


def _label_indices(run, labels) -> np.ndarray:
    index = {label: i for i, label in enumerate(run.labels)}
    return np.array([index[label] for label in labels], dtype=np.int64)


def export(run_dir: str | Path, out: str | Path, *, opset: int = 17, ids_input: bool = False,
           quantize: bool = False, int8_rows: int | None = None, int5_rows: int = 0,
           ratio: float | None = None,
           min_agreement: float = MIN_AGREEMENT, max_accuracy_drop: float = MAX_ACCURACY_DROP,
           validate: bool = True, validation_data: str | None = None,
           sample: int = VALIDATION_SAMPLE, explain: bool = False,
           data_dir=None, force: bool = False, say=print) -> dict[str, Any]:
    """Write ``run_dir``'s model to ``out`` (see the module docstring); returns a report.

    ``quantize``: store the weights as int8 (:mod:`.quantize`), the embedding rows at the
    widths of the first of ``QUANTIZE_STEPS`` the guard accepts; ``ratio`` pins a size target
    instead (rows at 3 to 8 bits by rate-distortion); ``int8_rows`` pins a split: that many
    of the most frequent rows at 8 bits, ``int5_rows`` the next ones at 5, the rest at 4. A
    quantised file must agree with the Keras model on ``min_agreement`` of the labels and lose
    at most ``max_accuracy_drop`` points of accuracy on labelled text.

    ``explain``: add the sentence scores and spans of :mod:`.explain`; their occlusion scores
    are checked against the Keras model's (float32: within the probabilities' tolerance on
    the first ``EXPLAIN_SAMPLE`` validation texts; quantised: reported)."""
    from ..train.run import load_run

    out = Path(out)
    if not out.parent.is_dir():
        raise TlcError("the output folder does not exist", path=out.parent,
                       hint=f"create it first (mkdir -p {out.parent}) or choose another --out")
    if out.is_dir():
        raise TlcError("the output path is a folder", path=out, hint="give a file name, "
                       "e.g. model.onnx")
    seems = not_an_export(out) if out.exists() else None
    check_replace(out, force=force, ours=seems is None, made="a model written by tlc export",
                  seems=f"it is {seems}" if seems else None)
    for option, given in (("--int8-rows", int8_rows), ("--ratio", ratio)):
        if given is not None and not quantize:
            raise TlcError(f"{option} only applies with --quantize", hint="add --quantize")
    if ratio is not None and int8_rows is not None:
        raise TlcError("--ratio and --int8-rows each choose the embedding's widths",
                       hint="give one of them")
    if ratio is not None and not 1 <= ratio <= 8:
        raise TlcError(f"--ratio {ratio:g} is outside 1..8", hint="e.g. --ratio 3.6 (every "
                       "row at 8 bits is about 2.8x; at 3 bits each, about 5x)")
    if int5_rows and int8_rows is None:
        raise TlcError("--int5-rows splits the rows --int8-rows leaves out, so it needs "
                       "--int8-rows", hint="add --int8-rows N (e.g. --int8-rows 2000 "
                       "--int5-rows 8000)")
    if explain and ids_input:
        raise TlcError("--explain needs the text input (its spans index the input string)",
                       hint="drop --ids-input or --explain")
    run = load_run(run_dir, purpose="export")
    grid = run.tokenizer.config
    started = time.perf_counter()
    # text in: the network over the texts' real tokens (.packed); ids in: tf2onnx's grid
    model = compact(network_to_onnx(run.model, grid.max_sentences, grid.max_tokens, opset)
                    if ids_input else packed_text_classifier(
                        run.model, run.config.model, run.tokenizer, run.labels, opset,
                        explain=explain))
    evaluations = {p.stem: _load_json(p) for p in sorted((run.path / "eval").glob("*.json"))}
    values = {
        meta.FORMAT: meta.METADATA_FORMAT, meta.VERSION: __version__,
        meta.LABELS: run.labels, meta.INPUT: IDS if ids_input else TEXT,
        meta.CONFIG: run.config.to_dict(), meta.TOKENIZER_SHA256: run.tokenizer.sha256,
        meta.EVALUATION: {"valid_split": run.info.get("validation"), **evaluations},
        meta.QUANTIZATION: {"mode": "float32"},
    }
    report: dict[str, Any] = {"run": str(run.path), "out": str(out), "opset": opset,
                              "input": values[meta.INPUT]}
    reference = _reference(run, validation_data, data_dir, sample) if validate else None
    if quantize:
        # An --explain file's own nodes do not count against the size target, so its
        # embedding gets the widths the same run's plain file gets (the same probabilities).
        extra = (model.ByteSize() - compact(packed_text_classifier(
            run.model, run.config.model, run.tokenizer, run.labels, opset)).ByteSize()
            if explain else 0)
        model, values[meta.QUANTIZATION], check = _quantize_guarded(
            model, run,
            _steps(int8_rows, int5_rows, ratio, run.tokenizer.vocab_size, validate, say),
            reference, (min_agreement, max_accuracy_drop), ids_input, say, extra)
        report["quantization"] = values[meta.QUANTIZATION]
    elif reference is not None:   # the graph as it will be written; only metadata changes
        check = compare(model.SerializeToString(), reference, ids_input)
        say(format_check(check))
        _enforce(check, False, min_agreement, max_accuracy_drop)
    if reference is not None and explain:
        check["explain"] = _check_explain(model, run, reference, quantize)
        say(f"  sentence scores vs Keras occlusion "
            f"{check['explain']['max_abs_diff']:.2e} max on "
            f"{check['explain']['documents']:,} documents")
    if reference is not None:
        report["validation"] = values[meta.VALIDATION] = check
    meta.set_metadata(model, values)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(model.SerializeToString())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    report["bytes"] = out.stat().st_size
    report["seconds"] = time.perf_counter() - started
    return report


EXPLAIN_SAMPLE = 500   # validation texts whose sentence scores are checked against Keras


def _check_explain(model, run, reference, quantized: bool) -> dict[str, Any]:
    from .explain import check_against_keras

    texts = reference.data.texts[:EXPLAIN_SAMPLE]
    check = check_against_keras(open_session(model.SerializeToString()), run.model,
                                run.tokenizer, texts)
    if not quantized and check["beyond_tolerance"] > FLOAT_OUTLIERS * max(len(texts), 1000):
        raise TlcError(f"the file's sentence scores differ from the Keras model's occlusion "
                       f"by up to {check['max_abs_diff']:.2e} on {check['beyond_tolerance']} "
                       f"of {len(texts)} documents", hint="this is a conversion bug; report "
                       "it with the run folder, or export without --explain")
    return check


def not_an_export(path: Path) -> str | None:
    """None when ``path`` is a model tlc export wrote (ONNX with ``tlc.`` metadata), or an
    empty file, which --force may replace; else what the file seems to be. Reads only the
    model's top-level protobuf fields (the graph is skipped, not parsed), so a large file
    of any kind costs no memory."""
    import mmap

    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return None
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                fields = _protobuf_fields(data, 0, len(data))
                if fields is None or 7 not in {n for n, _, _ in fields}:  # 7: the graph
                    return "not an ONNX model"
                keys = []
                for number, a, b in fields:
                    if number == 14:  # metadata_props: entries {1: key, 2: value}
                        entry = _protobuf_fields(data, a, b) or []
                        keys += [bytes(data[x:y]) for n, x, y in entry if n == 1]
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    if any(key.startswith(b"tlc.") for key in keys):
        return None
    return "an ONNX model without tlc metadata (not written by tlc export)"


def _protobuf_fields(data, start: int, end: int) -> list[tuple[int, int, int]] | None:
    """(field number, value start, value end) of each length-delimited field of the protobuf
    message ``data[start:end]``; None when the bytes are not a well-formed message."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            if pos >= end or shift > 63:
                raise ValueError
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos
            shift += 7

    found, pos = [], start
    try:
        while pos < end:
            tag, pos = varint(pos)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise ValueError
            if wire == 0:
                _, pos = varint(pos)
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            elif wire == 2:
                length, pos = varint(pos)
                found.append((number, pos, pos + length))
                pos += length
            else:
                raise ValueError
        if pos != end:
            raise ValueError
    except ValueError:
        return None
    return found


def _steps(int8_rows, int5_rows, ratio, vocab: int, validate: bool, say) -> list[Split]:
    """The splits to try: the one asked for, else ``QUANTIZE_STEPS`` (those that store
    fewer than every row at 8 bits for this vocabulary, then every row)."""
    if ratio is not None:
        return [Split(ratio=ratio)]
    if int8_rows is not None:
        return [Split(int8_rows, int5_rows)]
    steps = [s for s in QUANTIZE_STEPS
             if s.ratio is not None or (s.int8_rows is not None and s.int8_rows < vocab)]
    steps.append(Split())
    if not validate and len(steps) > 1:
        say("--no-validate: no guard to choose a split by, so every embedding row stays "
            "at 8 bits (pass --ratio or --int8-rows to choose one)")
        return steps[-1:]
    return steps


def _quantize_guarded(float_model, run, steps, reference, limits, ids_input, say,
                      extra_bytes: int = 0):
    """Quantise with each :class:`Split` of ``steps`` in turn and keep the first the
    guard accepts (each checked against the same Keras outputs); the last step's failure is
    the error. Returns (model, quantisation info, comparison or None without a reference)."""
    refused = []
    for number, step in enumerate(steps, 1):
        try:
            model, info = _quantize(float_model, run, step, extra_bytes)
        except OutOfReach as far:
            if number == len(steps):
                raise
            say(f"{step.name}: skipped, {far.message}")
            continue
        if reference is None:
            return model, info, None
        check = compare(model.SerializeToString(), reference, ids_input)
        # The graph's size, before the metadata (labels, configuration, this check) that the
        # written file adds; the ratio compares graphs, so it is the file's ratio too.
        say(f"{step.name}: graph of {info['bytes']:,} bytes before metadata, "
            f"{info['float32_file_bytes'] / info['bytes']:.2f}x smaller than float32's")
        say(format_check(check))
        try:
            _enforce(check, True, *limits)
        except TlcError as failed:
            if number == len(steps):
                raise
            say(f"  the guard refuses it ({failed.message}); trying "
                f"{steps[number].name}")
            refused.append({"split": step.short, "int8_rows": step.int8_rows,
                            "int5_rows": step.int5_rows, "ratio": step.ratio,
                            "bytes": info["bytes"],
                            "label_agreement": check["label_agreement"],
                            "accuracy_drop": check.get("accuracy_drop")})
            continue
        if refused:
            info["refused_by_guard"] = refused
        info["split"] = step.short
        return model, info, check
    raise AssertionError("no quantisation steps")   # steps is never empty


class OutOfReach(TlcError):
    """A size target that no allocation of embedding widths can meet."""


def _quantize(model, run, step: Split, extra_bytes: int = 0):
    from .quantize import conv_hessian, row_bits

    vocab = run.tokenizer.vocab_size
    for option, n in (("--int8-rows", step.int8_rows), ("--int5-rows", step.int5_rows)):
        if n is not None and not 0 <= n <= vocab:
            raise TlcError(f"{option} {n} is outside 0..{vocab} (the vocabulary)",
                           hint=f"choose a number of embedding rows from 0 to {vocab}")
    float_bytes = model.ByteSize()
    hessian = conv_hessian(np.asarray(run.model.get_layer("word_conv").kernel))
    if step.ratio is not None:
        quantized, info = _quantize_to_ratio(model, run, step.ratio, float_bytes, hessian,
                                             extra_bytes)
    else:
        bits = (None if step.int8_rows is None or step.int8_rows >= vocab
                else row_bits(run.tokenizer.scores, run.tokenizer.is_byte, step.int8_rows,
                              step.int5_rows))
        quantized, info = _quantized(model, bits, hessian)
    info["float32_file_bytes"] = float_bytes   # before metadata, like bytes
    return quantized, info


def _quantized(model, bits, hessian):
    from .quantize import quantize_weights

    quantized, info = quantize_weights(model, bits, hessian)
    quantized = compact(quantized)             # the rebuilding nodes' names
    info["bytes"] = quantized.ByteSize()
    return quantized, info


def _quantize_to_ratio(model, run, ratio: float, float_bytes: int, hessian,
                       extra_bytes: int = 0):
    """Embedding widths by rate-distortion for a file ``ratio`` times smaller: the budget is
    what the target size leaves after everything else (measured on an all-8-bit file); an
    overshoot is cut from it and the allocation made again. ``extra_bytes`` (the explain
    outputs' nodes) are left out of the ratio: they are added to the target as they are."""
    from .quantize import ROW_BITS, allocate_bits, coded_rows, row_bytes, row_weights

    table = np.asarray(run.model.get_layer("embedding").embeddings)
    errors = {b: coded_rows(table, b, hessian)[3] for b in ROW_BITS}
    weight = row_weights(run.tokenizer.scores, run.tokenizer.is_byte)
    _, every8 = _quantized(model, None, hessian)
    embedding = next(w for w in every8["weights"] if w["kind"] == "embedding")
    target = (float_bytes - extra_bytes) / ratio + extra_bytes
    budget = (target - (every8["bytes"] - embedding["stored_bytes"]) - NODE_OVERHEAD
              - np.ceil(len(table) * 3 / 8))                  # the width map
    least = len(table) * row_bytes(min(ROW_BITS), table.shape[1])
    if budget < least:
        best = float_bytes / (float_bytes / ratio - budget + least)
        raise OutOfReach(f"a file {ratio:g}x smaller is out of reach for this model: with "
                         f"every embedding row at {min(ROW_BITS)} bits it is about {best:.2f}x "
                         "(the tokenizer and the other weights take the rest)",
                         hint=f"ask for --ratio {np.floor(best * 100) / 100:g} or less")
    for _ in range(3):
        bits = allocate_bits(errors, weight, budget, table.shape[1])
        quantized, info = _quantized(model, bits, hessian)
        if info["bytes"] <= target:
            break
        budget -= info["bytes"] - target + 256
    info["target_ratio"] = ratio
    return quantized, info


def accuracy_tolerance(discordant: int, documents: int, max_accuracy_drop: float) -> float:
    """The accuracy points a quantised file may lose on ``documents`` labelled rows of which
    ``discordant`` change label: --max-accuracy-drop, or more where that is within noise
    (see :data:`ACCURACY_Z`)."""
    # no changed label: no noise to allow for; a negative limit is a demand, kept as given
    if documents <= 0 or discordant <= 0 or max_accuracy_drop < 0:
        return max_accuracy_drop
    return max(max_accuracy_drop, ACCURACY_Z * 100 * np.sqrt(discordant) / documents)


def _enforce(check: dict[str, Any], quantized: bool, min_agreement: float,
             max_accuracy_drop: float) -> None:
    hint = ("this is a conversion bug; report it with the run folder" if not quantized else
            "export without --quantize, keep more embedding rows at 8 or 5 bits (raise "
            "--int8-rows / --int5-rows), or, knowingly, relax --min-agreement / "
            "--max-accuracy-drop")
    if not quantized:
        beyond = check["beyond_tolerance"]
        if not beyond <= FLOAT_OUTLIERS * check["documents"]:
            raise TlcError(
                f"the exported model disagrees with the Keras model: {beyond:,} of "
                f"{check['documents']:,} documents of {check['data']} differ by more than "
                f"{FLOAT_TOLERANCE:g} (max |difference| {check['max_abs_diff']:.3g}; at most "
                f"{100 * FLOAT_OUTLIERS:g}% may, for k-max pooling's ties)", hint=hint)
        return
    if not check["label_agreement"] >= min_agreement:
        raise TlcError(
            f"the quantised model's labels agree with the Keras model's on only "
            f"{100 * check['label_agreement']:.2f}% of {check['decided_documents']:,} "
            f"documents of {check['data']} (those not near a tie; need "
            f"{100 * min_agreement:.2f}%)", hint=hint)
    drop = check.get("accuracy_drop")
    if drop is None:
        return      # too few labelled rows: said in the check, agreement decides
    limit = check["accuracy_tolerance"] = accuracy_tolerance(
        check["discordant_labelled"], check["labelled_documents"], max_accuracy_drop)
    if not drop <= limit:
        raise TlcError(
            f"quantisation costs {drop:.2f} points of accuracy on the "
            f"{check['labelled_documents']:,} labelled documents (limit {limit:.2f}: "
            f"--max-accuracy-drop {max_accuracy_drop:g}, or what "
            f"{check['discordant_labelled']:,} changed labels leave to chance)", hint=hint)


@dataclass
class Reference:
    """The Keras model's probabilities on a validation sample, computed once for every file
    compared against them."""

    data: Sample
    grids: np.ndarray
    probabilities: np.ndarray


def _reference(run, validation_data, data_dir, sample: int) -> Reference:
    data = (sample_from(validation_data, run, data_dir, sample) if validation_data
            else held_out(run, data_dir, sample))
    grids = run.tokenizer.encode_grid(data.texts)
    return Reference(data, grids, run.model.predict(grids, batch_size=256, verbose=0))


def compare(model_bytes: bytes, reference: Reference, ids_input: bool) -> dict[str, Any]:
    """The ONNX model against the Keras one on the same documents: largest probability
    difference, label agreement, and, with labels, each model's accuracy (in points)."""
    session = open_session(model_bytes)
    data, want = reference.data, reference.probabilities
    texts = data.texts
    got = []
    for start in range(0, len(texts), 256):
        feed = ({IDS: reference.grids[start:start + 256]} if ids_input
                else {TEXT: np.array([model_text(t) for t in texts[start:start + 256]],
                                     dtype=object)})
        # (the first output: an --explain file's extra outputs are checked on their own)
        got.append(session.run([session.get_outputs()[0].name], feed)[0])
    proba = np.concatenate(got) if got else np.zeros_like(want)
    diff = np.abs(proba - want).max(axis=1) if len(texts) else np.zeros(0)
    same = proba.argmax(1) == want.argmax(1)
    top = np.sort(want, axis=1)
    decided = (top[:, -1] - top[:, -2] >= TIE_MARGIN) if len(texts) else np.zeros(0, bool)
    check: dict[str, Any] = {
        "data": data.source, "documents": len(texts),
        "max_abs_diff": float(diff.max()) if len(texts) else 0.0,
        "beyond_tolerance": int((diff > FLOAT_TOLERANCE).sum()),
        "label_agreement": float(same[decided].mean()) if decided.any() else 1.0,
        "decided_documents": int(decided.sum()),
        "all_label_agreement": float(same.mean()) if len(texts) else 1.0}
    if data.parts:
        check["texts"] = data.parts
    labelled = data.labels >= 0 if data.labels is not None else np.zeros(len(texts), bool)
    check["labelled_documents"] = n = int(labelled.sum())
    if n >= MIN_LABELLED:
        y = data.labels[labelled]
        check["keras_accuracy"] = 100 * float((want[labelled].argmax(1) == y).mean())
        check["onnx_accuracy"] = 100 * float((proba[labelled].argmax(1) == y).mean())
        check["accuracy_drop"] = check["keras_accuracy"] - check["onnx_accuracy"]
        check["discordant_labelled"] = int((~same[labelled]).sum())
    else:
        check["accuracy_check"] = (
            f"skipped: only {n:,} labelled documents" + (" held out" if data.parts else "")
            + f" (fewer than {MIN_LABELLED}); label agreement alone is checked")
    return check


def format_check(check: dict[str, Any]) -> str:
    lines = [f"validation on {check['documents']:,} documents of {check['data']}:",
             f"  max |onnx - keras| probability  {check['max_abs_diff']:.2e} ("
             f"{check['beyond_tolerance']:,} documents beyond {FLOAT_TOLERANCE:g})",
             f"  labels agree                    {100 * check['label_agreement']:.2f}% of the "
             f"{check['decided_documents']:,} not near a tie ({100 * TIE_MARGIN:g} points); "
             f"{100 * check['all_label_agreement']:.2f}% of all"]
    if "accuracy_drop" in check:
        lines.append(f"  accuracy keras -> onnx          {check['keras_accuracy']:.2f}% -> "
                     f"{check['onnx_accuracy']:.2f}% ({-check['accuracy_drop']:+.2f} points, "
                     f"{check['labelled_documents']:,} labelled documents)")
    elif "accuracy_check" in check:
        lines.append(f"  accuracy check                  {check['accuracy_check']}")
    if len(check.get("texts") or ()) > 1:
        lines.append("  texts: " + "; ".join(f"{p['documents']:,} from {p['data']}"
                                             for p in check["texts"]))
    return "\n".join(lines)


def _load_json(path: Path):
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
