"""The quick start's figures: run ``examples/quickstart.sh`` as the README's main command runs
it (offline, no data folder), time each step, and write ``benchmarks/results/quickstart.json``
and ``.md``: the int8 file's accuracy on the sample's 1,000 held-out reviews (the figure the
script prints as expected and ``tests/test_quickstart.py`` reproduces), the trained model's,
a from-scratch run's and the peers' (TF-IDF + LR, fastText) on the same rows, and the seconds.

    .venv/bin/python benchmarks/quickstart.py             # the job, with this venv's tlc
    .venv/bin/python benchmarks/quickstart.py --install   # the whole README main command:

``--install`` first makes a fresh virtual environment and installs this tree into it with
``pip install ".[train,dev]"`` and pip's cache off (as on a new machine; the packages still
come from the registry), then runs the job with that environment's tlc. The job runs with
no ``TLC_DATA_DIR``, a fresh ``HOME`` (so no data folder) and the HTTP(S) proxy pointed at a
closed port, so anything it tried to download would fail.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, not an installed tlc

from tlc import __version__  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SCRIPT = ROOT / "examples" / "quickstart.sh"
SAMPLE = ROOT / "examples" / "movie-reviews"
# The README's main command (its first set-up command), as a new user runs it.
COMMAND = ('python3 -m venv .venv && .venv/bin/pip install ".[train,dev]" '
           "&& bash examples/quickstart.sh")
STEPS = ("train", "evaluate", "export", "predict")
SCRATCH_VOCAB = 8000
DEAD_PROXY = "http://127.0.0.1:9"   # the discard port: nothing listens, a download fails


def offline_env(home: Path, bin_dir: Path | None = None) -> dict[str, str]:
    """The environment of a machine with no data folder and no network: no TLC_DATA_DIR, a
    fresh HOME (no ~/.local/share/tlc/data), and every HTTP(S) request sent to a closed
    port. ``bin_dir``: the tlc and python to use (the script's TLC and PYTHON)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLC_")
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(HOME=str(home), http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY,
               HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY)
    if bin_dir is not None:
        env.update(TLC=str(bin_dir / "tlc"), PYTHON=str(bin_dir / "python"))
    return env


def run_script(out: Path, env: dict[str, str], echo=print) -> dict:
    """Run the quick start into ``out``; its output is echoed as it comes. Returns the
    seconds of each step (from one step's banner to the next) and in all, and the output."""
    started = time.monotonic()
    marks: list[float] = []
    lines: list[str] = []
    process = subprocess.Popen(["bash", str(SCRIPT)], cwd=ROOT, env={**env, "OUT": str(out)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("== ") and "/4 " in line or line.startswith("== done"):
            marks.append(time.monotonic())
        lines.append(line)
        echo(line.rstrip("\n"))
    if process.wait() != 0:
        raise SystemExit(f"examples/quickstart.sh exited with {process.returncode}")
    total = time.monotonic() - started
    if len(marks) != len(STEPS) + 1:
        raise SystemExit(f"expected {len(STEPS)} step banners and a done line, saw "
                         f"{len(marks)}: has examples/quickstart.sh changed?")
    steps = {name: marks[i + 1] - marks[i] for i, name in enumerate(STEPS)}
    return {"seconds": total, "steps": steps, "output": "".join(lines)}


def scored_accuracy(path: Path) -> tuple[float, int]:
    """Accuracy of the scored file's pred_label against its label column, and its rows."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return sum(r["label"] == r["pred_label"] for r in rows) / len(rows), len(rows)


def sample_rows(split: str) -> tuple[list[str], list[str]]:
    with gzip.open(SAMPLE / f"{split}.csv.gz", "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def install(venv: Path) -> float:
    """A fresh virtual environment with this tree installed as the README installs it."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", ".[train,dev]"], cwd=ROOT,
                   env=env, check=True)
    return time.monotonic() - started


def scratch(bin_dir: Path, out: Path, env: dict[str, str]) -> float:
    """The same rows trained from scratch (``--init none``, tlc's plain defaults but for a
    tokenizer of 8,000 pieces, as 900 reviews hold too few distinct pieces for the default
    16,000): what the bundled base is worth here. Keras accuracy on the sample's test split."""
    tlc = str(bin_dir / "tlc")
    subprocess.run([tlc, "train", "--data", str(SAMPLE), "--init", "none", "--set",
                    f"tokenizer.vocab_size={SCRATCH_VOCAB}", "--out", str(out / "scratch"),
                    "--force"], env=env, check=True)
    report = out / "scratch-evaluation.json"
    subprocess.run([tlc, "evaluate", str(out / "scratch"), str(SAMPLE), "--out", str(report)],
                   env=env, check=True)
    return json.loads(report.read_text())["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", action="store_true",
                        help="install into a fresh venv first (the whole README command)")
    parser.add_argument("--no-scratch", action="store_true",
                        help="skip the from-scratch comparison (a minute or two)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "quickstart-benchmark")
    args = parser.parse_args()

    os.chdir(ROOT)   # the runs record the sample by its path from the root
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        install_seconds = None
        bin_dir = Path(sys.executable).parent
        if args.install:
            print(f"installing this tree into a fresh venv ({tmp / 'venv'}), pip's cache off",
                  flush=True)
            install_seconds = install(tmp / "venv")
            bin_dir = tmp / "venv" / "bin"
            print(f"installed in {install_seconds:.0f} s", flush=True)
        (tmp / "home").mkdir()
        env = offline_env(tmp / "home", bin_dir)
        job = run_script(out, env)
        int8, test_rows = scored_accuracy(out / "scored.csv.gz")
        keras = json.loads((out / "evaluation.json").read_text())["accuracy"]
        from_scratch = None if args.no_scratch else scratch(bin_dir, out, env)

    # (imported here: tests/test_quickstart.py loads this file for its helpers alone, and
    # benchmarks/ must not go on its import path, where profile.py would shadow the stdlib's)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peers import SYSTEMS, peer_cell

    run = json.loads((out / "run" / "run.json").read_text())
    tests = {"sample test": sample_rows("test")}
    peers = {name: peer_cell(name, run["data"]["train_rows"] + run["data"]["valid_rows"],
                             [out / "run"], None, out / "peers", tests, main="sample test")
             for name in SYSTEMS}
    result = {
        "command": COMMAND,
        "what": "examples/quickstart.sh: fine-tune the bundled base reviews-en on "
                "examples/movie-reviews/train.csv.gz (1,000 IMDB training reviews), evaluate "
                "on its test.csv.gz (1,000 IMDB test reviews), export int8 with the guard, "
                "score test.csv.gz with the file",
        "offline": "no TLC_DATA_DIR, a fresh HOME, HTTP(S) proxy on a closed port",
        "install_seconds": install_seconds,
        "job_seconds": job["seconds"],
        "total_seconds": None if install_seconds is None else install_seconds + job["seconds"],
        "step_seconds": job["steps"],
        "rows": {"train": run["data"]["train_rows"], "valid": run["data"]["valid_rows"],
                 "test": test_rows},
        "recipe": run.get("recipe", {}).get("name"),
        "int8_accuracy": int8,
        "keras_accuracy": keras,
        "scratch_keras_accuracy": from_scratch,
        "model_bytes": (out / "model.onnx").stat().st_size,
        "peers": {name: {"accuracy": cell["mean"] / 100, "chosen": cell["selection"]["chosen"],
                         "train_rows": cell["train_rows"][0]} for name, cell in peers.items()},
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "tlc_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quickstart.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "quickstart.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    pct = lambda v: "—" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    sec = lambda v: "—" if v is None else f"{v:.0f} s"  # noqa: E731
    lines = ["# The quick start (benchmarks/quickstart.py)", "",
             f"`{r['command']}`, {r['machine']['cores']} cores, tlc {r['tlc_version']}, "
             f"{r['date']}; offline: {r['offline']}.", "",
             "| step | seconds |", "|---|---:|",
             f"| install (fresh venv, no pip cache) | {sec(r['install_seconds'])} |",
             *(f"| {name} | {sec(s)} |" for name, s in r["step_seconds"].items()),
             f"| the job (examples/quickstart.sh) | {sec(r['job_seconds'])} |",
             f"| **all** | **{sec(r['total_seconds'])}** |", "",
             f"Accuracy on the sample's {r['rows']['test']:,} held-out reviews "
             f"({r['rows']['train']:,} training + {r['rows']['valid']:,} validation rows, "
             f"recipe `{r['recipe']}`):", "",
             "| system | accuracy |", "|---|---:|",
             f"| tlc from reviews-en, int8 file | {pct(r['int8_accuracy'])} |",
             f"| tlc from reviews-en, trained model | {pct(r['keras_accuracy'])} |",
             f"| tlc from scratch (`--init none`, {SCRATCH_VOCAB:,} pieces), trained model | "
             f"{pct(r['scratch_keras_accuracy'])} |",
             *(f"| {name} (chosen on validation: {p['chosen']}) | {pct(p['accuracy'])} |"
               for name, p in r["peers"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
