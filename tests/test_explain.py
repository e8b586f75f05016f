"""Sentence scores in the exported file (tlc export --explain): the graph's occlusion equals
the Keras model's on the grid with the sentence deleted, the spans index the input text
(markup, <br /> breaks, non-Latin scripts), and the runtime and CLI read them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import tlc.export  # noqa: F401  (import order: extensions before TensorFlow)
from tlc.errors import TlcError
from tlc.export.compose import packed_text_classifier
from tlc.export.explain import SCORES, SPANS, TOTAL, keras_occlusion
from tlc.runtime import Classifier
from tlc.session import open_session
from tlc.tokenizer import Tokenizer, TokenizerConfig
from tlc.train.model import ModelConfig, build_model

ROOT = Path(__file__).resolve().parent.parent

MARKUP = [
    "Good film. Bad acting!<br /><br />I <i>loved</i> it. Really.",
    "One of the best.<br/>The <b>acting</b> is superb &amp; the score &quot;great&quot;. 9/10",
    "A&nbsp;fine&nbsp;film. Not for kids.<BR>Long, though.",
    "Это прекрасный фильм. Актёры играют плохо! Но мне понравилось.",
    "هذا فيلم رائع. التمثيل سيء! لكنني أحببته.",
    "とても良い映画でした。 演技は下手でした! でも好きです。",
    "Emoji \U0001f600 here. And a\u3000wide space. Tabs\tand\nnewlines.\n\nEnd.",
    "  Leading spaces. Trailing ones.   ",
    "", "   ", ".", "No full stop at all",
    "One. Two. Three. Four. Five. Six. Seven.",
]


def with_biases(model, seed: int, shift: float):
    """Biases around ``shift`` and kernels 4x their initial size, so that a random model's
    sentences move its probabilities well above the tolerance the test compares at."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if len(weights) == 2:
            weights[0] = 4 * weights[0]
            weights[1] = (shift + 0.3 * rng.standard_normal(weights[1].shape)).astype(
                np.float32)
            layer.set_weights(weights)
    return model


def build(tokenizer, settings: dict, grid: tuple[int, int], seed: int = 0, shift: float = 0.1):
    s, t = grid
    tok = Tokenizer(tokenizer.model_proto, TokenizerConfig(
        **{**tokenizer.config.to_dict(), "max_sentences": s, "max_tokens": t}))
    config = ModelConfig(**{"embedding_dim": 6, "word_filters": 5, "sentence_filters": 4,
                            "hidden_units": 3, **settings})
    model = with_biases(build_model(config, vocab_size=tok.vocab_size, sentences=s, tokens=t,
                                    n_classes=3, seed=seed), seed, shift)
    if config.wide_buckets:     # scores of +-3 or so (the table starts at zero)
        wide = model.get_layer("wide")
        wide.set_weights([0.01 * np.random.default_rng(seed).standard_normal(
            wide.get_weights()[0].shape).astype(np.float32)])
    return tok, model, packed_text_classifier(model, config, tok, ["a", "b", "c"],
                                              explain=True)


def run(session, texts: list[str]):
    return session.run([SCORES, SPANS, TOTAL, "probabilities"],
                       {"text": np.array(texts, dtype=object)})


CASES = [  # model settings, grid: odd and even sentence kernels, k = 1 and 3, no mean, no hidden
    ({}, (4, 10)),
    ({"sentence_kernel": 4, "word_k": 1}, (5, 7)),
    ({"sentence_kernel": 1, "sentence_k": 1, "document_mean": False}, (3, 6)),
    ({"sentence_kernel": 5, "sentence_k": 3, "hidden_units": 0}, (6, 12)),
    ({"sentence_kernel": 2}, (2, 8)),
    ({"wide_buckets": 101}, (4, 10)),                  # the wide part leaves with its sentence
    ({"wide_buckets": 997, "word_k": 1, "hidden_units": 0}, (3, 6)),
]


@pytest.mark.parametrize("settings,grid", CASES)
def test_sentence_scores_equal_keras_with_the_sentence_deleted(tokenizer, texts, settings,
                                                               grid):
    tok, model, onnx_model = build(tokenizer, settings, grid)
    session = open_session(onnx_model.SerializeToString())
    batch = MARKUP + texts[:40]
    want = keras_occlusion(model, tok.encode_grid(batch))
    scores, spans, total, proba = run(session, batch)
    assert scores.shape[:2] == spans.shape[:2] and scores.shape[2] == 3
    moved = 0
    for i, w in enumerate(want):
        n = len(w)
        assert n == min(total[i], grid[0])
        np.testing.assert_allclose(scores[i, :n], w, atol=2e-5, err_msg=repr(batch[i]))
        assert not scores[i, n:].any() and (spans[i, n:] == -1).all()
        moved += int(np.abs(w).max() > 1e-3) if n else 0
    assert moved > len(want) // 2        # the reference is not trivially all zeros
    # the probabilities are the plain file's, bit for bit
    plain = packed_text_classifier(model, ModelConfig(**{
        "embedding_dim": 6, "word_filters": 5, "sentence_filters": 4, "hidden_units": 3,
        **settings}), tok, ["a", "b", "c"])
    p0 = open_session(plain.SerializeToString()).run(["probabilities"], {
        "text": np.array(batch, dtype=object)})[0]
    np.testing.assert_array_equal(proba, p0)


