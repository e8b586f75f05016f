"""tlc.runtime.Classifier and examples/classify.py, on a tiny model exported from the fixtures.

The model fixture trains with TensorFlow in this process, so the checks that scoring needs no
TensorFlow (nor anything outside `pip install .`) run in a fresh subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlc.errors import TlcError
from tlc.runtime import Classifier
from tlc.runtime.classifier import DEFAULT_BATCH_SIZE, available_cores
from tlc.session import open_session

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["great product, works well", "broke after a day. awful.", "", "   ",
         "\U0001f600" * 30, "\u4f60\u597d\u3002" * 10, "ok " * 300]


def _plain(model: Path, texts: list[str]) -> tuple[np.ndarray, list[str]]:
    session = open_session(model.read_bytes())
    proba, label = session.run(None, {"text": np.array(texts, dtype=object)})
    return proba, label.tolist()


def test_predict_matches_the_graph_and_carries_metadata(model):
    clf = Classifier.load(model)
    assert clf.labels == ("0", "1")
    assert clf.version and clf.format_version == "1" and len(clf.tokenizer_sha256) == 64
    assert clf.quantization == {"mode": "float32"}
    assert clf.config["tokenizer"]["max_sentences"] == 3
    assert clf.validation["max_abs_diff"] <= 1e-4
    assert clf.metadata["tlc.labels"] == ["0", "1"] and "tlc.evaluation" in clf.metadata
    assert clf.threads == available_cores() and clf.batch_size == DEFAULT_BATCH_SIZE == 32
    assert len(clf.sha256) == 64 and "labels=['0', '1']" in repr(clf)
    proba = clf.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), 2) and proba.dtype == np.float32
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    expected_proba, expected_labels = _plain(model, TEXTS)
    assert np.array_equal(proba, expected_proba)
    assert clf.predict(TEXTS) == expected_labels
    labels, proba2 = clf.score(TEXTS)
    assert labels == expected_labels and np.array_equal(proba2, proba)


def test_chunks_run_concurrently_and_keep_the_input_order(model):
    texts = [f"review {i}: " + ("good " if i % 3 else "bad broken ") * (i % 17) for i in
             range(300)]
    reference = Classifier.load(model, threads=1, batch_size=1000).predict_proba(texts)
    with Classifier.load(model, threads=4, batch_size=7) as clf:   # 43 chunks on 4 threads
        assert np.array_equal(clf.predict_proba(texts), reference)
        # 40 short texts: 10 a thread's share, not 7 a run (short texts fill a run further)
        assert clf._chunks(texts[:40]) == [texts[:10], texts[10:20], texts[20:30],
                                           texts[30:40]]
    # a small batch is split across the threads, but not into slivers
    clf = Classifier.load(model, threads=2, batch_size=256)
    assert [len(c) for c in clf._chunks(texts[:100])] == [50, 50]
    assert [len(c) for c in clf._chunks(texts[:20])] == [16, 4]
    assert [len(c) for c in clf._chunks(texts)] == [150, 150]
    clf.close()
    assert np.array_equal(clf.predict_proba(texts), reference)   # a closed one restarts


def test_short_texts_share_a_run_long_ones_keep_batch_size(model):
    """A run takes batch_size texts of ordinary length and up to 8 times as many short ones,
    within batch_size x CHUNK_CHARS characters; the scores do not depend on the cut."""
    from tlc.runtime.classifier import CHUNK_CHARS, CHUNK_GROWTH

    clf = Classifier.load(model, threads=1, batch_size=4)
    long = ["word " * (CHUNK_CHARS // 4)] * 12              # 1.25 x CHUNK_CHARS each
    assert [len(c) for c in clf._chunks(long)] == [4, 4, 4]
    short = ["tiny."] * 100
    assert [len(c) for c in clf._chunks(short)] == [4 * CHUNK_GROWTH] * 3 + [4]
    half = ["x" * (CHUNK_CHARS // 2 - 1)] * 20                # twice as many fit a run
    assert [len(c) for c in clf._chunks(half)] == [8, 8, 4]
    texts = short[:30] + half + long
    np.testing.assert_array_equal(
        clf.predict_proba(texts), Classifier.load(model, threads=1, batch_size=1000)
        .predict_proba(texts))


def test_texts_of_similar_length_share_a_chunk_and_come_back_in_input_order(model):
    rng = np.random.default_rng(0)
    texts = [" ".join(["good", "awful", "fine."][i % 3] for i in range(n))
             for n in rng.permutation(200)]
    clf = Classifier.load(model, threads=2, batch_size=16)
    seen: list[list[int]] = []
    run = clf._run

    def spy(chunk):
        seen.append([len(t) for t in chunk])
        return run(chunk)

    clf._run = spy
    proba = clf.predict_proba(texts)
    clf.close()
    from tlc.runtime.classifier import CHUNK_CHARS

    lengths = sorted(seen, key=min)
    assert sum(len(c) for c in seen) == 200 and len(seen) < 200 // 16   # short ones share
    for c in lengths[:-1]:          # 16 texts, or more only while within the budget
        assert len(c) >= 16 and (len(c) == 16 or sum(c) <= 16 * CHUNK_CHARS)
        assert len(c) <= 100                                          # a thread's share
    assert all(c == sorted(c) for c in lengths)                       # sorted inside a chunk
    assert all(a[-1] <= b[0] for a, b in zip(lengths[:-1], lengths[1:], strict=True))
    alone = np.concatenate([run([t]) for t in texts])
    assert np.array_equal(proba, alone)                               # input order, same numbers


def test_edge_inputs(model):
    clf = Classifier.load(model)
    assert clf.predict([]) == [] and clf.predict_proba([]).shape == (0, 2)
    assert len(clf.predict(t for t in ["a", "b"])) == 2          # any iterable of str
    with pytest.raises(TypeError, match="list of strings"):
        clf.predict("one text")
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        clf.predict(["ok", None])
    # lone surrogates (bytes decoded with surrogateescape) are replaced, not an exception
    assert np.array_equal(clf.predict_proba(["bad \udcff byte"]),
                          clf.predict_proba(["bad \ufffd byte"]))
    with pytest.raises(ValueError, match="threads"):
        Classifier.load(model, threads=0)


def test_long_texts_are_cut_without_changing_the_prediction(model):
    review = ("The first hour is slow. Then it gets good! The ending is great. " * 40)
    huge = review * (10_000_000 // len(review))                  # ~10 MB
    clf = Classifier.load(model)
    whole = Classifier.load(model, truncate_chars=None)
    assert np.allclose(clf.predict_proba([huge]), whole.predict_proba([huge]), atol=1e-6)
    assert np.allclose(clf.predict_proba([huge]), clf.predict_proba([huge[:100_000]]))


def test_bad_model_files(models, tmp_path):
    _, ids_model = models
    with pytest.raises(TlcError, match="takes token ids.*--ids-input") as e:
        Classifier.load(ids_model)
    assert "without --ids-input" in e.value.hint
    with pytest.raises(TlcError, match="model file not found") as e:
        Classifier.load(tmp_path / "missing.onnx")
    assert "tlc export" in e.value.hint
    with pytest.raises(TlcError, match="is a folder"):
        Classifier.load(tmp_path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(TlcError, match="not a loadable ONNX model") as e:
        Classifier.load(junk)
    assert e.value.path == str(junk)


# A fresh interpreter: use the runtime and `tlc predict`, then list what got imported.
_IMPORT_CHECK = r"""
import json, sys
from importlib import metadata
from tlc.runtime import Classifier
clf = Classifier.load(sys.argv[1])
labels = clf.predict(["a fine thing", "awful"])
api_only = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names))
from tlc.cli import app
try:
    app(["predict", sys.argv[1], sys.argv[2], "--out", sys.argv[3], "-q"])
