"""The seed table's learning curve: IMDB test accuracy against IMDB labels (log axis, with 0
labels at a tick of its own on the left), tlc transfer and from scratch (the int8 files) beside
TF-IDF + LR and fastText; bars span the lowest to the highest seed, the point is the mean.
Drawn by ``benchmarks/seed_table.py`` from its JSON (``plot``), or again from a JSON file:

    .venv/bin/python benchmarks/learning_curve.py benchmarks/results/seed_table.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ZERO_AT = 0.35  # where 0 labels sits, as a fraction of the first budget (log axis)
STYLE = {
    "tlc transfer": {"color": "tab:blue", "marker": "o"},
    "tlc from scratch": {"color": "tab:orange", "marker": "s"},
    "TF-IDF + LR": {"color": "tab:green", "marker": "^"},
    "fastText": {"color": "tab:red", "marker": "v"},
}


def series(result: dict) -> dict[str, list[dict]]:
    """Points per line: labels, mean, min, max and whether the value is the int8 file's."""
    out: dict[str, list[dict]] = {name: [] for name in STYLE}
    for cell in result["cells"]:
        line = {"transfer": "tlc transfer", "scratch": "tlc from scratch"}.get(cell["kind"])
        if line is None:
            continue
        int8 = cell["int8"]
        use = int8 if int8["mean"] is not None else cell["keras"]
        out[line].append({"labels": cell["labels"], "mean": use["mean"], "min": use["min"],
                          "max": use["max"], "int8": int8["mean"] is not None})
    for peer in result["peers"]:
        out[peer["system"]].append({"labels": peer["labels"], "mean": peer["mean"],
                                    "min": peer["min"], "max": peer["max"], "int8": True})
    return {k: sorted(v, key=lambda p: p["labels"]) for k, v in out.items() if v}


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = series(result)
    budgets = sorted({p["labels"] for pts in lines.values() for p in pts if p["labels"]})
    zero = ZERO_AT * budgets[0]

    def x(labels: int) -> float:
        return labels or zero

    fig, ax = plt.subplots(figsize=(9.5, 5.2), dpi=120)
    for k, (name, pts) in enumerate(lines.items()):
        style = STYLE[name]
        shift = 1 + 0.04 * (k - 1.5)  # a small sideways offset so the bars do not overlap
        xs = [x(p["labels"]) * shift for p in pts]
        ys = [p["mean"] for p in pts]
        err = [[p["mean"] - p["min"] for p in pts], [p["max"] - p["mean"] for p in pts]]
        label = name + (" (int8 file)" if name.startswith("tlc") else "")
        # 0 labels is not on the same scale: the line starts at the first budget.
        ax.plot([v for v, p in zip(xs, pts, strict=True) if p["labels"]],
                [v for v, p in zip(ys, pts, strict=True) if p["labels"]],
                color=style["color"], lw=1.5, alpha=0.8)
        ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor=style["color"], capsize=4, lw=1.2)
        for xv, p in zip(xs, pts, strict=True):
            ax.plot(xv, p["mean"], marker=style["marker"], ms=7, color=style["color"],
                    markerfacecolor=style["color"] if p["int8"] else "white")
        ax.plot([], [], color=style["color"], marker=style["marker"], label=label)
    bar = result.get("bar", {})
    goal = result.get("goal", {})
    shown_bar = shown_goal = False
    for labels in [0, *budgets]:
        key = str(result.get("budget_of", {}).get(str(labels), labels))
        for table, ls, name, shown in ((bar, "--", "bar", shown_bar),
                                       (goal, ":", "goal", shown_goal)):
            if key in table:
                ax.hlines(table[key], x(labels) / 1.25, x(labels) * 1.25, colors="black",
                          linestyles=ls, lw=1.2, label=None if shown else f"{name} (transfer)")
                if name == "bar":
                    shown_bar = True
                else:
                    shown_goal = True
    ax.set_xscale("log")
    ax.set_xlim(zero / 1.6, budgets[-1] * 1.6)
    ax.set_xticks([zero, *budgets])
    ax.set_xticklabels(["0\n(no IMDB labels)", *(f"{b:,}" for b in budgets)])
    ax.minorticks_off()
    ax.axvline((zero * budgets[0]) ** 0.5, color="grey", lw=0.8, ls="-", alpha=0.5)
    ax.set_xlabel("IMDB training labels (log scale)")
    ax.set_ylabel("IMDB test accuracy, %")
    seeds = max((c["seeds"] for c in result["cells"]), default=1)
    title = (f"IMDB learning curve: mean over label subsets (up to {seeds} seeds), bars from "
             "the lowest to the highest seed")
    if result.get("smoke"):
        title = "SMOKE RUN (tiny data, 1 epoch): not results\n" + title
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if any(not p["int8"] for pts in lines.values() for p in pts):
        fig.text(0.01, 0.01, "hollow marker: Keras model (the int8 export was refused)",
                 fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/seed_table.json")
    target = source.with_name("learning_curve.png")
    print(plot(json.loads(source.read_text(encoding="utf-8")), target))