def test_spans_index_the_input_and_hold_the_model_s_sentences(tokenizer, texts):
    tok, _, onnx_model = build(tokenizer, {}, (12, 40))
    session = open_session(onnx_model.SerializeToString())
    batch = MARKUP + texts[:60]
    _, spans, total, _ = run(session, batch)
    flat, lengths = tok.encode_flat(batch)
    stream = np.split(flat, np.cumsum(lengths)[:-1])
    for i, text in enumerate(batch):
        n = min(int(total[i]), 12)
        got = [(int(a), int(b)) for a, b in spans[i, :n]]
        assert all(a >= 0 for a, _ in got), (text, got)
        ends = [0] + [b for _, b in got]
        assert all(b > a >= e for (a, b), e in zip(got, ends, strict=False)), (text, got)
        assert not text[:got[0][0]].strip() if got else not text.strip() or total[i] == 0
        # each span, tokenized alone, is that sentence's ids: the spans cut the text where
        # the model's sentence split does, and no text is lost between them
        pieces = [text[a:b] for a, b in got]
        rejoined = np.concatenate([tok.encode_flat([p])[0] for p in pieces]) if pieces else []
        whole = stream[i] if n == total[i] else stream[i][:len(rejoined)]
        np.testing.assert_array_equal(rejoined, whole, err_msg=repr(text))
        for a, b in got:
            assert text[a:b] == text[a:b].rstrip()
    # the scripts and markup above come back as written
    shown = {text: [text[a:b] for a, b in spans[i] if a >= 0] for i, text in enumerate(batch)}
    assert shown[MARKUP[0]] == ["Good film.", "Bad acting!<br /><br />", "I <i>loved</i> it.",
                                "Really."]
    assert shown[MARKUP[3]][1] == "Актёры играют плохо!"
    assert shown[MARKUP[4]][0] == "هذا فيلم رائع."
    assert shown[MARKUP[5]][-1].endswith("でも好きです。")


def test_spans_the_graph_cannot_place_are_minus_one_not_wrong(tokenizer):
    _, _, onnx_model = build(tokenizer, {}, (12, 40))
    texts = ['A <a title="Hi. There">link</a> here. Next one.',   # ". " inside a tag: fine
             "Odd <i <br> > markup. Then more."]                     # markup made by clean-up
    _, spans, total, _ = run(open_session(onnx_model.SerializeToString()), texts)
    assert [texts[0][a:b] for a, b in spans[0, :total[0]]] == [
        'A <a title="Hi. There">link</a> here.', "Next one."]
    got = [(int(a), int(b)) for a, b in spans[1, :total[1]]]
    assert got and all(a == b == -1 for a, b in got), got


def test_a_text_beyond_the_grid_says_how_many_sentences_went_unscored(tokenizer):
    _, _, onnx_model = build(tokenizer, {}, (4, 10))
    scores, spans, total, _ = run(open_session(onnx_model.SerializeToString()),
                                  ["One. Two. Three. Four. Five. Six. Seven.", "Short one."])
    assert total.tolist() == [7, 1]
    assert (spans[0, :, 0] >= 0).sum() == 4 and (spans[1, :, 0] >= 0).sum() == 1


@pytest.fixture(scope="module")
def explain_model(tmp_path_factory, tokenizer):
    """A tiny trained run exported with --explain (the guard checks it against Keras)."""
    from tiny_model import train_tiny_run

    from tlc.export.exporter import export

    folder = tmp_path_factory.mktemp("explain")
    run = train_tiny_run(folder / "run")
    report = export(run, folder / "explain.onnx", explain=True, say=lambda m: None)
    assert report["validation"]["explain"]["beyond_tolerance"] == 0
    assert report["validation"]["explain"]["sentences"] > 0
    quantized = export(run, folder / "explain-int8.onnx", explain=True, quantize=True,
                       int8_rows=400, min_agreement=0.9, max_accuracy_drop=10,
                       say=lambda m: None)
    assert quantized["validation"]["explain"]["documents"] > 0
    return folder / "explain.onnx", folder / "explain-int8.onnx"