except SystemExit as e:
    code = e.code
top = {m.split(".")[0] for m in sys.modules}
third_party = sorted(m for m in top if m not in sys.stdlib_module_names
                     and not m.startswith("_") and m != "tlc")
print(json.dumps({"labels": labels, "code": code, "modules": sorted(sys.modules),
                  "api_only": api_only,
                  "third_party": third_party,
                  "dists": {m: metadata.packages_distributions().get(m, []) for m in third_party}}))
"""


def _core_distributions() -> set[str]:
    """Every distribution `pip install .` brings: tlc's requirements without extras, and
    theirs, transitively."""
    import re
    from importlib import metadata

    import tomllib

    def name(req: str) -> str:
        return re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [name(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [name(r) for r in requires if "extra ==" not in r]
    return seen


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_scoring_imports_no_tensorflow_and_nothing_outside_the_core_install(model, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("text,id\ngood,1\nbad,2\n")
    out = tmp_path / "out.csv"
    r = subprocess.run([sys.executable, "-c", _IMPORT_CHECK, str(model), str(data), str(out)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["code"] == 0 and out.is_file() and len(report["labels"]) == 2
    heavy = [m for m in report["modules"] if m.split(".")[0] in
             ("tensorflow", "keras", "tf2onnx", "sentencepiece", "onnx", "tf_keras")
             or m.startswith(("tlc.train", "tlc.export", "tlc.tokenizer"))]
    assert heavy == []
    core = _core_distributions()
    outside = {m: d for m, d in report["dists"].items()
               if d and not {x.lower().replace("_", "-") for x in d} & core}
    assert outside == {}, f"imported from outside `pip install .`: {outside}"
    assert {"onnxruntime", "numpy"} <= set(report["third_party"])
    # the Python API alone: numpy, onnxruntime (and what onnxruntime itself imports); the
    # extensions' library is loaded by path
    onnxruntime_deps = {"flatbuffers", "packaging", "google", "sympy", "mpmath", "coloredlogs",
                        "humanfriendly"}
    api = {m for m in report["api_only"] if not m.startswith("_")}
    assert {"numpy", "onnxruntime", "tlc"} <= api
    assert api <= {"numpy", "onnxruntime", "onnxruntime_extensions", "tlc", *onnxruntime_deps}


def test_example_classify_program(model):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "classify.py"), str(model)],
                       input="a great product\n\nit broke, awful\n", capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    expected = Classifier.load(model).predict(["a great product", "it broke, awful"])
    assert [line.split()[0] for line in lines] == expected
    assert all("0=" in line and "1=" in line for line in lines)
    assert "labels: 0, 1" in r.stderr
