"""Faithfulness and cost of the sentence scores of ``tlc export --explain``.

    TLC_DATA_DIR=../shared/data .venv/bin/python benchmarks/explain.py MODEL.onnx \\
        --plain PLAIN.onnx --run RUN_FOLDER

``MODEL.onnx``: a file from ``tlc export RUN --explain`` (``--quantize`` or not);
``--plain``: the same run exported without ``--explain``, for the speed ratio; ``--run``:
the run folder, for the gradient variant (needs the ``train`` extra).

Faithfulness, on the 25,000 IMDB test reviews (``--sample N``: a seeded sample of N; the
full set takes about 5 minutes on 2 cores, the gradient variant included):
each review is explained, then its top-1 (and top-3) sentences by a ranking are deleted from
the *text* (their spans, as the file gives them) and the review is scored again by the plain
classifier; a flip is a changed label. Rankings: tlc's occlusion score (the drop in the
predicted label's probability without the sentence), a random order (``--random-draws``
seeded draws per review, averaged), and, with ``--run``, the gradient variants of Denil et al.
2014 computed with the Keras model: the norm of the gradient of the predicted class's
probability with respect to the sentence vector, and gradient x input (its signed
first-order estimate of the occlusion). Top-1 counts reviews with at least 2 scored
sentences, top-3 those with at least 4, so something is always left.

Speed: the sample's first ``--speed-sample`` (5,000) reviews scored by the plain file
(``predict_proba``), by the explain file asked for probabilities only, and by
``Classifier.explain``, round robin for ``--repeats`` (5) passes, best pass each (every core,
the default batch). Writes ``benchmarks/results/explain.json`` and ``explain.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))       # measure the checkout this file lives in

from tlc.runtime import Classifier  # noqa: E402


def imdb_test(sample: int, seed: int) -> tuple[list[str], np.ndarray]:
    from tlc.data.dataset import open_dataset

    ex = open_dataset("imdb").load("test")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(ex.texts), size=min(sample, len(ex.texts)), replace=False))
    return [ex.texts[i] for i in pick], np.array([ex.labels[i] for i in pick])


def without(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the character ranges ``spans`` cut out."""
    out, at = [], 0
    for a, b in sorted(spans):
        out.append(text[at:a])
        at = b
    out.append(text[at:])
    return " ".join(part.strip() for part in out if part.strip())


def flips(clf: Classifier, explanations, rankings: dict[str, list[list[int]]], k: int,
          least: int) -> dict[str, dict]:
    """For each ranking: of the reviews with at least ``least`` placed sentences, how many
    change label once the ranking's first ``k`` sentences are deleted."""
    chosen = [i for i, e in enumerate(explanations)
              if sum(s.start >= 0 for s in e.sentences) >= least]
    out = {}
    for name, order in rankings.items():
        texts = [without(explanations[i].text, [(explanations[i].sentences[j].start,
                                                 explanations[i].sentences[j].end)
                                                for j in order[i][:k]]) for i in chosen]
        labels = clf.predict(texts)
        flipped = sum(a != explanations[i].label for a, i in zip(labels, chosen, strict=True))
        out[name] = {"reviews": len(chosen), "flipped": int(flipped),
                     "rate": flipped / max(len(chosen), 1)}
    return out


def gradient_scores(run_dir: str, texts: list[str], explanations) -> dict[str, list]:
    """Per review, per sentence: |d p(label) / d sentence vector| and gradient x input."""
    import tlc.export  # noqa: F401, I001  (import order: extensions before TensorFlow)
    import tensorflow as tf

    from tlc.train.run import load_run

    run = load_run(run_dir, purpose="export")
    m = run.model
    grids = run.tokenizer.encode_grid(texts)
    label_index = {c: i for i, c in enumerate(run.labels)}
    up_to = tf.keras.Model(m.input, m.get_layer("sentence_vectors").output)
    names = [layer.name for layer in m.layers]

    def rest(ids, sv):
        x = m.get_layer("sentence_mask")([ids, sv])
        x = m.get_layer("sentence_conv")(x)
        doc = m.get_layer("document_kmax_flat")(m.get_layer("document_kmax")(x))
        if "document_mean" in names:
            doc = m.get_layer("document_vector")([doc, m.get_layer("document_mean")([ids, x])])
        if "hidden" in names:
            doc = m.get_layer("hidden")(doc)
        return m.get_layer("output")(doc)

    norm, times_input = [], []
    for start in range(0, len(texts), 128):
        ids = tf.constant(grids[start:start + 128])
        sv = tf.Variable(up_to(ids, training=False))
        want = np.array([label_index[e.label] for e in explanations[start:start + 128]])
        with tf.GradientTape() as tape:
            p = rest(ids, sv)
            chosen = tf.gather(p, want, axis=1, batch_dims=1)
        grad = tape.gradient(chosen, sv).numpy()
        values = sv.numpy()
        for i in range(len(want)):
            n = len(explanations[start + i].sentences)
            norm.append(np.linalg.norm(grad[i, :n], axis=1).tolist())
            times_input.append((grad[i, :n] * values[i, :n]).sum(axis=1).tolist())
    return {"gradient_norm": norm, "gradient_x_input": times_input}