def test_classifier_explain(explain_model, model):
    clf = Classifier.load(explain_model[0])
    assert clf.explains
    texts = [MARKUP[0], "", MARKUP[3], "One. Two. Three. Four. Five."]
    got = clf.explain(texts)
    labels, proba = clf.score(texts)
    assert [e.label for e in got] == labels
    np.testing.assert_allclose([[e.probabilities[c] for c in clf.labels] for e in got], proba,
                               atol=1e-6)
    first = got[0]
    assert first.sentences[0].text == "Good film." and len(first.sentences) == 3
    # the sentences are the text's own characters, in order, with nothing left out between
    joined = "".join(s.text for s in first.sentences)
    assert "".join(first.text.split()).startswith("".join(joined.split()))
    assert all(first.text[s.start:s.end] == s.text for s in first.sentences)
    assert first.unscored >= 1                                     # a 3-sentence grid
    assert got[1].sentences == [] and got[1].unscored == 0
    assert len(got[3].sentences) == 3 and got[3].unscored == 2     # a 3-sentence grid
    for e in got:
        for s in e.sentences:
            assert s.score == pytest.approx(s.scores[e.label])
    # one text alone explains as it does in a batch
    alone = clf.explain([texts[0]])[0]
    assert [s.score for s in alone.sentences] == pytest.approx(
        [s.score for s in got[0].sentences], abs=1e-6)
    # the quantised file has the outputs too
    assert Classifier.load(explain_model[1]).explain([texts[0]])[0].sentences
    with pytest.raises(TlcError, match="--explain"):
        Classifier.load(model).explain(["x"])            # a file without them
    assert not Classifier.load(model).explains


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tlc.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                          timeout=300)


def test_tlc_explain_prints_plain_text_on_a_pipe_and_colour_on_a_terminal(explain_model):
    out = _cli("explain", explain_model[0], MARKUP[0])
    assert out.returncode == 0, out.stderr
    assert "\x1b[" not in out.stdout
    assert "Good film." in out.stdout and "I <i>loved</i> it." in out.stdout
    coloured = _cli("explain", explain_model[0], MARKUP[0], "--color", "always")
    assert "\x1b[48;" in coloured.stdout


def test_tlc_explain_html_renders_in_a_headless_browser(explain_model, tmp_path):
    source = tmp_path / "reviews.txt"
    text = MARKUP[0] + " <script>alert(1)</script> Fine."
    source.write_text("\n".join([text, MARKUP[3], MARKUP[5]]) + "\n", encoding="utf-8")
    page = tmp_path / "report.html"
    out = _cli("explain", explain_model[0], source, "--html", page)
    assert out.returncode == 0, out.stderr
    html = page.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "http" not in html.split("<body", 1)[1]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("TLC_REQUIRE_CHROMIUM") == "1":
            pytest.fail("TLC_REQUIRE_CHROMIUM=1 but no chromium on PATH")
        pytest.skip("chromium not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120).stdout
    assert "</html>" in dom
    # the rendered page holds every sentence as a highlight, with its text as written
    clf = Classifier.load(explain_model[0])
    for e in clf.explain([text, MARKUP[3], MARKUP[5]]):
        for s in e.sentences:
            shown = (s.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
            assert f'data-score="{s.score:+.4f}">{shown}</span>' in dom, s.text
    assert dom.count('class="sentence"') == sum(
        len(e.sentences) for e in clf.explain([text, MARKUP[3], MARKUP[5]]))
    assert 'class="legend"' in dom


def test_tlc_predict_explain_adds_the_decisive_sentence_and_a_summary(explain_model, model,
                                                                    tmp_path):
    source = tmp_path / "in.jsonl"
    rows = [{"id": 1, "text": MARKUP[0]}, {"id": 2, "text": MARKUP[3]}]
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                      encoding="utf-8")
    out = _cli("predict", explain_model[0], source, "--out", tmp_path / "out.jsonl",
               "--explain", "--summary-sentences", "2")
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    clf = Classifier.load(explain_model[0])
    for row, e in zip(got, clf.explain([r["text"] for r in rows]), strict=True):
        top = e.decisive(1)
        assert row["decisive_sentence"] == (top[0].text if top else "")
        assert row["summary"] == e.summary(2)
    # its output is tlc predict's own, so --force may replace it (CSV: header ends with the
    # explain columns after error)
    again = _cli("predict", explain_model[0], source, "--out", tmp_path / "out.csv",
                 "--explain")
    assert again.returncode == 0, again.stderr
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header.endswith("error,decisive_sentence,summary")
    forced = _cli("predict", explain_model[0], source, "--out", tmp_path / "out.csv",
                  "--explain", "--force")
    assert forced.returncode == 0, forced.stderr
    plain = _cli("predict", model, source, "--out", tmp_path / "plain.jsonl", "--explain")
    assert plain.returncode == 2 and "--explain" in plain.stderr


def test_benchmark_removes_the_ranked_sentences_from_the_text(explain_model):
    from bench_loader import load_benchmark

    bench = load_benchmark("explain", module_name="explain_bench")

    text = "Good film.  Bad acting! Fine end."
    assert bench.without(text, [(12, 23)]) == "Good film. Fine end."
    clf = Classifier.load(explain_model[0])
    explanations = clf.explain([MARKUP[0], "One. Two.", "Single."])
    keep = [list(range(len(e.sentences))) for e in explanations]
    got = bench.flips(clf, explanations, {"first": keep}, 1, 2)["first"]
    assert got["reviews"] == 2                         # "Single." has one sentence only
    cut = [bench.without(e.text, [(e.sentences[0].start, e.sentences[0].end)])
           for e in explanations[:2]]
    want = sum(a != e.label for a, e in zip(clf.predict(cut), explanations, strict=False))
    assert got["flipped"] == want