def speed(plain: Classifier | None, clf: Classifier, texts: list[str], repeats: int) -> dict:
    runs = {"explain file, explain()": lambda: clf.explain(texts),
            "explain file, probabilities only": lambda: clf.predict_proba(texts)}
    if plain is not None:
        runs = {"plain file (no --explain)": lambda: plain.predict_proba(texts), **runs}
    for fn in runs.values():          # warm up
        fn()
    passes: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            passes[name].append(time.perf_counter() - t)
    out = {name: {"passes_s": p, "docs_per_s": len(texts) / min(p)} for name, p in
           passes.items()}
    if plain is not None:
        base = out["plain file (no --explain)"]["docs_per_s"]
        for v in out.values():
            v["vs_plain"] = v["docs_per_s"] / base
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a file from tlc export --explain")
    ap.add_argument("--plain", help="the same run exported without --explain (speed ratio)")
    ap.add_argument("--run", help="the run folder (gradient variant; needs TensorFlow)")
    ap.add_argument("--sample", type=int, default=25000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random-draws", type=int, default=5)
    ap.add_argument("--speed-sample", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "results" / "explain.json"))
    args = ap.parse_args()

    texts, gold = imdb_test(args.sample, args.seed)
    clf = Classifier.load(args.model)
    t = time.perf_counter()
    explanations = clf.explain(texts)
    explain_seconds = time.perf_counter() - t
    accuracy = float(np.mean([e.label == g for e, g in zip(explanations, gold, strict=True)]))
    placed = [[j for j, s in enumerate(e.sentences) if s.start >= 0] for e in explanations]

    def ranked(scores: list[list[float]]) -> list[list[int]]:
        return [sorted(p, key=lambda j, s=s: -s[j]) for p, s in zip(placed, scores,
                                                                      strict=True)]

    rankings = {"tlc occlusion": ranked([[s.score for s in e.sentences]
                                         for e in explanations])}
    if args.run:
        grads = gradient_scores(args.run, texts, explanations)
        rankings.update({f"gradient: {k.replace('_', ' ')}": ranked(v)
                         for k, v in grads.items()})
    rng = np.random.default_rng(args.seed + 1)
    draws = [[list(rng.permutation(p)) for p in placed] for _ in range(args.random_draws)]
    result: dict = {
        "model": str(args.model), "data": "imdb:test", "sample": len(texts),
        "seed": args.seed, "accuracy": accuracy,
        "sentences_scored": int(sum(len(e.sentences) for e in explanations)),
        "sentences_unscored": int(sum(e.unscored for e in explanations)),
        "sentences_unplaced": int(sum(len(e.sentences) - len(p)
                                      for e, p in zip(explanations, placed, strict=True))),
        "explain_seconds": explain_seconds,
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cores": clf.threads},
    }
    for k, least in ((1, 2), (3, 4)):
        got = flips(clf, explanations, rankings, k, least)
        random = [flips(clf, explanations, {"random": d}, k, least)["random"] for d in draws]
        rate = float(np.mean([r["rate"] for r in random]))
        got["random"] = {"reviews": random[0]["reviews"],
                         "flipped_mean": float(np.mean([r["flipped"] for r in random])),
                         "rate": rate, "draws": [r["flipped"] for r in random]}
        for name, v in got.items():
            if name != "random":
                v["vs_random"] = v["rate"] / rate if rate else None
        result[f"top{k}"] = got
    plain = Classifier.load(args.plain) if args.plain else None
    result["speed"] = speed(plain, clf, texts[:args.speed_sample], args.repeats)
    result["speed_sample"] = min(args.speed_sample, len(texts))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    Path(args.out).with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


def markdown(r: dict) -> str:
    lines = [f"# Sentence scores: faithfulness and cost ({r['sample']:,} IMDB test reviews, "
             f"seed {r['seed']})", "",
             f"Model `{Path(r['model']).name}`, accuracy on the sample {100 * r['accuracy']:.2f}%; "
             f"{r['sentences_scored']:,} sentences scored, {r['sentences_unscored']:,} past "
             f"the grid (unscored), {r['sentences_unplaced']:,} without a span.", "",
             "| ranking | top-1 removed: flipped | rate | vs random | top-3 removed: flipped "
             "| rate | vs random |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in r["top1"]:
        a, b = r["top1"][name], r["top3"][name]

        def cells(v):
            n = v.get("flipped", v.get("flipped_mean"))
            ratio = f"{v['vs_random']:.1f}x" if v.get("vs_random") else ""
            return f"{n:,.1f} of {v['reviews']:,}", f"{100 * v['rate']:.2f}%", ratio

        lines.append(f"| {name} | " + " | ".join((*cells(a), *cells(b))) + " |")
    lines += ["", f"Speed ({r['speed_sample']:,} reviews, best of the passes, docs/s):", "",
              "| run | docs/s | vs plain file |", "|---|---:|---:|"]
    for name, v in r["speed"].items():
        ratio = f"{v['vs_plain']:.2f}x" if "vs_plain" in v else ""
        lines.append(f"| {name} | {v['docs_per_s']:,.0f} | {ratio} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
